"""Train (or continue) the checkpoints shipped in ``checkpoints/``, within a time budget.

    python scripts/train_shipped.py --hours 2 [--methods mcl simclr ...]

Each model trains with the ``fast`` preset (``mclviz.config``) and its own overrides below
on CIFAR-10 (all 50,000 training images) into
``checkpoints/runs/<name>/checkpoint.safetensors`` (the resumable state, tracked in git
while a run is unfinished so that the next session continues it), and is shipped after
every stint as ``checkpoints/<name>.safetensors`` (float16 weights) with its manifest
entry, which records how much of the schedule it completed. A finished run's resumable
state is deleted. A shipped model whose config differs from the one asked for (an older
recipe) is retrained. Run it in the background; it stops cleanly at the deadline.

``--threads-file F``: a file holding a number of torch threads, read after every step.
Write ``1`` into it while other work needs a core (two processes each asking for both
cores of a 2-core machine slow each other down several times over), ``2`` when the
machine is free again.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import torch

from mclviz.checkpoint import read_manifest
from mclviz.config import Config
from mclviz.training import prepare_data, train
from mclviz.zoo import checkpoints_dir, ship

#: name -> config overrides on top of Config.preset("fast", ...), in training order: the
#: headline model and the baselines its targets name first, then the rows of the claims,
#: then the open-set model. The contrastive models share one schedule (same epochs, same
#: views per image), so the claims that compare them compare equal training.
CONTRASTIVE_EPOCHS = 10
CE_EPOCHS = 8  # 8 epochs of fastnet: under 15 minutes on 2 cores
MODELS = {
    "ce": {"method": "ce", "epochs": CE_EPOCHS},
    "mcl": {"method": "mcl", "rotations_per_image": 1, "epochs": CONTRASTIVE_EPOCHS},
    "mcl-ce": {
        "method": "mcl",
        "rotations_per_image": 1,
        "aux_ce": 1.0,
        "epochs": CONTRASTIVE_EPOCHS,
    },
    "supclr": {"method": "supclr", "epochs": CONTRASTIVE_EPOCHS},
    "mcl-noaux": {"method": "mcl-noaux", "epochs": CONTRASTIVE_EPOCHS},
    "ccm": {"method": "ccm", "epochs": CONTRASTIVE_EPOCHS},
    "simclr": {"method": "simclr", "epochs": CONTRASTIVE_EPOCHS},
    "rot": {"method": "rot", "rotations_per_image": 1, "epochs": CE_EPOCHS},
    "mcl-openset": {
        "method": "mcl",
        "rotations_per_image": 1,
        "epochs": CONTRASTIVE_EPOCHS,
        "known_classes": [0, 1, 2, 3, 4, 5],
    },
}


def config_of(name: str, preset: str = "fast") -> Config:
    """The config model ``name`` is trained with."""
    return Config.preset(preset, **MODELS[name])


def _is_shipped(folder: Path, name: str, config: Config) -> bool:
    """The shipped model is this config's, with the schedule complete."""
    entry = read_manifest(folder).get(name)
    if entry is None or not (folder / entry["file"]).exists():
        return False
    shipped = Config.from_dict(entry["config"]).replace(num_classes=config.num_classes)
    return shipped.to_dict() == config.to_dict() and bool(entry["metrics"].get("complete"))


def _thread_control(path: Path):
    """A training callback that sets torch's thread count to the number in ``path``."""

    def callback(event: dict) -> None:
        try:
            n = int(path.read_text().strip())
        except (OSError, ValueError):
            return
        if n >= 1 and n != torch.get_num_threads():
            torch.set_num_threads(n)
            print(f"\nthreads -> {n}", flush=True)

    return callback


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--hours", type=float, default=1.0)
    p.add_argument("--preset", default="fast", help="the preset the overrides apply to")
    p.add_argument("--methods", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument(
        "--threads-file",
        type=Path,
        default=None,
        help="file holding the torch thread count, re-read after every step",
    )
    args = p.parse_args()
    callbacks = [_thread_control(args.threads_file)] if args.threads_file else []
    deadline = time.time() + 3600 * args.hours
    folder = checkpoints_dir()
    for name in args.methods:
        if time.time() > deadline:
            break
        config = config_of(name, args.preset)
        run = folder / "runs" / name
        if _is_shipped(folder, name, config) and not run.exists():
            print(f"{name}: already complete, skipped")
            continue
        images, labels = prepare_data(config)
        n = len(labels)
        steps = max(1, n // min(config.batch_size, n)) * config.epochs
        result = train(
            config,
            out=run,
            resume=True,
            data=(images, labels),
            should_stop=lambda: time.time() > deadline,
            callbacks=callbacks,
        )
        path = ship(result.checkpoint, name, folder, total_steps=steps)
        print(f"{name}: shipped {path} ({'stopped early' if result.stopped_early else 'complete'})")
        if not result.stopped_early:
            shutil.rmtree(run)


if __name__ == "__main__":
    main()
