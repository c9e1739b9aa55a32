import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from mclviz import checkpoint as ckpt
from mclviz.config import Config


def _tiny(method="mcl", **kw):
    if method in ("ce", "rot"):
        kw.setdefault("num_classes", 10)  # train() sets it from the labels
    cfg = Config.preset("tiny", method=method, **kw)
    return cfg, ckpt.build_model_from_config(cfg)


def test_roundtrip_restores_everything(tmp_path):
    cfg, model = _tiny("ce")
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = torch.rand(4, 3, 32, 32)
    model.logits(x).sum().backward()
    opt.step()
    path = ckpt.save(
        tmp_path / "a.safetensors",
        model,
        cfg,
        epoch=3,
        step=17,
        optimizer=opt,
        scheduler_state={"name": "cosine"},
        metrics={"auroc": 0.5},
    )
    ck = ckpt.load(path)
    assert (ck.epoch, ck.step, ck.metrics, ck.scheduler_state) == (
        3,
        17,
        {"auroc": 0.5},
        {"name": "cosine"},
    )
    assert ck.config == cfg
    model.eval()
    assert torch.equal(ck.model(x), model(x))
    assert torch.equal(ck.model.logits(x), model.logits(x))
    opt2 = torch.optim.SGD(ck.model.parameters(), lr=0.1, momentum=0.9)
    opt2.load_state_dict(ck.optimizer_state)
    pairs = zip(opt.param_groups[0]["params"], opt2.param_groups[0]["params"], strict=True)
    pairs = [(p, q) for p, q in pairs if p in opt.state]
    assert len(pairs) > 10
    for p, q in pairs:
        assert torch.equal(opt.state[p]["momentum_buffer"], opt2.state[q]["momentum_buffer"])
    assert ck.sha256 == ckpt.sha256(path) and len(ck.sha256) == 64


def test_half_precision_weights_are_close(tmp_path):
    cfg, model = _tiny()
    path = ckpt.save(tmp_path / "h.safetensors", model, cfg, half=True)
    full = ckpt.save(tmp_path / "f.safetensors", model, cfg)
    assert path.stat().st_size < 0.6 * full.stat().st_size
    x = torch.rand(2, 3, 32, 32)
    model.eval()
    assert torch.allclose(ckpt.load(path).model(x), model(x), atol=2e-2)


def test_failed_save_leaves_previous_checkpoint(tmp_path, monkeypatch):
    cfg, model = _tiny()
    path = ckpt.save(tmp_path / "c.safetensors", model, cfg, epoch=1)
    before = path.read_bytes()

    def boom(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt, "save_file", boom)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save(path, model, cfg, epoch=2)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]  # no temp file left


@pytest.mark.slow
def test_sigkill_during_saves_leaves_a_readable_checkpoint(tmp_path):
    script = f"""
import sys; sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from mclviz import checkpoint as c
from mclviz.config import Config
cfg = Config.preset("tiny", arch="resnet34", width=0.5)
m = c.build_model_from_config(cfg)
i = 0
while True:
    c.save({str(tmp_path / "k.safetensors")!r}, m, cfg, epoch=i)
    print(i, flush=True)
    i += 1
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    for _ in range(3):  # wait until a few saves completed, then kill mid-way through another
        proc.stdout.readline()
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    ck = ckpt.load(tmp_path / "k.safetensors")
    assert ck.epoch >= 2


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickle_that_runs_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "evil.pt"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "payload": _Evil()}, bad)
    with pytest.raises(ckpt.CheckpointError, match="refused to load .*would run code"):
        ckpt.load(bad)
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(ckpt.CheckpointError, match="refused"):
        ckpt.load(raw)
    assert not (tmp_path / "pwned").exists()


def test_corrupt_and_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        ckpt.load(tmp_path / "missing.safetensors")
    cfg, model = _tiny()
    path = ckpt.save(tmp_path / "t.safetensors", model, cfg)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ckpt.CheckpointError, match="truncated or corrupt"):
        ckpt.load(path)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello world, not a checkpoint")
    with pytest.raises(ckpt.CheckpointError, match="neither"):
        ckpt.load(junk)


def _authors_model(depth=34):
    """The authors' model, built as their models/models.py does (torchvision ResNet)."""
    enc = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    enc.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    enc.maxpool = nn.Identity()
    enc.fc = nn.Identity()
    net = nn.Module()
    net.enc = enc
    net.projector = nn.Sequential(nn.Linear(512, 2048), nn.ReLU(), nn.Linear(2048, 128))
    return net


@pytest.mark.parametrize("depth", [18, 34])
def test_authors_checkpoint_maps_onto_mclviz(tmp_path, depth):
    torch.manual_seed(0)
    theirs = _authors_model(depth).eval()
    for mod in theirs.modules():  # non-trivial batch-norm statistics
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
    state = {"module." + k: v for k, v in theirs.state_dict().items()}  # DataParallel prefix
    path = tmp_path / "epoch_800.pt"
    torch.save(state, path)
    ck = ckpt.load(path)
    assert ck.model.arch == f"resnet{depth}" and ck.config.normalize_input is False
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        expected = theirs.projector(theirs.enc(x))
        assert torch.allclose(ck.model(x), expected, atol=1e-5)
    model = ckpt.load_official({"model_state_dict": state})
    assert torch.allclose(model(x), expected, atol=1e-5)


def test_unknown_key_in_authors_format():
    with pytest.raises(ckpt.CheckpointError, match="unexpected key 'head.weight'"):
        ckpt.official_to_mclviz({"head.weight": torch.zeros(1)})


def test_manifest(tmp_path):
    cfg, model = _tiny("simclr")
    path = ckpt.save(tmp_path / "simclr.safetensors", model, cfg, epoch=2, metrics={"acc": 0.1})
    entry = ckpt.update_manifest(tmp_path, "simclr", path)
    assert entry["sha256"] == ckpt.sha256(path) and entry["method"] == "simclr"
    assert ckpt.read_manifest(tmp_path)["simclr"]["metrics"] == {"acc": 0.1}


def test_ship_writes_half_weights_and_manifest(tmp_path, monkeypatch):
    from mclviz import zoo

    cfg, model = _tiny("mcl")
    run = ckpt.save(
        tmp_path / "run" / "checkpoint.safetensors",
        model,
        cfg,
        step=5,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        metrics={"history": [], "partial": {"sums": {}, "count": 1}},
    )
    shipped = tmp_path / "shipped"
    path = zoo.ship(run, "mcl", shipped, total_steps=10)
    entry = ckpt.read_manifest(shipped)["mcl"]
    assert entry["metrics"]["fraction"] == 0.5 and entry["metrics"]["complete"] is False
    assert "partial" not in entry["metrics"]
    assert ckpt.load(path).optimizer_state is None
    assert zoo.shipped_checkpoint("mcl", shipped) == path
    path.write_bytes(path.read_bytes()[:-1] + b" ")
    with pytest.raises(ValueError, match="does not match its manifest sha256"):
        zoo.shipped_checkpoint("mcl", shipped)
    assert zoo.shipped_checkpoint("simclr", shipped) is None


def test_shipped_checkpoints_match_their_manifest():
    """Every checkpoint in checkpoints/manifest.json loads, matches its sha256 and config."""
    from mclviz import zoo

    entries = zoo.manifest()
    assert entries, "checkpoints/manifest.json lists no shipped checkpoint"
    for name, entry in entries.items():
        path = zoo.shipped_checkpoint(name)  # raises on a sha256 mismatch
        assert path is not None, f"{name}: {entry['file']} is missing"
        ck = ckpt.load(path)
        # the manifest holds the config as it was saved (older files: fewer fields, and
        # num_classes in extra); both are read through Config.from_dict
        assert ck.config == Config.from_dict(entry["config"]) and ck.step == entry["step"]
        assert ck.optimizer_state is None  # shipped files hold weights only
        with torch.no_grad():
            z = ck.model(torch.rand(2, 3, 32, 32))
        assert z.shape == (2, ck.config.proj_dim) and torch.isfinite(z).all()


def test_load_or_train_loads_shipped_or_trains_and_says_so(tmp_path, monkeypatch, data_root):
    from mclviz import zoo

    shipped = tmp_path / "shipped"
    monkeypatch.setenv("MCLVIZ_CHECKPOINTS", str(shipped))
    kw = {
        "preset": "tiny",
        "progress": False,
        "data_root": str(data_root),
        "train_subset": 64,
        "epochs": 1,
    }
    with pytest.warns(UserWarning, match="no shipped checkpoint for 'ccm'.*training the 'tiny'"):
        trained = zoo.load_or_train("ccm", out=tmp_path / "run", **kw)
    assert (
        trained.config.method == "ccm"
        and trained.path == tmp_path / "run" / "checkpoint.safetensors"
    )
    zoo.ship(trained.path, "ccm", shipped)
    loaded = zoo.load_or_train("ccm", out=tmp_path / "other", **kw)  # no training, no warning
    assert loaded.path == shipped / "ccm.safetensors" and not (tmp_path / "other").exists()
    for name, p in trained.model.state_dict().items():  # float16 copies of the same weights
        torch.testing.assert_close(loaded.model.state_dict()[name], p, atol=2e-3, rtol=2e-3)


def test_build_model_from_config_names_a_missing_class_count():
    with pytest.raises(ValueError, match="method='ce' builds a classifier.*set num_classes"):
        ckpt.build_model_from_config(Config.preset("tiny", method="ce"))
    cfg, model = _tiny("mcl", aux_ce=0.5, num_classes=3)  # an auxiliary CE head
    assert model.classifier.out_features == 3 and model.rot_head is None
    cfg, model = _tiny("rot")
    assert model.classifier.out_features == 10 and model.rot_head.out_features == 4


def test_weight_average_and_live_weights_are_saved_apart(tmp_path):
    """``live=``: ``model/`` holds the average (what ``load`` returns), ``live/`` the weights
    being trained (``Checkpoint.live_state``, for resuming)."""
    cfg, average = _tiny("simclr", ema_decay=0.9)
    live = ckpt.build_model_from_config(cfg)
    with torch.no_grad():
        for p in live.parameters():
            p.add_(1.0)
    path = ckpt.save(tmp_path / "e.safetensors", average, cfg, live=live)
    ck = ckpt.load(path)
    for name, value in average.state_dict().items():
        assert torch.equal(ck.model.state_dict()[name], value), name
    assert ck.live_state is not None and set(ck.live_state) == set(live.state_dict())
    for name, value in live.state_dict().items():
        assert torch.equal(ck.live_state[name], value), name
    plain = ckpt.load(ckpt.save(tmp_path / "p.safetensors", average, cfg))
    assert plain.live_state is None


SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints"


@pytest.mark.parametrize(
    "name", sorted(p.stem for p in SHIPPED.glob("*.safetensors")) or ["<none shipped>"]
)
def test_shipped_checkpoints_load_with_the_right_shapes(name):
    """Every shipped file loads with its recipe's network: the ``small`` ones (quarter-width
    ResNet-18, 128 features, saved before the redesign: no new config fields; ``ce`` /
    ``rot`` keep ``num_classes`` in ``extra``, migrated on load) and the ``fast`` ones
    (FastNet, 256 features, BN projection head)."""
    path = SHIPPED / f"{name}.safetensors"
    assert path.exists(), f"no shipped checkpoints in {SHIPPED}"
    ck = ckpt.load(path)
    cfg = ck.config
    recipe = {("resnet18", 0.25): 128, ("fastnet", 1.0): 256}
    assert (cfg.arch, cfg.width) in recipe, (cfg.arch, cfg.width)
    assert ck.model.feat_dim == recipe[cfg.arch, cfg.width]
    assert cfg.head_norm == (cfg.arch == "fastnet")
    assert "num_classes" not in cfg.extra
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        out = ck.model(x, output=("z", "features"))
        assert out["z"].shape == (3, cfg.proj_dim)
        assert out["features"].shape == (3, ck.model.feat_dim)
        if cfg.method_entry.needs_classifier(cfg):
            assert cfg.num_classes == 10
            assert ck.model.logits(x).shape == (3, 10)
        else:
            assert ck.model.classifier is None
        if cfg.method_entry.rot_head:
            assert ck.model(x, output=("rot",))["rot"].shape == (3, 4)
        assert all(torch.isfinite(v).all() for v in out.values())
