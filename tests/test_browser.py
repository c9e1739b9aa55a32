"""Notebooks in a real JupyterLab, driven by headless Chromium (Playwright, system browser).

Serves JupyterLab on 127.0.0.1 (a free port, a token, no browser, its own settings,
workspace and runtime folders) with a temporary parameterised copy of a notebook, runs
all cells from the Run menu, and checks what rendered:

- ``01_quickstart`` as a new user opens it: the shipped ``mcl`` checkpoint (on fewer
  images), the headline table and the plotly projection, with no error output;
- ``05_retrain_widgets`` on a tiny run: the widgets (sliders, the mode banner) and the
  plotly figures, and that moving a slider retrains.

A screenshot of each is saved under the test's ``tmp_path``.

Chromium: Debian's ``/usr/bin/chromium`` (``$MCLVIZ_CHROMIUM`` overrides); missing, the
test fails in CI (``CI=true``) and is skipped with the reason elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK = NOTEBOOKS / "05_retrain_widgets.ipynb"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
FAST = "Fast mode: projection head only, backbone frozen"


def _chromium() -> str:
    path = os.environ.get("MCLVIZ_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        msg = (
            "Chromium not found (looked for $MCLVIZ_CHROMIUM, `chromium` on PATH and "
            "/usr/bin/chromium); install it with `apt-get install chromium` (make setup "
            "does it as root)"
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TINY_05 = {
    "USE_SHIPPED": False,
    "PRESET": "tiny",
    "TRAIN_SUBSET": 256,
    "TEST_SUBSET": 100,
    "OOD": ["gaussian"],
    "VIEWS": 2,
    "FAST_EPOCHS": 2,
    "PROJECTION": "tsne",
    "PROJECTION_POINTS": 80,
}
# notebook 01 as a new user opens it, with the shipped checkpoint, on fewer images
SHIPPED_01 = {
    "USE_SHIPPED": True,
    "TRAIN_SUBSET": 2000,
    "TEST_SUBSET": 400,
    "OOD": ["tinyimagenet-resize"],
    "SEI": [1, 4],
    "PROJECTION_POINTS": 300,
}


def _notebook_copy(folder: Path, data_root: Path, notebook: Path, params: dict) -> str:
    """A parameterised copy of a notebook (papermill's parameter injection, not executed)."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook_node(str(notebook))
    params = {
        **params,
        "OUT": str(folder / "outputs"),
        "RUNS_DIR": str(folder / "runs"),
        "DATA_ROOT": str(data_root),
    }
    nb = parameterize_notebook(nb, params, kernel_name="python3", language="python")
    nbformat.write(nb, folder / notebook.name)
    return notebook.name


@pytest.fixture()
def lab(request, tmp_path, data_root):
    """A running JupyterLab on a copy of ``request.param`` = (notebook, parameters): yields
    (notebook url, server url, token, log path); always shut down afterwards."""
    root = tmp_path / "root"
    root.mkdir()
    notebook, params = request.param
    name = _notebook_copy(root, data_root, notebook, params)
    jpath = tmp_path / "jupyter-path"
    spec = jpath / "kernels" / "python3"  # this interpreter, whatever the user has installed
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
            }
        )
    )
    env = {
        **os.environ,
        "JUPYTER_PATH": str(jpath),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "MCLVIZ_DATA": str(data_root),
    }
    # no "receive official Jupyter news?" toast over the screenshots
    notification = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    port, token = _free_port(), secrets.token_hex(16)
    log_path = tmp_path / "jupyterlab.log"
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.port_retries=0",
        "--LabApp.extension_manager=readonly",
        f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
        f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if os.geteuid() == 0:  # containers and CI run as root; JupyterLab refuses without this
        cmd.append("--allow-root")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited ({proc.returncode}):\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer in 120 s:\n{log_path.read_text()}")
                time.sleep(0.5)
        yield f"{url}/lab/tree/{name}?token={token}", url, token, log_path
    finally:
        # SIGTERM lets the server shut its kernels down; then make sure the group is gone
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        with_children = subprocess.run(
            ["pgrep", "-g", str(proc.pid)], capture_output=True, text=True
        ).stdout.split()
        for pid in with_children:  # kernels left behind in the server's process group
            os.kill(int(pid), signal.SIGKILL)


def _wait_for_idle_kernel(api: str, token: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{api}/api/kernels?token={token}", timeout=10) as r:
            kernels = json.load(r)
        if kernels and all(k["execution_state"] == "idle" for k in kernels):
            return
        time.sleep(0.5)
    pytest.fail(f"the notebook's kernel was not idle after {timeout} s")


@contextlib.contextmanager
def _notebook_running(lab, shot: Path):
    """Chromium on the ``lab`` notebook after Run > Run All Cells: yields the page.

    Saves a full-page screenshot to ``shot`` on the way out, and on a failure prints
    where it is with the end of the JupyterLab log.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    chromium = _chromium()
    url, api, token, log_path = lab
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        page = None
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.goto(url, wait_until="domcontentloaded", timeout=120_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            # the notebook's kernel is up and idle (server side and page side)
            _wait_for_idle_kernel(api, token)
            page.wait_for_selector(
                ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000
            )
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
            try:  # JupyterLab asks when the session was not attached yet: keep Python 3
                dialog.wait_for(timeout=3_000)
                dialog.locator("button.jp-mod-accept").click()
            except PlaywrightTimeout:
                pass  # no dialog: the cells are running
            yield page
            page.wait_for_timeout(1000)  # let plotly finish its transitions before the shot
            page.screenshot(path=str(shot), full_page=True)
        except Exception:
            if page is not None:
                page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}\nJupyterLab log:\n{log_path.read_text()[-3000:]}")
            raise
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


@pytest.mark.parametrize("lab", [(NOTEBOOKS / "01_quickstart.ipynb", SHIPPED_01)], indirect=True)
def test_notebook_01_opens_the_shipped_checkpoint_in_jupyterlab(lab, tmp_path):
    """What a new user does first: open 01, Run All, on the shipped ``mcl`` checkpoint."""
    with _notebook_running(lab, tmp_path / "jupyterlab-01.png") as page:
        # the last cell draws the projection: plotly renders it once every cell ran
        page.wait_for_selector(".js-plotly-plot", timeout=900_000)
        text = page.locator(".jp-Notebook").inner_text()
        assert "from " in text and "checkpoints/mcl.safetensors" in text  # the shipped one
        assert "tinyimagenet-resize" in text  # the headline table printed
        errors = page.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']"
        )
        assert errors.count() == 0, errors.all_inner_texts()
        assert page.locator(".js-plotly-plot .scatterlayer .trace").count() >= 2


@pytest.mark.parametrize("lab", [(NOTEBOOK, TINY_05)], indirect=True)
def test_notebook_05_renders_widgets_and_plotly_in_jupyterlab(lab, tmp_path):
    with _notebook_running(lab, tmp_path / "jupyterlab-05.png") as page:
        slider = page.wait_for_selector(".widget-slider", timeout=600_000)
        page.wait_for_selector(".js-plotly-plot", timeout=120_000)
        page.locator(".widget-html", has_text=FAST).first.wait_for(timeout=30_000)
        assert page.locator(".widget-slider").count() >= 5  # tau, alpha, beta, lambda, epochs
        assert page.locator(".js-plotly-plot").count() >= 3  # projection, scores, loss
        assert slider.is_visible()
        status = page.locator(".widget-html", has_text="redrawn in").first
        before = status.inner_text()
        # move the alpha slider one step with the keyboard: the panel retrains and redraws
        handle = page.locator(".widget-slider", has_text="alpha").locator(".noUi-handle")
        handle.focus()
        handle.press("ArrowRight")
        page.wait_for_function(
            "b => ![...document.querySelectorAll('.widget-html')].some(e => e.innerText === b)",
            arg=before,
            timeout=120_000,
        )
        after = page.locator(".widget-html", has_text="redrawn in").first.inner_text()
        assert after != before
