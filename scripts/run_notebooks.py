"""Execute the notebooks as a new user would open them: default parameters, shipped checkpoints.

    python scripts/run_notebooks.py [--out runs/notebooks] [NAME ...]

Each notebook runs top to bottom with papermill (its defaults: the shipped checkpoints,
``USE_SHIPPED = True``) from a scratch working folder, so its exported tables and figures
land in ``OUT/<notebook>/outputs/``; the executed copy is ``OUT/<notebook>.ipynb``. Prints
the wall time of each and the warnings it showed (e.g. a model trained because none is
shipped). The test suite runs the same notebooks on a tiny configuration instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="notebook names (default: all), e.g. 01_quickstart")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "notebooks")
    p.add_argument("--kernel", default="python3")
    args = p.parse_args()
    import papermill as pm

    books = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if args.names:
        books = [b for b in books if b.stem in args.names or b.name in args.names]
        if not books:
            sys.exit(f"no notebook named {args.names}; see {ROOT / 'notebooks'}")
    failed = []
    for book in books:
        work = args.out / book.stem
        work.mkdir(parents=True, exist_ok=True)
        out = args.out / book.name
        t0 = time.perf_counter()
        try:
            # RUNS_DIR relative to the scratch folder: trained fallbacks stay out of the repo
            pm.execute_notebook(
                str(book),
                str(out),
                cwd=str(work),
                kernel_name=args.kernel,
                parameters={"RUNS_DIR": "runs"},
                progress_bar=False,
            )
            status = "ok"
        except pm.PapermillExecutionError as err:
            status = f"FAILED in cell {err.exec_count}: {err.ename}: {err.evalue}"
            failed.append(book.stem)
        seconds = time.perf_counter() - t0
        warns = _warnings(out)
        print(f"{book.stem:28s} {seconds:7.1f} s  {status}")
        for w in warns:
            print(f"    warning: {w}")
    if failed:
        sys.exit(f"{len(failed)} notebook(s) failed: {', '.join(failed)}")


def _warnings(path: Path) -> list[str]:
    """The warning lines printed on stderr by an executed notebook."""
    import nbformat

    if not path.exists():
        return []
    nb = nbformat.read(path, as_version=4)
    lines = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("name") == "stderr":
                lines += [
                    ln.strip() for ln in output.get("text", "").splitlines() if "Warning" in ln
                ]
    return lines


if __name__ == "__main__":
    main()
