"""Train (or continue) the checkpoints shipped in ``checkpoints/``, within a time budget.

    python scripts/train_shipped.py --hours 2 [--methods mcl simclr ...]

Each model trains with the ``small`` preset on CIFAR-10 into
``checkpoints/runs/<name>/checkpoint.safetensors`` (the resumable state, tracked in git
while a run is unfinished so that the next session continues it), and is shipped after
every stint as ``checkpoints/<name>.safetensors`` (float16 weights) with its manifest
entry, which records how much of the schedule it completed. A finished run's resumable
state is deleted. Run it in the background; it stops cleanly at the deadline.
"""

from __future__ import annotations

import argparse
import shutil
import time

from mclviz.config import Config
from mclviz.train import prepare_data, train
from mclviz.zoo import checkpoints_dir, ship

#: name -> config overrides on top of Config.preset("small", ...)
MODELS = {
    "mcl": {"method": "mcl"},
    "simclr": {"method": "simclr"},
    "supclr": {"method": "supclr"},
    "ccm": {"method": "ccm"},
    "mcl-noaux": {"method": "mcl-noaux"},
    "ce": {"method": "ce"},
    "rot": {"method": "rot"},
    "mcl-openset": {"method": "mcl", "known_classes": [0, 1, 2, 3, 4, 5]},
}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--hours", type=float, default=1.0)
    p.add_argument("--methods", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = p.parse_args()
    deadline = time.time() + 3600 * args.hours
    folder = checkpoints_dir()
    for name in args.methods:
        if time.time() > deadline:
            break
        config = Config.preset("small", **MODELS[name])
        run = folder / "runs" / name
        shipped = folder / f"{name}.safetensors"
        if shipped.exists() and not run.exists():
            print(f"{name}: already complete, skipped")
            continue
        images, labels = prepare_data(config)
        n = len(labels)
        steps = max(1, n // min(config.batch_size, n)) * config.epochs
        result = train(config, out=run, resume=True, data=(images, labels),
                       should_stop=lambda: time.time() > deadline)
        path = ship(result.checkpoint, name, folder, total_steps=steps)
        print(f"{name}: shipped {path} ({'stopped early' if result.stopped_early else 'complete'})")
        if not result.stopped_early:
            shutil.rmtree(run)


if __name__ == "__main__":
    main()
