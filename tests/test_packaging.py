"""The set-up files agree with each other: pyproject, environment.yml, Makefile, CI, README."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch", "python-kaleido": "kaleido"}


def _norm(name: str) -> str:
    return re.split(r"[<>=!~\[ ;]", name.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_names_the_same_packages_as_pyproject():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    py = {_norm(d) for d in meta["dependencies"]} | {
        _norm(d) for d in meta["optional-dependencies"]["test"]
    }
    env = set()
    in_deps = False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if line.startswith("dependencies:"):
            in_deps = True
            continue
        m = re.match(r"\s+-\s+([A-Za-z0-9_.\-]+)", line) if in_deps else None
        if m and _norm(m.group(1)) not in ("python", "pip"):  # pip: the PyPI-only section
            name = _norm(m.group(1))
            env.add(CONDA_NAMES.get(name, name))
    assert py == env, f"only in pyproject: {py - env}; only in environment.yml: {env - py}"


def test_torch_pins_agree():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "torch==2.14.1" in meta["dependencies"]
    assert "torchvision==0.29.1" in meta["dependencies"]
    env = (ROOT / "environment.yml").read_text()
    assert "pytorch=2.14.1" in env and "torchvision=0.29.1" in env


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```(?:bash|sh)?\n(.*?)```", readme, flags=re.S)[0].split("\n")
    commands = [c.split("#")[0].strip() for c in commands]
    commands = [c for c in commands if c]
    assert len(commands) == 2, f"README should open with exactly two commands, found {commands}"
    test_cmd = commands[1]
    assert test_cmd in (ROOT / ".ci" / "run").read_text()


def test_code_passes_ruff_lint_and_format():
    """The house style: ruff for lint and format, configured in pyproject.toml."""
    import shutil
    import subprocess
    import sys

    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is missing: install the test extra (pip install -e '.[test]')"
    folders = ["mclviz", "tests", "benchmarks", "scripts"]
    for args in (["check"], ["format", "--check"]):
        run = subprocess.run([ruff, *args, *folders], cwd=ROOT, capture_output=True, text=True)
        assert run.returncode == 0, f"ruff {' '.join(args)} failed:\n{run.stdout}{run.stderr}"
