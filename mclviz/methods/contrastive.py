"""The contrastive methods of the paper's comparison: SimCLR, SupCLR, CCM, MCL.

Each loss reads the projections ``z`` of the views (rows 2k, 2k+1: the two views of image
k) and the config's temperature ``tau`` and, for the masked losses, ``alpha``, ``beta``
(Eq. 3, 11), ``lam`` (Eq. 10), ``spa_mode`` and ``variant``.
"""

from __future__ import annotations

from .. import losses
from ._base import Method
from ._views import contrastive_views, rotated_contrastive_views


def _simclr(out, views, ctx):
    return {"loss": losses.nt_xent(out["z"], tau=ctx.config.tau)}


def _supclr(out, views, ctx):
    return {"loss": losses.supcon(out["z"], views.y, tau=ctx.config.tau)}


def _ccm(out, views, ctx):
    c = ctx.config
    loss = losses.ccm(
        out["z"], views.y, None, tau=c.tau, alpha=c.alpha, beta=c.beta, variant=c.variant
    )
    return {"loss": loss}


def _mcl(out, views, ctx):
    c = ctx.config
    t = losses.mcl_terms(
        out["z"],
        views.y,
        views.y_aux,
        tau=c.tau,
        alpha=c.alpha,
        beta=c.beta,
        lam=c.lam,
        mode=c.spa_mode,
        generator=ctx.generator,
        variant=c.variant,
    )
    return {"loss": t["loss"], "ccm": t["ccm"].detach(), "spa": t["spa"].detach()}


def _mcl_views_per_image(config) -> int:
    return 2 * config.rotations_per_image


_MASKED = ("tau", "alpha", "beta")

METHODS = [
    Method(
        "mcl",
        "CCM + SPA with the 4-way rotation auxiliary (Eq. 10-11), the paper's full model",
        rotated_contrastive_views,
        ("z",),
        _mcl,
        rotation_labels=True,
        hyperparameters=(*_MASKED, "lam"),
        views_per_image=_mcl_views_per_image,
    ),
    Method(
        "mcl-noaux",
        "CCM + SPA without the auxiliary task (Eq. 10)",
        contrastive_views,
        ("z",),
        _mcl,
        hyperparameters=(*_MASKED, "lam"),
    ),
    Method(
        "ccm",
        "CCM only, no SPA, no auxiliary (Eq. 6)",
        contrastive_views,
        ("z",),
        _ccm,
        hyperparameters=_MASKED,
    ),
    Method(
        "supclr",
        "supervised contrastive, Khosla et al. 2020 (L_out)",
        contrastive_views,
        ("z",),
        _supclr,
        hyperparameters=("tau",),
    ),
    Method(
        "simclr",
        "NT-Xent, Chen et al. 2020 (Eq. 2)",
        contrastive_views,
        ("z",),
        _simclr,
        hyperparameters=("tau",),
    ),
]
