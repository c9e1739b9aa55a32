"""mclviz.device: the device and precision choice, the GPU path checked on the CPU.

A GPU's capability is faked by monkeypatching ``torch.cuda.is_available`` and
``torch.cuda.is_bf16_supported`` (the CPU's by ``mclviz.device.cpu_supports_bf16``);
nothing here runs a CUDA kernel. What ``embed`` does with the resolved precision is
checked in ``tests/test_embed.py``.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

from mclviz import device as mdevice
from mclviz.device import Precision, resolve_device, resolve_precision

CUDA, CPU = torch.device("cuda"), torch.device("cpu")


@pytest.fixture
def gpu(monkeypatch):
    """A faked CUDA device: ``gpu(bf16="native")`` (compute capability >= 8, the default),
    ``"emulated"`` (an older GPU: torch reports bf16 unless ``including_emulation=False``)
    or ``"none"``."""

    def make(bf16: str = "native") -> None:
        def is_bf16_supported(including_emulation: bool = True) -> bool:
            return bf16 == "native" or (bf16 == "emulated" and including_emulation)

        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)

    make()
    return make


@pytest.fixture
def cpu_bf16(monkeypatch):
    def make(supported: bool) -> None:
        monkeypatch.setattr(mdevice, "cpu_supports_bf16", lambda: supported)

    return make


def test_auto_on_a_bf16_gpu_is_bf16_channels_last_without_a_scaler(gpu):
    prec = resolve_precision("auto", CUDA)
    assert prec == Precision("bf16", "cuda", True)
    assert prec.dtype is torch.bfloat16
    assert not prec.grad_scaler().is_enabled()  # bf16 needs no loss scaling


@pytest.mark.parametrize("bf16", ["emulated", "none"])
def test_auto_on_an_old_gpu_is_fp16_with_an_enabled_grad_scaler(gpu, bf16):
    """Emulated bf16 is slow: an old GPU gets fp16 (torch's plain ``is_bf16_supported()``
    says True on it)."""
    gpu(bf16=bf16)
    prec = resolve_precision("auto", CUDA)
    assert prec == Precision("fp16", "cuda", True)
    assert prec.dtype is torch.float16
    scaler = prec.grad_scaler()
    assert isinstance(scaler, torch.amp.GradScaler) and scaler.is_enabled()


@pytest.mark.parametrize("supported, name", [(True, "bf16"), (False, "fp32")])
def test_auto_on_the_cpu_follows_its_bf16_support(cpu_bf16, supported, name):
    cpu_bf16(supported)
    prec = resolve_precision("auto", CPU)
    assert prec == Precision(name, "cpu", name != "fp32")
    assert not prec.grad_scaler().is_enabled()


@pytest.mark.parametrize("bf16", ["native", "emulated"])
def test_explicit_bf16_stays_bf16_on_every_cuda_device(gpu, bf16):
    """The old embedding code ran fp16 on every CUDA device, whatever was asked for."""
    gpu(bf16=bf16)
    prec = resolve_precision("bf16", CUDA)
    assert prec == Precision("bf16", "cuda", True)
    assert Precision("bf16", "cuda", True).dtype is torch.bfloat16
    ctx = prec.autocast()
    assert isinstance(ctx, torch.autocast)
    assert (ctx.device, ctx.fast_dtype) == ("cuda", torch.bfloat16)
    assert resolve_precision("fp16", CUDA).autocast().fast_dtype is torch.float16


def test_explicit_bf16_on_a_gpu_without_bf16_names_the_fix(gpu):
    gpu(bf16="none")
    with pytest.raises(ValueError, match="precision='bf16'.*supports no bf16.*'fp16' or 'auto'"):
        resolve_precision("bf16", CUDA)


@pytest.mark.parametrize("dev", [CPU, CUDA])
def test_explicit_fp32_is_plain(gpu, dev):
    prec = resolve_precision("fp32", dev)
    assert prec == Precision("fp32", dev.type, False) and prec.dtype is None
    assert isinstance(prec.autocast(), contextlib.nullcontext)
    x = torch.zeros(2, 3, 4, 4)
    assert prec.prepare(x) is x


def test_channels_last_follows_the_precision_unless_given(cpu_bf16):
    cpu_bf16(True)
    assert resolve_precision("bf16", CPU).channels_last
    assert not resolve_precision("bf16", CPU, channels_last=False).channels_last
    assert resolve_precision("fp32", CPU, channels_last=True).channels_last
    x = torch.rand(2, 3, 5, 5)
    y = Precision("bf16", "cpu", True).prepare(x)
    assert y.is_contiguous(memory_format=torch.channels_last) and torch.equal(x, y)
    assert x.is_contiguous()  # the input is left as it was
    assert Precision("bf16", "cpu", False).prepare(x) is x


def test_cpu_autocast_runs_in_the_precisions_dtype():
    lin = torch.nn.Linear(3, 2)
    with Precision("bf16", "cpu", True).autocast():
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") is torch.bfloat16
        assert lin(torch.rand(4, 3)).dtype is torch.bfloat16
    with Precision("fp32", "cpu", False).autocast():
        assert not torch.is_autocast_enabled("cpu")


def test_bad_precisions_name_the_value_and_the_fix():
    with pytest.raises(ValueError, match="precision='fp16' is for CUDA.*use 'bf16' or 'fp32'"):
        resolve_precision("fp16", CPU)
    with pytest.raises(ValueError, match="precision='fp8': choose 'auto', 'fp32', 'bf16'"):
        resolve_precision("fp8", CPU)


def test_resolve_device(gpu, monkeypatch):
    assert resolve_device("auto") == CUDA and resolve_device(None) == CUDA
    assert resolve_device("cpu") == CPU
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == CPU
    with pytest.raises(ValueError, match="device='cuda' .*CUDA is not available.*'auto' or 'cpu'"):
        resolve_device("cuda")


def test_cpu_supports_bf16_is_a_bool():
    assert isinstance(mdevice.cpu_supports_bf16(), bool)
