"""Functional forms of the layers and losses (``tinytorch.nn.functional``, imported as F)."""

from tinytorch.nn.functional._activation import *
from tinytorch.nn.functional._attention import *
from tinytorch.nn.functional._conv import *
from tinytorch.nn.functional._linear import *
from tinytorch.nn.functional._loss import *
from tinytorch.nn.functional._norm import *
from tinytorch.nn.functional._pool import *
from tinytorch.nn.functional._shape import *
