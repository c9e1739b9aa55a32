"""mclviz.report.html: the page of a real run holds every table, claim and figure."""

from __future__ import annotations

import re

from report_run import read_csv

from mclviz.report import CLAIM_IDS


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
    # self-contained: the figures are embedded, nothing is fetched
    assert h.count("data:image/png;base64,") == 4
    assert "<script" not in h and "http://" not in h and "https://" not in h
    # data caveats quoted from the data root's README, OOD substitutions stated
    assert "JPEG" in h and "test_7917" in h
    assert "Tiny ImageNet (resize) stands in for ImageNet (FIX)" in h
    assert "SVHN" in h and "CIFAR-100" in h and "not tested" in h
