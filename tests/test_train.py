"""Tiny real runs: every method trains, checkpoints, reloads and resumes."""

import json

import pytest
import torch

from mclviz import checkpoint as ckpt
from mclviz.__main__ import main
from mclviz.config import METHODS, Config
from mclviz.data import load_images
from mclviz.train import lr_at, train


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


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_trains_checkpoints_and_reloads(tmp_path, cifar_small, method):
    x, y = cifar_small
    if method == "msc":
        x, y = x[y == 0], torch.zeros(int((y == 0).sum()), dtype=torch.long)
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


def test_resume_with_a_different_config_is_refused(tmp_path, cifar_small):
    x, y = cifar_small
    train(_cfg("simclr"), out=tmp_path, data=(x, y), progress=False)
    with pytest.raises(ValueError, match="its config differs in .*tau"):
        train(_cfg("simclr", tau=0.25), out=tmp_path, data=(x, y), resume=True, progress=False)


def test_cosine_schedule():
    assert lr_at(0, 100, 1.2) == pytest.approx(1.2)
    assert lr_at(50, 100, 1.2) == pytest.approx(0.6)
    assert lr_at(100, 100, 1.2) == pytest.approx(0.0)
    assert lr_at(0, 100, 1.0, warmup_steps=10) == pytest.approx(0.1)


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


@pytest.mark.parametrize("method", list(METHODS))
def test_views_per_image_counts_the_steps_forward_passes(cifar_small, method):
    """``Config.views_per_image`` (used by the report's claim notes) is what a step does."""
    from mclviz.checkpoint import build_model_from_config
    from mclviz.device import resolve_precision
    from mclviz.train import _Stepper

    x, y = cifar_small[0][:8], cifar_small[1][:8] % 4
    cfg = _cfg(method, extra={"num_classes": 4})
    model = build_model_from_config(cfg)
    rows: list[int] = []
    model.register_forward_pre_hook(lambda mod, args: rows.append(len(args[0])))
    center = torch.ones(model.feat_dim) if method == "msc" else None
    step = _Stepper(cfg, model, resolve_precision("fp32", torch.device("cpu")), center)
    gens = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    assert torch.isfinite(step(x, y, *gens)["loss"])
    assert sum(rows) == cfg.views_per_image * len(x)
