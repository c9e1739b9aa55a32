"""FastNet: a wide, shallow backbone for short schedules (the fast CIFAR-10 records' shape)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FastNet"]


class _FastConvGroup(nn.Module):
    """conv3x3 -> max-pool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU (the fast records' block)."""

    def __init__(self, c_in: int, c_out: int, bn_momentum: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.norm1 = nn.BatchNorm2d(c_out, momentum=bn_momentum)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(c_out, momentum=bn_momentum)
        for conv in (self.conv1, self.conv2):
            # identity ("dirac") start on the first c_in output channels: the block begins
            # close to a pass-through, which lets short schedules use large learning rates
            w = conv.weight.data
            nn.init.dirac_(w[: min(w.shape[0], w.shape[1])])
        for norm in (self.norm1, self.norm2):
            norm.weight.requires_grad_(False)  # scale fixed at 1: only the shift is learned

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.norm1(F.max_pool2d(self.conv1(x), 2)))
        return F.gelu(self.norm2(self.conv2(x)))


class FastNet(nn.Module):
    """A wide, shallow VGG-like backbone made for short schedules on CPUs and GPUs.

    The shape of the public fast CIFAR-10 training records (cifar10-fast, cifar10-airbench),
    written for mclviz: a fixed 2x2 patch-whitening convolution (its 24 filters are the
    12 eigenvectors of the training patches' covariance, scaled by 1/sqrt(eigenvalue), and
    their negatives; only its bias is learned), GELU, then three blocks of
    conv-pool-BN-GELU-conv-BN-GELU with 64 / 256 / 256 channels (times ``width``), and a
    global max-pool. A 32x32 input ends as a 3x3 map, so the features are ``(n, 256)``.

    Per image it does about 3x the arithmetic of the quarter-width ResNet-18 but in wide
    matrix products, which run near the bf16 peak of CPUs with AMX/AVX512-BF16
    (``benchmarks/bench_train.py``).

    Batch norm: scale fixed at 1 (shift learned), momentum ``bn_momentum`` (0.4: running
    statistics follow a short schedule's fast-changing weights). Both convolutions of a
    block start as identities on their first channels (dirac init). The pooled features
    are scaled by 1/9, as the records scale their logits.

    ``init_whitening(x)`` must be called with normalised training images before training
    (``mclviz.training.train`` does); a checkpoint stores the result.
    """

    def __init__(self, width: float = 1.0, bn_momentum: float = 0.4) -> None:
        super().__init__()
        k = 2
        widths = [max(1, round(c * width)) for c in (64, 256, 256)]
        self.whiten = nn.Conv2d(3, 2 * 3 * k * k, k, padding=0, bias=True)
        self.whiten.weight.requires_grad_(False)
        nn.init.zeros_(self.whiten.bias)
        c_in = self.whiten.out_channels
        groups = []
        for c_out in widths:
            groups.append(_FastConvGroup(c_in, c_out, bn_momentum))
            c_in = c_out
        self.group1, self.group2, self.group3 = groups
        self.feat_dim = widths[-1]
        # the records scale the pooled features by 1/9: without it the logits of a linear
        # classifier grow so fast at these learning rates that the first epoch diverges
        # (measured: cross-entropy rose from 2.8 to 7.0 during warm-up; 68.5% vs 20.1%
        # validation accuracy after one epoch)
        self.out_scale = 1 / 9

    @torch.no_grad()
    def init_whitening(self, x: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the whitening filters from images ``x`` (n, 3, H, W), already normalised.

        The filters are the eigenvectors of the covariance of all 2x2x3 patches of ``x``,
        divided by sqrt(eigenvalue + eps), with their negatives (so GELU keeps both signs).
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"x has shape {tuple(x.shape)}; expected (n, 3, H, W) images")
        k = self.whiten.kernel_size[0]
        patches = x.float().unfold(2, k, 1).unfold(3, k, 1)  # (n, 3, H-1, W-1, k, k)
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, 3 * k * k)  # (P, 12)
        cov = patches.T @ patches / len(patches)  # (12, 12), uncentred as the records
        eigvals, eigvecs = torch.linalg.eigh(cov.double())  # ascending
        filters = (eigvecs.T / torch.sqrt(eigvals + eps)[:, None]).float()  # (12, 12)
        filters = filters.flip(0).reshape(-1, 3, k, k)  # largest eigenvalue first
        w = self.whiten.weight
        w.copy_(torch.cat([filters, -filters]).to(w.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.whiten(x))  # (n, 24, H-1, W-1)
        x = self.group3(self.group2(self.group1(x)))  # (n, 256, ~H/8, ~W/8)
        return torch.amax(x, dim=(-2, -1)) * self.out_scale  # (n, feat_dim)
