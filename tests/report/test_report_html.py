"""mclviz.report.html: the page of a real run holds every table, claim and figure."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from report_run import read_csv

from mclviz.plots.interactive import PLOTLY_JS, plotly_js_source
from mclviz.report import CLAIM_IDS
from mclviz.report.html import CLAIM_FIGURES


class _Page(HTMLParser):
    """The ids, links and scripts of a page, and the links inside each claim's <li>."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.scripts: list[str | None] = []  # src, None for an inline script
        self.in_nav = False
        self.nav_links: list[str] = []
        self.claim: str | None = None
        self.claim_links: dict[str, list[str]] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "nav" and a.get("id") == "contents":
            self.in_nav = True
        if tag == "li" and a.get("class") == "claim":
            self.claim = a["id"]
            self.claim_links[self.claim] = []
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
            if self.in_nav:
                self.nav_links.append(a["href"])
            if self.claim is not None:
                self.claim_links[self.claim].append(a["href"])
        if tag == "script":
            self.scripts.append(a.get("src"))

    def handle_endtag(self, tag):
        if tag == "nav":
            self.in_nav = False
        if tag == "li":
            self.claim = None


def _page(h: str) -> _Page:
    p = _Page()
    p.feed(h)
    return p


def test_index_html_holds_every_table_claim_and_figure(full):
    assert full.index == full.out / "index.html"
    h = full.html
    for section in (
        "claims",
        "budget",
        "table1",
        "table2",
        "table3",
        "table4",
        "table5",
        "openset",
    ):
        assert f'id="{section}"' in h or f"id='{section}'" in h, section
    claims = read_csv(full.out, "claims")
    for cid in CLAIM_IDS:
        m = re.search(rf'<li class="claim" id="claim-{cid}" data-verdict="([a-z ]+)">', h)
        assert m, cid
        assert m.group(1) == claims[claims["claim"] == cid]["claim_verdict"].iloc[0]
    # the static figures are embedded; nothing is fetched (the page tests below)
    assert h.count("data:image/png;base64,") == 4
    assert "http://" not in h and "https://" not in h
    # data caveats quoted from the data root's README, OOD substitutions stated
    assert "JPEG" in h and "test_7917" in h
    assert "Tiny ImageNet (resize) stands in for ImageNet (FIX)" in h
    assert "SVHN" in h and "CIFAR-100" in h and "not tested" in h


def test_page_loads_plotly_from_the_file_beside_it(full):
    page = _page(full.html)
    src = [s for s in page.scripts if s is not None]
    assert src == [PLOTLY_JS]  # one script file, relative: no CDN, no URL
    assert not any("://" in s or s.startswith("//") for s in src)
    js = full.out / PLOTLY_JS
    assert js.is_file() and js.stat().st_size == plotly_js_source().stat().st_size
    # one inline drawing call per interactive figure (Figures 1 and 5, with and without SEI)
    assert page.scripts.count(None) == 3
    for key in ("fig1", "fig5", "fig5_nosei"):
        assert f"{key}-interactive" in page.ids and f"{key}-plot" in page.ids
        assert re.search(rf'Plotly\.newPlot\(\s*"{key}-plot"', full.html), key


def test_contents_and_every_local_link_resolve(full):
    page = _page(full.html)
    nav = [h[1:] for h in page.nav_links]
    for section in ("claims", "table1", "detectors", "figures", "interactive", "evidence"):
        assert section in nav, section
    assert set(nav) <= page.ids
    local = [h[1:] for h in page.links if h.startswith("#")]
    assert local and set(local) <= page.ids, set(local) - page.ids
    files = [h for h in page.links if not h.startswith("#")]
    assert files and all((full.out / f).is_file() for f in files), files


def test_each_claim_links_to_its_table_figures_and_csv_rows(full):
    page = _page(full.html)
    claims = read_csv(full.out, "claims")
    results = read_csv(full.out, "results")
    for cid in CLAIM_IDS:
        links = page.claim_links[f"claim-{cid}"]
        assert links and all(h.startswith("#") and h[1:] in page.ids for h in links), links
        table = "#table" + claims[claims["claim"] == cid]["table"].iloc[0].split()[-1]
        assert table in links
        assert {f"#{f}" for f in CLAIM_FIGURES[cid]} <= set(links)  # all made in this run
        rows = claims.index[claims["claim"] == cid] + 1
        assert {f"#claims-row-{n}" for n in rows} <= set(links)
        # the results.csv rows linked are the two settings of each comparison
        linked = [int(h.rsplit("-", 1)[1]) for h in links if h.startswith("#results-row-")]
        columns = ["model", "detector", "ways", "aggregation", "variant", "ood"]
        keys = {"/".join(map(str, results.iloc[n - 1][columns])) for n in linked}
        tested = claims[(claims["claim"] == cid) & (claims["verdict"] != "not tested")]
        expect = {
            f"{k}/{o}"
            for side in ("a", "b")
            for k, o in zip(tested[f"key_{side}"], tested["ood"], strict=True)
        }
        assert keys == expect, cid
    # the rows behind the claims are on the page, each with its anchor
    for n in range(1, len(claims) + 1):
        assert f"claims-row-{n}" in page.ids


def test_detector_table_on_the_page(full):
    h = full.html
    assert 'id="detectors"' in h or "id='detectors'" in h
    assert "n/a (no classifier)" in h and "detectors.csv" in h
    assert "normalisation, covariance" in h and "raw penultimate features" in h
    # rows and model columns by their mclviz.names display names (the CSV keeps the keys)
    assert "<th>kNN (Sun et al.)</th>" in h and "<th title='ce'>cross-entropy</th>" in h
