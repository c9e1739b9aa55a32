"""The layers of mclviz hold: import-linter checks the contracts of pyproject.toml.

Core maths (losses, scoring, metrics, transforms) import nothing of the project, and
imports only point down the layers (``[tool.importlinter]``). The second test plants a
violation in a copy of the package and checks that the linter catches it, so a broken
configuration cannot pass silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint(cwd: Path, package_parent: Path) -> subprocess.CompletedProcess:
    linter = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert linter, "lint-imports is missing: install the test extra (pip install -e '.[test]')"
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run([linter, "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True)


def test_the_import_contracts_hold():
    run = _lint(ROOT, ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Contracts: 2 kept, 0 broken." in run.stdout


@pytest.mark.parametrize(
    "module, planted, contract",
    [
        ("scoring/gaussians.py", "from .. import plots  # noqa", "core maths import nothing"),
        ("training/loop.py", "from .. import evaluation  # noqa", "mclviz layers"),
    ],
)
def test_a_planted_violation_breaks_a_contract(tmp_path, module, planted, contract):
    shutil.copytree(ROOT / "mclviz", tmp_path / "mclviz")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "mclviz" / module
    target.write_text(target.read_text() + f"\n{planted}\n")
    run = _lint(tmp_path, tmp_path)
    assert run.returncode != 0, run.stdout
    assert f"{contract}" in run.stdout and "BROKEN" in run.stdout
