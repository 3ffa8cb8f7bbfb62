"""Neural-network building blocks: ``Module``, layers, losses, ``functional``, ``init``."""

from tinytorch.nn import functional, init, utils
from tinytorch.nn.modules import *
from tinytorch.nn.parameter import Buffer, Parameter
