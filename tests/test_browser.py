"""Every notebook in a real JupyterLab, as a researcher meets it (issue 18).

Serves JupyterLab on 127.0.0.1 (a free port, a token, no browser, its own settings,
workspace and runtime folders) with a temporary parameterised copy of a notebook, opens
it in headless Chromium (Playwright, the system browser) in a 1400 x 1000 window with the
file browser open, runs all cells from the Run menu, and checks from the page itself:

- no output is an error;
- no figure (plotly, image) and no widget is wider than its cell, and nothing in an
  output scrolls sideways;
- no widget label is cut off (buttons, toggle buttons, descriptions);
- no plotly legend is squeezed into a scroll box, and no two texts of a plotly figure
  overlap (titles, ticks, legend entries, annotations).

Then what each notebook is about: 01 opens the shipped ``mcl`` checkpoint (on fewer
images) and shows the headline table in percent; 02's hover box counts an OOD point within
its own set; 03's failure viewer still shows its default kind after the export cell, and
its operating-point explorer follows its slider moved as a user moves it (the keyboard on
its handle, then the "TPR = 99%" preset button): the threshold, the counts and both gallery
titles change, with nothing too wide and no error; 05's slider retrains. Every notebook
but 01 runs on the ``tiny`` preset (trained once, into runs shared by the tests).

Screenshots (the window after Run All, then scrolled to each cell with a figure or a
widget, after Run All and at the end of the test; 03's explorer after each move) are kept
as test artefacts in ``test-artifacts/browser/`` (git-ignored; ``$MCLVIZ_TEST_ARTIFACTS``
overrides the folder).

Chromium: Debian's ``/usr/bin/chromium`` (``$MCLVIZ_CHROMIUM`` overrides); missing, the
test fails in CI (``CI=true``) and is skipped with the reason elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
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

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
WINDOW = {"width": 1400, "height": 1000}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
FAST = "Fast mode: projection head only, backbone frozen"


def _artifacts() -> Path:
    folder = Path(os.environ.get("MCLVIZ_TEST_ARTIFACTS") or ROOT / "test-artifacts") / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


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


TINY = {
    "USE_SHIPPED": False,
    "PRESET": "tiny",
    "TRAIN_OVERRIDES": {"epochs": 1, "train_subset": 192},
}
OOD = ["tinyimagenet-resize", "gaussian"]
#: each notebook's parameters: small, so that a run takes a minute or two on a CPU
PARAMETERS = {
    # 01 as a new user opens it, with the shipped checkpoint, on fewer images
    "01_quickstart": {
        "USE_SHIPPED": True,
        "TRAIN_SUBSET": 2000,
        "TEST_SUBSET": 400,
        "OOD": ["tinyimagenet-resize"],
        "SEI": [1, 4],
        "PROJECTION_POINTS": 300,
    },
    "02_embeddings": {**TINY, "TEST_SUBSET": 150, "OOD": OOD, "PROJECTION_POINTS": 200},
    "03_scores_and_failures": {
        **TINY,
        "TRAIN_SUBSET": 600,
        "TEST_SUBSET": 200,
        "OOD": OOD,
        "PER_PAGE": 3,
        "NEIGHBOURS": 4,
    },
    "04_sei": {**TINY, "TRAIN_SUBSET": 600, "TEST_SUBSET": 200, "OOD": OOD},
    "05_retrain_widgets": {
        **TINY,
        "TRAIN_SUBSET": 256,
        "TEST_SUBSET": 100,
        "OOD": ["gaussian"],
        "VIEWS": 2,
        "FAST_EPOCHS": 2,
        "PROJECTION": "tsne",
        "PROJECTION_POINTS": 80,
    },
    "06_mean_shifted": {
        **TINY,
        "NORMAL_CLASSES": [0, 1],
        "EPOCHS": 1,
        "TRAIN_SUBSET": 64,
        "TEST_SUBSET": 200,
    },
}


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory) -> Path:
    """One runs folder for every notebook: a tiny model trained by one is reused."""
    return tmp_path_factory.mktemp("browser-runs")


def _notebook_copy(folder: Path, data_root: Path, runs: Path, notebook: Path, params: dict):
    """A parameterised copy of a notebook (papermill's parameter injection, not executed)."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook_node(str(notebook))
    params = {
        **params,
        "OUT": str(folder / "outputs"),
        "RUNS_DIR": str(runs),
        "DATA_ROOT": str(data_root),
    }
    nb = parameterize_notebook(nb, params, kernel_name="python3", language="python")
    nbformat.write(nb, folder / notebook.name)
    return notebook.name


def _settings(folder: Path) -> None:
    """JupyterLab settings of the test: no news toast over the screenshots, and every cell
    rendered (no windowing), so that the page can be measured from top to bottom."""
    files = {
        ("@jupyterlab", "apputils-extension", "notification"): {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
        ("@jupyterlab", "notebook-extension", "tracker"): {"windowingMode": "none"},
    }
    for (scope, ext, name), values in files.items():
        path = folder / scope / ext
        path.mkdir(parents=True, exist_ok=True)
        (path / f"{name}.jupyterlab-settings").write_text(json.dumps(values))


@pytest.fixture()
def lab(request, tmp_path, data_root, runs_dir):
    """A running JupyterLab on a copy of notebook ``request.param`` with its PARAMETERS:
    yields (notebook url, server url, token, log path); always shut down afterwards."""
    root = tmp_path / "root"
    root.mkdir()
    stem = request.param
    name = _notebook_copy(root, data_root, runs_dir, NOTEBOOKS / f"{stem}.ipynb", PARAMETERS[stem])
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
    _settings(tmp_path / "settings")
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
        try:
            with urllib.request.urlopen(f"{api}/api/kernels?token={token}", timeout=10) as r:
                kernels = json.load(r)
        except OSError:  # a kernel still starting can make the server answer 500: ask again
            kernels = []
        if kernels and all(k["execution_state"] == "idle" for k in kernels):
            return
        time.sleep(0.5)
    pytest.fail(f"the notebook's kernel was not idle after {timeout} s")


def _open_file_browser(page) -> None:
    """The left sidebar shows the file browser (a researcher's usual layout)."""
    browser = page.locator("#filebrowser")
    if not browser.is_visible():
        page.locator(".jp-SideBar.jp-mod-left [data-id='filebrowser']").first.click()
    browser.wait_for(state="visible", timeout=30_000)


#: every code cell has run: its prompt holds a number, none holds "*" or is empty
_ALL_RAN = """() => {
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];
  return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.innerText));
}"""


def _run_all(page, timeout_ms: int) -> None:
    """Run > Run All Cells, then wait until every cell has run and the kernel is idle."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    try:  # JupyterLab asks when the session was not attached yet: keep Python 3
        dialog.wait_for(timeout=3_000)
        dialog.locator("button.jp-mod-accept").click()
    except PlaywrightTimeout:
        pass  # no dialog: the cells are running
    page.wait_for_function(_ALL_RAN, timeout=timeout_ms, polling=1000)
    page.wait_for_selector(
        ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=timeout_ms
    )


@contextlib.contextmanager
def _notebook_running(lab, stem: str, timeout_ms: int = 1_500_000):
    """Chromium at 1400 x 1000 with the file browser open, on the ``lab`` notebook after
    Run All: yields the page. Screenshots go to the artefacts folder; on a failure, where
    they are and the end of the JupyterLab log are printed."""
    from playwright.sync_api import sync_playwright

    chromium = _chromium()
    url, api, token, log_path = lab
    shots = _artifacts()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        page = None
        try:
            page = browser.new_page(viewport=WINDOW)
            page.goto(url, wait_until="domcontentloaded", timeout=120_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            _open_file_browser(page)
            # the notebook's kernel is up and idle (server side and page side)
            _wait_for_idle_kernel(api, token)
            page.wait_for_selector(
                ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000
            )
            _run_all(page, timeout_ms)
            page.wait_for_timeout(2000)  # let plotly and the widgets finish drawing
            page.screenshot(path=str(shots / f"{stem}-window.png"))
            _output_shots(page, shots, stem)
            yield page
        finally:
            if page is not None:  # the state the test left (after its interactions)
                _output_shots(page, shots, f"{stem}-end")
            print(f"screenshots: {shots}/{stem}*.png\nJupyterLab log (end):")
            print(log_path.read_text()[-2000:])
            browser.close()


def _output_shots(page, folder: Path, stem: str) -> None:
    """What the window shows with each cell that holds a figure or a widget scrolled to its
    top (``<stem>-cell<i>.png``), at 1400 x 1000: what a researcher sees there."""
    for old in folder.glob(f"{stem}-cell*.png"):
        old.unlink()
    cells = page.locator(".jp-Notebook .jp-Cell")
    for i in range(cells.count()):
        cell = cells.nth(i)
        if cell.locator(".js-plotly-plot, .jp-RenderedImage img, .jupyter-widgets").count():
            cell.evaluate("e => e.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(500)
            page.screenshot(path=str(folder / f"{stem}-cell{i:02d}.png"))


#: what the page says about widths, errors, labels and plotly texts (see the module doc)
_MEASURE = r"""() => {
  const out = {errors: [], wide: [], scrolls: [], cut: [], legends: [], overlaps: [],
               figures: 0, widgets: 0};
  const notebook = document.querySelector('.jp-Notebook').getBoundingClientRect();
  const seen = r => r.width > 0 && r.height > 0;
  const name = el => (el.className && el.className.baseVal !== undefined)
      ? el.className.baseVal : String(el.className);
  document.querySelectorAll('.jp-Notebook .jp-Cell').forEach((cell, i) => {
    const c = cell.getBoundingClientRect();
    if (c.right > notebook.right + 1) out.wide.push({cell: i, what: 'cell', right: c.right, limit: notebook.right});
    cell.querySelectorAll(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']")
      .forEach(e => out.errors.push({cell: i, text: e.innerText.slice(0, 400)}));
    const area = cell.querySelector('.jp-Cell-outputWrapper');
    if (!area) return;
    const limit = area.getBoundingClientRect();
    const things = area.querySelectorAll(
      '.js-plotly-plot, .jp-RenderedImage img, .jupyter-widgets, .widget-box, .widget-hbox, ' +
      '.widget-vbox, .widget-output, .widget-slider, .widget-toggle-buttons, .widget-button, ' +
      '.widget-dropdown, .widget-html, .jp-RenderedPlotly');
    things.forEach(el => {
      const r = el.getBoundingClientRect();
      if (!seen(r)) return;
      if (el.matches('.js-plotly-plot, .jp-RenderedImage img')) out.figures += 1;
      if (el.matches('.jupyter-widgets.widget-box, .widget-slider')) out.widgets += 1;
      if (r.right > limit.right + 1 || r.left < limit.left - 1)
        out.wide.push({cell: i, what: name(el).slice(0, 80), right: Math.round(r.right),
                       limit: Math.round(limit.right)});
    });
    area.querySelectorAll('.jp-OutputArea-output, .widget-box, .widget-output').forEach(el => {
      if (!seen(el.getBoundingClientRect())) return;
      if (!el.querySelector('.js-plotly-plot, img, .jupyter-widgets') && !el.matches('.widget-box')) return;
      if (el.scrollWidth > el.clientWidth + 1) {
        const right = el.getBoundingClientRect().right;
        const culprit = [...el.querySelectorAll('*')].filter(k => k.getBoundingClientRect().right > right + 1)
          .map(k => name(k).slice(0, 60));
        out.scrolls.push({cell: i, what: name(el).slice(0, 80), scroll: el.scrollWidth,
                          client: el.clientWidth, culprit: culprit.slice(0, 3)});
      }
    });
    area.querySelectorAll('.widget-toggle-button, .widget-button, .widget-label, .widget-readout').forEach(el => {
      if (!seen(el.getBoundingClientRect())) return;
      if (el.scrollWidth > el.clientWidth + 1)
        out.cut.push({cell: i, text: el.innerText || el.value, scroll: el.scrollWidth, client: el.clientWidth});
    });
    area.querySelectorAll('.js-plotly-plot').forEach(plot => {
      const p = plot.getBoundingClientRect();
      if (!seen(p)) return;
      plot.querySelectorAll('.legend .scrollbar').forEach(bar => {
        const b = bar.getBoundingClientRect();
        if (b.height > 0 && b.width > 0) out.legends.push({cell: i, height: b.height});
      });
      const texts = [...plot.querySelectorAll(
        '.infolayer text, .xtick text, .ytick text, .annotation-text, .legendtext')]
        .map(t => ({t: t.textContent, r: t.getBoundingClientRect()}))
        .filter(x => x.t.trim() && seen(x.r));
      texts.forEach(x => {
        if (x.r.left < p.left - 2 || x.r.right > p.right + 2)
          out.overlaps.push({cell: i, a: x.t, b: '(outside its figure)'});
      });
      for (let a = 0; a < texts.length; a++) for (let b = a + 1; b < texts.length; b++) {
        const A = texts[a].r, B = texts[b].r;
        const w = Math.min(A.right, B.right) - Math.max(A.left, B.left);
        const h = Math.min(A.bottom, B.bottom) - Math.max(A.top, B.top);
        if (w > 1 && h > 1) out.overlaps.push({cell: i, a: texts[a].t, b: texts[b].t});
      }
    });
  });
  return out;
}"""


def _check_layout(page, *, figures: int, widgets: int = 0) -> dict:
    """The page's measurements, asserted: no error, nothing too wide, nothing cut off."""
    m = page.evaluate(_MEASURE)
    assert m["errors"] == [], m["errors"]
    assert m["wide"] == [], f"wider than their cell: {m['wide']}"
    assert m["scrolls"] == [], f"outputs that scroll sideways: {m['scrolls']}"
    assert m["cut"] == [], f"labels cut off: {m['cut']}"
    assert m["legends"] == [], f"plotly legends in a scroll box: {m['legends']}"
    assert m["overlaps"] == [], f"plotly texts that overlap: {m['overlaps']}"
    assert m["figures"] >= figures, m
    assert m["widgets"] >= widgets, m
    return m


def _notebook_text(page) -> str:
    return page.locator(".jp-Notebook").inner_text()


@pytest.mark.parametrize("lab", ["01_quickstart"], indirect=True)
def test_notebook_01_opens_the_shipped_checkpoint(lab):
    """What a new user does first: open 01, Run All, on the shipped ``mcl`` checkpoint."""
    with _notebook_running(lab, "01_quickstart") as page:
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=120_000)
        _check_layout(page, figures=1)
        text = _notebook_text(page)
        assert "from " in text and "checkpoints/mcl.safetensors" in text  # the shipped one
        assert "AUROC Tiny ImageNet (resize) (%)" in text  # the headline table, by name
        assert "seeded subsets" in text  # says why its numbers are not the README's
        assert page.locator(".js-plotly-plot .scatterlayer .trace").count() >= 2


@pytest.mark.parametrize("lab", ["02_embeddings"], indirect=True)
def test_notebook_02_projections_fit_and_hover_counts_within_the_set(lab):
    with _notebook_running(lab, "02_embeddings") as page:
        plot = page.locator(".widget-output .js-plotly-plot").first
        plot.wait_for(timeout=120_000)
        _check_layout(page, figures=1, widgets=1)
        assert plot.locator(".cartesianlayer .subplot").count() == 4  # 2 x 2 panels
        assert "Tiny ImageNet (resize)" in plot.locator(".legend").text_content()
        # hover an OOD point of the first panel (its last trace): the hover box counts it
        # within the OOD set, not within test + OOD
        ood_trace = plot.locator(".cartesianlayer .subplot.xy").first.locator(".trace").last
        box = ood_trace.locator(".point").first.bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] / 2 + 3, box["y"] + box["height"] / 2)
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        hover = page.locator(".hoverlayer .hovertext").first
        hover.wait_for(timeout=10_000)
        label = hover.text_content()
        m = re.search(r"OOD image #([\d,]+) of ([\d,]+)", label)
        assert m, label
        n = int(m.group(2).replace(",", ""))
        assert int(m.group(1).replace(",", "")) < n == PARAMETERS["02_embeddings"]["TEST_SUBSET"]


#: the operating-point explorer's parts on the page: the ``_dom_classes`` given in
#: ``mclviz/widgets/operating_point.py``
_EXPLORER = ".mclviz-operating-point"
_EXPLORER_TEXTS = {
    "threshold": ".mclviz-op-threshold .widget-readout",
    "counts": ".mclviz-op-counts",
    "accepted_ood": ".mclviz-op-accepted-ood-title",
    "rejected_in": ".mclviz-op-rejected-in-title",
}
#: the explorer's counts text once it differs from the one given (a move has been drawn)
_COUNTS_MOVED = f"""before => {{
  const el = document.querySelector('{_EXPLORER} {_EXPLORER_TEXTS["counts"]}');
  return el !== null && el.innerText.trim() !== before;
}}"""


def _explorer_texts(page) -> dict[str, str]:
    """The explorer's threshold readout, counts and gallery titles, as the page shows them."""
    explorer = page.locator(_EXPLORER)
    return {
        k: explorer.locator(sel).first.inner_text().strip() for k, sel in _EXPLORER_TEXTS.items()
    }


def _count(text: str, what: str) -> tuple[int, int]:
    """(count, total) of "<what>: <count> of <total>" in an explorer text."""
    m = re.search(rf"{re.escape(what)}: (\d+) of (\d+)", text)
    assert m, (what, text)
    return int(m.group(1)), int(m.group(2))


def _readout(text: str) -> float:
    """A slider readout as a number (d3-format writes negatives with U+2212, the minus sign)."""
    return float(text.replace("\u2212", "-"))


def _explorer_moved(page, before: dict[str, str], shot: Path) -> dict[str, str]:
    """Wait until the explorer has redrawn after a move (its counts text changed, the
    kernel idle, plotly redrawn), screenshot it (``shot``), and return its texts, each
    asserted changed."""
    page.wait_for_function(_COUNTS_MOVED, arg=before["counts"], timeout=120_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    page.wait_for_timeout(2000)  # the histogram's Output re-renders its plotly figure
    # the window from the counts down: the histogram and the gallery titles below them
    counts = page.locator(f"{_EXPLORER} {_EXPLORER_TEXTS['counts']}")
    counts.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(500)
    page.screenshot(path=str(shot))
    after = _explorer_texts(page)
    for key in _EXPLORER_TEXTS:  # the readout, the counts and both gallery titles follow
        assert after[key] != before[key], (key, before[key], after[key])
    return after


@pytest.mark.parametrize("lab", ["03_scores_and_failures"], indirect=True)
def test_notebook_03_viewer_keeps_its_default_and_the_explorer_moves(lab):
    """The failure viewer keeps its default kind after the export cell; the operating-point
    explorer follows its slider moved with the keyboard and a preset button."""
    stem = "03_scores_and_failures"
    shots = _artifacts()
    with _notebook_running(lab, stem) as page:
        # the viewer's gallery (a PNG; the explorer's plotly Output above it holds a hidden
        # <img class="plot-img">, so a bare ".widget-output img" would wait on that one)
        page.locator(".widget-output .jp-RenderedImage img").first.wait_for(timeout=120_000)
        _check_layout(page, figures=2, widgets=1)
        active = page.locator(".widget-toggle-button.mod-active")
        assert active.count() == 1 and active.inner_text().strip() == "OOD accepted"
        label = page.locator(".widget-html", has_text="page ").first.inner_text()
        assert "images are accepted as in-distribution" in label, label
        assert "failures" not in label
        text = _notebook_text(page)
        assert "failures_misclassified.csv" in text  # the export cell ran

        # the explorer after Run All: at TARGET_TPR (95%)
        explorer = page.locator(_EXPLORER)
        assert explorer.count() == 1
        start = _explorer_texts(page)
        n_in = PARAMETERS[stem]["TEST_SUBSET"]
        assert _count(start["rejected_in"], "test images rejected as OOD")[1] == n_in
        # the keyboard on the slider's handle: End moves delta to the top of the score
        # range, where (nearly) every test image is rejected and (nearly) no OOD image kept
        handle = explorer.locator(".mclviz-op-threshold .noUi-handle")
        handle.focus()
        handle.press("End")
        top = _explorer_moved(page, start, shots / f"{stem}-explorer-end-key.png")
        rejected = _count(top["rejected_in"], "test images rejected as OOD")[0]
        assert rejected > _count(start["rejected_in"], "test images rejected as OOD")[0]
        accepted = _count(top["accepted_ood"], "accepted as in-distribution")[0]
        assert accepted < _count(start["accepted_ood"], "accepted as in-distribution")[0]
        _check_layout(page, figures=2, widgets=1)

        # a preset button: "TPR = 99%" keeps at least 99% of the test images
        explorer.get_by_role("button", name="TPR = 99%", exact=True).click()
        tpr99 = _explorer_moved(page, top, shots / f"{stem}-explorer-tpr99.png")
        kept, total = _count(tpr99["counts"], "test images accepted as in-distribution")
        assert total == n_in and kept >= 0.99 * n_in, tpr99["counts"]
        assert _count(tpr99["rejected_in"], "test images rejected as OOD")[0] == n_in - kept
        assert _readout(tpr99["threshold"]) < _readout(top["threshold"])
        _check_layout(page, figures=2, widgets=1)


@pytest.mark.parametrize("lab", ["04_sei"], indirect=True)
def test_notebook_04_sei_chart_and_tables_in_percent(lab):
    with _notebook_running(lab, "04_sei") as page:
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=120_000)
        _check_layout(page, figures=1)
        text = _notebook_text(page)
        assert "AUROC, paper - official (points)" in text and "e-0" not in text
        assert "8-way w-avg" in text


@pytest.mark.parametrize("lab", ["05_retrain_widgets"], indirect=True)
def test_notebook_05_widgets_fit_and_a_slider_retrains(lab):
    with _notebook_running(lab, "05_retrain_widgets") as page:
        page.wait_for_selector(".widget-output .js-plotly-plot", timeout=120_000)
        page.locator(".widget-html", has_text=FAST).first.wait_for(timeout=30_000)
        _check_layout(page, figures=3, widgets=5)  # projection, scores, loss; the sliders
        assert page.locator(".widget-slider").count() >= 5  # tau, alpha, beta, lambda, epochs
        assert _notebook_text(page).count(FAST) == 2  # the introduction and the banner
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
        readout = page.locator(".widget-slider", has_text="alpha").locator(".widget-readout")
        assert 0.05 < float(readout.inner_text()) < 0.053  # one step: x 10^0.01, log scale
        page.wait_for_timeout(2000)
        _check_layout(page, figures=3, widgets=5)


@pytest.mark.parametrize("lab", ["06_mean_shifted"], indirect=True)
def test_notebook_06_table_and_chart(lab):
    with _notebook_running(lab, "06_mean_shifted") as page:
        page.wait_for_selector(".jp-RenderedImage img", timeout=120_000)
        _check_layout(page, figures=1)
        assert "kNN, mean-shifted (%)" in _notebook_text(page)
