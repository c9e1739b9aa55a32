"""The field's OOD baselines, each as its paper defines it, on mclviz's detector protocol.

Every class follows :class:`~mclviz.scoring.detectors.Detector` (``fit`` -> self, ``score``
(n,) with **higher = more in-distribution**). Defaults are the papers' CIFAR-10 values;
deviations are named in each docstring.

============================  ===========  ===========================================
detector                      output       score (higher = more in-distribution)
============================  ===========  ===========================================
``MSP``                       logits       ``max_c softmax(l)_c``
``Energy``                    logits       ``T logsumexp(l / T)``, T = 1
``ODIN``                      logits       ``max_c softmax(l / T)_c``, T = 1000, eps 0.0014
``Mahalanobis``               features     ``max_c -(f - mu_c)^T Sigma^-1 (f - mu_c)``
``RelativeMahalanobis``       features     ``-min_c (MD_c(f) - MD_0(f))``
``KNN``                       features     ``-||f/|f| - f_(k)/|f_(k)| ||``, k = 50
``ViM``                       features     ``logsumexp(l) - alpha ||f^{P-perp}||``
``CosineKNN``                 scored       mean cosine similarity - 1, k = 2
============================  ===========  ===========================================

pytorch-ood 0.4.0 has all but ``CosineKNN``; ``tests/scoring/test_baselines.py`` checks that
our scores equal its on the same outputs, up to its sign (larger = more outlier) and the
constant factors named below. Nothing here is copied from it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._checks import _check_fitted, _chunk, _float_tensor, _rows
from .covariance import check_shrinkage
from .detectors import (
    Detector,
    _check_epsilon,
    _check_output,
    _check_temperature,
    _logits,
    _shrinkage_label,
)
from .gaussians import fit_gaussians, gaussian_scores

__all__ = [
    "KNN",
    "MSP",
    "ODIN",
    "CosineKNN",
    "Energy",
    "Mahalanobis",
    "RelativeMahalanobis",
    "ViM",
]


# ----------------------------------------------------------------------------- logits


class MSP(Detector):
    """Maximum softmax probability (Hendrycks & Gimpel 2017, "A baseline for detecting
    misclassified and out-of-distribution examples"; the Baseline row):
    ``score = max_c softmax(logits)_c``, ``predict = argmax_c logits_c``.

    Stateless: ``fit`` only records the number of classes (so that a test set of other
    logits is refused). pytorch-ood: ``MaxSoftmax`` returns minus this score.
    """

    name = "msp"
    output = "logits"
    classifies = True

    def _fit(self, x, y) -> None:
        self.n_classes_ = _logits(x).shape[1]

    def _predict_score(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        t = _logits(x, classes=self.n_classes_)  # (n, C)
        p = t.softmax(dim=1)
        return p.argmax(dim=1), p.amax(dim=1)


class Energy(Detector):
    """Negative free energy (Liu, Wang, Owens & Li 2020, "Energy-based out-of-distribution
    detection", NeurIPS).

    The energy of logits ``l`` is ``E(x; f) = -T log sum_c exp(l_c / T)``; the paper uses
    ``-E`` as the in-distribution score, so ``score = T * logsumexp(l / T)`` and
    ``predict = argmax_c l_c``. Default ``T = 1`` (the paper's setting, which leaves the
    score without a hyperparameter). No deviation from the paper (its fine-tuning with an
    energy margin loss is a training method, not part of the score). pytorch-ood: ``EnergyBased`` returns ``E``,
    minus this score.

    Args:
        temperature: T > 0.
    """

    name = "energy"
    output = "logits"
    classifies = True

    def __init__(self, temperature: float = 1.0) -> None:
        self.temperature = _check_temperature(temperature, "Liu et al. use T = 1")

    @property
    def label(self) -> str:
        return "Energy" if self.temperature == 1 else f"Energy (T={self.temperature:g})"

    def _fit(self, x, y) -> None:
        self.n_classes_ = _logits(x).shape[1]

    def _predict_score(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        t = _logits(x, classes=self.n_classes_)  # (n, C)
        T = self.temperature
        return t.argmax(dim=1), T * torch.logsumexp(t / T, dim=1)


class ODIN(Detector):
    """ODIN (Liang, Li & Srikant 2018, "Enhancing the reliability of out-of-distribution
    image detection in neural networks", ICLR): temperature scaling and input
    pre-processing.

    ``S_c(x; T) = exp(l_c / T) / sum_j exp(l_j / T)`` (their Eq. 1);
    ``score = max_c S_c(x; T)``, ``predict = argmax_c l_c``. Input pre-processing (their
    Eq. 2) ``x~ = x - eps * sign(-grad_x log S_yhat(x; T))`` moves the image by
    ``eps * sign(grad_x differentiable_score)``, with
    ``differentiable_score = log max_c S_c(x; T)`` (the log of ``score``: the function
    ODIN takes the gradient of; same gradient sign as the score itself).

    Defaults: ``T = 1000`` and ``eps = 0.0014``, the paper's values for CIFAR-10
    (DenseNet-BC). Units of eps: the authors' code perturbs the *normalised* image but
    divides the gradient sign by the per-channel std first, so its 0.0014 is a step of
    0.0014 on [0, 1] pixels; mclviz perturbs [0, 1] pixels (its models normalise inside),
    so the value is kept as is. pytorch-ood's ``ODIN(eps=0.0014)`` applies eps in its
    model's input units (the same as here for a model that normalises inside, or with
    ``norm_std``) and returns minus ``score``.

    Deviation: the paper tunes T and eps on OOD validation data; we cannot (no OOD data
    at training time), so the values are fixed. Pass ``epsilon=0`` for temperature
    scaling alone.

    Args:
        temperature: T > 0.
        epsilon: pre-processing step in [0, 1] pixel units (>= 0).
    """

    name = "odin"
    output = "logits"
    classifies = True

    def __init__(self, temperature: float = 1000.0, epsilon: float = 0.0014) -> None:
        self.temperature = _check_temperature(temperature, "ODIN uses T = 1000")
        self.epsilon = _check_epsilon(epsilon, "ODIN's 0.0014")

    @property
    def label(self) -> str:
        return f"ODIN (T={self.temperature:g}, eps={self.epsilon:g})"

    def _fit(self, x, y) -> None:
        self.n_classes_ = _logits(x).shape[1]

    def _predict_score(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        t = _logits(x, classes=self.n_classes_)  # (n, C)
        p = (t / self.temperature).softmax(dim=1)
        return t.argmax(dim=1), p.amax(dim=1)

    def _differentiable_score(self, x: torch.Tensor) -> torch.Tensor:
        t = _logits(x, classes=self.n_classes_)  # (n, C)
        return (t / self.temperature).log_softmax(dim=1).amax(dim=1)  # log max_c S_c(x; T)


# ----------------------------------------------------------------------------- Gaussians


class Mahalanobis(Detector):
    """Mahalanobis distance to class means with one tied covariance (Lee, Lee, Lee & Shin
    2018, "A simple unified framework for detecting out-of-distribution samples and
    adversarial attacks", NeurIPS).

    On the raw (not normalised) penultimate features ``f``:
    ``mu_c = mean of f over class c``,
    ``Sigma = (1/N) sum_c sum_{i in c} (f_i - mu_c)(f_i - mu_c)^T`` (the paper's
    estimate, the pooled within-class scatter over N), and
    ``score = M(x) = max_c -(f - mu_c)^T Sigma^-1 (f - mu_c)``,
    ``predict = argmax_c`` of the same (their generative classifier). The Gaussians are
    :func:`~mclviz.scoring.fit_gaussians` with ``covariance="tied", normalize=False,
    unbiased=False``, plus ``ridge * I`` and optional ``shrinkage``.

    Input pre-processing: ``x^ = x + eps * sign(grad_x M(x))`` (the gradient of the
    closest class's term, as the paper); ``differentiable_score`` is ``M`` itself.
    Default ``epsilon = 0`` (none). The paper tunes eps on OOD validation data over
    {0, 0.0005, 0.001, 0.0014, 0.002, 0.005, 0.01}; we cannot, so the "with input
    pre-processing" variant uses the fixed ``Mahalanobis.PREPROCESSING_EPSILON = 0.002``
    (pytorch-ood's ``MahalanobisODIN`` default, inside Lee's grid). Units: Lee's code, like
    ODIN's, divides the gradient sign by the normalisation std, so eps is in [0, 1] pixel
    units, as mclviz's.

    Deviations: only the penultimate layer (the paper also ensembles the scores of every
    block with weights from a logistic regression fitted on OOD or adversarial validation
    data, which we do not have); ``ridge = 1e-6`` is added to Sigma.

    pytorch-ood's ``Mahalanobis`` (and ``MahalanobisODIN`` with ``eps=0``) does not divide
    the scatter matrix by N, adds 1e-6 to it, and halves the distance (a factor from Lee's
    code): it returns ``min_c (f - mu_c)^T (N Sigma_ML + 1e-6 I)^-1 (f - mu_c) / 2``, which
    is minus our score over 2N when ``ridge = 1e-6 / N`` (the same ranking for any ridge
    much smaller than the feature variances).

    Args:
        epsilon: pre-processing step in [0, 1] pixel units (0 = none).
        ridge: added to the covariance diagonal.
        shrinkage: "none" (the paper), "ledoit-wolf", "oas" or a fixed coefficient.
        chunk_size: query rows per block when scoring (see ``gaussian_scores``).

    Attributes (after ``fit``):
        gaussians_: the C tied Gaussians; n_classes_: C.
    """

    name = "mahalanobis"
    output = "features"
    classifies = True
    needs_labels = True
    #: the fixed step of the "with input pre-processing" variant ([0, 1] pixel units)
    PREPROCESSING_EPSILON = 0.002

    def __init__(
        self,
        epsilon: float = 0.0,
        ridge: float = 1e-6,
        shrinkage: str | float = "none",
        chunk_size: int | None = None,
    ) -> None:
        self.epsilon = _check_epsilon(epsilon, "Mahalanobis.PREPROCESSING_EPSILON = 0.002")
        self.ridge = ridge
        self.shrinkage = check_shrinkage(shrinkage)
        self.chunk_size = None if chunk_size is None else _chunk(chunk_size)

    @property
    def label(self) -> str:
        extra = [] if self.shrinkage == "none" else [_shrinkage_label(self.shrinkage)]
        if self.epsilon:
            extra.append(f"eps={self.epsilon:g}")
        return "Mahalanobis" + (f" ({', '.join(extra)})" if extra else "")

    def _fit(self, x, y) -> None:
        self.gaussians_ = _fit_tied(_rows(x, "x"), y, self.ridge, self.shrinkage)
        self.n_classes_ = self.gaussians_.num_classes

    def class_scores(self, x) -> torch.Tensor:
        """(n, C) ``-(f - mu_c)^T Sigma^-1 (f - mu_c)`` for every class."""
        _check_fitted(self, "fitted_")
        t = _rows(x, "x", self.gaussians_.dim)
        return gaussian_scores(t, self.gaussians_, chunk_size=self.chunk_size)

    def _predict_score(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.class_scores(x)  # (n, C)
        return s.argmax(dim=1), s.amax(dim=1)


def _fit_tied(t: torch.Tensor, y, ridge, shrinkage):
    """Class means and one tied maximum-likelihood covariance on raw features."""
    return fit_gaussians(
        t,
        y,
        covariance="tied",
        ridge=ridge,
        shrinkage=shrinkage,
        unbiased=False,
        normalize=False,
    )


class RelativeMahalanobis(Detector):
    """Relative Mahalanobis distance (Ren, Fort, Liu, Roy, Padhy & Lakshminarayanan 2021,
    "A simple fix to Mahalanobis distance for improving near-OOD detection").

    With the class Gaussians of :class:`Mahalanobis` (tied covariance, raw features),
    ``MD_k(f) = (f - mu_k)^T Sigma^-1 (f - mu_k)`` and one background Gaussian fitted on
    all training features, ``MD_0(f) = (f - mu_0)^T Sigma_0^-1 (f - mu_0)`` with
    ``mu_0 = mean f``, ``Sigma_0 = (1/N) sum_i (f_i - mu_0)(f_i - mu_0)^T``:
    ``RMD_k = MD_k - MD_0`` and ``score = -min_k RMD_k``, ``predict = argmin_k RMD_k``
    (= argmin_k MD_k). Both covariances use the paper's 1/N normaliser, plus
    ``ridge * I`` and optional ``shrinkage``. No input pre-processing (the paper uses none).

    pytorch-ood's ``RMD`` uses the two scatter matrices (N Sigma, N Sigma_0) plus 1e-6 and
    returns ``min_k RMD_k`` of those: minus our score over N when ``ridge = 1e-6 / N``.

    Args:
        ridge: added to both covariance diagonals.
        shrinkage: "none" (the paper), "ledoit-wolf", "oas" or a fixed coefficient,
            applied to both covariances.
        chunk_size: query rows per block when scoring.

    Attributes (after ``fit``):
        gaussians_: the class Gaussians; background_: the one background Gaussian;
        n_classes_: C.
    """

    name = "rmd"
    output = "features"
    classifies = True
    needs_labels = True

    def __init__(
        self, ridge: float = 1e-6, shrinkage: str | float = "none", chunk_size: int | None = None
    ) -> None:
        self.ridge = ridge
        self.shrinkage = check_shrinkage(shrinkage)
        self.chunk_size = None if chunk_size is None else _chunk(chunk_size)

    @property
    def label(self) -> str:
        if self.shrinkage == "none":
            return "Relative Mahalanobis"
        return f"Relative Mahalanobis ({_shrinkage_label(self.shrinkage)})"

    def _fit(self, x, y) -> None:
        t = _rows(x, "x")
        self.gaussians_ = _fit_tied(t, y, self.ridge, self.shrinkage)
        background = torch.zeros(t.shape[0], dtype=torch.long, device=t.device)
        self.background_ = _fit_tied(t, background, self.ridge, self.shrinkage)
        self.n_classes_ = self.gaussians_.num_classes

    def class_scores(self, x) -> torch.Tensor:
        """(n, C) ``-RMD_k(f) = MD_0(f) - MD_k(f)`` for every class."""
        _check_fitted(self, "fitted_")
        t = _rows(x, "x", self.gaussians_.dim)
        md = gaussian_scores(t, self.gaussians_, chunk_size=self.chunk_size)  # (n, C) -MD_k
        md0 = gaussian_scores(t, self.background_, chunk_size=self.chunk_size)  # (n, 1) -MD_0
        return md - md0

    def _predict_score(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.class_scores(x)  # (n, C)
        return s.argmax(dim=1), s.amax(dim=1)


# ----------------------------------------------------------------------------- neighbours


def _normalized_train(x, k: int) -> torch.Tensor:
    t = _rows(x, "x")
    if t.shape[0] < k:
        raise ValueError(
            f"k={k} neighbours asked for, but x has only {t.shape[0]} rows; "
            "pass more training embeddings or a smaller k"
        )
    return F.normalize(t, dim=1)


def _query(x, train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-normalised queries (n, d) and the training rows on their device and dtype."""
    q = F.normalize(_rows(x, "x", train.shape[1]), dim=1)
    return q, train.to(device=q.device, dtype=q.dtype)


def _block(chunk_size: int | None, n_train: int) -> int:
    """Query rows per block: about 16M similarities per (rows, n_train) block."""
    return chunk_size or max(1, (1 << 24) // max(1, n_train))


class _Neighbours(Detector):
    """Shared by the neighbour detectors: ``k``, normalised training rows, and an exact
    chunked search (blocks of cosine similarities) whose per-block score subclasses give
    in ``_block_score(q, sim, train)``: ``q`` (b, d) normalised queries, ``sim``
    (b, n_train) their cosine similarities to ``train`` (n_train, d)."""

    _k_hint = ""

    def __init__(self, k: int, output: str, chunk_size: int | None) -> None:
        if int(k) != k or k < 1:
            raise ValueError(f"k={k!r} must be a positive integer ({self._k_hint})")
        _check_output(output)
        self.k = int(k)
        self.output = output
        self.chunk_size = None if chunk_size is None else _chunk(chunk_size)

    def _fit(self, x, y) -> None:
        self.train_ = _normalized_train(x, self.k)

    def _block_score(self, q: torch.Tensor, sim: torch.Tensor, train: torch.Tensor):
        raise NotImplementedError

    def _predict_score(self, x) -> tuple[None, torch.Tensor]:
        q, train = _query(x, self.train_)
        step = _block(self.chunk_size, train.shape[0])
        parts = [
            self._block_score(q[i : i + step], q[i : i + step] @ train.T, train)
            for i in range(0, q.shape[0], step)
        ]
        return None, torch.cat(parts) if parts else q.new_empty(0)


class KNN(_Neighbours):
    """Deep nearest neighbours (Sun, Ming, Zhu & Li 2022, "Out-of-distribution detection
    with deep nearest neighbors", ICML).

    Features are L2-normalised, ``z = f / ||f||``; the score is minus the Euclidean
    distance to the k-th nearest normalised training feature,
    ``score = -||z - z_(k)||`` (the paper thresholds that negative distance). Default
    ``k = 50``, the paper's value for CIFAR-10; features: the penultimate layer
    (``output="features"``), as the paper uses for both cross-entropy and SupCon models.
    Exact search (chunked matrix products and top-k on the cosine similarity, the distance
    of the chosen neighbour computed directly); every training row is used (the paper
    subsamples only for ImageNet). Scoring the training set itself counts each point as its
    own nearest neighbour.

    pytorch-ood's ``KNN`` returns the distance, minus our score (it runs scikit-learn's
    ``NearestNeighbors`` with ``n_jobs=-1``, every core, which its constructor does not
    let one change).

    Args:
        k: the neighbour whose distance is the score (1 = the nearest).
        output: the model output scored (default the penultimate features).
        chunk_size: query rows per block (default: blocks of ~16M similarities).

    Attributes (after ``fit``): train_: (n_train, d) normalised training features.
    """

    name = "knn"
    _k_hint = "Sun et al. use 50 on CIFAR-10"

    def __init__(
        self, k: int = 50, output: str = "features", chunk_size: int | None = None
    ) -> None:
        super().__init__(k, output, chunk_size)

    @property
    def label(self) -> str:
        return f"KNN (k={self.k})"

    def _block_score(self, q: torch.Tensor, sim: torch.Tensor, train: torch.Tensor):
        kth = sim.topk(self.k, dim=1).indices[:, -1]  # (b,) the k-th most similar
        return -(q - train[kth]).norm(dim=1)  # (b,) minus the distance


class CosineKNN(_Neighbours):
    """Mean cosine distance to the k nearest training embeddings (the kNN scoring of
    Reiss & Hoshen 2023, "Mean-shifted contrastive loss for anomaly detection", AAAI;
    k = 2): ``score = -(1/k) sum_{j in kNN(z)} (1 - cos(z, z_j))``.

    Their code sums faiss's squared L2 distances between the normalised features,
    ``sum_j ||z - z_j||^2 = 2k * mean_j (1 - cos(z, z_j))``: the same neighbours and the same
    ranking, another scale. This was mclviz's ``KNN`` before :class:`KNN` became Sun et
    al.'s detector.
    Scoring the training set itself counts each point as its own nearest neighbour.

    Args:
        k: number of neighbours.
        output: the model output scored.
        chunk_size: query rows per block (default: blocks of ~16M similarities).
    """

    name = "knn-cosine"
    _k_hint = "Mean-Shifted uses 2"

    def __init__(self, k: int = 2, output: str = "scored", chunk_size: int | None = None) -> None:
        super().__init__(k, output, chunk_size)

    @property
    def label(self) -> str:
        return f"cosine kNN (k={self.k})"

    def _block_score(self, q: torch.Tensor, sim: torch.Tensor, train: torch.Tensor):
        top = sim.topk(self.k, dim=1).values  # (b, k)
        return (top - 1.0).mean(dim=1)  # -(1 - cos) averaged


# ----------------------------------------------------------------------------- ViM


class ViM(Detector):
    """Virtual-logit matching (Wang, Li, Feng & Zhang 2022, "ViM: Out-of-distribution with
    virtual-logit matching", CVPR).

    Needs the penultimate features ``f`` (``output="features"``) and the classifier
    ``l = f W^T + b`` (``W``: (C, N), ``b``: (C,)), given to ``__init__`` or copied from
    ``model.classifier`` (an ``nn.Linear``) by :meth:`bind`. ``fit`` (no labels):

    * origin ``u = -pinv(W) b`` (the paper's ``-(W^T)^+ b`` in its column convention);
    * principal subspace P: the top-``D`` eigenvectors of ``X^T X / n`` with
      ``X = f_train - u`` (the training features centred at ``u``, as the paper and its
      code); ``x^{P-perp}`` is the residual of ``f - u`` off P;
    * ``alpha = sum_i max_c l_ic / sum_i ||x_i^{P-perp}||`` over the training set.

    ``score = logsumexp(l) - alpha * ||x^{P-perp}||``, ``predict = argmax_c l_c``. The
    paper's ViM score is the softmax probability of the virtual logit
    ``alpha ||x^{P-perp}||`` against the real ones, an OOD probability; ours is minus its
    log-odds, a strictly decreasing function of it (the same ranking), and what the
    authors' code computes. The logits are computed from ``f`` with ``W`` and ``b`` (they
    equal the model's logits).

    Dimension D (``dim=None``): the paper uses D = 1000 for N = 2048 features and D = 512
    for N = 768; its code picks 1000 for N >= 2048, else 512. For our smaller features
    (N = 256 or 128) we take D = N // 2 (128, 64): the ratio of the 2048-d case, and
    pytorch-ood's fallback when D >= N. The rule: 1000 if N >= 2048, 512 if N >= 768, else
    N // 2 (:meth:`default_dim`). No input pre-processing.

    pytorch-ood's ``ViM`` (float32 inside) returns minus our score. It replaces a ``d``
    larger than N by N // 2 with only a log message, and ``d = N`` gives alpha = inf and
    NaN scores there; here a ``dim`` outside 1..N-1 is an error.

    Args:
        dim: D, the principal subspace dimension (1 <= D < N); None = the rule above.
        weight: (C, N) classifier weight (or use ``bind``).
        bias: (C,) classifier bias (default zeros when a weight is given).

    Attributes (after ``fit``): dim_ (D used), u_ (N,), residual_basis_ (N, N - D) the
    orthonormal complement of P, alpha_ (float), n_classes_.
    """

    name = "vim"
    output = "features"
    classifies = True

    def __init__(self, dim: int | None = None, weight=None, bias=None) -> None:
        if dim is not None and (int(dim) != dim or dim < 1):
            raise ValueError(
                f"dim={dim!r} must be a positive integer below the feature width, or None "
                "for the rule of ViM.default_dim"
            )
        self.dim = None if dim is None else int(dim)
        self._weight: torch.Tensor | None = None
        self._bias: torch.Tensor | None = None
        if weight is not None:
            self._set_classifier(weight, bias)
        elif bias is not None:
            raise ValueError("bias was given without weight; pass both (or use bind(model))")

    @staticmethod
    def default_dim(n_features: int) -> int:
        """D for N-dimensional features: 1000 if N >= 2048, 512 if N >= 768, else N // 2."""
        if n_features >= 2048:
            return 1000
        if n_features >= 768:
            return 512
        return max(1, n_features // 2)

    @property
    def label(self) -> str:
        d = getattr(self, "dim_", self.dim)
        return "ViM" if d is None else f"ViM (D={d})"

    def bind(self, model: torch.nn.Module) -> ViM:
        """Copy ``model.classifier``'s weight and bias (an ``nn.Linear``); returns self.

        A detector fitted with another classifier must be fitted again (its state is
        dropped).
        """
        clf = getattr(model, "classifier", None)
        if clf is None and hasattr(model, "module"):  # DistributedDataParallel, DataParallel
            clf = getattr(model.module, "classifier", None)
        if not isinstance(clf, torch.nn.Linear):
            raise ValueError(
                f"ViM needs the model's classifier, but model.classifier is "
                f"{type(clf).__name__ if clf is not None else None}; ViM scores classifiers "
                "(models trained with a cross-entropy head): bind a model whose classifier "
                "is an nn.Linear, pass ViM(weight=..., bias=...), or use a detector without "
                "logits (e.g. KNN, Mahalanobis)"
            )
        bias = clf.bias.detach() if clf.bias is not None else None
        old = (self._weight, self._bias)
        self._set_classifier(clf.weight.detach(), bias)
        same = old[0] is not None and all(
            a.shape == c.shape and torch.equal(a.to(c.device), c)
            for a, c in zip(old, (self._weight, self._bias), strict=True)
        )
        if not same:
            for k in [k for k in vars(self) if k.endswith("_")]:
                delattr(self, k)  # fitted with another classifier: fit again
        return self

    def _set_classifier(self, weight, bias) -> None:
        w = _float_tensor(weight, "weight")
        if w.ndim != 2 or w.shape[0] < 1 or w.shape[1] < 2:
            raise ValueError(
                f"weight has shape {tuple(w.shape)}; expected the classifier's (C, N) weight "
                "(nn.Linear(N, C).weight)"
            )
        if bias is None:
            b = torch.zeros(w.shape[0], dtype=w.dtype, device=w.device)
        else:
            b = _float_tensor(bias, "bias")
            if b.shape != (w.shape[0],):
                raise ValueError(
                    f"bias has shape {tuple(b.shape)}, but weight has {w.shape[0]} classes; "
                    f"pass the ({w.shape[0]},) bias of the same nn.Linear"
                )
        for t, nm in ((w, "weight"), (b, "bias")):
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"{nm} holds NaN or infinite values; pass a trained classifier")
        self._weight = w.detach().to(torch.float64).clone()  # (C, N)
        self._bias = b.detach().to(device=w.device, dtype=torch.float64).clone()  # (C,)

    def _classifier(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._weight is None:
            raise ValueError(
                "ViM needs the classifier's weight and bias: call bind(model) with a model "
                "whose classifier is an nn.Linear, or pass ViM(weight=..., bias=...)"
            )
        return self._weight, self._bias

    def _fit(self, x, y) -> None:
        W, b = self._classifier()
        t = _rows(x, "x")
        n, N = t.shape
        if N != W.shape[1]:
            raise ValueError(
                f"x has {N} features, but the classifier takes {W.shape[1]}; pass the "
                "penultimate features (output='features') of the bound model"
            )
        D = self.default_dim(N) if self.dim is None else self.dim
        if not 1 <= D < N:
            raise ValueError(
                f"dim={D} must be in 1..{N - 1} for {N}-dimensional features (the residual "
                f"needs at least one dimension); pass a smaller dim, e.g. {N // 2}"
            )
        f64 = t.to(device=W.device, dtype=torch.float64)
        u = -(torch.linalg.pinv(W) @ b)  # (N,) origin: the features with logits exactly b - b = 0
        X = f64 - u  # (n, N) centred at u
        _, vecs = torch.linalg.eigh(X.T @ X / n)  # ascending eigenvalues, columns = vectors
        residual_basis = vecs[:, : N - D]  # (N, N - D): the complement of the top-D subspace
        resid = (X @ residual_basis).norm(dim=1)  # (n,) ||x^{P-perp}||
        if not float(resid.sum()) > 0:
            raise ValueError(
                f"the training features have no residual off their top-{D} principal "
                f"subspace (they span at most {D} dimensions); pass a smaller dim"
            )
        logits = f64 @ W.T + b  # (n, C)
        self.dim_ = D
        self.u_ = u
        self.residual_basis_ = residual_basis.contiguous()
        self.alpha_ = float(logits.amax(dim=1).sum() / resid.sum())
        self.n_classes_ = W.shape[0]

    def residual_norm(self, x) -> torch.Tensor:
        """(n,) ``||x^{P-perp}||``, the norm of ``f - u`` off the principal subspace."""
        _check_fitted(self, "fitted_")
        t = _rows(x, "x", self.u_.shape[0])
        kw = {"device": t.device, "dtype": t.dtype}
        return ((t - self.u_.to(**kw)) @ self.residual_basis_.to(**kw)).norm(dim=1)

    def _predict_score(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        t = _rows(x, "x", self.u_.shape[0])  # (n, N)
        kw = {"device": t.device, "dtype": t.dtype}
        W, b = self._classifier()
        logits = t @ W.to(**kw).T + b.to(**kw)  # (n, C)
        score = torch.logsumexp(logits, dim=1) - self.alpha_ * self.residual_norm(t)
        return logits.argmax(dim=1), score
