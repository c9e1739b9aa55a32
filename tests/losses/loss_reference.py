"""Slow twins and inputs shared by the loss tests (``tests/losses/``).

The slow twins below follow Eq. 1-11 of Cho et al. (2021) literally, with Python loops over
i, j, k in float64, and with the choices documented in ``mclviz/losses/`` (positive view in
the CCM denominator with 1/tau; SPA positive set with the same auxiliary label; chosen SPA
positive in its denominator with 1/tau; ``variant="official"``: similarities floored at 1e-7
and the sibling kept in the SPA denominator as exp(0)).

Imported by the test modules as ``loss_reference`` (pytest puts this folder on ``sys.path``;
the name is unique so it cannot clash with another test folder).
"""

from __future__ import annotations

import math

import torch

# --------------------------------------------------------------------------------------------
# Slow twins, straight from the equations (0-based: views 2k, 2k+1 of image k)
# --------------------------------------------------------------------------------------------


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    na, nb = math.sqrt(float(a @ a)), math.sqrt(float(b @ b))
    return float(a @ b) / (na * nb)


def ref_sim(z: torch.Tensor, variant: str = "paper") -> list[list[float]]:
    z = z.double()
    n = z.shape[0]
    sim = [[_cos(z[i], z[k]) for k in range(n)] for i in range(n)]  # Eq. 1
    if variant == "official":
        sim = [[max(s, 1e-7) for s in row] for row in sim]
    return sim


def partner(i: int) -> int:
    return i + 1 if i % 2 == 0 else i - 1


def ref_ccm_value(y, y_aux, i, k, tau, alpha, beta) -> float:  # Eq. 3 / Eq. 11
    if y[i] == y[k]:
        if y_aux is None or y_aux[i] == y_aux[k]:
            return alpha
        return beta
    return 1.0 / tau


def ref_nt_xent(z, tau) -> float:
    s = ref_sim(z)
    n = len(s)
    total = 0.0
    for i in range(n):
        j = partner(i)
        den = sum(math.exp(s[i][k] / tau) for k in range(n) if k != i)
        total += -math.log(math.exp(s[i][j] / tau) / den)  # Eq. 1
    return total / n  # Eq. 2


def ref_supcon(z, y, tau) -> float:
    s = ref_sim(z)
    n = len(s)
    total = 0.0
    for i in range(n):
        den = sum(math.exp(s[i][k] / tau) for k in range(n) if k != i)
        positives = [p for p in range(n) if p != i and y[p] == y[i]]
        total += -sum(math.log(math.exp(s[i][p] / tau) / den) for p in positives) / len(positives)
    return total / n


def ref_ccm(z, y, y_aux, tau, alpha, beta, variant="paper") -> float:
    s = ref_sim(z, variant)
    n = len(s)
    total = 0.0
    for i in range(n):
        j = partner(i)
        den = 0.0
        for k in range(n):
            if k == i:
                continue
            if k == j:  # the positive view: same term as the numerator
                den += math.exp(s[i][k] / tau)
            else:
                den += math.exp(s[i][k] * ref_ccm_value(y, y_aux, i, k, tau, alpha, beta))
        total += -math.log(math.exp(s[i][j] / tau) / den)  # Eq. 4-5
    return total / n  # Eq. 6


def ref_positive_set(y, y_aux, i) -> list[int]:  # Eq. 7
    return [
        k
        for k in range(len(y))
        if y[k] == y[i] and (y_aux is None or y_aux[k] == y_aux[i]) and k // 2 != i // 2
    ]


def ref_spa_pair(s, y, y_aux, i, j, tau, alpha, beta, variant) -> float:
    den = 0.0
    for k in range(len(s)):
        if k // 2 == i // 2:  # the parent image's views
            if variant == "official" and k != i:
                den += math.exp(0.0)
            continue
        if k == j:
            den += math.exp(s[i][j] / tau)
        else:
            den += math.exp(s[i][k] * ref_ccm_value(y, y_aux, i, k, tau, alpha, beta))
    return -math.log(math.exp(s[i][j] / tau) / den)  # Eq. 8


def ref_spa(z, y, y_aux, tau, alpha, beta, mode, positives=None, variant="paper") -> float:
    s = ref_sim(z, variant)
    n = len(s)
    total = 0.0
    for i in range(n):
        if mode == "sample":
            j = int(positives[i])
            if j >= 0:
                total += ref_spa_pair(s, y, y_aux, i, j, tau, alpha, beta, variant)
        else:
            pos = ref_positive_set(y, y_aux, i)
            if pos:  # Eq. 9: uniform expectation over B_i^+
                terms = [ref_spa_pair(s, y, y_aux, i, j, tau, alpha, beta, variant) for j in pos]
                total += sum(terms) / len(terms)
    return total / n  # Eq. 10


def ref_mean_shifted(z, center, tau) -> float:
    z = z.double()
    c = center.double()
    rows = []
    for i in range(z.shape[0]):
        u = z[i] / math.sqrt(float(z[i] @ z[i])) - c
        rows.append(u / math.sqrt(float(u @ u)))
    return ref_nt_xent(torch.stack(rows), tau)


def ref_angular_center(z, center) -> float:
    return -sum(_cos(z[i].double(), center.double()) for i in range(z.shape[0])) / z.shape[0]


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

LABEL_PATTERNS = ["random", "all_one", "distinct", "singleton"]
AUX_PATTERNS = [None, "per_image", "per_view"]


def make_labels(n_img: int, pattern: str, gen: torch.Generator) -> torch.Tensor:
    if pattern == "all_one":
        img = torch.zeros(n_img, dtype=torch.long)
    elif pattern == "distinct":
        img = torch.arange(n_img) * 3 - 1  # arbitrary, including a negative label
    elif pattern == "singleton":  # one class with a single image, the rest share classes
        img = torch.randint(0, 2, (n_img,), generator=gen)
        img[-1] = 7
    else:
        img = torch.randint(0, 3, (n_img,), generator=gen)
    return img.repeat_interleave(2)  # (2N,), views share their image's label


def make_aux(n_img: int, pattern: str | None, gen: torch.Generator) -> torch.Tensor | None:
    if pattern is None:
        return None
    if pattern == "per_image":
        return torch.randint(0, 2, (n_img,), generator=gen).repeat_interleave(2)
    return torch.randint(0, 2, (2 * n_img,), generator=gen)  # views may differ


def make_z(n_img: int, d: int, gen: torch.Generator, dtype=torch.float64) -> torch.Tensor:
    return (torch.randn(2 * n_img, d, generator=gen, dtype=torch.float64) * 2.0).to(dtype)


def hyper(tau: float, gen: torch.Generator) -> tuple[float, float]:
    u = torch.rand(2, generator=gen, dtype=torch.float64).tolist()
    return 0.05 + 0.9 * u[0] / tau, 0.05 + 0.9 * u[1] / tau  # alpha, beta in (0, 1/tau)


def close(a: torch.Tensor, b: float, rtol: float = 1e-9, atol: float = 1e-10) -> bool:
    return abs(float(a) - b) <= atol + rtol * abs(b)


# --------------------------------------------------------------------------------------------
# Fixed inputs for the bad-input tests, and the gradient check
# --------------------------------------------------------------------------------------------

GOOD_Z = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
GOOD_Y = torch.tensor([0, 0, 1, 1, 0, 0])


def assert_gradcheck(fn, z):
    assert torch.autograd.gradcheck(fn, (z,), eps=1e-6, atol=1e-5, rtol=1e-4)
