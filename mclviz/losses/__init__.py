"""Contrastive losses: SimCLR, SupCLR, Masked Contrastive Learning and Mean-Shifted.

Pure functions of tensors, like :mod:`torch.nn.functional`, plus thin :class:`torch.nn.Module`
wrappers that check their hyperparameters once in ``__init__``. Equation numbers refer to
Cho, Seol and Lee, "Masked Contrastive Learning for Anomaly Detection", IJCAI 2021
(``../shared/paper/mcl-paper.md``).

Conventions shared by every loss here:

* ``z``: (2N, d) float tensor, **not** necessarily normalised; rows 2k and 2k+1 are the two
  views of image k. Each loss L2-normalises the rows, so similarities are cosines (Eq. 1).
  A zero row stays a zero vector (cosine 0 with everything).
* ``y``: (2N,) integer labels of the views. Both views of an image share its label
  (``y[2k] == y[2k+1]``); this is checked, because a batch stacked as ``[view1; view2]``
  instead of interleaved is the most common layout mistake.
* ``y_aux``: (2N,) integer auxiliary labels (e.g. the rotation index m % 4) or ``None``.
  The two views of an image may carry different auxiliary labels.
* Every loss returns a scalar tensor on ``z``'s device. The number of classes comes from the
  labels; nothing is hard-coded.
* Precision: the loss is computed in float32 (float64 if ``z`` is float64). ``z`` in
  float16 / bfloat16 is cast to float32 first and autocast is disabled inside the loss, so
  mixed-precision training never evaluates ``exp`` / ``logsumexp`` in half precision. All
  softmax denominators are row-max-shifted (``log_softmax``, which is also the fastest fused
  kernel for forward + backward on CPU; ``-log p`` is read off it with one gather per row).
* Validation is cheap: shapes, dtypes and hyperparameters are checked on the host; the
  only device syncs are ``isfinite(z).all()``, the view-pair label check on the (2N,) labels
  and, when given, the check of ``positives``. (Building the label groups with
  ``torch.unique`` and the expected SPA mode's ``repeat_interleave`` also sync, on (2N,)-sized
  data.)
* Hyperparameters are checked on every call: ``tau > 0``; ``alpha`` and ``beta`` in
  ``(0, 1/tau]`` (``beta`` is checked even without ``y_aux``, so ``tau=0.5`` needs
  ``beta <= 2``); ``lam >= 0``.

Choices where the paper is ambiguous (``variant="paper"``):

* CCM (Eq. 3-6, 11): the mask multiplies the cosine similarity in the denominator. The
  positive view (the other view of the same image) enters the denominator with the same term
  as the numerator, ``exp(sim / tau)``, so ``p_ccm <= 1``; k = i is excluded.
* SPA (Eq. 7-9): see :func:`spa`.

``variant="official"`` reproduces the authors' released code where it departs from the
paper (see :func:`ccm` and :func:`spa`).

Layout: one loss per module, re-exported here (``from mclviz.losses import ccm``):

* :mod:`~mclviz.losses.nt_xent_loss`, :mod:`~mclviz.losses.supcon_loss`,
  :mod:`~mclviz.losses.ccm_loss`, :mod:`~mclviz.losses.spa_loss`,
  :mod:`~mclviz.losses.mcl_loss`, :mod:`~mclviz.losses.mean_shifted_loss`: each a function
  and its :class:`torch.nn.Module` wrapper (the ``_loss`` suffix, as in lightly, keeps the
  module names distinct from the functions they define, so ``mclviz.losses.ccm`` is always
  the function);
* :mod:`~mclviz.losses.masks`: the CCM mask and the SPA positive set and draw;
* private: ``_core`` (the fused CCM + SPA computation shared by ``ccm``, ``spa`` and
  ``mcl``), ``_checks`` (host-side validation), ``_common`` (constants, cosine similarity,
  dtype and autocast handling).
"""

from __future__ import annotations

from ._common import OFFICIAL_SIM_FLOOR, SPA_MODES, VARIANTS
from .ccm_loss import CCMLoss, ccm
from .masks import ccm_mask, sample_positives, spa_positive_mask
from .mcl_loss import MCLLoss, mcl, mcl_terms
from .mean_shifted_loss import AngularCenterLoss, MeanShiftedLoss, angular_center, mean_shifted
from .nt_xent_loss import NTXentLoss, nt_xent
from .spa_loss import SPALoss, spa
from .supcon_loss import SupConLoss, supcon

__all__ = [
    "nt_xent",
    "supcon",
    "ccm",
    "spa",
    "mcl",
    "mcl_terms",
    "mean_shifted",
    "angular_center",
    "ccm_mask",
    "spa_positive_mask",
    "sample_positives",
    "NTXentLoss",
    "SupConLoss",
    "CCMLoss",
    "SPALoss",
    "MCLLoss",
    "MeanShiftedLoss",
    "AngularCenterLoss",
    "VARIANTS",
    "SPA_MODES",
    "OFFICIAL_SIM_FLOOR",
]
