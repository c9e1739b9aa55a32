"""Class-conditional Gaussians and minus squared Mahalanobis distances (Eq. 12-13).

Score direction: **higher = more in-distribution** (Eq. 14). Eq. 12 prints
``s_i(z) = (z - mu_i)^T Sigma_i^-1 (z - mu_i)`` without a minus sign, but its text (and
Eq. 15) says the score is the *negative* Mahalanobis distance, so ``gaussian_scores``
returns ``-(z - mu)^T Sigma^-1 (z - mu)`` (minus the squared distance, always <= 0).

>>> import torch
>>> z, y = torch.randn(600, 8), torch.arange(600) % 3
>>> g = fit_gaussians(z, y)
>>> gaussian_scores(z[:5], g).shape
torch.Size([5, 3])

Covariance estimators (``fit_gaussians``): the sample covariance with the unbiased
normaliser (``numpy.cov``, as the MCL authors' code; ``unbiased=False`` divides by the
sample count, as Lee et al. 2018 / Ren et al. 2021 / scikit-learn), optionally shrunk
towards a scaled identity (``shrinkage="ledoit-wolf"`` / ``"oas"`` / a fixed coefficient,
see :mod:`.covariance`), plus ``ridge * I``. The default is no shrinkage and ridge
:data:`DEFAULT_RIDGE` = 1e-3 (earlier versions: 1e-6; the authors' code: 1e-9).

Why 1e-3: the paper gives no regulariser, so it was measured (``scripts/covariance_choice.py``,
``docs/covariance.md``): classifying 5,000 held-out training images with per-class
Gaussians on L2-normalised outputs, ridge 1e-3 beat ridge 1e-6 by 0.1-7.2 points on 6 of
the 7 small models and by 6.3 points on the fast ``ce`` model (87.96 -> 94.24), and was
0.5 points behind on one; Ledoit-Wolf and OAS shrinkage gained nothing over 1e-6. A tied
covariance was better still on every model; it is not the default because Eq. 12 has one
covariance per class (``covariance="tied"`` chooses it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ._checks import _check_finite, _chunk, _float_tensor, _labels
from .covariance import check_shrinkage, shrink, shrinkage_coefficient

#: the covariance ridge of the class Gaussians (see the module docstring for the measurement)
DEFAULT_RIDGE = 1e-3

__all__ = ["COVARIANCES", "DEFAULT_RIDGE", "Gaussians", "fit_gaussians", "gaussian_scores"]

COVARIANCES = ("class", "tied")


# ----------------------------------------------------------------------------- Gaussians


@dataclass(frozen=True)
class Gaussians:
    """C multivariate normals N(mu_c, Sigma_c), fitted by ``fit_gaussians`` (Eq. 12).

    The squared Mahalanobis distance is evaluated through a whitening factor ``W_c``
    with ``W_c W_c^T = Sigma_c^-1`` (upper triangular, ``W_c = L_c^-T`` for the
    Cholesky factor ``L_c`` of ``Sigma_c``, as scikit-learn's ``precisions_cholesky_``):
    ``d^2 = || (z - mu_c) W_c ||^2`` for a row vector ``z``.

    Attributes:
        means: (C, d) class means mu_c (of the L2-normalised embeddings when ``normalize``).
        covariances: (C, d, d) Sigma_c as estimated by ``fit_gaussians`` (sample covariance,
            optionally shrunk, plus ``ridge * I``).
        precisions_cholesky: (C, d, d) whitening factors W_c.
        counts: (C,) int64, training samples per class.
        normalize: L2-normalise queries before scoring (the Gaussians were fitted on
            normalised embeddings).
        tied: all classes share one covariance (``covariance="tied"``): scoring whitens
            the queries once instead of once per class.
        shrinkage: (C,) float64 shrinkage coefficients used per class (tied: one value
            repeated), or None when the covariance was not shrunk (``shrinkage="none"``).
    """

    means: torch.Tensor  # (C, d)
    covariances: torch.Tensor  # (C, d, d)
    precisions_cholesky: torch.Tensor  # (C, d, d), W_c W_c^T = Sigma_c^-1
    counts: torch.Tensor  # (C,) int64
    normalize: bool = True  # L2-normalise the queries as the training embeddings were
    tied: bool = False  # one pooled covariance shared by every class
    shrinkage: torch.Tensor | None = None  # (C,) coefficients s_c, None = no shrinkage

    @property
    def num_classes(self) -> int:
        return int(self.means.shape[0])

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    @property
    def device(self) -> torch.device:
        return self.means.device

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        """A copy on ``device`` and/or with float ``dtype`` (counts stay int64)."""
        return Gaussians(
            self.means.to(device=device, dtype=dtype),
            self.covariances.to(device=device, dtype=dtype),
            self.precisions_cholesky.to(device=device, dtype=dtype),
            self.counts.to(device=device),
            self.normalize,
            self.tied,
            None if self.shrinkage is None else self.shrinkage.to(device=device, dtype=dtype),
        )

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Plain contiguous tensors (save with ``safetensors.torch.save_file``).

        ``"shrinkage"`` is only present for shrunk covariances, so the dict of an unshrunk
        fit has the same keys as before the shrinkage option existed.
        """
        state = {
            "means": self.means.contiguous(),
            "covariances": self.covariances.contiguous(),
            "precisions_cholesky": self.precisions_cholesky.contiguous(),
            "counts": self.counts.contiguous(),
            "normalize": torch.tensor(self.normalize),
            "tied": torch.tensor(self.tied),
        }
        if self.shrinkage is not None:
            state["shrinkage"] = self.shrinkage.contiguous()
        return state

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> Gaussians:
        """Inverse of ``state_dict``; unknown or missing keys are an error naming them."""
        keys = {"means", "covariances", "precisions_cholesky", "counts", "normalize", "tied"}
        missing, unknown = keys - set(state), set(state) - keys - {"shrinkage"}
        if missing or unknown:
            raise ValueError(
                f"state has missing keys {sorted(missing)} and unknown keys {sorted(unknown)}; "
                "pass the dict made by Gaussians.state_dict()"
            )
        return cls(
            state["means"],
            state["covariances"],
            state["precisions_cholesky"],
            state["counts"].long(),
            bool(state["normalize"]),
            bool(state["tied"]),
            state.get("shrinkage"),
        )


def fit_gaussians(
    z,
    y,
    *,
    covariance: str = "class",
    ridge: float = DEFAULT_RIDGE,
    shrinkage: str | float = "none",
    unbiased: bool = True,
    normalize: bool = True,
    classes: int | None = None,
    allow_singular: bool = False,
) -> Gaussians:
    """Fit one Gaussian per class on training embeddings (Eq. 12).

    Means and covariances are computed in float64. The sample covariance of class c is
    ``E_c = sum_{i in c} (z_i - mu_c)(z_i - mu_c)^T / (n_c - 1)`` (unbiased, ``numpy.cov``, as
    the authors' code; ``/ n_c`` with ``unbiased=False``). With ``covariance="tied"`` every
    class shares the pooled within-class covariance
    ``E = sum_c sum_{i in c} (z_i - mu_c)(z_i - mu_c)^T / (n - C)`` (``/ n`` with
    ``unbiased=False``, the estimate of Lee et al. 2018, Eq. 1). Then

        Sigma_c = (1 - s_c) E_c + s_c tr(E_c) / d * I + ridge * I,

    with ``s_c = 0`` for ``shrinkage="none"`` (the default), the Ledoit-Wolf or OAS
    coefficient of the centred rows of class c (tied: of all rows, each centred on its own
    class mean) computed as scikit-learn does, or a fixed value. The coefficient does not
    depend on the normaliser, so with ``unbiased=False`` and ``ridge=0`` the class
    covariance is exactly ``sklearn.covariance.ledoit_wolf(z_c)[0]`` (``oas(z_c)[0]``); with
    the unbiased normaliser it is that times ``n_c / (n_c - 1)``.

    Args:
        z: (n, d) training embeddings.
        y: (n,) integer labels 0..C-1.
        covariance: "class" (one Sigma_c per class, the paper) or "tied" (pooled).
        ridge: added to the covariance diagonal (default :data:`DEFAULT_RIDGE`, 1e-3,
            measured on held-out training images; the authors' code adds 1e-9).
        shrinkage: "none", "ledoit-wolf", "oas" or a fixed coefficient in [0, 1] (see
            :mod:`.covariance`).
        unbiased: divide the scatter by ``n_c - 1`` (tied: ``n - C``); False divides by
            ``n_c`` (tied: ``n``), the maximum-likelihood estimate. Only the scale of the
            distances changes (by ``n_c / (n_c - 1)``).
        normalize: L2-normalise ``z`` first (and the queries later), as the authors' code.
        classes: number of classes C; default ``y.max() + 1``.
        allow_singular: accept a class with ``n_c <= d`` samples without shrinkage (its
            sample covariance is singular and only ``ridge`` makes it invertible); use it
            with a larger ridge. With shrinkage (``s > 0``) such a class is accepted anyway:
            the shrunk covariance is positive definite.

    Returns:
        Gaussians with float64 means, covariances and whitening factors (and the
        shrinkage coefficients, when shrunk).

    Raises:
        ValueError: shapes, NaN, a class without samples, a class too small for a full
            covariance, or a covariance that is not positive definite.
    """
    if covariance not in COVARIANCES:
        raise ValueError(f"covariance={covariance!r} is unknown; choose one of {COVARIANCES}")
    shrinkage = check_shrinkage(shrinkage)
    shrunk = shrinkage != "none" and shrinkage != 0.0  # a coefficient s > 0 may come out
    ridge = _check_ridge(ridge)
    zt, yt, classes = _checked_rows(z, y, classes)
    n, d = zt.shape
    z64 = zt.to(torch.float64)
    if normalize:
        z64 = F.normalize(z64, dim=1)
    counts = torch.bincount(yt, minlength=classes).cpu()
    empty = (counts == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(
            f"class(es) {empty} have no samples in y (C = {classes}); relabel y to 0..C-1 or "
            "pass the right classes="
        )
    means = torch.zeros(classes, d, dtype=torch.float64, device=z64.device)
    means.index_add_(0, yt, z64)
    means /= counts.to(z64.device, torch.float64)[:, None]
    centred = z64 - means[yt]  # (n, d)
    allow = allow_singular or shrunk
    if covariance == "class":
        covs, coefs = _class_covariances(centred, yt, counts, shrinkage, bool(unbiased), allow)
    else:
        covs, coefs = _tied_covariance(centred, classes, shrinkage, bool(unbiased), allow)
    eye = torch.eye(d, dtype=torch.float64, device=z64.device)
    covs += ridge * eye
    chol, info = torch.linalg.cholesky_ex(covs)  # Sigma_c = L_c L_c^T, (C, d, d)
    if bool((info > 0).any()):
        c = int((info > 0).nonzero()[0, 0])
        raise ValueError(
            f"the covariance of class {c} is not positive definite with ridge={ridge!r}"
            f" and shrinkage={shrinkage!r} (s = {float(coefs[c]):.3g}); pass a larger ridge "
            "(e.g. 1e-4), shrinkage='ledoit-wolf' or covariance='tied'"
        )
    # W_c = L_c^-T, so (z - mu) W_c W_c^T (z - mu)^T = (z - mu) Sigma_c^-1 (z - mu)^T.
    prec_chol = torch.linalg.solve_triangular(chol, eye.expand_as(chol), upper=False).mT
    return Gaussians(
        means=means,
        covariances=covs,
        precisions_cholesky=prec_chol.contiguous(),
        counts=counts.to(torch.int64),
        normalize=bool(normalize),
        tied=covariance == "tied",
        shrinkage=None if shrinkage == "none" else coefs.to(z64.device),
    )


def _check_ridge(ridge) -> float:
    try:
        ridge = float(ridge)
    except (TypeError, ValueError):
        ridge = float("nan")
    if not (math.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"ridge={ridge!r} must be a finite number >= 0 (e.g. 1e-6)")
    return ridge


def _checked_rows(z, y, classes: int | None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(z (n, d) float, y (n,) int64 on z's device, the class count C), checked."""
    zt = _float_tensor(z, "z")
    if zt.ndim != 2:
        raise ValueError(
            f"z has shape {tuple(zt.shape)}; expected (n, d) embeddings "
            "(for SEI views (n, R, d) use fit_sei_gaussians)"
        )
    yt = _labels(y, zt.shape[0]).to(zt.device)
    if zt.shape[0] == 0:
        raise ValueError("z has no rows; pass the training embeddings")
    _check_finite(zt, "z")
    if int(yt.min()) < 0:
        raise ValueError(
            f"y holds negative labels ({int(yt.min())}); Gaussians are fitted on "
            "in-distribution labels 0..C-1 only (drop the OOD rows labelled -1)"
        )
    ymax = int(yt.max())
    if classes is None:
        classes = ymax + 1
    elif int(classes) != classes or classes < 1 or classes <= ymax:
        raise ValueError(
            f"classes={classes!r} but y holds label {ymax}; pass classes > y.max() or leave it None"
        )
    return zt, yt, int(classes)


def _class_covariances(centred, yt, counts, shrinkage, unbiased: bool, allow_singular: bool):
    """(C, d, d) shrunk per-class sample covariances and their (C,) coefficients."""
    classes, d = len(counts), centred.shape[1]
    small = [(c, int(k)) for c, k in enumerate(counts.tolist()) if k <= d]
    too_few = [(c, k) for c, k in small if k < 2]
    if too_few or (small and not allow_singular):
        c, k = (too_few or small)[0]
        raise ValueError(
            f"class {c} has {k} samples, too few for a full covariance in d={d} "
            f"(needs more than {d}; {len(small)} class(es) are that small); use "
            "covariance='tied', shrinkage='ledoit-wolf', fit on more samples, or pass "
            "allow_singular=True with a larger ridge (e.g. ridge=1e-3)"
            + (" (a class needs at least 2 samples even then)" if too_few else "")
        )
    covs = torch.empty(classes, d, d, dtype=torch.float64, device=centred.device)
    coefs = torch.zeros(classes, dtype=torch.float64)
    for c in range(classes):
        xc = centred[yt == c]  # (n_c, d), centred on the class mean
        coefs[c] = shrinkage_coefficient(xc, shrinkage)
        covs[c] = shrink(xc.T @ xc / (xc.shape[0] - int(unbiased)), float(coefs[c]))
    return covs, coefs


def _tied_covariance(centred, classes: int, shrinkage, unbiased: bool, allow_singular: bool):
    """The pooled within-class covariance, shrunk, repeated per class; (C, d, d), (C,)."""
    n, d = centred.shape
    if n - classes < 1:
        raise ValueError(
            f"covariance='tied' needs more samples than classes (n={n}, C={classes}); "
            "pass more training embeddings"
        )
    if n - classes < d and not allow_singular:
        raise ValueError(
            f"the pooled covariance has only n - C = {n - classes} degrees of freedom for "
            f"d={d} dimensions and is singular; fit on more samples, pass "
            "shrinkage='ledoit-wolf', or pass allow_singular=True with a larger ridge "
            "(e.g. ridge=1e-3)"
        )
    s_tied = shrinkage_coefficient(centred, shrinkage)  # rows centred on their class mean
    pooled = shrink(centred.T @ centred / (n - classes * int(unbiased)), s_tied)
    covs = pooled.expand(classes, d, d).clone()
    return covs, torch.full((classes,), s_tied, dtype=torch.float64)


def gaussian_scores(z, gaussians: Gaussians, *, chunk_size: int | None = None) -> torch.Tensor:
    """Minus the squared Mahalanobis distance to every class Gaussian (Eq. 12-13).

    ``S[k, c] = -(z_k - mu_c)^T Sigma_c^-1 (z_k - mu_c)``. Eq. 12 prints the quadratic
    form without its minus sign; the text calls the score the *negative* distance, and
    the minus keeps "higher = more in-distribution" (Eq. 14). Values are <= 0.

    Vectorised: with ``W = [W_1 | ... | W_C]`` (d, C*d) and ``r`` the mean of the class
    means, a block of queries is whitened for every class by one matrix product,
    ``(z - mu_c) W_c = (z - r) W_c - (mu_c - r) W_c``; subtracting the whitened means and
    summing squares gives the C distances. Centring on ``r`` first keeps float32 accurate
    to ~1e-6 however far the embeddings sit from the origin. Few large operations per
    block (not one per class) keep two threads busy even on a shared machine. Memory is
    one (chunk_size, C, d) block whatever n is; the (n, C) result is the only full-size
    allocation.

    Autograd: when ``z`` requires grad (and grad mode is on) the same blocks are computed
    without in-place operations and concatenated, so the result is differentiable in ``z``
    (input pre-processing, ``Detector.differentiable_score``).

    Args:
        z: (n, d) query embeddings (float32 stays float32, float64 stays float64; the
            output has that dtype and the device of ``z``).
        gaussians: from ``fit_gaussians``.
        chunk_size: query rows per block; default about 4M block elements
            (``2**22 // (C * d)`` rows, 3276 for C = 10, d = 128: 16 MiB in float32).
            The result does not depend on it beyond float rounding.

    Returns:
        (n, C) scores.
    """
    zt = _float_tensor(z, "z")
    if not isinstance(gaussians, Gaussians):
        raise TypeError(
            f"gaussians must be a Gaussians (from fit_gaussians), got {type(gaussians).__name__}"
        )
    if zt.ndim != 2:
        raise ValueError(
            f"z has shape {tuple(zt.shape)}; expected (n, d) embeddings "
            "(for SEI views (n, W, d) use sei_scores)"
        )
    n, d = zt.shape
    if d != gaussians.dim:
        raise ValueError(f"z has {d} features, but the Gaussians expect {gaussians.dim}")
    C = gaussians.num_classes
    step = _chunk(chunk_size) if chunk_size is not None else _auto_chunk(C * d)
    # whitening maths in float64, then cast to the query dtype once
    mu64 = gaussians.means.to(torch.float64)  # (C, d)
    w64 = gaussians.precisions_cholesky.to(torch.float64)  # (C, d, d)
    ref64 = mu64.mean(dim=0)  # (d,) reference point r
    mu_w = torch.einsum("cd,cde->ce", mu64 - ref64, w64)  # (C, d): (mu_c - r) W_c
    if gaussians.tied:
        w_cat = w64[0]  # (d, d): one whitening for every class
    else:
        w_cat = w64.permute(1, 0, 2).reshape(d, C * d)  # (d, C*d) = [W_1 | ... | W_C]
    kw = {"device": zt.device, "dtype": zt.dtype}
    ref, mu_w, w_cat = ref64.to(**kw), mu_w.to(**kw), w_cat.to(**kw)
    if torch.is_grad_enabled() and zt.requires_grad:
        return -_squared_distances_autograd(zt, ref, mu_w, w_cat, gaussians, step)
    out = torch.empty(n, C, **kw)
    for i in range(0, n, step):
        zc = zt[i : i + step]  # (b, d)
        if gaussians.normalize:
            zc = F.normalize(zc, dim=1)
        u = (zc - ref) @ w_cat  # (b, C*d), or (b, d) tied
        if gaussians.tied:
            u = u[:, None, :] - mu_w  # (b, C, d)
        else:
            u = u.view(-1, C, d).sub_(mu_w)  # (b, C, d): (z - mu_c) W_c
        oc = torch.sum(u.square_(), dim=2, out=out[i : i + step])  # (b, C) squared distances
        if not bool(torch.isfinite(oc).all()):
            _check_finite(zt[i : i + step], "z", offset=i)
            raise ValueError(
                f"z rows {i}..{i + len(oc) - 1} overflow the {zt.dtype} distances; "
                "pass float64 embeddings or check their scale"
            )
    return out.neg_()


def _squared_distances_autograd(zt, ref, mu_w, w_cat, gaussians: Gaussians, step: int):
    """(n, C) squared distances as ``gaussian_scores`` computes them, without in-place ops."""
    C, d = gaussians.num_classes, gaussians.dim
    parts = []
    for i in range(0, zt.shape[0], step):
        zc = zt[i : i + step]  # (b, d)
        if gaussians.normalize:
            zc = F.normalize(zc, dim=1)
        u = (zc - ref) @ w_cat  # (b, C*d), or (b, d) tied
        u = u[:, None, :] - mu_w if gaussians.tied else u.view(-1, C, d) - mu_w  # (b, C, d)
        parts.append(u.square().sum(dim=2))  # (b, C)
    out = torch.cat(parts) if parts else zt.new_empty(0, C)
    if not bool(torch.isfinite(out).all()):
        _check_finite(zt, "z")
        raise ValueError(
            f"z overflows the {zt.dtype} distances; pass float64 embeddings or check their scale"
        )
    return out


def _auto_chunk(block_width: int) -> int:
    """Rows per block so that a (rows, block_width) temporary holds about 2**22 elements."""
    return max(64, min(1 << 16, (1 << 22) // max(1, block_width)))
