"""Training: full runs of any registered method, the sliders' head-only mode, fine-tuning.

* :func:`train` (:mod:`.train`): one run of ``config.method`` (checkpoints, resume,
  torchrun, bf16, weight averaging).
* :func:`train_head`, :class:`FeatureCache` (:mod:`.head`): the sliders' fast mode, a
  fresh projection head on cached backbone features.
* :func:`optimize` (:mod:`.loop`): the one optimisation loop both run.
* :func:`lr_at`, :class:`WeightAverage` (:mod:`.schedule`).
* :func:`prepare_data`, :func:`seed_of` (:mod:`.data`).
* :func:`fine_tune`, :func:`msc_config` (:mod:`.one_class`): mean-shifted fine-tuning.
"""

from .data import prepare_data, seed_of
from .head import FeatureCache, HeadRun, fresh_head, train_head
from .loop import Callback, LoopState, optimize
from .one_class import (
    MSC_RECIPE,
    OneClassData,
    fine_tune,
    load_one_class_data,
    msc_config,
    starting_model,
)
from .schedule import WeightAverage, lr_at
from .train import (
    CHECKPOINT_NAME,
    TrainResult,
    describe_pretrained,
    freeze_batch_norm,
    load_pretrained,
    train,
)

__all__ = [
    "CHECKPOINT_NAME",
    "MSC_RECIPE",
    "Callback",
    "FeatureCache",
    "HeadRun",
    "LoopState",
    "OneClassData",
    "TrainResult",
    "WeightAverage",
    "describe_pretrained",
    "fine_tune",
    "freeze_batch_norm",
    "fresh_head",
    "load_one_class_data",
    "load_pretrained",
    "lr_at",
    "msc_config",
    "optimize",
    "prepare_data",
    "seed_of",
    "starting_model",
    "train",
    "train_head",
]
