"""``python -m mclviz demo``: a tiny MCL run on the best data set available, evaluated.

CIFAR-10 when the data root has it (or torchvision can download it); otherwise one line
says so and the run falls back to scikit-learn's 8x8 ``digits`` (shipped with
scikit-learn), so the command works offline on a fresh machine.
"""

from __future__ import annotations

import json
from pathlib import Path

from .config import Config
from .data import load_images

__all__ = ["demo", "best_dataset"]


def best_dataset(data_root: str | None = None) -> tuple[str, list[str]]:
    """``("cifar10", ood sets)`` when CIFAR-10 can be loaded, else ``("digits", ...)``."""
    try:
        load_images("cifar10", "test", root=data_root)
    except (FileNotFoundError, RuntimeError, OSError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(
            f"CIFAR-10 is neither in the data root nor downloadable ({first}); "
            "falling back to scikit-learn's digits"
        )
        return "digits", ["gaussian", "uniform"]
    ood = ["gaussian", "uniform"]
    try:
        load_images("tinyimagenet-resize", "test", root=data_root)
        ood.insert(0, "tinyimagenet-resize")
    except (FileNotFoundError, OSError):
        pass
    return "cifar10", ood


def demo(
    out: str | Path = "runs/demo", data_root: str | None = None, progress: bool = True
) -> Path:
    """Train ``tiny`` MCL for a few seconds, evaluate it with SEI, write the table to ``out``."""
    from .evaluation import evaluate, format_table
    from .training import train

    out = Path(out)
    dataset, ood = best_dataset(data_root)
    config = Config.preset(
        "tiny", method="mcl", dataset=dataset, data_root=data_root, train_subset=1024, epochs=3
    )
    result = train(config, out=out, progress=progress)
    table = evaluate(
        result.checkpoint,
        ood=ood,
        sei=(1, 4),
        data_root=data_root,
        train_subset=1024,
        test_subset=1000,
        progress=progress,
    )
    table.to_csv(out / "evaluation.csv", index=False)
    (out / "history.json").write_text(json.dumps(result.history, indent=2))
    print(format_table(table))
    print(
        f"\ndemo outputs ({dataset}, {result.seconds:.0f} s of training on "
        f"{result.precision}):\n  checkpoint  {result.checkpoint}\n"
        f"  evaluation  {out / 'evaluation.csv'}\n  history     {out / 'history.json'}"
    )
    return out
