"""Learning-rate schedulers with torch.optim.lr_scheduler's API and exact numbers.

Every scheduler adjusts ``group["lr"]`` of each param group of the wrapped optimizer (one lr
per group), records ``initial_lr`` in the groups, and exposes ``step()``, ``get_last_lr()``,
``last_epoch``, ``base_lrs`` and ``state_dict()``/``load_state_dict()`` (the optimizer is not
part of the state). ``Scheduler`` is an alias of ``LRScheduler`` (the project seed's name).
Tensor-valued learning rates are not supported.
"""

from ._scheduler_base import LRScheduler
from ._schedulers_cyclic import CosineAnnealingWarmRestarts, CyclicLR, OneCycleLR
from ._schedulers_meta import ChainedScheduler, ReduceLROnPlateau, SequentialLR
from ._schedulers_simple import (
    ConstantLR,
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    MultiplicativeLR,
    MultiStepLR,
    PolynomialLR,
    StepLR,
)

Scheduler = LRScheduler

__all__ = [
    "ChainedScheduler",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "MultiplicativeLR",
    "OneCycleLR",
    "PolynomialLR",
    "ReduceLROnPlateau",
    "Scheduler",
    "SequentialLR",
    "StepLR",
]
