"""The report page in a real headless Chromium, opened from disk with the network blocked.

A tiny real ``reproduce`` run (the tiny preset trained on CIFAR-10 for ``ce`` and ``mcl``,
the smallest configuration the report tests use, with the figures on) writes
``index.html``; Chromium (Playwright, Debian's ``/usr/bin/chromium``) opens it as a
``file://`` page with every other request aborted, and the test checks that plotly.js
(the file beside the page) drew every interactive figure (each figure div holds plotly's
``.main-svg``), that the page asked for nothing but local files, and that the console
shows no error. A screenshot is saved under the test's ``tmp_path``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mclviz.report import reproduce

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
#: the interactive figures the page draws (the ids of their plot divs)
PLOTS = ("fig1-plot", "fig5-plot", "fig5_nosei-plot")


def _chromium() -> str:
    path = os.environ.get("MCLVIZ_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        msg = (
            "Chromium not found (looked for $MCLVIZ_CHROMIUM, `chromium` on PATH and "
            "/usr/bin/chromium); install it with `apt-get install chromium`"
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="module")
def report(data_root, tmp_path_factory):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return reproduce(
            out=tmp_path_factory.mktemp("report"),
            train=True,
            preset="tiny",
            methods=("ce", "mcl"),
            open_set=False,
            data_root=str(data_root),
            train_subset=1000,
            test_subset=100,
            n_boot=200,
            progress=False,
        )
    finally:
        torch.set_num_threads(before)


def test_report_draws_its_interactive_figures_offline(report, tmp_path):
    from playwright.sync_api import sync_playwright

    assert (report.parent / "plotly.min.js").is_file()
    blocked: list[str] = []
    errors: list[str] = []

    def only_files(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1300, "height": 1000})
            context.route("**/*", only_files)
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.goto(report.as_uri(), wait_until="load", timeout=120_000)
            assert page.evaluate("typeof Plotly") == "object"  # plotly.min.js loaded
            divs = page.locator("div.plotly-graph-div")
            assert sorted(divs.evaluate_all("ds => ds.map(d => d.id)")) == sorted(PLOTS)
            for plot in PLOTS:
                page.locator(f"#{plot} .main-svg").first.wait_for(timeout=60_000)
                assert page.locator(f"#{plot} .main-svg").count() >= 1, plot
            # the points were drawn, not only the axes
            assert page.locator("#fig1-plot .scatterlayer .trace").count() >= 2
            assert page.locator("#fig5-plot .barlayer .trace").count() >= 2
            # a contents link scrolls to its section
            page.locator("nav#contents a[href='#detectors']").click()
            assert page.evaluate("location.hash") == "#detectors"
            page.wait_for_timeout(500)
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert blocked == [], blocked
    assert errors == [], errors
    print(f"screenshot: {tmp_path / 'report.png'}")
