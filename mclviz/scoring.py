"""Class-conditional Gaussians, Mahalanobis scores, self-ensemble inference, detectors.

Paper section 3 (Eq. 12-20). Everything here works on tensors of embeddings and never
sees a model; ``mclviz.embed`` turns images into the embeddings.

Score direction everywhere: **higher = more in-distribution** (Eq. 14). Eq. 12 prints
``s_i(z) = (z - mu_i)^T Sigma_i^-1 (z - mu_i)`` without a minus sign, but its text (and
Eq. 15) says the score is the *negative* Mahalanobis distance, so ``gaussian_scores``
returns ``-(z - mu)^T Sigma^-1 (z - mu)`` (minus the squared distance, always <= 0).

Two aggregation variants for self-ensemble inference (SEI):

* ``variant="paper"`` follows Eq. 17-20 on the scores above.
* ``variant="official"`` reproduces the authors' released evaluation code: it works on
  minus the *square root* of the squared distance, and its weighted average is the
  per-class harmonic mean of those distances over the views (the paper's Eq. 19 weights
  the views by a harmonic mean over the classes instead).

Functional core: ``fit_gaussians``, ``gaussian_scores``, ``fit_sei_gaussians``,
``sei_scores``, ``aggregate``. Detectors with a scikit-learn-like interface
(``fit`` -> self, ``score``, ``predict``): ``MahalanobisSEI``, ``MSP``, ``KNN``,
``ClassMean``.

>>> import torch
>>> z, y = torch.randn(600, 8), torch.arange(600) % 3
>>> g = fit_gaussians(z, y)
>>> gaussian_scores(z[:5], g).shape
torch.Size([5, 3])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "KNN",
    "MSP",
    "ClassMean",
    "Gaussians",
    "MahalanobisSEI",
    "NotFittedError",
    "aggregate",
    "fit_gaussians",
    "fit_sei_gaussians",
    "gaussian_scores",
    "sei_scores",
]

METHODS = ("avg", "max", "w-avg")
VARIANTS = ("paper", "official")
COVARIANCES = ("class", "tied")


class NotFittedError(ValueError, AttributeError):
    """A detector was used before ``fit()`` (like scikit-learn's ``NotFittedError``)."""


# ----------------------------------------------------------------------------- helpers


def _as_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    try:
        return torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{name} must be a torch.Tensor or a numpy array, got {type(x).__name__}"
        ) from err


def _float_tensor(x, name: str) -> torch.Tensor:
    """A floating tensor (float32 / float64 kept, other dtypes -> float32)."""
    t = _as_tensor(x, name)
    if t.dtype not in (torch.float32, torch.float64):
        if t.dtype == torch.bool or t.is_complex():
            raise TypeError(f"{name} must hold real numbers, got dtype {t.dtype}")
        t = t.float()
    return t


def _check_finite(t: torch.Tensor, name: str, offset: int = 0) -> None:
    ok = torch.isfinite(t)
    if not bool(ok.all()):
        bad = (~ok).nonzero()[0].tolist()
        bad[0] += offset
        raise ValueError(
            f"{name} holds NaN or infinite values (first at index {tuple(bad)}); "
            "remove or fix those rows before scoring"
        )


def _labels(y, n: int, name: str = "y") -> torch.Tensor:
    t = _as_tensor(y, name)
    if t.ndim != 1 or t.shape[0] != n:
        raise ValueError(
            f"{name} has shape {tuple(t.shape)}, but z has {n} rows; pass one integer label per row"
        )
    if t.is_floating_point() or t.dtype == torch.bool or t.is_complex():
        if t.is_floating_point() and bool((t == t.round()).all()):
            t = t.long()
        else:
            raise TypeError(f"{name} must hold integer class labels 0..C-1, got dtype {t.dtype}")
    return t.long()


def _check_method(method: str, variant: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method={method!r} is unknown; choose one of {METHODS}")
    if variant not in VARIANTS:
        raise ValueError(f"variant={variant!r} is unknown; choose one of {VARIANTS}")


def _chunk(chunk_size: int) -> int:
    if int(chunk_size) != chunk_size or chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size!r} must be a positive integer (e.g. 2048)")
    return int(chunk_size)


def _sei_rotation(m: int) -> int:
    """SEI view ``m`` (0..7) -> its rotation index ``m % 4`` (m >= 4 is the flipped image)."""
    return m % 4


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
        covariances: (C, d, d) Sigma_c, unbiased sample covariance plus ``ridge * I``.
        precisions_cholesky: (C, d, d) whitening factors W_c.
        counts: (C,) int64, training samples per class.
        normalize: L2-normalise queries before scoring (the Gaussians were fitted on
            normalised embeddings).
        tied: all classes share one covariance (``covariance="tied"``): scoring whitens
            the queries once instead of once per class.
    """

    means: torch.Tensor  # (C, d)
    covariances: torch.Tensor  # (C, d, d)
    precisions_cholesky: torch.Tensor  # (C, d, d), W_c W_c^T = Sigma_c^-1
    counts: torch.Tensor  # (C,) int64
    normalize: bool = True  # L2-normalise the queries as the training embeddings were
    tied: bool = False  # one pooled covariance shared by every class

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
        )

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Plain contiguous tensors (save with ``safetensors.torch.save_file``)."""
        return {
            "means": self.means.contiguous(),
            "covariances": self.covariances.contiguous(),
            "precisions_cholesky": self.precisions_cholesky.contiguous(),
            "counts": self.counts.contiguous(),
            "normalize": torch.tensor(self.normalize),
            "tied": torch.tensor(self.tied),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> Gaussians:
        """Inverse of ``state_dict``; unknown or missing keys are an error naming them."""
        keys = {"means", "covariances", "precisions_cholesky", "counts", "normalize", "tied"}
        missing, unknown = keys - set(state), set(state) - keys
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
        )


def fit_gaussians(
    z,
    y,
    *,
    covariance: str = "class",
    ridge: float = 1e-6,
    normalize: bool = True,
    classes: int | None = None,
    allow_singular: bool = False,
) -> Gaussians:
    """Fit one Gaussian per class on training embeddings (Eq. 12).

    Means and covariances are computed in float64; the covariance uses the unbiased
    ``n - 1`` normaliser (``numpy.cov``, as the authors' code) plus ``ridge * I``. With
    ``covariance="tied"`` every class shares the pooled within-class covariance
    ``sum_c sum_{i in c} (z_i - mu_c)(z_i - mu_c)^T / (n - C)`` (unbiased) plus ``ridge * I``.

    Args:
        z: (n, d) training embeddings.
        y: (n,) integer labels 0..C-1.
        covariance: "class" (one Sigma_c per class, the paper) or "tied" (pooled).
        ridge: added to the covariance diagonal (the authors' code adds 1e-9).
        normalize: L2-normalise ``z`` first (and the queries later), as the authors' code.
        classes: number of classes C; default ``y.max() + 1``.
        allow_singular: accept a class with ``n_c <= d`` samples (its sample covariance is
            singular and only ``ridge`` makes it invertible); use it with a larger ridge.

    Returns:
        Gaussians with float64 means, covariances and whitening factors.

    Raises:
        ValueError: shapes, NaN, a class without samples, a class too small for a full
            covariance, or a covariance that is not positive definite.
    """
    if covariance not in COVARIANCES:
        raise ValueError(f"covariance={covariance!r} is unknown; choose one of {COVARIANCES}")
    try:
        ridge = float(ridge)
    except (TypeError, ValueError):
        ridge = float("nan")
    if not (math.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"ridge={ridge!r} must be a finite number >= 0 (e.g. 1e-6)")
    zt = _float_tensor(z, "z")
    if zt.ndim != 2:
        raise ValueError(
            f"z has shape {tuple(zt.shape)}; expected (n, d) embeddings "
            "(for SEI views (n, R, d) use fit_sei_gaussians)"
        )
    n, d = zt.shape
    yt = _labels(y, n).to(zt.device)
    if n == 0:
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
    classes = int(classes)

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
    eye = torch.eye(d, dtype=torch.float64, device=z64.device)
    means = torch.zeros(classes, d, dtype=torch.float64, device=z64.device)
    means.index_add_(0, yt, z64)
    means /= counts.to(z64.device, torch.float64)[:, None]
    centred = z64 - means[yt]  # (n, d)

    if covariance == "class":
        small = [(c, int(k)) for c, k in enumerate(counts.tolist()) if k <= d]
        too_few = [(c, k) for c, k in small if k < 2]
        if too_few or (small and not allow_singular):
            c, k = (too_few or small)[0]
            raise ValueError(
                f"class {c} has {k} samples, too few for a full covariance in d={d} "
                f"(needs more than {d}; {len(small)} class(es) are that small); use "
                "covariance='tied', fit on more samples, or pass allow_singular=True with a "
                "larger ridge (e.g. ridge=1e-3)"
                + (" (a class needs at least 2 samples even then)" if too_few else "")
            )
        covs = torch.empty(classes, d, d, dtype=torch.float64, device=z64.device)
        for c in range(classes):
            xc = centred[yt == c]  # (n_c, d)
            covs[c] = xc.T @ xc / (xc.shape[0] - 1)
    else:
        if n - classes < 1:
            raise ValueError(
                f"covariance='tied' needs more samples than classes (n={n}, C={classes}); "
                "pass more training embeddings"
            )
        if n - classes < d and not allow_singular:
            raise ValueError(
                f"the pooled covariance has only n - C = {n - classes} degrees of freedom for "
                f"d={d} dimensions and is singular; fit on more samples or pass "
                "allow_singular=True with a larger ridge (e.g. ridge=1e-3)"
            )
        pooled = centred.T @ centred / (n - classes)
        covs = pooled.expand(classes, d, d).clone()
    covs += ridge * eye
    chol, info = torch.linalg.cholesky_ex(covs)  # Sigma_c = L_c L_c^T, (C, d, d)
    if bool((info > 0).any()):
        c = int((info > 0).nonzero()[0, 0])
        raise ValueError(
            f"the covariance of class {c} is not positive definite with ridge={ridge!r}; "
            "pass a larger ridge (e.g. 1e-4) or covariance='tied'"
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
    )


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


def _auto_chunk(block_width: int) -> int:
    """Rows per block so that a (rows, block_width) temporary holds about 2**22 elements."""
    return max(64, min(1 << 16, (1 << 22) // max(1, block_width)))


def fit_sei_gaussians(z_views, y, **kwargs) -> list[Gaussians]:
    """C x R Gaussians for self-ensemble inference: one set per rotation r (Sec. 3.2).

    Args:
        z_views: (n, R, d) training embeddings, column r = the images rotated by r * 90
            degrees (SEI views 0..R-1, ``mclviz.embed.embed(..., views=R)``).
        y: (n,) class labels, the same for every rotation.
        **kwargs: passed to ``fit_gaussians`` (covariance, ridge, normalize, classes, ...).

    Returns:
        A list of R ``Gaussians``; entry r models N(mu_i^(r), Sigma_i^(r)) of Eq. 15.
    """
    zt = _float_tensor(z_views, "z_views")
    if zt.ndim != 3:
        raise ValueError(
            f"z_views has shape {tuple(zt.shape)}; expected (n, R, d) with one column per "
            "rotation (for plain (n, d) embeddings use fit_gaussians)"
        )
    if zt.shape[1] > 4:
        raise ValueError(
            f"z_views has {zt.shape[1]} views; fit on the R <= 4 rotations only "
            "(flipped views m >= 4 reuse rotation m % 4's Gaussians): pass z_views[:, :4]"
        )
    yt = _labels(y, zt.shape[0])
    if "classes" not in kwargs and yt.numel():
        kwargs["classes"] = int(yt.max()) + 1
    return [fit_gaussians(zt[:, r], yt, **kwargs) for r in range(zt.shape[1])]


def _view_indices(views: Sequence[int] | None, W: int) -> list[int]:
    if views is None:
        return list(range(W))
    v = [int(m) for m in views]
    if len(v) != W:
        raise ValueError(f"views={list(views)!r} names {len(v)} views, but z_views has {W}")
    if any(m < 0 or m > 7 for m in v):
        raise ValueError(f"views={v!r}: SEI view indices are 0..7")
    return v


def sei_scores(
    z_views,
    gaussians_per_rotation: Sequence[Gaussians] | Gaussians,
    *,
    views: Sequence[int] | None = None,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Score every SEI view against its rotation's Gaussians (Eq. 15-16).

    View m (0..W-1) is the test image rotated by ``m % 4`` quarter turns, horizontally
    flipped first when ``m >= 4``; it is scored against rotation ``m % 4``'s Gaussians.

    Args:
        z_views: (n, W, d) test embeddings; column w is SEI view ``views[w]``.
        gaussians_per_rotation: list of R Gaussians from ``fit_sei_gaussians``; a single
            ``Gaussians`` is used for every view.
        views: the SEI view index of each column (default 0..W-1, as
            ``embed(..., views=W)``); pass the list given to ``embed(..., views=[...])``.
        chunk_size: see ``gaussian_scores``.

    Returns:
        (n, W, C) scores S^(m)_i(x) = -d^2 (higher = more in-distribution).
    """
    zt = _float_tensor(z_views, "z_views")
    if zt.ndim != 3:
        raise ValueError(
            f"z_views has shape {tuple(zt.shape)}; expected (n, W, d) embeddings of W SEI "
            "views (add a view axis with z[:, None] for plain embeddings)"
        )
    n, W, d = zt.shape
    vs = _view_indices(views, W)
    if isinstance(gaussians_per_rotation, Gaussians):
        gs = [gaussians_per_rotation] * 4
    else:
        gs = list(gaussians_per_rotation)
        if not gs or not all(isinstance(g, Gaussians) for g in gs):
            raise TypeError(
                "gaussians_per_rotation must be a non-empty list of Gaussians "
                "(from fit_sei_gaussians) or one Gaussians"
            )
    need = max(_sei_rotation(m) for m in vs) + 1
    if need > len(gs):
        raise ValueError(
            f"view(s) {[m for m in vs if _sei_rotation(m) >= len(gs)]} need rotation "
            f"{need - 1}'s Gaussians, but gaussians_per_rotation has {len(gs)} entries; fit "
            f"on {need} rotations (fit_sei_gaussians with z_views[:, :{need}]) or use fewer views"
        )
    C = gs[0].num_classes
    if any(g.num_classes != C or g.dim != gs[0].dim for g in gs):
        raise ValueError("the Gaussians of the rotations differ in class count or dimension")
    out = torch.empty(n, W, C, dtype=zt.dtype, device=zt.device)
    for w, m in enumerate(vs):
        out[:, w] = gaussian_scores(zt[:, w], gs[_sei_rotation(m)], chunk_size=chunk_size)
    return out


# ----------------------------------------------------------------------------- aggregation


def aggregate(
    scores, method: str = "w-avg", variant: str = "paper"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Combine the per-view score vectors of SEI into a label and an IND score (Eq. 17-20).

    ``variant="paper"`` (on S = -d^2 from ``sei_scores``):

    * ``"avg"`` (Eq. 17): ``A_i = mean_m S_i^(m)``.
    * ``"max"`` (Eq. 18): ``A_i = max_m S_i^(m)``.
    * ``"w-avg"`` (Eq. 19-20): ``W^(m) = (sum_n 1 / S_n^(m))^-1`` and
      ``A_i = sum_m W^(m) S_i^(m) / sum_m W^(m)``. The scores are negative, so every
      ``W^(m)`` is negative too (minus 1/C times the harmonic mean of the view's squared
      class distances); sharing one sign, the normalised weights ``W^(m) / sum W`` are
      positive and sum to one. A view whose distances are all large gets a large weight:
      unusually low scores are penalised, as the paper intends.

    ``variant="official"`` reproduces the authors' released code. It scores with the
    square-root distance, so the input ``S = -d^2`` is first turned into ``-sqrt(d^2)``:

    * ``"avg"``: mean over views of ``-sqrt(d^2)`` (their code sums; same ranking).
    * ``"max"`` (their "min"): largest ``-sqrt(d^2)`` over views.
    * ``"w-avg"`` (their "wa"): per class, minus the harmonic mean over the views of the
      square-root distances, ``A_i = -W / sum_m (1 / sqrt(d_i^(m)^2))``.

    In both variants ``pred = argmax_i A_i`` (ties go to the lowest class index; the
    official "min" loop would take the last) and ``score = A_pred = max_i A_i``. With
    W = 1 every method returns the plain argmax and max (of ``-sqrt(d^2)`` for the official
    variant). A zero distance is clamped to the smallest positive float, so a harmonic
    mean with a zero term is ~0 (its limit) instead of NaN.

    Args:
        scores: (n, W, C) scores S_i^(m)(x) (a 2-D (n, C) input means W = 1). The
            weighted averages and the official variant need scores <= 0 (minus squared
            distances).
        method: "avg", "max" or "w-avg".
        variant: "paper" or "official".

    Returns:
        pred: (n,) int64 predicted class; score: (n,) aggregated score at ``pred``
        (higher = more in-distribution).
    """
    _check_method(method, variant)
    s = _float_tensor(scores, "scores")
    if s.ndim == 2:
        s = s[:, None, :]
    if s.ndim != 3 or s.shape[1] < 1 or s.shape[2] < 1:
        raise ValueError(
            f"scores has shape {tuple(s.shape)}; expected (n, W, C) from sei_scores "
            "(or (n, C) for a single view)"
        )
    _check_finite(s, "scores")
    if (variant == "official" or method == "w-avg") and bool((s > 0).any()):
        raise ValueError(
            f"scores holds positive values (max {float(s.max()):.3g}); method={method!r}, "
            f"variant={variant!r} needs minus squared Mahalanobis distances (<= 0) as "
            "returned by gaussian_scores / sei_scores"
        )
    tiny = torch.finfo(s.dtype).tiny
    if variant == "paper":
        if method == "avg":
            agg = s.mean(dim=1)
        elif method == "max":
            agg = s.amax(dim=1)
        else:
            dist = (-s).clamp_min(tiny)  # (n, W, C), d^2 > 0
            dmin = dist.amin(dim=2, keepdim=True)  # (n, W, 1)
            # -W^(m) = (sum_n 1/d_n)^-1, computed as dmin / sum_n (dmin / d_n): no overflow.
            h = dmin / (dmin / dist).sum(dim=2, keepdim=True)  # (n, W, 1)
            weight = h / h.sum(dim=1, keepdim=True)  # W^(m) / sum_m W^(m) > 0
            agg = (weight * s).sum(dim=1)
    else:
        root = (-s).sqrt()  # (n, W, C) square-root distances
        if method == "avg":
            agg = -root.mean(dim=1)
        elif method == "max":
            agg = -root.amin(dim=1)
        else:
            dist = root.clamp_min(tiny)
            dmin = dist.amin(dim=1, keepdim=True)  # (n, 1, C)
            # harmonic mean over views W / sum_m 1/d_m, as dmin / mean_m (dmin / d_m)
            agg = -(dmin[:, 0] / (dmin / dist).mean(dim=1))
    pred = agg.argmax(dim=1)  # first index among ties
    return pred, agg.gather(1, pred[:, None])[:, 0]


# ----------------------------------------------------------------------------- detectors


def _check_fitted(est, attr: str) -> None:
    if getattr(est, attr, None) is None:
        raise NotFittedError(
            f"this {type(est).__name__} is not fitted yet; call fit() first with the "
            "training embeddings"
        )


class MahalanobisSEI:
    """Class-conditional Gaussians with optional self-ensemble inference (Sec. 3).

    ``ways=1`` is plain Mahalanobis scoring (Eq. 12-14); ``ways=4`` / ``8`` aggregates
    the 4 rotations (and their flips) with ``method`` (Eq. 17-20).

    Args:
        ways: number of SEI views W; views 0..W-1 (m % 4 = rotation, m >= 4 flipped).
        method: "avg", "max" or "w-avg" (see ``aggregate``).
        variant: "paper" or "official" (see ``aggregate``).
        covariance: "class" or "tied" (see ``fit_gaussians``).
        ridge: covariance ridge (see ``fit_gaussians``).
        normalize: L2-normalise embeddings (see ``fit_gaussians``).
        chunk_size: query rows per block when scoring.

    Attributes (after ``fit``):
        gaussians_: list of R Gaussians, one per rotation.
        n_classes_: C.

    >>> import torch
    >>> z, y = torch.randn(400, 4, 8), torch.arange(400) % 2
    >>> det = MahalanobisSEI(ways=4).fit(z, y)
    >>> det.score(z[:3]).shape
    torch.Size([3])
    """

    def __init__(
        self,
        ways: int = 1,
        method: str = "w-avg",
        variant: str = "paper",
        covariance: str = "class",
        ridge: float = 1e-6,
        normalize: bool = True,
        chunk_size: int | None = None,
    ) -> None:
        if int(ways) != ways or not 1 <= ways <= 8:
            raise ValueError(f"ways={ways!r} must be an SEI view count in 1..8 (1, 4 or 8)")
        _check_method(method, variant)
        if covariance not in COVARIANCES:
            raise ValueError(f"covariance={covariance!r} is unknown; choose one of {COVARIANCES}")
        self.ways = int(ways)
        self.method = method
        self.variant = variant
        self.covariance = covariance
        self.ridge = ridge
        self.normalize = normalize
        self.chunk_size = None if chunk_size is None else _chunk(chunk_size)
        self.gaussians_: list[Gaussians] | None = None
        self.n_classes_: int | None = None

    def fit(self, z, y, *, classes: int | None = None) -> MahalanobisSEI:
        """Fit C Gaussians per rotation on training embeddings.

        Args:
            z: (n, R, d) training embeddings in rotations 0..R-1 (R >= min(ways, 4)), or
                (n, d) for ``ways=1``.
            y: (n,) class labels.
            classes: number of classes (default ``y.max() + 1``).
        """
        zt = _float_tensor(z, "z")
        if zt.ndim == 2:
            zt = zt[:, None]
        if zt.ndim != 3:
            raise ValueError(f"z has shape {tuple(zt.shape)}; expected (n, R, d) or (n, d)")
        need = min(self.ways, 4)
        if zt.shape[1] < need:
            raise ValueError(
                f"ways={self.ways} needs training embeddings in {need} rotations, but z has "
                f"{zt.shape[1]}; embed the training set with views={need}"
            )
        kwargs = {"covariance": self.covariance, "ridge": self.ridge, "normalize": self.normalize}
        if classes is not None:
            kwargs["classes"] = classes
        self.gaussians_ = fit_sei_gaussians(zt[:, :4], y, **kwargs)
        self.n_classes_ = self.gaussians_[0].num_classes
        return self

    def class_scores(self, z) -> torch.Tensor:
        """(n, W, C) per-view class scores -d^2 (Eq. 15-16)."""
        _check_fitted(self, "gaussians_")
        zt = _float_tensor(z, "z")
        if zt.ndim == 2 and self.ways == 1:
            zt = zt[:, None]
        if zt.ndim != 3 or zt.shape[1] != self.ways:
            raise ValueError(
                f"z has shape {tuple(zt.shape)}, but ways={self.ways} expects (n, {self.ways}, d) "
                f"embeddings of SEI views 0..{self.ways - 1} (embed(..., views={self.ways}); "
                f"from more views take z[:, :{self.ways}])"
            )
        return sei_scores(zt, self.gaussians_, chunk_size=self.chunk_size)

    def predict_score(self, z) -> tuple[torch.Tensor, torch.Tensor]:
        """(pred, score) in one pass; see ``aggregate``."""
        return aggregate(self.class_scores(z), self.method, self.variant)

    def score(self, z) -> torch.Tensor:
        """(n,) IND score s_{i*} (higher = more in-distribution, Eq. 14)."""
        return self.predict_score(z)[1]

    def predict(self, z) -> torch.Tensor:
        """(n,) predicted class i*."""
        return self.predict_score(z)[0]


class MSP:
    """Maximum softmax probability on a classifier's logits (Baseline, Hendrycks & Gimpel).

    Stateless: ``fit`` is a no-op returning self, and ``score`` works without it.
    """

    def fit(self, *args, **kwargs) -> MSP:
        return self

    @staticmethod
    def _logits(logits) -> torch.Tensor:
        t = _float_tensor(logits, "logits")
        if t.ndim != 2 or t.shape[1] < 1:
            raise ValueError(
                f"logits has shape {tuple(t.shape)}; expected (n, C) classifier logits "
                "(embed(..., output='logits'))"
            )
        _check_finite(t, "logits")
        return t

    def score(self, logits) -> torch.Tensor:
        """(n,) max_c softmax(logits)_c (higher = more in-distribution)."""
        return self._logits(logits).softmax(dim=1).amax(dim=1)

    def predict(self, logits) -> torch.Tensor:
        return self._logits(logits).argmax(dim=1)


def _rows(z, name: str, dim: int | None = None) -> torch.Tensor:
    t = _float_tensor(z, name)
    if t.ndim != 2:
        raise ValueError(f"{name} has shape {tuple(t.shape)}; expected (n, d) embeddings")
    if dim is not None and t.shape[1] != dim:
        raise ValueError(f"{name} has {t.shape[1]} features, but the detector was fitted on {dim}")
    _check_finite(t, name)
    return t


class KNN:
    """Cosine k-nearest-neighbour detector (as Mean-Shifted Contrastive Loss uses, k = 2).

    ``score = -(1/k) sum_{j in kNN(z)} (1 - cos(z, z_j))``, minus the mean cosine distance
    to the k nearest training embeddings. Scoring the training set itself counts each
    point as its own nearest neighbour.

    Args:
        k: number of neighbours.
        chunk_size: query rows per block (default: blocks of ~16M similarities).
    """

    def __init__(self, k: int = 2, chunk_size: int | None = None) -> None:
        if int(k) != k or k < 1:
            raise ValueError(f"k={k!r} must be a positive integer (Mean-Shifted uses 2)")
        self.k = int(k)
        self.chunk_size = None if chunk_size is None else _chunk(chunk_size)
        self.train_: torch.Tensor | None = None

    def fit(self, z, y=None) -> KNN:
        """Store the L2-normalised (n, d) training embeddings (``y`` is ignored)."""
        t = _rows(z, "z")
        if t.shape[0] < self.k:
            raise ValueError(
                f"k={self.k} neighbours asked for, but z has only {t.shape[0]} rows; "
                "pass more training embeddings or a smaller k"
            )
        self.train_ = F.normalize(t, dim=1)
        return self

    def score(self, z) -> torch.Tensor:
        """(n,) minus the mean cosine distance to the k nearest training embeddings."""
        _check_fitted(self, "train_")
        train = self.train_
        t = F.normalize(_rows(z, "z", train.shape[1]), dim=1).to(train.dtype)
        train = train.to(t.device)
        step = self.chunk_size or max(1, (1 << 24) // max(1, train.shape[0]))
        out = torch.empty(t.shape[0], dtype=t.dtype, device=t.device)
        for i in range(0, t.shape[0], step):
            sim = t[i : i + step] @ train.T  # (b, n_train) cosine similarities
            top = sim.topk(self.k, dim=1).values  # (b, k)
            out[i : i + step] = (top - 1.0).mean(dim=1)  # -(1 - cos) averaged
        return out


class ClassMean:
    """Cosine similarity to the class means; ``score = max_c cos(z, mu_c)``.

    Means are taken over the L2-normalised training embeddings.
    """

    def __init__(self) -> None:
        self.means_: torch.Tensor | None = None

    def fit(self, z, y, *, classes: int | None = None) -> ClassMean:
        t = _rows(z, "z")
        yt = _labels(y, t.shape[0]).to(t.device)
        if t.shape[0] == 0 or int(yt.min()) < 0:
            raise ValueError("y must hold labels 0..C-1 for at least one row (no OOD label -1)")
        C = int(yt.max()) + 1 if classes is None else int(classes)
        counts = torch.bincount(yt, minlength=C)
        if C <= int(yt.max()) or bool((counts == 0).any()):
            raise ValueError(
                f"classes {(counts == 0).nonzero().flatten().tolist()} have no samples "
                f"(C = {C}); relabel y to 0..C-1 or pass the right classes="
            )
        means = torch.zeros(C, t.shape[1], dtype=t.dtype, device=t.device)
        means.index_add_(0, yt, F.normalize(t, dim=1))
        self.means_ = F.normalize(means / counts[:, None].to(t.dtype), dim=1)
        return self

    def _cos(self, z) -> torch.Tensor:
        _check_fitted(self, "means_")
        t = F.normalize(_rows(z, "z", self.means_.shape[1]), dim=1)
        return t @ self.means_.to(t.device, t.dtype).T  # (n, C)

    def score(self, z) -> torch.Tensor:
        """(n,) largest cosine similarity to a class mean."""
        return self._cos(z).amax(dim=1)

    def predict(self, z) -> torch.Tensor:
        return self._cos(z).argmax(dim=1)
