"""Tiny real runs of ``mclviz.training.train``: every method trains, checkpoints, reloads and
resumes, on the CIFAR ResNet of the ``tiny`` preset and on FastNet."""

import json

import pytest
import torch
import torch.nn.functional as F

from mclviz import checkpoint as ckpt
from mclviz import losses, methods
from mclviz.__main__ import main
from mclviz.checkpoint import build_model_from_config
from mclviz.config import Config
from mclviz.data import load_images
from mclviz.training import OneClassData, fine_tune, lr_at, seed_of, train

#: FastNet sized for tests: 16 / 64 / 64 channels, 64 features
FAST = {"arch": "fastnet", "width": 0.25}


@pytest.fixture(scope="module")
def cifar_small(data_root):
    x, y = load_images("cifar10", "train", root=data_root)
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(y), generator=g)[:96]
    return x[idx], y[idx]


def _cfg(method, **kw):
    values = {"batch_size": 32, "epochs": 1, "precision": "fp32"}
    if method == "msc":
        values["normal_class"] = 0
    return Config.preset("tiny", method=method, **{**values, **kw})


def _one_class(x, y, method):
    """msc trains on one class: class 0 of the batch, relabelled 0."""
    if method != "msc":
        return x, y
    return x[y == 0], torch.zeros(int((y == 0).sum()), dtype=torch.long)


def _all_outputs(model, x):
    """Every output the model has, from one pass (eval mode, no gradients)."""
    names = ["z", "features"]
    if model.classifier is not None:
        names.append("logits")
    if model.rot_head is not None:
        names.append("rot")
    with torch.no_grad():
        return model.eval()(x, output=tuple(names))


@pytest.mark.parametrize("method", methods.names())
def test_every_method_trains_checkpoints_and_reloads(tmp_path, cifar_small, method):
    x, y = _one_class(*cifar_small, method)
    events = []
    result = train(
        _cfg(method), out=tmp_path, data=(x, y), callbacks=[events.append], progress=False
    )
    assert result.history and all(
        torch.isfinite(torch.tensor(v)) for v in result.history[-1].values()
    )
    assert [e["kind"] for e in events].count("epoch") == 1
    assert {"step", "lr", "loss"} <= set(events[0])
    ck = ckpt.load(result.checkpoint)
    assert ck.config.method == method and ck.step == max(1, len(y) // 32)
    probe = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(ck.model(probe), result.model(probe), atol=1e-5)


# ------------------------------------------------------------------------------ FastNet
@pytest.mark.parametrize("method", [m for m in methods.names() if m != "msc"])
def test_fastnet_trains_every_method_and_reloads_exactly(tmp_path, cifar_small, method):
    """``arch="fastnet"`` for every registered method (msc: next test, it needs a pretrained
    backbone): the whitening stem is set from the training images, the run saves, and
    ``load(path).model`` gives the returned model's outputs (eval mode)."""
    x, y = cifar_small[0][:64], cifar_small[1][:64]
    result = train(_cfg(method, **FAST), out=tmp_path, data=(x, y), progress=False)
    assert len(result.history) == 1 and all(
        torch.isfinite(torch.tensor(v)) for v in result.history[0].values()
    )
    assert result.model.arch == "fastnet" and result.model.feat_dim == 64
    whiten = result.model.backbone.whiten.weight
    torch.testing.assert_close(whiten[12:], -whiten[:12])  # init_whitening ran
    ck = ckpt.load(result.checkpoint)
    assert (ck.config.arch, ck.config.width, ck.step) == ("fastnet", 0.25, 2)
    probe = torch.rand(3, 3, 32, 32)
    mine, theirs = _all_outputs(result.model, probe), _all_outputs(ck.model, probe)
    assert set(mine) == set(theirs)
    for name in mine:
        torch.testing.assert_close(theirs[name], mine[name], rtol=0, atol=0, msg=name)


def test_msc_fine_tunes_a_tiny_fastnet_checkpoint(tmp_path, cifar_small):
    """Mean-shifted fine-tuning from a tiny FastNet SimCLR checkpoint: the backbone (and its
    whitening) come from the checkpoint, batch-norm statistics stay, the run reloads."""
    x, y = cifar_small
    pre = train(_cfg("simclr", **FAST), out=tmp_path / "pre", data=(x, y), progress=False)
    start = ckpt.load(pre.checkpoint).model
    data = OneClassData(x, y, x, y, [str(c) for c in range(10)])
    cfg = _cfg("msc", lr=1e-3, momentum=0.9)  # the ResNet arch here is replaced by fine_tune
    run = fine_tune(
        int(y[0]),
        pretrained=pre.checkpoint,
        config=cfg,
        data=data,
        out=tmp_path / "msc",
        progress=False,
    )
    assert (run.config.method, run.config.arch, run.config.width) == ("msc", "fastnet", 0.25)
    tuned, before = run.model.state_dict(), start.state_dict()
    assert torch.equal(tuned["backbone.whiten.weight"], before["backbone.whiten.weight"])
    for k in (k for k in before if k.endswith(("running_mean", "running_var"))):
        assert torch.equal(tuned[k], before[k]), k  # batch norm in eval mode throughout
    assert not torch.equal(
        tuned["backbone.group1.conv1.weight"], before["backbone.group1.conv1.weight"]
    )
    ck = ckpt.load(run.checkpoint)
    assert len(ck.metrics["center"]) == 64 and "simclr checkpoint" in ck.metrics["backbone"]
    probe = torch.rand(2, 3, 32, 32)
    mine, theirs = _all_outputs(run.model, probe), _all_outputs(ck.model, probe)
    for name in mine:
        torch.testing.assert_close(theirs[name], mine[name], rtol=0, atol=0, msg=name)


def test_fast_preset_runs_its_schedule(cifar_small):
    """The ``fast`` recipe (FastNet, BN head, Nesterov, warm-up then linear decay, EMA, label
    smoothing, translate augmentation) at test size: each step's lr is ``lr_at``'s."""
    x, y = cifar_small[0][:64], cifar_small[1][:64]
    cfg = Config.preset("fast", method="ce", width=0.25, batch_size=16, epochs=2, precision="fp32")
    lrs = []
    result = train(
        cfg,
        data=(x, y),
        callbacks=[lambda e: lrs.append(e["lr"]) if e["kind"] == "step" else None],
        progress=False,
    )
    total, warmup = 8, 4  # 4 steps per epoch, warm-up 1 epoch
    assert lrs == pytest.approx([lr_at(s, total, cfg.lr, warmup, "linear") for s in range(total)])
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in result.model.head)
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in result.history)


# ------------------------------------------------------------------------------ resume
def test_resume_reaches_the_same_weights(tmp_path, cifar_small):
    x, y = cifar_small
    cfg = _cfg("mcl", epochs=2, save_every=1)
    full = train(cfg, data=(x, y), progress=False)
    steps = {"n": 0}

    def stop_after_four():
        steps["n"] += 1
        return steps["n"] == 4

    part = train(cfg, out=tmp_path, data=(x, y), should_stop=stop_after_four, progress=False)
    assert part.stopped_early and ckpt.load(tmp_path / "checkpoint.safetensors").step == 4
    resumed = train(cfg, out=tmp_path, data=(x, y), resume=True, progress=False)
    for (name, a), b in zip(
        full.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    assert [round(h["loss"], 4) for h in full.history] == [
        round(h["loss"], 4) for h in resumed.history
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [
        {"method": "mcl", "ema_decay": 0.9, "rotations_per_image": 1},
        {"method": "rot", "ema_decay": 0.5, "rotations_per_image": 1},
        {"method": "ce", "ema_decay": 0.9, "nesterov": True, "label_smoothing": 0.2},
    ],
    ids=["mcl-ema-r1", "rot-ema-r1", "ce-ema-nesterov"],
)
def test_resume_is_exact_with_a_weight_average(tmp_path, cifar_small, overrides):
    """Stopped after 4 of 6 steps (mid-epoch) and resumed: the weight average, the live
    weights, the momentum buffers and the loss history are bit-equal to an uninterrupted run
    (CPU, fp32). The EMA is saved as the model, the live weights beside it."""
    x, y = cifar_small
    cfg = _cfg(epochs=2, save_every=1000, **FAST, **overrides)
    full = train(cfg, out=tmp_path / "full", data=(x, y), progress=False)
    calls = {"n": 0}

    def stop_after_four():
        calls["n"] += 1
        return calls["n"] == 4

    out = tmp_path / "part"
    part = train(cfg, out=out, data=(x, y), should_stop=stop_after_four, progress=False)
    stopped = ckpt.load(part.checkpoint)
    assert part.stopped_early and stopped.step == 4 and stopped.metrics["ema_updates"] == 4
    assert stopped.live_state is not None
    resumed = train(cfg, out=out, data=(x, y), resume=True, progress=False)
    a, b = ckpt.load(full.checkpoint), ckpt.load(resumed.checkpoint)
    assert a.step == b.step == 6
    for name, value in a.model.state_dict().items():  # the average
        assert torch.equal(b.model.state_dict()[name], value), name
    for name, value in a.live_state.items():  # the weights being trained
        assert torch.equal(b.live_state[name], value), name
    for idx, per_param in a.optimizer_state["state"].items():
        assert torch.equal(
            b.optimizer_state["state"][idx]["momentum_buffer"], per_param["momentum_buffer"]
        )
    assert [h["loss"] for h in full.history] == [h["loss"] for h in resumed.history]
    for name, value in full.model.state_dict().items():  # the returned model is the average
        assert torch.equal(value, a.model.state_dict()[name]), name


def test_resume_with_a_different_config_is_refused(tmp_path, cifar_small):
    x, y = cifar_small
    train(_cfg("simclr"), out=tmp_path, data=(x, y), progress=False)
    with pytest.raises(ValueError, match="its config differs in .*tau"):
        train(_cfg("simclr", tau=0.25), out=tmp_path, data=(x, y), resume=True, progress=False)


def test_bf16_step_is_close_to_fp32(cifar_small):
    x, y = cifar_small
    a = train(_cfg("simclr", precision="fp32"), data=(x, y), progress=False)
    b = train(_cfg("simclr", precision="bf16"), data=(x, y), progress=False)
    la, lb = a.history[0]["loss"], b.history[0]["loss"]
    assert abs(la - lb) < 0.05 * la


def test_cli_train_and_unknown_field(tmp_path, data_root, capsys):
    code = main(
        [
            "train",
            "--preset",
            "tiny",
            "--method",
            "simclr",
            "--train-subset",
            "64",
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--data-root",
            str(data_root),
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["checkpoint"].endswith("checkpoint.safetensors")
    with pytest.raises(SystemExit):
        main(["train", "--preset", "tiny", "--alhpa", "0.1", "--out", str(tmp_path)])


# ------------------------------------------------------------------- one step, methods.step
def _step_setup(cfg, x):
    """The model, step context and forward of one ``methods.step`` call, as ``train`` does."""
    entry = cfg.method_entry
    torch.manual_seed(0)
    model = build_model_from_config(cfg)
    state = {}
    if entry.setup is not None:
        state = entry.setup(cfg, model, x, torch.device("cpu"), None)
    context = methods.StepContext(cfg, torch.Generator().manual_seed(1), state)
    model.train()
    return entry, model, context, lambda v, names: model(v, output=names)


_VIEW_CASES = [(m, 4, {}) for m in methods.names()]
_VIEW_CASES += [(m, 1, {}) for m in methods.names() if methods.get(m).rotation_labels]
_VIEW_CASES += [("simclr", 4, {"aux_ce": 0.5}), ("mcl", 1, {"aux_ce": 0.5})]


@pytest.mark.parametrize(
    "method, rotations, extra",
    _VIEW_CASES,
    ids=[f"{m}-r{r}{'-aux' * bool(e)}" for m, r, e in _VIEW_CASES],
)
def test_views_per_image_counts_the_steps_forward_passes(cifar_small, method, rotations, extra):
    """``Config.views_per_image`` (used by the report's claim notes) is the number of rows a
    step sends through the model per image, in one forward pass."""
    x, y = cifar_small[0][:8], cifar_small[1][:8] % 4
    cfg = _cfg(method, num_classes=4, rotations_per_image=rotations, **extra)
    entry, model, context, forward = _step_setup(cfg, x)
    rows: list[int] = []
    model.register_forward_pre_hook(lambda mod, args: rows.append(len(args[0])))
    gen = torch.Generator().manual_seed(0)
    views = entry.make_views(x, y, methods.Augmenters(cfg), cfg, gen)
    terms = methods.step(entry, forward, views, context)
    assert torch.isfinite(terms["loss"]) and terms["loss"].requires_grad
    assert rows == [cfg.views_per_image * len(x)]
    assert len(views.y) == len(views.x) and (views.y_aux is None) == (not entry.rotation_labels)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_aux_ce_adds_a_cross_entropy_term_and_a_classifier(cifar_small, smoothing):
    """``aux_ce > 0``: the model gets a classifier on f(x), and the step's loss is the
    method's plus ``aux_ce`` x cross-entropy of the views' class labels."""
    x, y = cifar_small[0][:8], cifar_small[1][:8]
    cfg = _cfg("simclr", aux_ce=0.5, label_smoothing=smoothing, num_classes=10)
    entry, model, context, forward = _step_setup(cfg, x)
    assert model.classifier is not None and model.classifier.out_features == 10
    views = entry.make_views(x, y, methods.Augmenters(cfg), cfg, torch.Generator().manual_seed(0))
    terms = methods.step(entry, forward, views, context)
    out = forward(views.x, ("z", "logits"))  # training mode: the same batch statistics
    aux = F.cross_entropy(out["logits"], views.y, label_smoothing=smoothing)
    torch.testing.assert_close(terms["aux_ce"], aux.detach())
    torch.testing.assert_close(terms["loss"], losses.nt_xent(out["z"], tau=cfg.tau) + 0.5 * aux)
    assert not terms["aux_ce"].requires_grad


def test_aux_ce_run_sets_num_classes_and_logs_the_term(tmp_path, cifar_small):
    x, y = cifar_small[0][:64], cifar_small[1][:64]
    result = train(_cfg("mcl", aux_ce=0.5, **FAST), out=tmp_path, data=(x, y), progress=False)
    assert result.config.num_classes == int(y.max()) + 1
    assert {"loss", "ccm", "spa", "aux_ce"} <= set(result.history[0])
    ck = ckpt.load(result.checkpoint)
    assert ck.model.classifier.out_features == result.config.num_classes


def test_seed_of_is_a_pure_function_of_its_parts():
    assert seed_of(0, 3) == seed_of(0, 3) and seed_of(0, 3) != seed_of(0, 4)
    assert seed_of(1, 2, 1) != seed_of(1, 2, 2) and 0 <= seed_of(7, 9, 1) < 2**63
