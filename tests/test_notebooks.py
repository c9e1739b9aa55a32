"""Every notebook runs top to bottom with papermill on a tiny configuration (issue 7).

The notebooks train the ``tiny`` preset (``USE_SHIPPED=False``) on small subsets of the
real data; all of them run in one working folder, so a model trained by one notebook is
reused (resumed, already finished) by the next. Each test then checks what the notebook
wrote into its ``OUT`` folder: CSV tables with the expected columns and rows, PNG figures.

The kernel is this interpreter, through a kernelspec written to a temporary
``JUPYTER_PATH`` (nothing is installed; a fresh clone after ``pip install -e .[test]``
needs no manual step).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
KERNEL = "mclviz-notebook-tests"
EVAL_COLUMNS = [
    "method",
    "detector",
    "ways",
    "aggregation",
    "variant",
    "accuracy",
    "ood",
    "auroc",
    "aupr_in",
    "aupr_out",
    "fpr95",
]
OOD = ["tinyimagenet-resize", "gaussian"]
TINY = {"epochs": 1, "train_subset": 192}  # the tiny preset, smaller still: seconds a model


def _notebook_files() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


# ----------------------------------------------------------------------------- fast checks


@pytest.mark.parametrize("path", _notebook_files(), ids=lambda p: p.stem)
def test_notebook_is_committed_clean_and_parameterised(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and "parameters" in code[0].metadata.get("tags", []), (
        f"{path.name}: the first code cell must be tagged 'parameters' (papermill)"
    )
    for name in ("USE_SHIPPED", "PRESET", "TRAIN_OVERRIDES", "RUNS_DIR", "OUT", "DATA_ROOT"):
        assert f"{name} = " in code[0].source, f"{path.name}: parameter {name} is missing"
    dirty = [i for i, c in enumerate(code) if c.outputs or c.execution_count is not None]
    assert not dirty, f"{path.name}: code cells {dirty} hold outputs; clear them before committing"
    # papermill (and `papermill --help-notebook`) must see every parameter: it skips, with
    # a warning, a line holding a second '=' (e.g. in its comment)
    from papermill.inspection import inspect_notebook

    assigned = [
        ln.split("=")[0].strip()
        for ln in code[0].source.splitlines()
        if "=" in ln and not ln.startswith("#")
    ]
    assert list(inspect_notebook(str(path))) == assigned, (
        f"{path.name}: papermill cannot parse some parameters; keep '=' out of their comments"
    )
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", _notebook_files(), ids=lambda p: p.stem)
def test_notebook_states_its_subsets_shows_progress_and_ends_with_what_it_showed(path):
    nb = nbformat.read(path, as_version=4)
    last = nb.cells[-1]
    assert last.cell_type == "markdown" and last.source.startswith(
        "## What this showed, what next"
    ), f"{path.name}: end with a 'What this showed, what next' markdown cell"
    assert "**Showed**" in last.source and "**Next**" in last.source
    text = " ".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "subset" in text, f"{path.name}: say which subsets the numbers come from"
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    slow = [i for i, src in enumerate(code) if "progress=False" in src]
    assert not slow, f"{path.name}: code cells {slow} silence a progress bar"
    # a cell never ends on a bare path or dict (an export's return value)
    bare = [
        i for i, src in enumerate(code) if src.splitlines()[-1].split("(")[0].endswith("export")
    ]
    assert not bare, f"{path.name}: code cells {bare} end on an export's return value"


def _run_notebooks_script():
    import importlib.util

    path = NOTEBOOKS.parent / "scripts" / "run_notebooks.py"
    spec = importlib.util.spec_from_file_location("run_notebooks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, path


def test_run_notebooks_help_documents_its_options():
    import subprocess

    _, path = _run_notebooks_script()
    out = subprocess.run(
        [sys.executable, str(path), "--help"], capture_output=True, text=True, check=True
    ).stdout
    for option in ("--out", "--kernel", "-p NAME VALUE", "--parameter", "--timeout", "NAME"):
        assert option in out, f"--help does not document {option}:\n{out}"
    assert "runs/notebooks" in out and "python3" in out  # the defaults are said


def test_run_notebooks_parses_parameters_and_names(capsys):
    module, _ = _run_notebooks_script()
    assert module._value("500") == 500 and module._value("true") is True
    assert module._value('["gaussian"]') == ["gaussian"] and module._value("None") is None
    assert module._value("tsne") == "tsne"
    assert [b.stem for b in module._select(["03"])] == ["03_scores_and_failures"]
    assert len(module._select([])) == 6
    with pytest.raises(SystemExit, match="no parameter"):
        module.main(["01", "-p", "NOT_A_PARAMETER", "1", "--out", "/nonexistent"])


def test_all_six_notebooks_exist():
    stems = [p.stem for p in _notebook_files()]
    assert [s[:2] for s in stems] == ["01", "02", "03", "04", "05", "06"], stems


# ----------------------------------------------------------------------------- execution


@pytest.fixture(scope="session")
def kernel_name(tmp_path_factory):
    """A kernelspec for this interpreter in a temporary JUPYTER_PATH (restored afterwards)."""
    root = tmp_path_factory.mktemp("jupyter-path")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "mclviz notebook tests",
                "language": "python",
            }
        )
    )
    with pytest.MonkeyPatch.context() as mp:
        old = os.environ.get("JUPYTER_PATH")
        mp.setenv("JUPYTER_PATH", str(root) + (os.pathsep + old if old else ""))
        yield KERNEL


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    """One working folder for every notebook: trained tiny runs land in its runs/."""
    return tmp_path_factory.mktemp("notebook-runs")


def _run(name: str, workdir: Path, kernel: str, **parameters) -> Path:
    import papermill as pm

    out = workdir / "out" / name
    params = {
        "USE_SHIPPED": False,
        "PRESET": "tiny",
        "OUT": str(out),
        "TRAIN_OVERRIDES": TINY,
        "RUNS_DIR": str(workdir / "runs"),
        "DATA_ROOT": os.environ["MCLVIZ_DATA"],
        **parameters,
    }
    pm.execute_notebook(
        str(NOTEBOOKS / f"{name}.ipynb"),
        str(workdir / f"{name}.out.ipynb"),
        parameters=params,
        kernel_name=kernel,
        cwd=str(workdir),
        progress_bar=False,
        execution_timeout=900,
    )
    return out


def _png(path: Path) -> None:
    assert path.is_file(), f"{path} was not written"
    head = path.read_bytes()[:8]
    assert head == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000, f"{path} is not a PNG"


def _csv(path: Path, columns=(), rows: int | None = None) -> pd.DataFrame:
    assert path.is_file(), f"{path} was not written"
    df = pd.read_csv(path)
    missing = [c for c in columns if c not in df.columns]
    assert not missing, f"{path.name} lacks columns {missing}: {list(df.columns)}"
    if rows is not None:
        assert len(df) == rows, f"{path.name} has {len(df)} rows, expected {rows}"
    return df


COMMON = {"TRAIN_SUBSET": 600, "TEST_SUBSET": 200, "OOD": OOD}


@pytest.mark.slow
def test_01_quickstart(data_root, kernel_name, workdir):
    out = _run(
        "01_quickstart", workdir, kernel_name, **COMMON, SEI=[1, 4, 8], PROJECTION_POINTS=150
    )
    df = _csv(out / "evaluation.csv", EVAL_COLUMNS, rows=2 * 2 + 2 * (3 * 2 * 2))
    assert set(df["ways"]) == {1, 4, 8} and set(df["ood"]) == set(OOD)
    assert df["auroc"].between(0, 1).all() and df["accuracy"].between(0, 1).all()
    _png(out / "projection.png")


@pytest.mark.slow
def test_02_embeddings(data_root, kernel_name, workdir):
    out = _run(
        "02_embeddings", workdir, kernel_name, TEST_SUBSET=150, OOD=OOD, PROJECTION_POINTS=150
    )
    _png(out / "projections_tsne_tinyimagenet-resize.png")


@pytest.mark.slow
def test_03_scores_and_failures(data_root, kernel_name, workdir):
    out = _run("03_scores_and_failures", workdir, kernel_name, **COMMON, PER_PAGE=3, NEIGHBOURS=4)
    scores = _csv(
        out / "scores.csv", ["mode", "method", "accuracy", "ood", "auroc", "fpr95"], rows=len(OOD)
    )
    assert list(scores["ood"]) == OOD
    for name in OOD:
        _png(out / f"scores_{name}.png")
    for name in OOD:  # the OOD images accepted at the 95%-TPR threshold, ranked
        ood = _csv(out / f"failures_ood_{name}.csv", ["rank", "kind", "ood", "index", "score"])
        assert ood["score"].is_monotonic_decreasing and len(ood) <= COMMON["TEST_SUBSET"]
        assert set(ood["ood"]) <= {name}
        if len(ood):
            _png(out / f"failures_ood_{name}.png")
    wrong = _csv(out / "failures_misclassified.csv", ["index", "score", "label", "pred"])
    assert (wrong["label"] != wrong["pred"]).all() and len(wrong) > 0
    _png(out / "failures_misclassified.png")
    # the operating-point explorer at TARGET_TPR: its JSON states a threshold keeping that TPR
    point = json.loads((out / "operating_point" / "operating_point.json").read_text())
    assert point["tpr"] >= 0.95 - 1e-9
    assert point["ind_accepted"] + point["ind_rejected"] == point["n_in"]
    _png(out / "operating_point" / "scores.png")
    baselines = pd.read_csv(out / "detectors.csv")
    assert {"gaussians", "mahalanobis", "knn"} <= set(baselines["detector"])


@pytest.mark.slow
def test_04_sei(data_root, kernel_name, workdir):
    out = _run("04_sei", workdir, kernel_name, **COMMON)
    _csv(out / "sei_all.csv", EVAL_COLUMNS, rows=2 * 2 + 2 * (3 * 2 * 2))
    for name in OOD:
        t4 = _csv(
            out / f"table4_{name}.csv",
            [
                "ways",
                "aggregation",
                "acc_paper",
                "acc_official",
                "auroc_paper",
                "auroc_official",
                "auroc_diff",
            ],
            rows=7,
        )
        assert list(zip(t4["ways"], t4["aggregation"], strict=True)) == [
            (1, "none"),
            (4, "avg"),
            (4, "max"),
            (4, "w-avg"),
            (8, "avg"),
            (8, "max"),
            (8, "w-avg"),
        ]
    _png(out / "table4.png")
    t5 = _csv(out / "table5.csv", ["method", "ways", "aggregation", "auroc_paper"], rows=4)
    assert set(t5["method"]) == {"MCL w/o aux", "MCL + aux"}


@pytest.mark.slow
def test_05_retrain_widgets(data_root, kernel_name, workdir):
    out = _run(
        "05_retrain_widgets",
        workdir,
        kernel_name,
        TRAIN_SUBSET=256,
        TEST_SUBSET=150,
        OOD=OOD,
        VIEWS=2,
        FAST_EPOCHS=2,
        FULL_EPOCHS=1,
        PROJECTION_POINTS=100,
        RUN_FULL=True,
    )
    for mode in ("fast", "full"):
        df = _csv(
            out / f"retrain_{mode}.csv",
            ["mode", "method", "tau", "alpha", "beta", "lam", "accuracy", "ood", "auroc"],
            rows=len(OOD),
        )
        assert set(df["mode"]) == {mode} and set(df["method"]) == {"mcl"}
        for fig in ("projection", "scores", "loss"):
            _png(out / f"retrain_{mode}_{fig}.png")


@pytest.mark.slow
def test_06_mean_shifted(data_root, kernel_name, workdir):
    out = _run(
        "06_mean_shifted",
        workdir,
        kernel_name,
        NORMAL_CLASSES=[0, 1],
        EPOCHS=1,
        TRAIN_SUBSET=64,
        TEST_SUBSET=200,
    )
    df = _csv(out / "one_class.csv", ["class", "name", "knn_pretrained", "msc"], rows=3)
    assert df["class"].astype(str).tolist() == ["0", "1", "mean"]
    assert df[["knn_pretrained", "msc"]].apply(lambda s: s.between(0, 1)).all().all()
    _png(out / "one_class.png")
