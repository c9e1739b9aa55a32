"""Normalisation against covariance: which of the two separates Lee's Mahalanobis from
MCL's class Gaussians on the same outputs.

    python scripts/normalisation_choice.py ce:features mcl:features mcl:z supclr:z \
        [--ood tinyimagenet-resize] [--cache-dir DIR]

For each shipped model and output: the AUROC (test images against the OOD set) of the
class Gaussians (Eq. 12-14, no SEI) with L2-normalised or raw outputs, one covariance per
class or one tied covariance. Raw + tied with ridge 1e-6 is Lee et al.'s detector
(``mahalanobis``); normalised + per class with ridge 1e-3 is mclviz's default
(``gaussians``). All 50,000 training images fit the Gaussians; all 10,000 test images and
10,000 OOD images are scored. This measures on test and OOD data, so it reports and does
not choose: the defaults were chosen on held-out training images (docs/covariance.md).
"""

from __future__ import annotations

import argparse

from mclviz.checkpoint import load
from mclviz.evaluation import checkpoint_outputs, load_eval_data, ood_split
from mclviz.metrics import ood_metrics
from mclviz.scoring import ClassGaussians
from mclviz.zoo import shipped_checkpoint

#: (normalize, covariance, ridge): the four corners, Lee's last
SETTINGS = [
    (True, "class", 1e-3),
    (True, "tied", 1e-3),
    (False, "class", 1e-3),
    (False, "tied", 1e-6),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("pairs", nargs="+", help="model:output, e.g. ce:features mcl:z")
    p.add_argument("--ood", default="tinyimagenet-resize")
    p.add_argument("--cache-dir", default=None)
    args = p.parse_args()
    data = load_eval_data(ood=(args.ood,))
    head = [f"{'normalised' if n else 'raw'} {c} (ridge {r:g})" for n, c, r in SETTINGS]
    print("| model | output | " + " | ".join(head) + " |")
    for pair in args.pairs:
        name, _, output = pair.partition(":")
        path = shipped_checkpoint(name)
        if path is None or output not in ("features", "z", "scored"):
            raise SystemExit(f"{pair!r}: give a shipped model and features / z, e.g. ce:features")
        outs = checkpoint_outputs(load(path), data, cache_dir=args.cache_dir, progress=False)
        train, test = outs.get(output, "train"), outs.get(output, "test")
        ood = outs.get(output, ood_split(args.ood))
        cells = []
        for normalize, covariance, ridge in SETTINGS:
            det = ClassGaussians(normalize=normalize, covariance=covariance, ridge=ridge)
            det.fit(train, data.train[1])
            cells.append(f"{100 * ood_metrics(det.score(test), det.score(ood))['auroc']:.1f}")
        print(f"| `{name}` | {output} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
