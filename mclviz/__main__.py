"""Command line: ``python -m mclviz {demo,train,evaluate,score,reproduce}``.

A thin layer over the functions the notebooks call:

* ``train``: ``mclviz.training.train`` with a preset and any config field overridden, e.g.
  ``python -m mclviz train --method mcl --preset small --data cifar10 --out runs/x``;
  every field of :class:`mclviz.config.Config` is an option (``--batch-size 64``,
  ``--alpha 0.1``, ``--known-classes 0,1,2,3,4,5``).
* ``evaluate``: accuracy and OOD metrics of a checkpoint per detector (``--detector``,
  ``--normalize/--no-normalize``, ``--covariance``), SEI way and aggregation.
* ``score``: a user's own images (files, folders, zip archives) scored with a checkpoint
  and called in- or out-of-distribution at a threshold set on the test set at ``--tpr``
  (``mclviz.evaluation.score_images``): ``scores.csv`` streamed as the images are scored
  and ``gallery.html`` sorted by score (``mclviz.report.gallery``), e.g.
  ``python -m mclviz score runs/mcl/checkpoint.safetensors photos/ more.zip --out scored``.
* ``reproduce``: the report of the paper's comparisons (``mclviz.report``).
* ``demo``: a tiny MCL run on the best data set available, evaluated.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from .config import PRESETS, Config
from .evaluation.pipeline import DETECTOR_NAMES

__all__ = ["main"]


def _add_config_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("config fields (override the preset)")
    for f in dataclasses.fields(Config):
        if f.name in ("extra",):
            continue
        flags = [f"--{f.name.replace('_', '-')}"]
        if f.name == "dataset":
            flags.append("--data")
        group.add_argument(
            *flags, dest=f"cfg_{f.name}", metavar="V", default=None, help=f"{f.name} ({f.type})"
        )


def config_from_args(args: argparse.Namespace) -> Config:
    """The preset named by ``--preset`` with every ``--<field>`` given applied."""
    overrides = {}
    for key, value in vars(args).items():
        if key.startswith("cfg_") and value is not None:
            name = key[4:]
            overrides[name] = Config.parse_value(name, value)
    return Config.preset(args.preset, **overrides)


def _cmd_train(args: argparse.Namespace) -> int:
    from .training import train
    from .training.distributed import rank, shutdown

    config = config_from_args(args)
    out = Path(args.out)
    result = train(config, out=out, resume=args.resume, progress=not args.quiet)
    # under torchrun every rank leaves the group together; after a failure it does not
    # wait at the barrier (torchrun stops the other ranks)
    first = rank() == 0
    shutdown()
    if not first:
        return 0  # one summary per run, from rank 0
    last = result.history[-1] if result.history else {}
    print(
        json.dumps(
            {
                "checkpoint": str(result.checkpoint),
                "seconds": round(result.seconds, 1),
                "precision": result.precision,
                "last_epoch": last,
            },
            indent=2,
        )
    )
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .checkpoint import load
    from .device import resolve_device
    from .evaluation import evaluate, format_table, make_detectors

    ck = load(args.checkpoint, device=resolve_device(args.device))
    sei = [int(w) for w in args.sei]
    detectors = None
    if args.detector:
        detectors = make_detectors(
            args.detector,
            ck.config,
            sei=sei,
            covariance=args.covariance,
            normalize=args.normalize,
        )
    table = evaluate(
        ck,
        ood=args.ood,
        sei=sei,
        detectors=detectors,
        covariance=args.covariance,
        normalize=args.normalize,
        data_root=args.data_root,
        test_subset=args.test_subset,
        train_subset=args.train_subset,
        split=args.split,
        progress=not args.quiet,
        precision=args.precision,
    )
    print(format_table(table))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "evaluation.csv", index=False)
        (out / "evaluation.json").write_text(table.to_json(orient="records", indent=2))
        print(f"wrote {out / 'evaluation.csv'} and {out / 'evaluation.json'}")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    import warnings

    from .evaluation import score_images
    from .evaluation.user_images import UndecodableImageWarning
    from .report.gallery import write_gallery

    out = Path(args.out)
    with warnings.catch_warnings():
        # said once below, with the count, instead of as warnings
        warnings.simplefilter("ignore", UndecodableImageWarning)
        result = score_images(
            args.checkpoint,
            args.paths,
            detector=args.detector,
            tpr=args.tpr,
            threshold=args.threshold,
            out=out / "scores.csv",
            train_subset=args.train_subset,
            test_subset=args.test_subset,
            data_root=args.data_root,
            batch_size=args.batch_size,
            precision=args.precision,
            device=args.device,
            cache_dir=args.cache_dir,
            progress=not args.quiet,
        )
    gallery = write_gallery(result, out / "gallery.html")
    for name, reason in result.skipped:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    print(
        f"scored {result.n_scored} images with {result.detector}: {result.n_in} "
        f"in-distribution, {result.n_out} out-of-distribution\n"
        f"{result.threshold_rule}\n"
        f"skipped {result.n_skipped} file{'s' if result.n_skipped != 1 else ''} that could "
        "not be decoded" + (" (named on stderr)" if result.n_skipped else "") + "\n"
        f"wrote {result.csv} and {gallery}"
    )
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from .report import reproduce

    kwargs = {}
    if args.methods:
        kwargs["methods"] = args.methods
    path = reproduce(
        out=args.out,
        train=args.train,
        preset=args.preset,
        checkpoints=args.checkpoints,
        data_root=args.data_root,
        test_subset=args.test_subset,
        train_subset=args.train_subset,
        open_set=not args.no_open_set,
        device=args.device,
        n_boot=args.n_boot,
        cache_dir=args.cache_dir,
        figures=not args.no_figures,
        precision=args.precision,
        progress=not args.quiet,
        **kwargs,
    )
    print(f"report written to {path}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import demo

    demo(out=args.out, data_root=args.data_root, progress=not args.quiet)
    return 0


def _add_device_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda")


def _add_precision_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16", "fp16"],
        help="embedding precision: auto = bf16 autocast where the device does it "
        "fast (moves AUROC by < 0.001), fp32 = exact",
    )


def _add_train(sub) -> None:
    """The ``train`` subcommand."""
    p = sub.add_parser("train", help="train one method and write a checkpoint")
    p.add_argument("--preset", default="small", choices=sorted(PRESETS))
    p.add_argument("--out", required=True, help="run folder (checkpoint.safetensors goes here)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.safetensors")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_config_options(p)
    p.set_defaults(func=_cmd_train)


def _add_evaluate(sub) -> None:
    """The ``evaluate`` subcommand."""
    p = sub.add_parser("evaluate", help="accuracy and OOD metrics per detector and SEI setting")
    p.add_argument("checkpoint")
    p.add_argument("--ood", nargs="+", default=["tinyimagenet-resize", "gaussian", "uniform"])
    p.add_argument("--sei", nargs="+", default=["1", "4", "8"], choices=["1", "4", "8"])
    p.add_argument("--data-root", default=None)
    p.add_argument("--test-subset", type=int, default=None, help="use this many test images")
    p.add_argument(
        "--train-subset",
        type=int,
        default=None,
        help="fit the Gaussians on this many training images (default: all)",
    )
    p.add_argument(
        "--detector",
        nargs="+",
        default=None,
        metavar="NAME",
        help=f"detectors to run, among {', '.join(DETECTOR_NAMES)} ('+flip' after a name "
        "adds flip TTA); default: gaussians (every SEI setting) and, for classifiers, msp",
    )
    p.add_argument(
        "--normalize",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="L2-normalise the outputs before the class Gaussians (default: yes, as the "
        "authors' code; Eq. 12 has none)",
    )
    p.add_argument(
        "--covariance",
        default="auto",
        choices=["auto", "class", "tied"],
        help="covariance of the class Gaussians: class (Eq. 12), tied, or auto (class when "
        "every class has more images than dimensions)",
    )
    p.add_argument(
        "--split",
        default="test",
        choices=["test", "val"],
        help="val: score the training images the run held out (Config.holdout); tune there",
    )
    p.add_argument("--out", default=None, help="folder for evaluation.csv / evaluation.json")
    _add_device_option(p)
    _add_precision_option(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_evaluate)


def _add_score(sub) -> None:
    """The ``score`` subcommand."""
    p = sub.add_parser(
        "score", help="score your own images: in- or out-of-distribution for this model?"
    )
    p.add_argument("checkpoint")
    p.add_argument(
        "paths", nargs="+", metavar="PATH", help="image files, folders (recursive), zip archives"
    )
    p.add_argument("--out", default="scores", help="folder for scores.csv and gallery.html")
    p.add_argument(
        "--detector",
        default=None,
        metavar="NAME",
        help=f"one of {', '.join(DETECTOR_NAMES)} ('+flip' adds flip TTA); default: the "
        "method's (8-way SEI w-avg class Gaussians for mcl, MSP for classifiers)",
    )
    threshold = p.add_mutually_exclusive_group()
    threshold.add_argument(
        "--tpr",
        type=float,
        default=0.95,
        help="choose the threshold that keeps this fraction of the in-distribution test "
        "images (default 0.95)",
    )
    threshold.add_argument("--threshold", type=float, default=None, help="use this threshold")
    p.add_argument("--data-root", default=None)
    p.add_argument(
        "--train-subset", type=int, default=None, help="fit on this many training images"
    )
    p.add_argument(
        "--test-subset", type=int, default=None, help="set the threshold on this many test images"
    )
    p.add_argument("--batch-size", type=int, default=256, help="images per batch (and CSV write)")
    p.add_argument("--cache-dir", default=None, help="keep the train/test embeddings here")
    _add_device_option(p)
    _add_precision_option(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_score)


def _add_reproduce(sub) -> None:
    """The ``reproduce`` subcommand."""
    p = sub.add_parser("reproduce", help="the paper's comparisons as an HTML report")
    p.add_argument("--out", default="report")
    p.add_argument("--train", action="store_true", help="retrain every model first")
    p.add_argument("--preset", default="small", choices=sorted(PRESETS))
    p.add_argument("--checkpoints", default=None, help="folder of checkpoints (default: shipped)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--test-subset", type=int, default=None)
    p.add_argument("--train-subset", type=int, default=None)
    p.add_argument("--methods", nargs="+", default=None, help="methods to compare (default: all)")
    p.add_argument("--no-open-set", action="store_true", help="skip the open-set evaluation")
    _add_device_option(p)
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples per claim")
    p.add_argument("--cache-dir", default=None, help="cache embeddings here")
    p.add_argument("--no-figures", action="store_true")
    _add_precision_option(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_reproduce)


def _add_demo(sub) -> None:
    """The ``demo`` subcommand."""
    p = sub.add_parser("demo", help="a tiny MCL run on the best data set available")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--data-root", default=None)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mclviz", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_train, _add_evaluate, _add_score, _add_reproduce, _add_demo):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
