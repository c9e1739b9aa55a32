"""One configuration object for every method, with the paper's recipe as a preset.

``Config`` holds everything a training run needs; it is saved inside every checkpoint so
that ``mclviz.checkpoint.load(path)`` can rebuild the model from the file alone.

Presets:
    ``paper``: the recipe of section 4 (ResNet-34, projection 128, batch 1024, tau 0.2,
        alpha 0.05, beta 2.5, lambda 1, SGD momentum 0.9, weight decay 1e-6,
        lr 0.3 x batch / 256, cosine annealing without warm-up). The paper does not state
        the number of epochs; 500 follows SimCLR's CIFAR-10 runs (our choice).
    ``small``: a CPU run: quarter-width ResNet-18, batch 128 images, 15 epochs (5,850
        steps on CIFAR-10), bf16 on CPUs that support it. Measured on 2 cores: about 27
        to 32 minutes for the two-view methods (``simclr``, ``supclr``, ``ccm``,
        ``mcl-noaux``; 3.0 to 3.4 steps/s, ~800 views/s); ``mcl`` sees each image in 4
        rotations x 2 views, so its steps cost 4x as much (~1.1 s, about 1 h 50 min).
    ``tiny``: seconds, for tests: width 0.125, 256 training images, 2 epochs.

"batch_size" counts images; with the rotation auxiliary each image enters in its 4
rotations, each with 2 augmented views (8 views per image, as Eq. 11 needs).

>>> cfg = Config.preset("tiny", method="simclr")
>>> cfg.arch, cfg.method
('resnet18', 'simclr')
>>> Config.preset("tiny", alhpa=0.1)
Traceback (most recent call last):
...
ValueError: unknown config field 'alhpa' (did you mean 'alpha'?); valid fields: ...
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from . import methods

__all__ = ["PRESETS", "Config"]


@dataclass
class Config:
    """Every knob of a run. Field comments give units and the paper's value."""

    method: str = "mcl"  # a name of the method registry (mclviz.methods.names())
    arch: str = "resnet34"  # CIFAR resnet18 | resnet34 (paper) | fastnet, or tv-resnet*
    width: float = 1.0  # channel multiplier of the backbone (paper: 1.0)
    proj_dim: int = 128  # projection head output dimension (paper: 128)
    head_hidden: int | None = None  # projection head hidden width; None = feature width
    normalize_input: bool = True  # standardise pixels inside the model (authors' code: no)
    dataset: str = "cifar10"  # in-distribution data set name or path (mclviz.data)
    data_root: str | None = None  # data root; None -> $MCLVIZ_DATA -> ./data
    train_subset: int | None = None  # train on this many images (explicit subset); None = all
    known_classes: list[int] | None = None  # open-set: train on these classes only; None = all
    normal_class: int | None = None  # one-class (msc): the normal class
    num_classes: int | None = None  # classifier outputs; None = from the training labels
    epochs: int = 500  # training epochs (the paper does not state it; SimCLR's 500)
    batch_size: int = 1024  # images per step, before rotations and views (paper: 1024)
    lr: float | None = None  # SGD learning rate; None -> 0.3 * batch_size / 256 (paper)
    momentum: float = 0.9  # SGD momentum (paper: 0.9)
    weight_decay: float = 1e-6  # SGD weight decay (paper: 1e-6)
    warmup_epochs: float = 0.0  # linear warm-up before the decay (paper: none)
    lr_schedule: str = "cosine"  # decay after warm-up: "cosine" (paper) | "linear" (to 0)
    nesterov: bool = False  # Nesterov momentum (paper: plain momentum)
    ema_decay: float = 0.0  # per-step EMA of the weights, evaluated and shipped; 0 = off
    label_smoothing: float = 0.0  # cross-entropy label smoothing (ce, rot, aux_ce)
    bn_momentum: float | None = None  # backbone batch-norm momentum; None = the arch's own
    head_norm: bool = False  # batch norm in the projection head (Linear-BN-ReLU-Linear)
    rotations_per_image: int = 4  # mcl / rot: 4 = every rotation (paper), 1 = one at random
    aux_ce: float = 0.0  # weight of an auxiliary cross-entropy head on f(x) (0 = the paper)
    ce_augment: str = "crop"  # ce / rot views: "crop" (scale 0.5-1, flip) | "translate"
    holdout: int = 0  # keep this many training images out (stratified) as a validation set
    tau: float = 0.2  # temperature (paper: 0.2)
    alpha: float = 0.05  # CCM mask for same label (and same aux label) (paper: 0.05)
    beta: float = 2.5  # CCM mask for same label, different aux label (paper: 2.5)
    lam: float = 1.0  # SPA weight lambda, Eq. 10 (paper: 1)
    spa_mode: str = "sample"  # SPA positive: "sample" (paper, Eq. 9) or "expected"
    variant: str = "paper"  # loss variant: "paper" or "official" (authors' code)
    rot_weight: float = 0.5  # rot method: weight of the rotation cross-entropy (Hendrycks: 0.5)
    msc_tau: float = 0.25  # mean-shifted temperature (Reiss & Hoshen: 0.25)
    msc_angular: float = 0.0  # weight of the angular center loss (0 = off)
    msc_lr: float = 1e-5  # mean-shifted fine-tuning learning rate (Reiss & Hoshen: 1e-5)
    pretrained: str | None = None  # msc: starting backbone (checkpoint path or "imagenet")
    jitter_strength: float = 0.5  # colour distortion strength s (paper: 0.5)
    crop_scale_min: float = 0.08  # random resized crop lower scale (SimCLR: 0.08)
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:1" ...
    precision: str = "auto"  # "auto" (bf16 on CPU/GPU when supported) | "fp32" | "bf16" | "fp16"
    channels_last: bool | None = None  # None -> on when precision is not fp32
    seed: int = 0  # seeds data order, augmentation and SPA draws
    save_every: int = 200  # also checkpoint every this many steps (and every epoch)
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes saved with the run

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ building
    @classmethod
    def preset(cls, name: str = "paper", **overrides: Any) -> Config:
        """The named preset with ``overrides`` applied; unknown names or fields raise."""
        if name not in PRESETS:
            raise ValueError(f"preset={name!r} is not known; choose one of {sorted(PRESETS)}")
        values = dict(PRESETS[name])
        values.update(overrides)
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        """Build from a mapping; a key that is not a field raises ``ValueError`` naming it.

        Configs saved before ``num_classes`` was a field kept it in ``extra``; it is moved.
        """
        values = dict(values)
        extra = dict(values.get("extra") or {})
        if "num_classes" in extra and values.get("num_classes") is None:
            values["num_classes"] = int(extra.pop("num_classes"))
            values["extra"] = extra
        names = [f.name for f in dataclasses.fields(cls)]
        for key in values:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(
                    f"unknown config field {key!r}{hint}; valid fields: {', '.join(names)}"
                )
        return cls(**values)

    def replace(self, **overrides: Any) -> Config:
        """A copy with ``overrides`` applied (checked like ``from_dict``)."""
        values = self.to_dict()
        values.update(overrides)
        return Config.from_dict(values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Config:
        return cls.from_dict(json.loads(text))

    @staticmethod
    def parse_value(key: str, text: str) -> Any:
        """Parse a command-line string for field ``key`` into the field's type.

        >>> Config.parse_value("known_classes", "0,1,2")
        [0, 1, 2]
        """
        fields = {f.name: f for f in dataclasses.fields(Config)}
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown config field {key!r}{hint}")
        kind = str(fields[key].type)
        if "None" in kind and text.lower() in ("none", "null"):
            return None
        try:
            if kind.startswith("bool"):
                if text.lower() in ("1", "true", "yes", "on"):
                    return True
                if text.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError("expected true or false")
            if kind.startswith("list[int]"):
                return [int(v) for v in text.split(",") if v.strip()]
            if kind.startswith("int"):
                return int(text)
            if kind.startswith("float"):
                return float(text)
            if kind.startswith("dict"):
                return json.loads(text)
        except ValueError as err:
            raise ValueError(f"{key}={text!r} is not a valid {kind}: {err}") from None
        return text

    # ---------------------------------------------------------------- derived
    @property
    def method_entry(self) -> methods.Method:
        """The method's registry entry (``mclviz.methods``)."""
        return methods.get(self.method)

    @property
    def uses_rotation(self) -> bool:
        """True when the method trains with (class, rotation) labels (Eq. 11): SEI applies."""
        return self.method_entry.rotation_labels

    @property
    def views_per_image(self) -> int:
        """Forward passes per training image per step: 1 for ``ce``, 4 rotations for
        ``rot``, 4 rotations x 2 augmented views for ``mcl``, 2 views for the others
        (``rotations_per_image=1``: ``rot`` 2, upright + one rotation; ``mcl`` 2)."""
        return int(self.method_entry.views_per_image(self))

    @property
    def learning_rate(self) -> float:
        """``lr``, or the method's default (the paper's ``0.3 x batch_size / 256``)."""
        return self.method_entry.learning_rate(self)

    # ------------------------------------------------------------- validation
    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field and the fix."""
        entry = methods.get(self.method)  # raises, naming the registered methods
        if self.arch not in _ARCHS:
            raise ValueError(
                f"arch={self.arch!r} is not known; choose one of {_ARCHS} (fastnet is the fast "
                "CPU backbone; tv-* are torchvision's ImageNet ResNets, for mean-shifted "
                "fine-tuning)"
            )
        for name, (choices, fix) in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"{name}={getattr(self, name)!r}: {fix}")
        for name, (ok, fix) in _RANGES.items():
            value = getattr(self, name)
            if value is not None and not ok(value):
                raise ValueError(f"{name}={value!r} {fix}")
        self._check_method_fields(entry)

    def _check_method_fields(self, entry: methods.Method) -> None:
        """The fields whose valid values depend on the method."""
        for name in [h for h in ("alpha", "beta") if h in entry.hyperparameters]:
            value = getattr(self, name)
            if not 0 < value <= 1 / self.tau:
                raise ValueError(
                    f"{name}={value!r} must lie in (0, 1/tau] = (0, {1 / self.tau:g}] "
                    f"(paper: alpha=0.05, beta=2.5 with tau=0.2)"
                )
        if entry.check is not None:
            entry.check(self)
        if self.rotations_per_image != 4 and not entry.rotation_labels:
            with_rot = [m for m in methods.names() if methods.get(m).rotation_labels]
            raise ValueError(
                f"rotations_per_image={self.rotations_per_image} applies to the methods with "
                f"rotation labels {with_rot}, not method={self.method!r}; leave it at 4"
            )
        if self.aux_ce and not entry.contrastive:
            raise ValueError(
                f"aux_ce={self.aux_ce!r} is for the contrastive methods; method="
                f"{self.method!r} has no contrastive loss to add it to: set aux_ce=0"
            )


_ARCHS = (
    "resnet18",
    "resnet34",
    "fastnet",
    "tv-resnet18",
    "tv-resnet34",
    "tv-resnet50",
    "tv-resnet152",
)
#: field -> (valid values, the fix said when it holds another)
_CHOICES: dict[str, tuple[tuple[Any, ...], str]] = {
    "spa_mode": (("sample", "expected"), "choose 'sample' or 'expected'"),
    "variant": (("paper", "official"), "choose 'paper' or 'official'"),
    "precision": (("auto", "fp32", "bf16", "fp16"), "choose 'auto', 'fp32', 'bf16' or 'fp16'"),
    "lr_schedule": (("cosine", "linear"), "choose 'cosine' or 'linear'"),
    "ce_augment": (("crop", "translate"), "choose 'crop' or 'translate'"),
    "rotations_per_image": (
        (4, 1),
        "choose 4 (every rotation, the paper) or 1 (one random rotation per image per step)",
    ),
}
#: field -> (test of a valid value, the rule and fix said otherwise); None always passes
_RANGES: dict[str, tuple[Any, str]] = {
    "epochs": (lambda v: int(v) >= 1, "must be >= 1"),
    "batch_size": (lambda v: int(v) >= 1, "must be >= 1"),
    "proj_dim": (lambda v: int(v) >= 1, "must be >= 1"),
    "width": (lambda v: v > 0, "must be > 0"),
    "tau": (lambda v: v > 0, "must be > 0 (the paper uses 0.2)"),
    "lam": (lambda v: v >= 0, "must be >= 0"),
    "num_classes": (lambda v: v >= 1, "must be >= 1, or None (from labels)"),
    "lr": (lambda v: v > 0, "must be > 0, or None for 0.3 * batch_size / 256"),
    "ema_decay": (
        lambda v: 0.0 <= v < 1.0,
        "must lie in [0, 1): 0 turns the weight average off, 0.99-0.999 average over the "
        "last ~100-1,000 steps",
    ),
    "label_smoothing": (lambda v: 0.0 <= v < 1.0, "must lie in [0, 1) (fast recipes: 0.2)"),
    "bn_momentum": (
        lambda v: 0.0 < v <= 1.0,
        "must lie in (0, 1], or None for the architecture's default",
    ),
    "aux_ce": (lambda v: v >= 0, "must be >= 0 (0 = the paper's loss)"),
    "holdout": (lambda v: v >= 0, "must be >= 0 (0 = train on every image)"),
    "train_subset": (lambda v: v >= 1, "must be >= 1 or None (all)"),
}


PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "small": {
        "arch": "resnet18",
        "width": 0.25,
        "epochs": 15,
        "batch_size": 128,
        "save_every": 100,
    },
    # the recommended CPU recipe; each value and the held-out ablations that chose it are
    # in docs/recipe.md (tuned on 5,000 held-out training images, never the test set)
    "fast": {
        "arch": "fastnet",
        "width": 1.0,
        "head_norm": True,
        "epochs": 10,
        "batch_size": 512,
        "lr": 0.8,
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 5e-4,
        "warmup_epochs": 1.0,
        "lr_schedule": "linear",
        "ema_decay": 0.99,
        "label_smoothing": 0.2,
        "ce_augment": "translate",
        "crop_scale_min": 0.35,
        "jitter_strength": 0.25,
        "save_every": 50,
    },
    "tiny": {
        "arch": "resnet18",
        "width": 0.125,
        "proj_dim": 32,
        "epochs": 2,
        "batch_size": 32,
        "train_subset": 256,
        "save_every": 1000,
    },
}
