"""mclviz.evaluation.user_images and ``python -m mclviz score``: a user's own image files
scored with a tiny trained MCL checkpoint.

The test archive mixes what a user's folder holds: CIFAR-10 test images saved as PNG (so
their scores can be checked against the evaluation's), a Tiny ImageNet JPEG at its 64x64
(resized as ``tinyimagenet-resize`` resizes it), a grayscale, an RGBA and a palette image
of other sizes, a corrupt JPEG, a text file, and a hidden file and ``__MACOSX`` entry that
are not inputs at all.
"""

from __future__ import annotations

import csv
import io
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from mclviz.__main__ import main
from mclviz.checkpoint import load
from mclviz.config import Config
from mclviz.data import class_names, load_images
from mclviz.evaluation import evaluate, load_eval_data, recommended_detector, score_images
from mclviz.evaluation.user_images import (
    CSV_COLUMNS,
    IN,
    OUT,
    UndecodableImageWarning,
    list_inputs,
)
from mclviz.methods import get
from mclviz.metrics import threshold_at_tpr
from mclviz.scoring import MSP, ClassGaussians, CosineKNN
from mclviz.training import train

TRAIN_SUBSET, TEST_SUBSET = 300, 100
N_CIFAR = 3  # CIFAR-10 test images (of the test subset) saved as PNG
GOOD = N_CIFAR + 4  # + Tiny ImageNet JPEG, grayscale, RGBA, palette
BAD = ("bad.jpg", "notes.txt")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ckpt(data_root, tmp_path_factory):
    """A tiny MCL checkpoint trained on 256 real CIFAR-10 training images (2 epochs)."""
    x, y = load_images("cifar10", "train", root=data_root, n=256, seed=5)
    cfg = Config.preset("tiny", method="mcl", precision="fp32")
    out = tmp_path_factory.mktemp("run")
    train(cfg, out=out, data=(x, y), progress=False)
    return out / "checkpoint.safetensors"


def _png(arr_hwc: np.ndarray, mode: str | None = None) -> bytes:
    im = Image.fromarray(arr_hwc)
    if mode is not None:
        im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _tin_member(data_root) -> tuple[str, bytes, int]:
    """A Tiny ImageNet test JPEG: (member name, bytes, its row in tinyimagenet-resize)."""
    with zipfile.ZipFile(data_root / "tinyimagenet-test.zip") as z:
        names = sorted(n for n in z.namelist() if n.lower().endswith(".jpeg") and "/images/" in n)
        name = names[17]
        return name, z.read(name), 17


@pytest.fixture(scope="module")
def archive(data_root, tmp_path_factory):
    """The mixed zip; returns (path, {member: what it is}, the CIFAR test images saved)."""
    data = load_eval_data(
        "cifar10",
        ood=(),
        data_root=str(data_root),
        train_subset=TRAIN_SUBSET,
        test_subset=TEST_SUBSET,
    )
    cifar = data.test[0][:N_CIFAR]  # (3, 3, 32, 32), the first test-subset images
    rng = np.random.default_rng(0)
    _, tin_bytes, _ = _tin_member(data_root)
    jpeg = tin_bytes
    members = {
        **{
            f"photos/cifar_{i}.png": _png(cifar[i].permute(1, 2, 0).numpy()) for i in range(N_CIFAR)
        },
        "photos/tiny_imagenet.jpeg": jpeg,
        "photos/sub/gray.png": _png(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8), "L"),
        "photos/sub/rgba.png": _png(rng.integers(0, 256, (70, 45, 3), dtype=np.uint8), "RGBA"),
        "photos/sub/palette.png": _png(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8), "P"),
        "photos/bad.jpg": jpeg[:300],  # truncated: a corrupt JPEG
        "photos/notes.txt": b"not an image\n",
        "photos/.DS_Store": b"\0\0\0\1Bud1",
        "__MACOSX/photos/._gray.png": b"\0",
    }
    path = tmp_path_factory.mktemp("user") / "mixed.zip"
    with zipfile.ZipFile(path, "w") as z:
        for name, blob in members.items():
            z.writestr(name, blob)
    return path, members, cifar


@pytest.fixture(scope="module")
def scored(ckpt, archive, data_root, tmp_path_factory):
    """One full run on the archive, its CSV streamed, and the warnings it gave."""
    out = tmp_path_factory.mktemp("scored") / "scores.csv"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = score_images(
            ckpt,
            [archive[0]],
            out=out,
            train_subset=TRAIN_SUBSET,
            test_subset=TEST_SUBSET,
            data_root=str(data_root),
            batch_size=3,
            precision="fp32",
            progress=False,
        )
    return result, [w for w in caught if issubclass(w.category, UndecodableImageWarning)]


def _name(archive, member: str) -> str:
    return f"{archive[0]}::{member}"


# ----------------------------------------------------------------------------- the result


def test_rows_and_skipped_files(scored, archive):
    result, caught = scored
    t = result.table
    assert list(t.columns) == ["file", "score", "predicted_class", "verdict"]
    assert result.n_scored == GOOD and len(result.images) == GOOD
    assert result.images.shape[1:] == (3, 32, 32) and result.images.dtype == torch.uint8
    not_inputs = {"photos/.DS_Store", "__MACOSX/photos/._gray.png"}
    good = sorted(m for m in archive[1] if m not in not_inputs and m[7:] not in BAD)
    assert list(t["file"]) == [_name(archive, m) for m in good]  # sorted, hidden left out
    assert result.n_skipped == 2
    assert [n for n, _ in result.skipped] == [_name(archive, f"photos/{b}") for b in BAD]
    assert all(reason for _, reason in result.skipped)
    # each skipped file was warned about by name
    assert sorted(str(w.message).split(": ")[0] for w in caught) == [
        f"skipped {_name(archive, 'photos/' + b)}" for b in BAD
    ]
    assert set(t["verdict"]) <= {IN, OUT}
    assert result.n_in + result.n_out == GOOD
    assert t["predicted_class"].isin(class_names("cifar10")).all()


def test_threshold_is_the_tpr_quantile_of_the_test_scores(scored):
    result, _ = scored
    s = result.test_scores.double().numpy()
    assert len(s) == TEST_SUBSET and result.tpr_target == 0.95
    assert result.threshold == threshold_at_tpr(s, 0.95)
    # numpy: the 95th of the 100 test scores in descending order, and no larger score
    # keeps 95% of them
    desc = np.sort(s)[::-1]
    assert result.threshold == desc[94]
    assert np.mean(s >= result.threshold) >= 0.95 > np.mean(s >= np.nextafter(desc[94], np.inf))
    assert result.tpr == np.mean(s >= result.threshold)
    t = result.table
    assert ((t["score"] >= result.threshold) == (t["verdict"] == IN)).all()
    assert "95.0%" in result.threshold_rule and f"{result.threshold:.6g}" in result.threshold_rule


def test_default_detector_and_test_scores_are_the_evaluations(scored, ckpt, archive, data_root):
    result, _ = scored
    det = ClassGaussians(views=8, aggregation="w-avg", covariance="auto")
    assert result.detector_key == det.key and "8-way SEI w-avg" in result.detector
    data = load_eval_data(
        "cifar10",
        ood=(),
        data_root=str(data_root),
        train_subset=TRAIN_SUBSET,
        test_subset=TEST_SUBSET,
    )
    _, scores = evaluate(
        load(ckpt),
        data=data,
        detectors=[det],
        precision="fp32",
        progress=False,
        return_scores=True,
    )
    ref = scores[det.key]
    torch.testing.assert_close(result.test_scores, ref.score_in)
    # a PNG of a test image scores what the evaluation scored the image itself
    rows = result.table.set_index("file")
    for i in range(N_CIFAR):
        r = rows.loc[_name(archive, f"photos/cifar_{i}.png")]
        assert abs(r["score"] - float(ref.score_in[i])) < 1e-4 * max(1.0, abs(r["score"]))
        assert r["predicted_class"] == class_names("cifar10")[int(ref.pred[i])]
    assert torch.equal(result.images[:N_CIFAR], archive[2])


def test_resize_is_tinyimagenet_resize(scored, archive, data_root):
    result, _ = scored
    _, blob, row = _tin_member(data_root)
    ref = load_images("tinyimagenet-resize", root=data_root)[0][row]  # (3, 32, 32)
    i = list(result.table["file"]).index(_name(archive, "photos/tiny_imagenet.jpeg"))
    assert torch.equal(result.images[i], ref)
    # the other modes and sizes: RGB, then PIL's BOX filter to 32x32 (aspect not kept)
    for member in ("photos/sub/gray.png", "photos/sub/rgba.png", "photos/sub/palette.png"):
        with Image.open(io.BytesIO(archive[1][member])) as im:
            expect = np.asarray(im.convert("RGB").resize((32, 32), Image.Resampling.BOX))
        i = list(result.table["file"]).index(_name(archive, member))
        assert np.array_equal(result.images[i].permute(1, 2, 0).numpy(), expect), member
    gray = result.images[list(result.table["file"]).index(_name(archive, "photos/sub/gray.png"))]
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])


# ----------------------------------------------------------------------------- the CSV


def test_csv_holds_every_row_with_the_threshold(scored):
    result, _ = scored
    df = pd.read_csv(result.csv, keep_default_na=False)
    assert tuple(df.columns) == CSV_COLUMNS
    assert list(df["file"]) == list(result.table["file"])
    np.testing.assert_allclose(df["score"], result.table["score"], rtol=0, atol=0)
    assert list(df["verdict"]) == list(result.table["verdict"])
    assert (df["threshold"] == result.threshold).all()
    assert (df["id_test_tpr"] == result.tpr).all()
    assert (df["detector"] == result.detector).all()


def test_csv_streams_batch_by_batch(ckpt, archive, data_root, tmp_path):
    out = tmp_path / "partial.csv"
    seen = []

    def stop_after_first(rows):
        seen.append(len(rows))
        # written and flushed before the callback: a reader sees them already
        with open(out, newline="") as fh:
            assert len(list(csv.reader(fh))) == 1 + sum(seen)
        raise KeyboardInterrupt  # as a user's Ctrl-C after the first batch

    with pytest.raises(KeyboardInterrupt), warnings.catch_warnings():
        warnings.simplefilter("ignore", UndecodableImageWarning)
        score_images(
            ckpt,
            [archive[0]],
            out=out,
            train_subset=TRAIN_SUBSET,
            test_subset=TEST_SUBSET,
            data_root=str(data_root),
            batch_size=2,
            precision="fp32",
            progress=False,
            on_batch=stop_after_first,
        )
    assert seen == [2]
    with open(out, newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 3
    assert rows[1][0] == _name(archive, "photos/cifar_0.png")
    assert rows[2][0] == _name(archive, "photos/cifar_1.png")


# ----------------------------------------------------------------------------- options


def test_given_threshold_and_another_detector(ckpt, archive, data_root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndecodableImageWarning)
        r = score_images(
            ckpt,
            [archive[0]],
            detector="knn",
            threshold=-0.5,
            train_subset=TRAIN_SUBSET,
            test_subset=TEST_SUBSET,
            data_root=str(data_root),
            precision="fp32",
            progress=False,
        )
    assert r.threshold == -0.5 and r.tpr_target is None and r.csv is None
    assert r.tpr == float((r.test_scores >= -0.5).double().mean())
    assert "(given)" in r.threshold_rule
    assert r.detector.startswith("KNN") and (r.table["predicted_class"] == "").all()
    assert ((r.table["score"] >= -0.5) == (r.table["verdict"] == IN)).all()


def test_a_logit_detector_scores_a_model_whose_config_adds_a_classifier_head(
    ckpt, archive, data_root, tmp_path
):
    # `mclviz score --detector msp`: plain mcl has no head (a clear error); mcl with an
    # auxiliary CE head (aux_ce > 0, the mcl-ce model) is scored by its logits
    x, y = load_images("cifar10", "train", root=data_root, n=256, seed=5)
    cfg = Config.preset("tiny", method="mcl", precision="fp32", aux_ce=1.0, epochs=1)
    train(cfg, out=tmp_path, data=(x, y), progress=False)
    kw = dict(
        train_subset=TRAIN_SUBSET,
        test_subset=TEST_SUBSET,
        data_root=str(data_root),
        precision="fp32",
        progress=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndecodableImageWarning)
        with pytest.raises(ValueError, match="reads a classifier's logits, but method='mcl'"):
            score_images(ckpt, [archive[0]], detector="msp", **kw)
        r = score_images(tmp_path / "checkpoint.safetensors", [archive[0]], detector="msp", **kw)
    assert r.detector == "msp" and len(r.table) == GOOD
    assert (r.table["predicted_class"] != "").all()  # MSP predicts the argmax class
    assert ((r.test_scores > 0) & (r.test_scores <= 1)).all()  # softmax probabilities


def test_default_detectors_of_the_methods():
    assert isinstance(recommended_detector(get("ce")), MSP)
    assert isinstance(recommended_detector(get("rot")), MSP)
    mcl = recommended_detector(get("mcl"))
    assert isinstance(mcl, ClassGaussians) and mcl.views == 8 and mcl.aggregation == "w-avg"
    assert recommended_detector(get("supclr")).views == 1
    assert isinstance(recommended_detector(get("msc")), CosineKNN)


def test_inputs_files_folders_and_archives(archive, tmp_path):
    folder = tmp_path / "f"
    (folder / "deep" / ".hidden").mkdir(parents=True)
    (folder / "b.png").write_bytes(archive[1]["photos/sub/gray.png"])
    (folder / "deep" / "a.jpg").write_bytes(archive[1]["photos/tiny_imagenet.jpeg"])
    (folder / "deep" / ".hidden" / "x.png").write_bytes(b"x")
    (folder / "deep" / "inner.zip").write_bytes(archive[0].read_bytes())
    (folder / "deep" / "broken.zip").write_bytes(b"PK not really")
    single = tmp_path / "one.png"
    single.write_bytes(archive[1]["photos/sub/rgba.png"])
    with pytest.warns(UndecodableImageWarning, match="broken.zip"):
        inputs, skipped = list_inputs([single, folder])
    names = [i.name for i in inputs]
    assert names[0] == str(single) and names[1] == str(folder / "b.png")
    assert names[2] == str(folder / "deep" / "a.jpg")
    inner = [n for n in names if "inner.zip::" in n]
    assert len(inner) == len(archive[1]) - 2  # less the hidden file and __MACOSX
    assert not any(".hidden" in n for n in names)
    assert [n for n, _ in skipped] == [str(folder / "deep" / "broken.zip")]
    with pytest.raises(FileNotFoundError, match="nope.png"):
        list_inputs([single, tmp_path / "nope.png"])


def test_bad_arguments_fail_before_any_work(tmp_path):
    ck = tmp_path / "missing.safetensors"  # never opened: the checks come first
    with pytest.raises(ValueError, match="tpr=1.5"):
        score_images(ck, [tmp_path], tpr=1.5)
    with pytest.raises(ValueError, match="tpr=0"):
        score_images(ck, [tmp_path], tpr=0)
    with pytest.raises(ValueError, match="threshold=nan"):
        score_images(ck, [tmp_path], threshold=float("nan"))
    with pytest.raises(ValueError, match="batch_size=0"):
        score_images(ck, [tmp_path], batch_size=0)
    with pytest.raises(FileNotFoundError, match="nope"):
        score_images(ck, [tmp_path / "nope"])


def test_nothing_decodable_is_an_error(ckpt, data_root, tmp_path):
    (tmp_path / "a.txt").write_text("text")
    with pytest.raises(ValueError, match="none of the 1 files"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UndecodableImageWarning)
        score_images(
            ckpt,
            [tmp_path],
            train_subset=TRAIN_SUBSET,
            test_subset=TEST_SUBSET,
            data_root=str(data_root),
            precision="fp32",
            progress=False,
        )


# ----------------------------------------------------------------------------- the command


def test_cli_score_writes_csv_and_gallery(ckpt, archive, data_root, tmp_path, capsys):
    out = tmp_path / "scored"
    args = [
        "score",
        str(ckpt),
        str(archive[0]),
        "--out",
        str(out),
        "--data-root",
        str(data_root),
        "--train-subset",
        str(TRAIN_SUBSET),
        "--test-subset",
        str(TEST_SUBSET),
        "--precision",
        "fp32",
        "--batch-size",
        "4",
        "--quiet",
    ]
    assert main(args) == 0
    std = capsys.readouterr()
    assert f"scored {GOOD} images" in std.out and "skipped 2 files" in std.out
    assert "threshold " in std.out and "95.0%" in std.out
    for b in BAD:  # each skipped file named on stderr
        assert f"skipped {_name(archive, 'photos/' + b)}:" in std.err
    df = pd.read_csv(out / "scores.csv")
    assert len(df) == GOOD and set(df["verdict"]) <= {IN, OUT}
    page = (out / "gallery.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == GOOD
    assert f"{df['threshold'].iloc[0]:.6g}" in page and "95.0%" in page
    assert "2 files could not be decoded" in page

    # a given threshold; --tpr and --threshold exclude each other
    assert main([*args[:4], str(tmp_path / "t"), *args[5:], "--threshold=-1e9"]) == 0
    assert (pd.read_csv(tmp_path / "t" / "scores.csv")["verdict"] == IN).all()
    with pytest.raises(SystemExit):
        main([*args, "--tpr", "0.9", "--threshold", "0"])
    assert main([*args, "--detector", "msp"]) == 2  # mcl has no classifier
    assert "no classifier head" in capsys.readouterr().err
