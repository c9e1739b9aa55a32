"""Training throughput of FastNet against the quarter-width ResNet-18, per training step.

    python benchmarks/bench_train.py [--steps 3] [--threads N] [--precisions bf16 fp32]

Steps (the real ones, as ``mclviz.training.train`` runs them):

* ``ce``: cross-entropy, batch ``--batch-ce`` images (512), one light view each;
* ``mcl r=1``: MCL with ``rotations_per_image=1``, ``--batch-mcl`` images (256): 2 views
  each, one random rotation per image (512 views);
* ``mcl r=4``: MCL with the paper's 4 rotations x 2 views (2,048 views for 256 images).

Each step is timed whole: the method's views (``Method.make_views``: augmentation,
rotations), one forward pass and the loss through ``mclviz.methods.step``, backward and the
SGD step (Nesterov, the ``fast`` preset's recipe); the median of ``--steps`` timed steps
after one warm-up step. Both backbones run the same config (the ``fast`` preset, only
``arch`` / ``width`` differ): ``fastnet`` at width 1 and ``resnet18`` at width 0.25 (the
``small`` preset's backbone). Precisions: bf16 autocast with channels-last (what
``precision="auto"`` picks on CPUs with native bf16) and fp32 for reference.

FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` on one forward + backward of the step's
views (convolutions and matrix products of the model and the loss; the augmentation does
none of those). "Effective GFLOP/s" = counted FLOPs / measured step time, so the
augmentation's and the optimizer's time count against it; FLOPs do not depend on the
precision, so they are counted once per backbone and step.

Printed from one run: images/s, views/s, GFLOP per step and effective GFLOP/s of each
backbone and step, then the ratios fastnet / resnet18-w0.25 side by side.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from mclviz import methods
from mclviz.checkpoint import build_model_from_config
from mclviz.config import Config
from mclviz.device import cpu_supports_bf16, resolve_precision

BACKBONES = {
    "fastnet": {"arch": "fastnet", "width": 1.0},
    "resnet18-w0.25": {"arch": "resnet18", "width": 0.25},
}


def _steps(batch_ce: int, batch_mcl: int) -> dict[str, tuple[str, int, dict]]:
    """name -> (method, images per step, config overrides)."""
    return {
        "ce": ("ce", batch_ce, {}),
        "mcl r=1": ("mcl", batch_mcl, {"rotations_per_image": 1}),
        "mcl r=4": ("mcl", batch_mcl, {"rotations_per_image": 4}),
    }


class StepBench:
    """One backbone, method and precision: the model, optimizer and a step as train() has."""

    def __init__(self, backbone: str, method: str, batch: int, overrides: dict, precision: str):
        self.cfg = Config.preset(
            "fast",
            method=method,
            batch_size=batch,
            precision=precision,
            num_classes=10,
            **BACKBONES[backbone],
            **overrides,
        )
        self.entry = self.cfg.method_entry
        self.prec = resolve_precision(precision, torch.device("cpu"), self.cfg.channels_last)
        g = torch.Generator().manual_seed(0)
        self.x = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8, generator=g)
        self.y = torch.randint(0, 10, (batch,), generator=g)
        torch.manual_seed(0)
        model = build_model_from_config(self.cfg)
        if hasattr(model.backbone, "init_whitening"):  # as train() does, from the images
            model.backbone.init_whitening((self.x.float() / 255 - model.mean) / model.std)
        if self.prec.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model.train()
        self.opt = torch.optim.SGD(
            [p for p in model.parameters() if p.requires_grad],
            lr=0.01,
            momentum=self.cfg.momentum,
            nesterov=self.cfg.nesterov,
            weight_decay=self.cfg.weight_decay,
        )
        self.aug = methods.Augmenters(self.cfg)
        self.context = methods.StepContext(self.cfg)
        self.i = 0

    def forward(self, x: torch.Tensor, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
        with self.prec.autocast():
            out = self.model(self.prec.prepare(x), output=names)
        return {k: v.float() for k, v in out.items()}

    def views(self) -> methods.Views:
        self.i += 1
        gen = torch.Generator().manual_seed(self.i)
        self.context.generator = torch.Generator().manual_seed(10_000 + self.i)
        return self.entry.make_views(self.x, self.y, self.aug, self.cfg, gen)

    def step(self) -> int:
        """One full training step; returns the number of views it trained on."""
        views = self.views()
        loss = methods.step(self.entry, self.forward, views, self.context)["loss"]
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return len(views.y)

    def flops(self) -> int:
        """FLOPs of one forward + backward of a step's views (no optimizer step)."""
        views = self.views()
        with FlopCounterMode(display=False) as counter:
            loss = methods.step(self.entry, self.forward, views, self.context)["loss"]
            loss.backward()
        self.opt.zero_grad(set_to_none=True)
        return int(counter.get_total_flops())


def _median_seconds(fn, steps: int) -> float:
    fn()  # warm-up (oneDNN picks its kernels on the first call)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(steps: int, precisions: list[str], batch_ce: int, batch_mcl: int) -> list[dict]:
    rows = []
    flops: dict[tuple[str, str], int] = {}
    for step_name, (method, batch, overrides) in _steps(batch_ce, batch_mcl).items():
        for precision in precisions:
            for backbone in BACKBONES:
                bench = StepBench(backbone, method, batch, overrides, precision)
                if (backbone, step_name) not in flops:
                    flops[backbone, step_name] = bench.flops()
                views = bench.cfg.views_per_image * batch
                seconds = _median_seconds(bench.step, steps)
                f = flops[backbone, step_name]
                rows.append(
                    {
                        "step": step_name,
                        "precision": precision,
                        "backbone": backbone,
                        "images": batch,
                        "views": views,
                        "seconds": seconds,
                        "img_s": batch / seconds,
                        "views_s": views / seconds,
                        "gflop": f / 1e9,
                        "gflop_s": f / 1e9 / seconds,
                    }
                )
                print(
                    f"  {step_name:8} {precision:5} {backbone:15} {seconds:8.3f} s/step",
                    flush=True,
                )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=3, help="timed steps per setting (median)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--precisions", nargs="+", default=["bf16", "fp32"], choices=["bf16", "fp32"])
    p.add_argument("--batch-ce", type=int, default=512)
    p.add_argument("--batch-mcl", type=int, default=256)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, native bf16: "
        f"{cpu_supports_bf16()}, median of {args.steps} steps after 1 warm-up step"
    )
    rows = run(args.steps, args.precisions, args.batch_ce, args.batch_mcl)
    print()
    print(
        f"{'step':8} {'prec':5} {'backbone':15} {'images':>6} {'views':>6} {'img/s':>8} "
        f"{'views/s':>8} {'GFLOP/step':>10} {'GFLOP/s':>8}"
    )
    for r in rows:
        print(
            f"{r['step']:8} {r['precision']:5} {r['backbone']:15} {r['images']:6d} "
            f"{r['views']:6d} {r['img_s']:8.1f} {r['views_s']:8.1f} {r['gflop']:10.1f} "
            f"{r['gflop_s']:8.1f}"
        )
    print()
    print("fastnet / resnet18-w0.25, same step and precision:")
    print(f"{'step':8} {'prec':5} {'img/s':>7} {'GFLOP/img':>10} {'GFLOP/s':>8}")
    by = {(r["step"], r["precision"], r["backbone"]): r for r in rows}
    for step_name in _steps(args.batch_ce, args.batch_mcl):
        for precision in args.precisions:
            a = by[step_name, precision, "fastnet"]
            b = by[step_name, precision, "resnet18-w0.25"]
            print(
                f"{step_name:8} {precision:5} {a['img_s'] / b['img_s']:7.2f} "
                f"{a['gflop'] / b['gflop']:10.2f} {a['gflop_s'] / b['gflop_s']:8.2f}"
            )
    if "bf16" in args.precisions and "fp32" in args.precisions:
        print()
        print("bf16 / fp32 images/s, same step and backbone:")
        for step_name in _steps(args.batch_ce, args.batch_mcl):
            cells = [
                f"{bb} {by[step_name, 'bf16', bb]['img_s'] / by[step_name, 'fp32', bb]['img_s']:.2f}"
                for bb in BACKBONES
            ]
            print(f"{step_name:8} " + ", ".join(cells))


if __name__ == "__main__":
    main()
