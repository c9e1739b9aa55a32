"""The ablation runs of ``scripts/ablate_recipe.py`` as a Markdown table.

    python scripts/ablation_table.py docs/ablations.jsonl [--method mcl]

One row per run: name, the settings that differ from the ``fast`` preset, steps, training
seconds, and the validation accuracies in percent (5,000 held-out training images).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

_ACC = (
    ("acc", "softmax"),
    ("acc_tta", "softmax + flip TTA"),
    ("acc_gauss", "Gaussians"),
    ("acc_sei8", "Gaussians, 8-way SEI w-avg"),
)


def table(rows: list[dict], method: str | None = None) -> str:
    rows = [r for r in rows if method is None or r["method"] == method]
    cols = [(k, label) for k, label in _ACC if any(k in r for r in rows)]
    head = ["run", "method", "settings", "steps", "train s", *(label for _, label in cols)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        sets = ", ".join(f"{k}={v}" for k, v in r["sets"].items()) or "(preset)"
        accs = [f"{100 * r[k]:.1f}" if k in r else "" for k, _ in cols]
        lines.append(
            "| "
            + " | ".join(
                [r["name"], r["method"], sets, str(r["steps"]), f"{r['train_seconds']:.0f}", *accs]
            )
            + " |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("jsonl", type=Path)
    p.add_argument("--method", default=None)
    args = p.parse_args()
    rows = [json.loads(line) for line in args.jsonl.read_text().splitlines() if line.strip()]
    print(table(rows, args.method))


if __name__ == "__main__":
    main()
