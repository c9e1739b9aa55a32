"""The one place that decides the device and the numeric precision.

Nothing else in mclviz calls ``.cuda()``: training, embedding and the widgets ask
``resolve_device`` and ``Precision`` here.

Precision ``"auto"``: bf16 autocast with channels-last on CUDA devices with native bf16
(compute capability 8 or more; fp16 with a gradient scaler on older GPUs, which at best
emulate bf16) and on CPUs whose PyTorch build has fast bf16 kernels (measured on the
project's 2-core machines: 2.5x the fp32 training throughput of a quarter-width
ResNet-18); fp32 otherwise. An explicit ``"bf16"`` is bf16 on every device that runs it,
emulated or not (never silently fp16), and an error naming the fix on a GPU without any.
Losses are always computed in float32 (``mclviz.losses`` casts), so autocast only changes
the backbone's arithmetic.

Training, embedding and evaluation all take the :class:`Precision` this module resolves;
none of them picks a dtype of its own.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

__all__ = ["Precision", "cpu_supports_bf16", "resolve_device", "resolve_precision"]


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` -> the first CUDA device when one is available, else the CPU."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={str(device)!r} was asked for but CUDA is not available on this machine; "
            "use device='auto' or 'cpu'"
        )
    return dev


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 (AVX512-BF16 or AMX) as seen by oneDNN."""
    try:
        return bool(torch.backends.mkldnn.is_available()) and bool(
            torch.ops.mkldnn._is_mkldnn_bf16_supported()
        )
    except (AttributeError, RuntimeError):
        return False


@dataclass(frozen=True)
class Precision:
    """A resolved precision: ``dtype`` for autocast (None = fp32) and the memory format."""

    name: str  # "fp32" | "bf16" | "fp16"
    device_type: str  # "cpu" | "cuda"
    channels_last: bool

    @property
    def dtype(self) -> torch.dtype | None:
        return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.name]

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast context for the forward pass (a no-op for fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A GradScaler, enabled only for fp16 on CUDA (bf16 needs none)."""
        return torch.amp.GradScaler(
            self.device_type, enabled=(self.name == "fp16" and self.device_type == "cuda")
        )

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Put an image batch in the memory format the model expects."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def resolve_precision(
    precision: str, device: torch.device, channels_last: bool | None = None
) -> Precision:
    """Turn a config's ``precision`` / ``channels_last`` into a ``Precision`` for ``device``."""
    if precision == "auto":
        if device.type == "cuda":
            # native bf16 only (compute capability >= 8): torch also reports bf16 on older
            # GPUs that merely emulate it, slowly; those get fp16 with a gradient scaler
            native = torch.cuda.is_bf16_supported(including_emulation=False)
            precision = "bf16" if native else "fp16"
        else:
            precision = "bf16" if cpu_supports_bf16() else "fp32"
    if precision not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"precision={precision!r}: choose 'auto', 'fp32', 'bf16' or 'fp16'")
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("precision='fp16' is for CUDA devices; on the CPU use 'bf16' or 'fp32'")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        # the check torch.autocast makes, here with the fix (and before any work)
        raise ValueError(
            f"precision='bf16' was asked for, but the CUDA device {device} supports no bf16; "
            "use precision='fp16' or 'auto'"
        )
    if channels_last is None:
        channels_last = precision != "fp32"
    return Precision(precision, device.type, bool(channels_last))
