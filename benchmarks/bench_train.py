"""Training throughput of the `small` MCL step beside the bare backbone, fp32 and bf16.

    python benchmarks/bench_train.py [--steps 6] [--budget-seconds 0]

Prints, for each precision, images/s and views/s of
  (1) the full MCL step: augmentation + 4 rotations x 2 views + forward + loss + backward
      + SGD step, exactly as mclviz.train runs it;
  (2) the bare backbone + head forward/backward + SGD step on the same number of
      (pre-made) views;
and the ratio (1)/(2) (target: >= 0.85), plus bf16/fp32 speed-up, all from one run.

With --budget-seconds S > 0 it also trains `small` MCL for S seconds in each precision
on CIFAR-10 ($MCLVIZ_DATA) and prints the accuracy and AUROC (Tiny ImageNet resize) each
reaches with the same wall-clock budget.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mclviz.checkpoint import build_model_from_config
from mclviz.config import Config
from mclviz.device import resolve_precision
from mclviz.train import _Stepper


def _time(fn, steps: int) -> float:
    fn()  # warm-up (oneDNN picks kernels on the first call)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def throughput(precision: str, steps: int, batch: int) -> dict[str, float]:
    cfg = Config.preset("small", method="mcl", batch_size=batch, precision=precision)
    prec = resolve_precision(precision, torch.device("cpu"))
    torch.manual_seed(0)
    model = build_model_from_config(cfg)
    if prec.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    stepper = _Stepper(cfg, model, prec, None)
    x = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8)
    y = torch.randint(0, 10, (batch,))
    g = torch.Generator().manual_seed(0)

    def mcl_step():
        loss = stepper(x, y, g, g)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    views = prec.prepare(torch.rand(8 * batch, 3, 32, 32))

    def bare_step():
        with prec.autocast():
            out = model(views).float()
        opt.zero_grad(set_to_none=True)
        out.square().mean().backward()
        opt.step()

    t_mcl, t_bare = _time(mcl_step, steps), _time(bare_step, steps)
    return {
        "mcl_img_s": batch / t_mcl,
        "bare_img_s": batch / t_bare,
        "views_s": 8 * batch / t_mcl,
        "bare_views_s": 8 * batch / t_bare,
        "ratio": t_bare / t_mcl,
    }


def budget_run(precision: str, seconds: float) -> dict[str, float]:
    """Train `small` MCL from scratch for ``seconds`` in ``precision``, then evaluate it.

    Both precisions are evaluated the same way (fp32 embeddings, no SEI, 10,000 training
    images for the Gaussians, 2,000 test and 2,000 Tiny ImageNet images), so only the
    training precision differs. The cosine schedule is the full 15 epochs' in both: the
    budget cuts it, as a user's stopped run would be.
    """
    import tempfile

    from mclviz.evaluate import evaluate
    from mclviz.train import train

    cfg = Config.preset("small", method="mcl", precision=precision, epochs=15)
    with tempfile.TemporaryDirectory() as out:
        steps = []
        t0 = time.perf_counter()
        res = train(
            cfg,
            should_stop=lambda: time.perf_counter() - t0 > seconds,
            progress=False,
            out=out,
            callbacks=[lambda e: steps.append(e["step"]) if e["kind"] == "step" else None],
        )
        table = evaluate(
            res.checkpoint,
            ood=["tinyimagenet-resize"],
            sei=[1],
            progress=False,
            train_subset=10000,
            test_subset=2000,
            precision="fp32",
        )
    row = table[table.variant == "paper"].iloc[0]
    return {"steps": steps[-1] if steps else 0, "accuracy": row.accuracy, "auroc": row.auroc}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--budget-seconds", type=float, default=0.0)
    args = p.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch} "
        f"images = {8 * args.batch} views (4 rotations x 2 views)"
    )
    rows = {prec: throughput(prec, args.steps, args.batch) for prec in ("fp32", "bf16")}
    print(
        f"{'precision':>9} {'MCL img/s':>10} {'MCL views/s':>12} {'bare views/s':>13} "
        f"{'MCL/bare':>9}"
    )
    for prec, r in rows.items():
        print(
            f"{prec:>9} {r['mcl_img_s']:10.1f} {r['views_s']:12.1f} {r['bare_views_s']:13.1f} "
            f"{r['ratio']:9.2f}"
        )
    print(
        f"bf16 / fp32 speed-up of the MCL step: {rows['bf16']['views_s'] / rows['fp32']['views_s']:.2f}x"
    )
    if args.budget_seconds > 0:
        for prec in ("fp32", "bf16"):
            r = budget_run(prec, args.budget_seconds)
            print(
                f"{prec}: {args.budget_seconds:.0f} s of training -> {r['steps']} steps, "
                f"accuracy {r['accuracy']:.3f}, AUROC (tinyimagenet-resize) {r['auroc']:.3f}"
            )


if __name__ == "__main__":
    main()
