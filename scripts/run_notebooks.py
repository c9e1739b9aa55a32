"""Execute the notebooks as a new user would open them: default parameters, shipped checkpoints.

Each notebook runs top to bottom with papermill (its defaults: the shipped checkpoints,
``USE_SHIPPED = True``, unless ``-p`` says otherwise) from a scratch working folder, so its
exported tables and figures land in ``OUT/<notebook>/outputs/``; the executed copy is
``OUT/<notebook>.ipynb``. Prints the wall time of each and the warnings it showed (e.g. a
model trained because none is shipped). The test suite runs the same notebooks on a tiny
configuration instead.

Examples::

    python scripts/run_notebooks.py                       # all six, as they open
    python scripts/run_notebooks.py 03_scores_and_failures -p TEST_SUBSET 500
    python scripts/run_notebooks.py 05 -p OOD '["gaussian"]' -p RUN_FULL true --timeout 1200
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _value(text: str):
    """A parameter value from the command line: JSON (``500``, ``true``, ``null``,
    ``'["a", "b"]'``), else a Python literal (``None``, ``True``), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=(
            "Parameters are the names of a notebook's parameters cell (papermill; list them "
            "with `papermill --help-notebook notebooks/<name>.ipynb`). A parameter a "
            "notebook does not have is an error.\n\n" + __doc__.split("\n\n", 2)[2]
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="notebooks to run (default: all), by name or number prefix, e.g. 01_quickstart or 03",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=ROOT / "runs" / "notebooks",
        help="folder for the executed copies (<name>.ipynb) and each notebook's working "
        "folder (<name>/, its outputs/ and runs/); default: runs/notebooks",
    )
    p.add_argument(
        "--kernel",
        default="python3",
        help="Jupyter kernel to run them with (`jupyter kernelspec list`); default: python3",
    )
    p.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="set a parameter of the notebooks run (repeatable); VALUE is JSON or a Python "
        "literal, e.g. -p TEST_SUBSET 500 -p OOD '[\"gaussian\"]' -p USE_SHIPPED false",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="fail a notebook whose cell runs longer than this (default: no limit)",
    )
    p.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress bar over each notebook's cells",
    )
    return p


def _select(names: list[str]) -> list[Path]:
    books = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return books
    chosen = [b for b in books if any(b.stem == n or b.name == n or b.stem[:2] == n for n in names)]
    if not chosen:
        sys.exit(f"no notebook named {names}; choose among {[b.stem for b in books]}")
    return chosen


def _check_parameters(books: list[Path], parameters: dict) -> None:
    from papermill.inspection import inspect_notebook

    for book in books:
        known = inspect_notebook(str(book))
        unknown = [k for k in parameters if k not in known]
        if unknown:
            sys.exit(f"{book.stem} has no parameter {unknown}; its parameters: {list(known)}")


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    import papermill as pm

    books = _select(args.names)
    parameters = {name: _value(value) for name, value in args.parameter}
    _check_parameters(books, parameters)
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
                parameters={"RUNS_DIR": "runs", **parameters},
                progress_bar=args.progress,
                execution_timeout=args.timeout,
            )
            status = "ok"
        except pm.PapermillExecutionError as err:
            status = f"FAILED in cell {err.exec_count}: {err.ename}: {err.evalue}"
            failed.append(book.stem)
        except TimeoutError as err:  # nbclient's CellTimeoutError: a cell ran past --timeout
            status = f"TIMED OUT: {err}".splitlines()[0]
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
