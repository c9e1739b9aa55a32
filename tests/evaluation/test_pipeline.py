"""mclviz.evaluation.pipeline: ``score`` against Gaussians fitted and aggregated by hand
(``fit_sei_gaussians``, ``sei_scores``, ``aggregate``, Eq. 12-20) on random outputs;
``Scores.table``; ``standard_detectors``; flip TTA and input pre-processing through the
pipeline."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mclviz import methods
from mclviz.evaluation import (
    EvalData,
    Outputs,
    Scores,
    fitted_fingerprint,
    perturbed_outputs,
    score,
    standard_detectors,
)
from mclviz.evaluation import scored_views as views_scored  # not "test_*": pytest would collect it
from mclviz.metrics import accuracy, ood_metrics
from mclviz.scoring import (
    AGGREGATIONS,
    MSP,
    ODIN,
    VARIANTS,
    ClassGaussians,
    Detector,
    FlipTTA,
    Mahalanobis,
    aggregate,
    fit_sei_gaussians,
    sei_scores,
)
from mclviz.transforms import sei_view

C, D = 3, 4
TABLE_COLUMNS = [
    "method",
    "detector",
    "ways",
    "aggregation",
    "variant",
    "normalize",
    "covariance",
    "output",
    "label",
    "key",
    "accuracy",
    "ood",
    "auroc",
    "aupr_in",
    "aupr_out",
    "fpr95",
]


def _random_outputs(n_per_class: int, n_test: int, seed: int, dtype=torch.float64):
    """Class-separated random outputs: train (N, 4, D) rotations, test / OOD (n, 8, D)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(C).repeat_interleave(n_per_class)
    yt = torch.arange(n_test) % C
    centre = 3 * torch.eye(C, D, dtype=dtype)[:, None]  # (C, 1, D), the same in every view
    shift = torch.randn(1, 8, D, generator=g, dtype=dtype)  # a per-view offset
    z_train = centre[y] + shift[:, :4] + torch.randn(len(y), 4, D, generator=g, dtype=dtype)
    z_test = centre[yt] + shift + torch.randn(n_test, 8, D, generator=g, dtype=dtype)
    z_ood = {
        "far": 2 * torch.randn(11, 8, D, generator=g, dtype=dtype),
        "near": centre[torch.arange(9) % C] + shift + 2 * torch.randn(9, 8, D, generator=g),
    }
    data = EvalData((torch.zeros(len(y), 3, 2, 2), y), (torch.zeros(n_test, 3, 2, 2), yt))
    data.ood = {name: torch.zeros(len(z), 3, 2, 2) for name, z in z_ood.items()}
    tensors = {("z", "train"): z_train, ("z", "test"): z_test}
    tensors.update({("z", f"ood:{name}"): z for name, z in z_ood.items()})
    return Outputs.from_tensors(tensors, data), (z_train, y, z_test, yt, z_ood)


def _by_hand(z_train, y, z, ways, aggregation, variant, covariance, normalize):
    gaussians = fit_sei_gaussians(
        z_train[:, : min(ways, 4)], y, covariance=covariance, normalize=normalize
    )
    s = sei_scores(z[:, :ways], gaussians)  # (n, W, C), Eq. 15-16
    return aggregate(s, aggregation if ways > 1 else "avg", variant)  # Eq. 17-20


@pytest.mark.parametrize("ways", [1, 4, 8])
@pytest.mark.parametrize("aggregation", AGGREGATIONS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_class_gaussians_match_fitting_and_aggregating_by_hand(ways, aggregation, variant):
    outputs, (z_train, y, z_test, yt, z_ood) = _random_outputs(20, 30, seed=ways)
    det = ClassGaussians(views=ways, aggregation=aggregation, variant=variant)
    r = score(outputs, [det])[det]
    pred, s_in = _by_hand(z_train, y, z_test, ways, aggregation, variant, "class", True)
    assert torch.equal(r.pred, pred)
    torch.testing.assert_close(r.score_in, s_in)
    assert r.accuracy == pytest.approx(float((pred == yt).double().mean()))
    assert set(r.score_out) == set(r.pred_out) == {"far", "near"}
    for name, z in z_ood.items():
        p, s = _by_hand(z_train, y, z, ways, aggregation, variant, "class", True)
        assert torch.equal(r.pred_out[name], p)
        torch.testing.assert_close(r.score_out[name], s)
        assert r.metrics[name] == ood_metrics(s_in, s)


@pytest.mark.parametrize(
    "n_per_class, covariance, normalize, resolved",
    [
        (20, "class", False, "class"),
        (20, "tied", True, "tied"),
        (20, "auto", True, "class"),  # 20 > D samples a class: a full covariance each
        (4, "auto", False, "tied"),  # 4 <= D: pooled
    ],
)
@pytest.mark.parametrize("ways", [1, 8])
def test_covariance_and_normalisation_variants(n_per_class, covariance, normalize, resolved, ways):
    outputs, (z_train, y, z_test, _, z_ood) = _random_outputs(n_per_class, 12, seed=7)
    det = ClassGaussians(views=ways, covariance=covariance, normalize=normalize)
    r = score(outputs, [det])[det]
    assert det.covariance_ == resolved
    pred, s_in = _by_hand(z_train, y, z_test, ways, "w-avg", "paper", resolved, normalize)
    assert torch.equal(r.pred, pred)
    torch.testing.assert_close(r.score_in, s_in)
    _, s_far = _by_hand(z_train, y, z_ood["far"], ways, "w-avg", "paper", resolved, normalize)
    torch.testing.assert_close(r.score_out["far"], s_far)


def test_many_detectors_in_one_run_are_independent():
    outputs, _ = _random_outputs(20, 15, seed=3)
    dets = standard_detectors(methods.get("mcl"), covariance="class")
    scores = score(outputs, dets, method="mcl")
    assert list(scores.results) == [d.key for d in dets] and len(dets) == 14
    for det in dets:
        alone = score(outputs, [ClassGaussians(**det.get_params())])
        torch.testing.assert_close(scores[det].score_in, alone[det.key].score_in)
    assert scores[dets[0].key] is scores[dets[0]]
    with pytest.raises(KeyError, match="no detector 'msp' in these scores; have"):
        scores["msp"]


def test_table_columns_and_values():
    outputs, (_, _, _, yt, _) = _random_outputs(20, 15, seed=4)
    dets = [
        ClassGaussians(views=1, covariance="auto"),
        ClassGaussians(views=8, aggregation="max", variant="official", normalize=False),
    ]
    scores = score(outputs, dets, method="mcl")
    assert isinstance(scores, Scores) and scores.method == "mcl"
    assert torch.equal(scores.test_labels, yt)
    table = scores.table()
    assert list(table.columns) == TABLE_COLUMNS
    assert len(table) == 2 * 2  # detectors x OOD sets
    assert list(table["ood"]) == ["far", "near", "far", "near"]
    assert list(table["ways"]) == [1, 1, 8, 8]
    assert list(table["aggregation"]) == ["none", "none", "max", "max"]
    assert list(table["variant"]) == ["paper", "paper", "official", "official"]
    assert list(table["normalize"]) == [True, True, False, False]
    assert list(table["covariance"]) == ["class", "class", "class", "class"]  # auto resolved
    assert set(table["method"]) == {"mcl"} and set(table["detector"]) == {"gaussians"}
    assert set(table["output"]) == {"z"}  # "scored" resolved for the model
    for (_, row), det in zip(table.iterrows(), [dets[0]] * 2 + [dets[1]] * 2, strict=True):
        r = scores[det]
        assert (row["key"], row["label"]) == (det.key, det.label)
        assert row["accuracy"] == accuracy(r.pred, yt)
        want = ood_metrics(r.score_in, r.score_out[row["ood"]])
        assert {k: row[k] for k in want} == want


def test_table_of_a_classifier_detector():
    g = torch.Generator().manual_seed(0)
    y, yt = torch.arange(12) % 3, torch.arange(6) % 3
    data = EvalData((torch.zeros(12, 3, 2, 2), y), (torch.zeros(6, 3, 2, 2), yt))
    data.ood = {"o": torch.zeros(5, 3, 2, 2)}
    logits = {
        ("logits", "train"): torch.randn(12, 1, 3, generator=g),
        ("logits", "test"): torch.randn(6, 1, 3, generator=g),
        ("logits", "ood:o"): torch.randn(5, 1, 3, generator=g),
    }
    scores = score(Outputs.from_tensors(logits, data, scored_on="features"), [MSP()])
    (row,) = scores.table().to_dict("records")
    assert (row["detector"], row["ways"], row["aggregation"], row["output"]) == (
        "msp",
        1,
        "none",
        "logits",
    )
    assert row["covariance"] is None and row["normalize"] is None and row["method"] == ""
    p = logits[("logits", "test")][:, 0].softmax(1)
    torch.testing.assert_close(scores["msp"].score_in, p.amax(1))
    assert row["accuracy"] == accuracy(p.argmax(1), yt)


@pytest.mark.parametrize("name, classifier", [("mcl", False), ("simclr", False), ("ce", True)])
def test_standard_detectors(name, classifier):
    entry = methods.get(name)
    assert entry.classifier is classifier
    dets = standard_detectors(entry, covariance="tied", normalize=False)
    gauss = [d for d in dets if isinstance(d, ClassGaussians)]
    assert [(d.views, d.aggregation, d.variant) for d in gauss] == [
        (1, "avg", "paper"),
        (1, "avg", "official"),
        *[(w, a, v) for w in (4, 8) for a in AGGREGATIONS for v in VARIANTS],
    ]
    assert all(d.covariance == "tied" and not d.normalize for d in gauss)
    assert all(d.output == "scored" for d in gauss)  # the method's output, resolved per model
    msp = [d for d in dets if not isinstance(d, ClassGaussians)]
    assert [type(d) for d in msp] == ([MSP] if classifier else [])
    if classifier:
        assert dets[-1].output == "logits"


def test_standard_detectors_settings_and_errors():
    entry = methods.get("mcl")
    dets = standard_detectors(entry, sei=(8, 1, 8), aggregations=("w-avg",), variants=("paper",))
    assert [(d.views, d.aggregation) for d in dets] == [(1, "avg"), (8, "w-avg")]
    assert all(d.covariance == "auto" and d.normalize for d in dets)  # the defaults
    with pytest.raises(ValueError, match=r"sei=\[1, 2\] holds \[2\]; SEI uses 1, 4 or 8"):
        standard_detectors(entry, sei=(1, 2))


class LogitNet(nn.Module):
    """``model(x, output=...)`` as an MCLModel; records the input of every forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 4 * 4, 3)
        self.seen: list[torch.Tensor] = []

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return self.fc(x.flatten(1))

    def forward(self, x: torch.Tensor, output="z"):
        if isinstance(output, tuple | list):
            return {name: self.logits(x) for name in output}
        return self.logits(x)


def _image_data(seed: int = 0) -> EvalData:
    g = torch.Generator().manual_seed(seed)

    def images(n: int) -> torch.Tensor:
        return torch.randint(0, 256, (n, 3, 4, 4), dtype=torch.uint8, generator=g)

    y = torch.arange(12) % 3
    return EvalData((images(12), y), (images(7), y[:7]), {"o": images(5)})


def _views_seen(model: LogitNet, images: torch.Tensor) -> list[int]:
    """The SEI view of each recorded batch of ``images``."""
    x = images.float() / 255
    found = []
    for seen in model.seen:
        if seen.shape != x.shape:
            continue
        hits = [m for m in range(8) if torch.equal(seen, sei_view(x, m))]
        found += hits[:1]
    return found


def test_flip_tta_scores_views_0_and_4():
    torch.manual_seed(0)
    model, data = LogitNet(), _image_data()
    outputs = Outputs(model, data, precision="fp32", progress=False)
    det = FlipTTA(MSP())
    assert views_scored(det) == [0, 4]
    r = score(outputs, [det])[det]
    assert _views_seen(model, data.test[0]) == [0, 4]  # nothing else was embedded
    assert _views_seen(model, data.train[0]) == [0]  # fitted on the images as they are
    with torch.no_grad():
        x = data.test[0].float() / 255
        mean = (model.fc(x.flatten(1)) + model.fc(sei_view(x, 4).flatten(1))) / 2
    p = mean.softmax(1)
    torch.testing.assert_close(r.score_in, p.amax(1))
    assert torch.equal(r.pred, p.argmax(1))
    row = score(outputs, [FlipTTA(MSP())]).table().iloc[0]
    assert (row["detector"], row["ways"], row["output"]) == ("msp+flip", 1, "logits")


def test_flip_tta_on_precomputed_outputs():
    g = torch.Generator().manual_seed(1)
    data = _image_data()
    test = torch.randn(7, 8, 3, generator=g)
    tensors = {
        ("logits", "train"): torch.randn(12, 1, 3, generator=g),
        ("logits", "test"): test,
        ("logits", "ood:o"): torch.randn(5, 8, 3, generator=g),
    }
    r = score(Outputs.from_tensors(tensors, data), [FlipTTA(MSP())])["msp+flip/detector=msp"]
    want = ((test[:, 0] + test[:, 4]) / 2).softmax(1).amax(1)
    torch.testing.assert_close(r.score_in, want)


def test_a_detector_with_epsilon_goes_through_perturbed_outputs(monkeypatch):
    torch.manual_seed(0)
    model, data = LogitNet(), _image_data(2)
    outputs = Outputs(model, data, precision="fp32", progress=False)
    calls = []
    perturbed = Outputs.perturbed

    def spy(self, output, split, detector):
        calls.append((output, split, detector.key))
        return perturbed(self, output, split, detector)

    monkeypatch.setattr(Outputs, "perturbed", spy)
    det, plain = ODIN(temperature=1.0, epsilon=0.05), ODIN(temperature=1.0, epsilon=0.0)
    scores = score(outputs, [det, plain])
    assert calls == [("logits", "test", det.key), ("logits", "ood:o", det.key)]
    want = perturbed_outputs(
        model, data.test[0], "logits", det.differentiable_score, 0.05, progress=False
    )
    torch.testing.assert_close(scores[det].score_in, det.score(want[:, 0]))
    want_o = perturbed_outputs(
        model, data.ood["o"], "logits", det.differentiable_score, 0.05, progress=False
    )
    torch.testing.assert_close(scores[det].score_out["o"], det.score(want_o[:, 0]))
    # pre-processing raises the score; without it the score is the plain one
    assert bool((scores[det].score_in > scores[plain].score_in).all())
    x = data.test[0].float() / 255
    with torch.no_grad():
        p = model.fc(x.flatten(1)).softmax(1)
    torch.testing.assert_close(scores[plain].score_in, p.amax(1))
    # the training outputs it was fitted on are the plain ones
    assert outputs.get("logits", "train", 1).shape == (12, 1, 3)


def test_epsilon_without_a_model_is_an_error():
    g = torch.Generator().manual_seed(0)
    data = _image_data()
    tensors = {
        ("logits", "train"): torch.randn(12, 1, 3, generator=g),
        ("logits", "test"): torch.randn(7, 1, 3, generator=g),
        ("logits", "ood:o"): torch.randn(5, 1, 3, generator=g),
    }
    with pytest.raises(ValueError, match="ODIN pre-processes its inputs.*needs the model"):
        score(Outputs.from_tensors(tensors, data), [ODIN()])


class Binding(Detector):
    """A detector that records what ``bind`` got (ViM reads its classifier there)."""

    output = "logits"

    def __init__(self) -> None:
        self.bound_ = []

    def bind(self, model):
        self.bound_.append(model)
        return self

    def _predict_score(self, x):
        return None, x[:, 0]


def test_bind_gets_the_model_and_non_classifiers_have_no_accuracy():
    torch.manual_seed(0)
    model, data = LogitNet(), _image_data()
    det = Binding()
    r = score(Outputs(model, data, precision="fp32", progress=False), [det])[det]
    assert det.bound_ == [model]
    assert r.pred is None and r.accuracy is None and r.pred_out == {}
    other = nn.Linear(1, 1)
    det2 = Binding()
    score(Outputs(model, data, precision="fp32", progress=False), [det2], model=other)
    assert det2.bound_ == [other]


class FeatureNet(LogitNet):
    """LogitNet whose features (for Lee's Mahalanobis) are its logits."""

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x)


def test_pre_processed_outputs_are_kept_on_disk_per_fitted_detector(tmp_path):
    """A second evaluation with the same model, images and fitted detector reads the
    pre-processed outputs from the cache (no forward pass); a detector fitted on other
    training outputs, or with another epsilon, moves the images differently and misses."""
    torch.manual_seed(0)
    model, data = FeatureNet(), _image_data(2)

    def run(det, cache_key="m"):
        model.seen.clear()
        outputs = Outputs(
            model, data, precision="fp32", progress=False, cache_dir=tmp_path, cache_key=cache_key
        )
        return score(outputs, [det])[det], len(model.seen)

    lee = Mahalanobis(epsilon=0.05)
    first, passes = run(lee)
    assert passes > 0
    files = sorted(p.name for p in tmp_path.glob("*perturbed*"))
    assert len(files) == 2  # test and the OOD set
    again, passes_again = run(Mahalanobis(epsilon=0.05))
    # the training outputs it is fitted on come from the embedding cache, the
    # pre-processed ones from theirs: no forward pass at all
    assert passes_again == 0
    torch.testing.assert_close(again.score_in, first.score_in)
    torch.testing.assert_close(again.score_out["o"], first.score_out["o"])
    run(Mahalanobis(epsilon=0.02))  # another epsilon: new files
    assert len(list(tmp_path.glob("*perturbed*"))) == 4
    run(Mahalanobis(epsilon=0.05), cache_key="other-model")
    assert len(list(tmp_path.glob("*perturbed*"))) == 6


def test_a_detector_fitted_on_other_data_has_another_fingerprint():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(30, 4, generator=g), torch.arange(30) % 3
    a, b = Mahalanobis(epsilon=0.01).fit(x, y), Mahalanobis(epsilon=0.01).fit(x + 1, y)
    assert fitted_fingerprint(a) is not None
    assert fitted_fingerprint(a) == fitted_fingerprint(Mahalanobis(epsilon=0.01).fit(x, y))
    assert fitted_fingerprint(a) != fitted_fingerprint(b)
    assert fitted_fingerprint(ODIN(epsilon=0.01)) != fitted_fingerprint(ODIN(epsilon=0.02))


def test_a_config_with_an_auxiliary_classifier_head_gets_the_logit_detectors():
    # mcl has no classifier head; mcl with aux_ce > 0 (the mcl-ce model) has one, and the
    # decision is detector_unavailable's, whoever asks (make_detectors, report, score)
    from mclviz.config import Config
    from mclviz.evaluation import detector_unavailable, make_detectors

    mcl = methods.get("mcl")
    plain = Config.preset("tiny", method="mcl")
    with_head = Config.preset("tiny", method="mcl", aux_ce=1.0)
    for name in ("msp", "energy", "odin", "vim", "msp+flip"):
        assert detector_unavailable(name, mcl) == "no classifier"
        assert detector_unavailable(name, plain) == "no classifier"
        assert detector_unavailable(name, with_head) is None
        assert detector_unavailable(name, methods.get("ce")) is None
    for name in ("gaussians", "mahalanobis", "mahalanobis+pre", "rmd", "knn", "knn+flip"):
        assert detector_unavailable(name, mcl) is None
    with pytest.raises(ValueError, match="detector 'nope' is not known"):
        detector_unavailable("nope", mcl)
    with pytest.raises(ValueError, match="reads a classifier's logits, but method='mcl'"):
        make_detectors(["msp"], mcl)
    with pytest.raises(ValueError, match=r"this config adds none \(aux_ce=0\)"):
        make_detectors(["energy"], plain)
    (det,) = make_detectors(["energy"], with_head)
    assert det.key == make_detectors(["energy"], methods.get("ce"))[0].key
    # a Config and its registry entry give the same detectors where both can
    assert [d.key for d in make_detectors(["gaussians", "knn"], plain, sei=[1, 8])] == [
        d.key for d in make_detectors(["gaussians", "knn"], mcl, sei=[1, 8])
    ]
