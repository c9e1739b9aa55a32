"""Short training runs on a validation split, for tuning the ``fast`` preset.

    python scripts/ablate_recipe.py --method ce --name base --set epochs=8 [--set k=v ...]
        [--out docs/ablations.jsonl] [--minutes M]

Trains ``Config.preset("fast", method=..., holdout=5000, **sets)`` on the 45,000 training
images that the stratified ``holdout`` leaves, then measures accuracy on the 5,000 held-out
images (never the test or OOD sets):

* classifier methods (``ce``, ``rot``): argmax of the logits, and with flip TTA (the logits
  of the image and its mirror image averaged);
* every method: the class-conditional Gaussians (Eq. 12; encoder features for classifier
  methods, the projection for contrastive ones), fitted on 10,000 of the training images,
  with 1 view and, for models trained with rotation labels, 8-way SEI w-avg (Eq. 20).

``--minutes M`` stops training after M minutes of wall time (same-budget comparisons; the
schedule is still the configured one, cut short, unless ``epochs`` is chosen to fit).
One JSON line per run is appended to ``--out``: name, method, the settings, steps,
seconds, and the accuracies.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from mclviz.config import Config
from mclviz.data import load_images, validation_split
from mclviz.embed import embed
from mclviz.scoring import aggregate, fit_sei_gaussians, sei_scores
from mclviz.training import prepare_data, train


def _accuracies(model, config: Config, xtr, ytr, xval, yval) -> dict[str, float]:
    out: dict[str, float] = {}
    precision = "auto"  # bf16 + channels-last where the CPU has native bf16 (was amp=True)
    if config.method in ("ce", "rot"):
        logits = embed(
            model, xval, views=[0, 4], output="logits", precision=precision, progress=False
        )
        out["acc"] = float((logits[:, 0].argmax(1) == yval).float().mean())
        out["acc_tta"] = float((logits.mean(1).argmax(1) == yval).float().mean())
    output = "features" if config.method in ("ce", "rot") else "z"
    rot = config.method in ("mcl", "rot")
    g = torch.Generator().manual_seed(0)
    pick = torch.randperm(len(ytr), generator=g)[:10000]
    ztr = embed(
        model, xtr[pick], views=4 if rot else 1, output=output, precision=precision, progress=False
    )
    gauss = fit_sei_gaussians(ztr, ytr[pick])
    zval = embed(
        model, xval, views=8 if rot else 1, output=output, precision=precision, progress=False
    )
    s = sei_scores(zval, gauss)  # (n, W, C)
    out["acc_gauss"] = float((aggregate(s[:, :1], "avg")[0] == yval).float().mean())
    if rot:
        out["acc_sei8"] = float((aggregate(s, "w-avg")[0] == yval).float().mean())
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--minutes", type=float, default=0.0)
    p.add_argument("--out", type=Path, default=Path("docs/ablations.jsonl"))
    args = p.parse_args()
    sets = {}
    for item in args.set:
        key, _, value = item.partition("=")
        sets[key] = Config.parse_value(key, value)
    config = Config.preset("fast", method=args.method, holdout=5000, **sets)
    images, labels = load_images(config.dataset, "train", root=config.data_root)
    val = validation_split(labels, config.holdout, seed=config.seed)
    xtr, ytr = prepare_data(config)
    t0 = time.perf_counter()
    stop = (lambda: time.perf_counter() - t0 > 60 * args.minutes) if args.minutes else None
    result = train(config, data=(xtr, ytr), should_stop=stop, progress=False)
    seconds = time.perf_counter() - t0
    steps = result.history[-1]["step"] if result.history else 0
    acc = _accuracies(result.model, result.config, xtr, ytr, images[val], labels[val])
    row = {
        "name": args.name,
        "method": args.method,
        "sets": sets,
        "steps": steps,
        "train_seconds": round(seconds, 1),
        "stopped_early": result.stopped_early,
        **{k: round(v, 4) for k, v in acc.items()},
    }
    print(json.dumps(row), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as fh:
        fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
