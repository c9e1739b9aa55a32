"""Why MCL's class Gaussians can score noise as more in-distribution than test images.

    python scripts/noise_norms.py simclr ccm mcl-noaux mcl supclr [--cache-dir DIR]

For each shipped model: the median norm of the scored output (``z`` for the contrastive
models) on the test images and on each OOD set, and the AUROC of the class Gaussians (Eq.
12-14, no SEI, one covariance per class, ridge 1e-3) with the L2 normalisation that the
authors' code and mclviz's default apply, and without it. All 50,000 training images fit
the Gaussians; all 10,000 test images and 10,000 images of each OOD set are scored. The
finding it measures: noise images get projections of a larger norm than test images;
normalising throws the norm away, and the direction left lands near a class mean.
``--cache-dir`` reuses (and fills) the embedding cache of ``evaluate`` / ``reproduce``.
"""

from __future__ import annotations

import argparse

from mclviz.checkpoint import load
from mclviz.evaluation import checkpoint_outputs, load_eval_data, ood_split
from mclviz.metrics import ood_metrics
from mclviz.scoring import ClassGaussians
from mclviz.zoo import shipped_checkpoint

OOD = ("tinyimagenet-resize", "gaussian", "uniform")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", help="shipped model names, e.g. simclr mcl")
    p.add_argument("--cache-dir", default=None)
    args = p.parse_args()
    data = load_eval_data(ood=OOD)
    print("model | output | median norm: test, " + ", ".join(OOD) + " | AUROC normalised | raw")
    for name in args.models:
        path = shipped_checkpoint(name)
        if path is None:
            raise SystemExit(f"{name!r} is not shipped in checkpoints/; train it first")
        outputs = checkpoint_outputs(load(path), data, cache_dir=args.cache_dir, progress=False)
        train = outputs.get("scored", "train")
        test = outputs.get("scored", "test")
        ood = {o: outputs.get("scored", ood_split(o)) for o in OOD}
        norms = [test[:, 0].norm(dim=1).median().item()]
        norms += [x[:, 0].norm(dim=1).median().item() for x in ood.values()]
        auroc = {}
        for normalize in (True, False):
            det = ClassGaussians(normalize=normalize, covariance="class").fit(train, data.train[1])
            s_in = det.score(test)
            auroc[normalize] = [
                100 * ood_metrics(s_in, det.score(x))["auroc"] for x in ood.values()
            ]
        print(
            f"{name} | {outputs.resolve('scored')} | "
            + ", ".join(f"{v:.3g}" for v in norms)
            + " | "
            + " / ".join(f"{a:.1f}" for a in auroc[True])
            + " | "
            + " / ".join(f"{a:.1f}" for a in auroc[False]),
            flush=True,
        )


if __name__ == "__main__":
    main()
