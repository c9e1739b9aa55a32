"""mclviz.report.pipeline: reproduce runs, partial runs, the command line, argument checks."""

from __future__ import annotations

import re
import shutil
from collections import defaultdict

import numpy as np
import pytest
from report_run import N_BOOT, TEST_SUBSET, TRAIN_SUBSET, read_csv

from mclviz.__main__ import main
from mclviz.checkpoint import load, update_manifest
from mclviz.report import DEFAULT_METHODS, DEFAULT_OOD, OPEN_SET, reproduce

#: evaluate's cache files: <checkpoint sha256[:16]>-<split>-<n>-<output>-v<views>-<hash>
CACHE_FILE = re.compile(r"([0-9a-f]{16})-(.+)-\d+-([a-z]+)-v(\d+)-[0-9a-f]{16}\.safetensors")
#: the outputs after a detector's input pre-processing: ...-perturbed-<output>-<hash>
PERTURBED_FILE = re.compile(r"([0-9a-f]{16})-(.+)-\d+-perturbed-([a-z]+)-[0-9a-f]{16}\.safetensors")


def test_every_image_set_is_embedded_once(full):
    # Each view of each image set is embedded once per model and output: a later SEI
    # setting embeds only the views still missing (another file), the baselines read the
    # same embeddings (one evaluation per model), and the figures and the claims read what
    # evaluate embedded. No other embedding is computed.
    names = [*DEFAULT_METHODS, OPEN_SET]
    model_of = {
        load(full.out / "runs" / n / "checkpoint.safetensors").sha256[:16]: n for n in names
    }
    views: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    perturbed: dict[tuple[str, str], int] = defaultdict(int)
    for path in full.cache.glob("*.safetensors"):
        if p := PERTURBED_FILE.fullmatch(path.name):
            perturbed[model_of[p[1]], f"{p[2]}/{p[3]}"] += 1
            continue
        m = CACHE_FILE.fullmatch(path.name)
        assert m, path.name
        views[model_of[m[1]], m[2], m[3]].append(m[4])
    for key, tags in views.items():
        assert len("".join(tags)) == len(set("".join(tags))), f"{key}: views {tags} repeat"
    ood_splits = [f"ood_{o}" for o in DEFAULT_OOD]
    expect = {(n, s) for n in DEFAULT_METHODS for s in ("train", "test", *ood_splits)}
    expect |= {(OPEN_SET, s) for s in ("train", "test", "ood_open-set")}
    assert {(n, s) for n, s, _ in views} == expect
    # pre-processed outputs: the test and OOD images (never the training images) of every
    # model (Lee's Mahalanobis on the features), and of the classifiers' logits (ODIN)
    pre = {(n, s) for n in DEFAULT_METHODS for s in ("test", *ood_splits)}
    pre |= {(OPEN_SET, "test"), (OPEN_SET, "ood_open-set")}
    want = {(n, f"{s}/features") for n, s in pre}
    want |= {(n, f"{s}/logits") for n, s in pre if n in ("ce", "rot", "mcl-ce")}
    assert set(perturbed) == want and set(perturbed.values()) == {1}
    sei_models = ("mcl", "rot", "mcl-noaux", OPEN_SET, "mcl-ce")  # scored in 1, 4, 8 SEI views
    for (n, split, output), tags in views.items():
        if output == "logits":  # MSP of the classifiers (fitted on train too): the plain view
            assert n in ("ce", "rot", "mcl-ce") and tags == ["0"], (n, split, tags)
            continue
        if output == "features" and n not in ("ce", "rot"):  # the baselines: plain view
            assert tags == ["0"], (n, split, tags)
            continue
        w = 1 if n not in sei_models else 4 if split == "train" else 8
        assert sorted("".join(tags)) == [str(v) for v in range(w)], (n, split, output, tags)


def test_methods_left_out_give_not_tested_lines(full, tmp_path):
    index = reproduce(
        out=tmp_path,
        checkpoints=full.out / "runs",
        methods=("ce", "mcl"),
        open_set=False,
        data_root=full.root,
        train_subset=TRAIN_SUBSET,
        test_subset=TEST_SUBSET,
        progress=False,
        n_boot=N_BOOT,
        cache_dir=full.cache,
        figures=False,
    )
    claims = read_csv(tmp_path, "claims").set_index("claim")
    for cid, missing in (("b", "supclr"), ("c", "mcl-noaux"), ("e", "mcl-noaux")):
        assert claims.loc[cid, "claim_verdict"] == "not tested"
        assert (
            claims.loc[cid, "note"].startswith("not tested (")
            and missing in claims.loc[cid, "note"]
        )
    a = claims.loc[["a"]]  # only the baselines of ce are there
    assert list(a["b"]) == [
        "Baseline",
        "ODIN",
        "Mahalanobis",
        "Mahalanobis (Lee, no pre-processing)",
        "Class Gaussians on CE features",
    ]
    assert a["verdict"].ne("not tested").all()
    assert (
        a["note"].iloc[0].startswith("not compared") and "rot not in methods" in a["note"].iloc[0]
    )
    assert claims.loc["d", "verdict"] != "not tested"
    # the same numbers as the full run for the models both evaluated
    np.testing.assert_allclose(
        claims.loc["d", "auroc_a"],
        read_csv(full.out, "claims").set_index("claim").loc["d", "auroc_a"],
    )
    h = index.read_text(encoding="utf-8")
    assert 'id="claim-b" data-verdict="not tested"' in h
    assert "not run: not in methods" in read_csv(tmp_path, "table3").to_string()
    assert "Figure 1 not made (figures=False)" in h and not list(tmp_path.glob("*.png"))
    assert read_csv(tmp_path, "openset")["status"].iloc[0] == "not run: open_set=False"


def test_cli_reproduce_with_a_manifest_and_missing_checkpoints(full, tmp_path, capsys):
    ck = tmp_path / "ck"
    ck.mkdir()
    shutil.copy(full.out / "runs" / "ce" / "checkpoint.safetensors", ck / "ce.safetensors")
    update_manifest(ck, "ce", ck / "ce.safetensors")
    shutil.copy(full.out / "runs" / "mcl" / "checkpoint.safetensors", ck / "mcl.safetensors")
    update_manifest(ck, "mcl", ck / "mcl.safetensors")
    with open(ck / "mcl.safetensors", "ab") as fh:  # corrupt it after the manifest
        fh.write(b"\0")
    out = tmp_path / "rep"
    code = main(
        [
            "reproduce",
            "--out",
            str(out),
            "--checkpoints",
            str(ck),
            "--data-root",
            full.root,
            "--test-subset",
            str(TEST_SUBSET),
            "--train-subset",
            str(TRAIN_SUBSET),
            "--quiet",
        ]
    )
    assert code == 0
    assert f"report written to {out / 'index.html'}" in capsys.readouterr().out
    claims = read_csv(out, "claims").set_index("claim")
    assert (claims["claim_verdict"] == "not tested").all()
    assert "sha256" in claims.loc["d", "note"]  # mcl is there but fails its check
    assert "no checkpoint for mcl-noaux" in claims.loc["e", "note"]
    assert read_csv(out, "openset")["status"].iloc[0] == "not run: no checkpoint for mcl-openset"
    b = read_csv(out, "budget").set_index("model")
    assert (
        b.loc["ce", "status"] == "evaluated" and b.loc["rot", "status"] == "no checkpoint for rot"
    )
    h = (out / "index.html").read_text(encoding="utf-8")
    assert h.count('data-verdict="not tested"') == 5
    assert "Figure 1 not made" in h and "Figure 4 not made" in h
    assert not (out / "fig1_projection.png").exists()


# ----------------------------------------------------------------------------- units


def test_arguments_are_checked_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="methods=.*'svm'"):
        reproduce(out=tmp_path, methods=("mcl", "svm"))
    with pytest.raises(ValueError, match="either train=True"):
        reproduce(out=tmp_path, train=True, checkpoints=tmp_path)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        reproduce(out=tmp_path, checkpoints=tmp_path / "nope")
    with pytest.raises(ValueError, match="ood=\\(\\) is empty"):
        reproduce(out=tmp_path, ood=())
    with pytest.raises(ValueError, match="preset='huge'"):
        reproduce(out=tmp_path, preset="huge")
    with pytest.raises(ValueError, match="test_subset=0"):
        reproduce(out=tmp_path, test_subset=0)
    assert list(tmp_path.iterdir()) == []  # nothing written
