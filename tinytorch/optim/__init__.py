"""Optimizers and learning-rate schedulers with torch.optim's API and numerics.

All algorithms run torch's single-tensor ("for-loop") implementation with in-place numpy
ufuncs on ``p.data``; ``foreach``/``fused``/``capturable``/``differentiable`` are not
supported. ``GD`` is a tinytorch addition (plain gradient descent).
"""

from . import lr_scheduler
from .adam import Adam, AdamW
from .adam_variants import Adamax, NAdam, RAdam
from .adaptive import Adadelta, Adagrad, RMSprop
from .lbfgs import LBFGS
from .optimizer import Optimizer
from .sgd import GD, SGD

__all__ = [
    "GD",
    "LBFGS",
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "Optimizer",
    "RAdam",
    "RMSprop",
    "lr_scheduler",
]
