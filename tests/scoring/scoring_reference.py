"""Slow twins and data for the tests of mclviz.scoring: loops written from the equations.

A helper module (not collected: its name does not start with ``test_``), imported by the
test modules of this folder (pytest puts the folder on ``sys.path``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

# ----------------------------------------------------------------------------- slow twins


def normalize_rows(z: np.ndarray) -> np.ndarray:
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def slow_fit(z, y, C, *, covariance="class", ridge=1e-6, normalize=True):
    """Means and covariances with numpy.cov (n - 1), as the authors' cal_MND_whole."""
    z = normalize_rows(z) if normalize else z
    d = z.shape[1]
    means = np.stack([z[y == c].mean(axis=0) for c in range(C)])
    if covariance == "class":
        covs = np.stack([np.cov(z[y == c], rowvar=False).reshape(d, d) for c in range(C)])
    else:
        scatter = sum(
            (np.sum(y == c) - 1) * np.cov(z[y == c], rowvar=False).reshape(d, d)
            if np.sum(y == c) > 1
            else np.zeros((d, d))
            for c in range(C)
        )
        covs = np.stack([scatter / (len(y) - C)] * C)
    return means, covs + ridge * np.eye(d)


def slow_scores(z, means, covs, *, normalize=True):
    """S[k, c] = -(z_k - mu_c)^T inv(Sigma_c) (z_k - mu_c), one sample at a time (Eq. 12)."""
    z = normalize_rows(z) if normalize else z
    out = np.empty((len(z), len(means)))
    for k in range(len(z)):
        for c in range(len(means)):
            delta = z[k] - means[c]
            out[k, c] = -(delta @ np.linalg.inv(covs[c]) @ delta)
    return out


def first_argmax(values):
    best, arg = -math.inf, -1
    for i, v in enumerate(values):
        if v > best:
            best, arg = v, i
    return arg, best


def slow_aggregate(S, method, variant):
    """Python loops of Eq. 17-20 (paper) and of the authors' released SEI code (official)."""
    n, W, C = S.shape
    preds, scores = [], []
    for k in range(n):
        s = S[k]
        if variant == "paper":
            if method == "avg":  # Eq. 17
                agg = [sum(s[m][i] for m in range(W)) / W for i in range(C)]
            elif method == "max":  # Eq. 18
                agg = [max(s[m][i] for m in range(W)) for i in range(C)]
            else:  # Eq. 19-20
                Wm = [1.0 / sum(1.0 / s[m][j] for j in range(C)) for m in range(W)]
                agg = [sum(Wm[m] * s[m][i] for m in range(W)) / sum(Wm) for i in range(C)]
            arg, best = first_argmax(agg)
        else:
            pred = [[math.sqrt(-s[m][i]) for i in range(C)] for m in range(W)]
            if method == "avg":  # their "mean": sum of distances (we report the mean)
                final = [sum(pred[m][i] for m in range(W)) for i in range(C)]
                arg = final.index(min(final))
                best = -final[arg] / W
            elif method == "max":  # their "min": smallest distance over views and classes
                per_class = [min(pred[m][i] for m in range(W)) for i in range(C)]
                arg = per_class.index(min(per_class))
                best = -min(pred[m][arg] for m in range(W))
            else:  # their "wa": per class, weights 1/d over the views
                temp = []
                for i in range(C):
                    num = [1.0 / pred[m][i] for m in range(W)]
                    denom = sum(num)
                    temp.append(sum(num[m] * pred[m][i] / denom for m in range(W)))
                arg = temp.index(min(temp))
                best = -min(temp)
        preds.append(arg)
        scores.append(best)
    return np.array(preds), np.array(scores)


def gaussian_data(n, d, C, seed=0, spread=3.0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(C, d, generator=g, dtype=torch.float64) * spread
    y = torch.arange(n) % C
    z = centres[y] + torch.randn(n, d, generator=g, dtype=torch.float64)
    return z, y


def clusters(n, d, C, seed, views=None, ood=False):
    """Well separated class clusters on the sphere; OOD from other directions."""
    gen = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(99)))[0]
    y = torch.arange(n) % C
    centre = basis[C + 1] if ood else basis[y]  # (n, d) or (d,)
    shape = (n, views, d) if views else (n, d)
    noise = 0.05 * torch.randn(shape, generator=gen)
    if views:
        # each rotation shifts the embedding along its own direction, like a rotation head
        shift = basis[C + 2 : C + 6][torch.arange(views) % 4] * 0.3  # (W, d)
        z = centre[..., None, :] + shift + noise if not ood else centre + shift + noise
    else:
        z = centre + noise
    return z, y
