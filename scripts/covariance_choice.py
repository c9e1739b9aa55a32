"""Which covariance estimator should MCL's class Gaussians use by default? Measured on
held-out training images, never on the test or OOD sets.

    python scripts/covariance_choice.py [--models mcl supclr ce ...] [--holdout 5000]

For every shipped model: the Gaussians are fitted on the training images minus a
stratified hold-out of ``--holdout`` images (``mclviz.data.validation_split``, seed 0),
and the hold-out is classified (accuracy of Eq. 12's argmax) with each estimator: the
fixed ridge (1e-6, the authors' code adds 1e-9), a larger ridge, Ledoit-Wolf and OAS
shrinkage, and the tied covariance. The shipped models trained on every image, the
hold-out included, so the accuracies are optimistic, but alike for every estimator.
Prints one Markdown table (accuracy in percent) and the per-model best; the results and
the choice they led to (``DEFAULT_RIDGE``) are in ``docs/covariance.md``.
"""

from __future__ import annotations

import argparse

from mclviz import zoo
from mclviz.checkpoint import load
from mclviz.evaluation import evaluate, load_eval_data
from mclviz.scoring import ClassGaussians

ESTIMATORS = {
    "ridge 1e-6": dict(ridge=1e-6),
    "ridge 1e-3": dict(ridge=1e-3),
    "Ledoit-Wolf": dict(shrinkage="ledoit-wolf", ridge=1e-6),
    "OAS": dict(shrinkage="oas", ridge=1e-6),
    "tied": dict(covariance="tied", ridge=1e-6),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=None)
    p.add_argument("--holdout", type=int, default=5000)
    p.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=True)
    args = p.parse_args()
    names = args.models or [n for n in zoo.manifest() if n != "mcl-openset"]
    data = load_eval_data("cifar10", ood=(), split="val", holdout=args.holdout)
    print(f"| model | {' | '.join(ESTIMATORS)} | best |")
    print("|---|" + "---|" * (len(ESTIMATORS) + 1))
    for name in names:
        ck = load(zoo.shipped_checkpoint(name))
        dets = {k: ClassGaussians(normalize=args.normalize, **kw) for k, kw in ESTIMATORS.items()}
        _, scores = evaluate(
            ck, data=data, detectors=list(dets.values()), progress=False, return_scores=True
        )
        acc = {k: scores[d].accuracy for k, d in dets.items()}
        best = max(acc, key=acc.get)
        cells = " | ".join(f"{100 * a:.2f}" for a in acc.values())
        print(f"| {name} | {cells} | {best} |", flush=True)


if __name__ == "__main__":
    main()
