"""Shrinkage of sample covariances towards a scaled identity (Ledoit-Wolf, OAS).

A sample covariance from ``m`` rows in ``d`` dimensions is singular for ``m <= d`` and badly
conditioned for ``m`` not much larger than ``d``; its smallest eigenvalues are too small and
the Mahalanobis distance overweights the directions they belong to. Shrinkage replaces it by

    Sigma_s = (1 - s) * Sigma + s * (tr(Sigma) / d) * I,    0 <= s <= 1,

which keeps the trace and lifts every eigenvalue towards their mean. The coefficient ``s``
is estimated from the data:

* ``"ledoit-wolf"``: Ledoit & Wolf (2004), "A well-conditioned estimator for
  large-dimensional covariance matrices" (J. Multivariate Analysis 88(2)): the
  coefficient ``b^2 / d^2`` (clipped to 1) that is asymptotically optimal under the
  squared Frobenius loss;
* ``"oas"``: Chen, Wiesel, Eldar & Hero (2010), "Shrinkage algorithms for MMSE covariance
  estimation", Eq. 23 (oracle approximating shrinkage), in scikit-learn's form (the factor
  ``2 / d`` of the paper's numerator omitted, as ``sklearn.covariance.oas`` does since 1.3).

Both are computed exactly as ``sklearn.covariance.ledoit_wolf_shrinkage`` / ``oas`` compute
them for centred rows (``assume_centered=True``): ``tests/scoring/test_covariance.py`` checks
the coefficient against scikit-learn to 1e-12. A single feature (``d = 1``) has nothing to
shrink towards: ``s = 0``, as in scikit-learn.

>>> import torch
>>> x = torch.randn(20, 50, dtype=torch.float64)  # 20 rows, 50 dimensions: singular
>>> s = shrinkage_coefficient(x - x.mean(0), "ledoit-wolf")
>>> 0 < s <= 1
True
"""

from __future__ import annotations

import math

import torch

from ._checks import _float_tensor

__all__ = ["SHRINKAGES", "check_shrinkage", "shrink", "shrinkage_coefficient"]

#: the named shrinkage estimators (a float in [0, 1] is a fixed coefficient)
SHRINKAGES = ("none", "ledoit-wolf", "oas")


def check_shrinkage(shrinkage: str | float) -> str | float:
    """``shrinkage`` checked: one of :data:`SHRINKAGES` or a fixed coefficient in [0, 1]."""
    if isinstance(shrinkage, str):
        if shrinkage not in SHRINKAGES:
            raise ValueError(
                f"shrinkage={shrinkage!r} is unknown; choose one of {SHRINKAGES} or a fixed "
                "coefficient in [0, 1]"
            )
        return shrinkage
    if isinstance(shrinkage, bool):
        raise TypeError(
            f"shrinkage={shrinkage!r} is a bool; pass 'none', 'ledoit-wolf', 'oas' or a float"
        )
    try:
        s = float(shrinkage)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"shrinkage={shrinkage!r} must be one of {SHRINKAGES} or a float in [0, 1]"
        ) from err
    if not (math.isfinite(s) and 0.0 <= s <= 1.0):
        raise ValueError(
            f"shrinkage={shrinkage!r} is outside [0, 1]; a fixed coefficient s mixes "
            "(1 - s) * Sigma + s * tr(Sigma) / d * I (or pass 'ledoit-wolf' / 'oas')"
        )
    return s


def shrinkage_coefficient(x, method: str | float) -> float:
    """The shrinkage coefficient ``s`` of ``method`` for centred rows ``x``.

    With ``S = x^T x / m`` (the maximum-likelihood covariance of the ``m`` centred rows) and
    ``mu = tr(S) / d``:

    * ``"ledoit-wolf"``: ``delta = ||S - mu I||_F^2 / d``,
      ``beta = (sum_k ||x_k||^4 / m - ||S||_F^2) / (d m)``, ``s = min(beta, delta) / delta``
      (0 when ``beta = 0``).
    * ``"oas"``: ``a = ||S||_F^2 / d^2``,
      ``s = min((a + mu^2) / ((m + 1) (a - mu^2 / d)), 1)`` (1 when the denominator is 0).
    * ``"none"``: 0; a float: that value.

    Args:
        x: (m, d) rows centred already (class rows minus their class mean; for a pooled
            covariance every row minus its own class mean).
        method: "none", "ledoit-wolf", "oas", or a fixed coefficient in [0, 1].

    Returns:
        s in [0, 1] (a Python float, computed in float64).
    """
    method = check_shrinkage(method)
    if not isinstance(method, str):
        return float(method)
    if method == "none":
        return 0.0
    t = _float_tensor(x, "x")
    if t.ndim != 2 or t.shape[0] < 1:
        raise ValueError(f"x has shape {tuple(t.shape)}; expected (m, d) centred rows, m >= 1")
    x64 = t.to(torch.float64)
    m, d = x64.shape
    if d == 1:
        return 0.0  # nothing to shrink towards (scikit-learn returns 0 too)
    S = x64.T @ x64 / m  # (d, d) maximum-likelihood covariance
    trace = float(torch.diagonal(S).sum())
    mu = trace / d
    fro2 = float(S.square().sum())  # ||S||_F^2
    if method == "ledoit-wolf":
        fourth = float(x64.square().sum(dim=1).square().sum())  # sum_k ||x_k||^4
        beta = (fourth / m - fro2) / (d * m)
        delta = (fro2 - 2.0 * mu * trace + d * mu * mu) / d
        beta = min(beta, delta)
        return 0.0 if beta == 0 else beta / delta
    alpha = fro2 / (d * d)
    num = alpha + mu * mu
    den = (m + 1) * (alpha - mu * mu / d)
    return 1.0 if den == 0 else min(num / den, 1.0)


def shrink(cov: torch.Tensor, s: float) -> torch.Tensor:
    """``(1 - s) * cov + s * tr(cov) / d * I`` for a (d, d) covariance (a new tensor)."""
    if s == 0:
        return cov.clone()
    d = cov.shape[-1]
    out = (1.0 - s) * cov
    out.diagonal().add_(s * float(torch.diagonal(cov).sum()) / d)
    return out
