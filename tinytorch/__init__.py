"""tinytorch: a readable tensor autodiff engine and deep-learning library on numpy,
with PyTorch's API (``import tinytorch as torch``)."""

from tinytorch import _malloc, autograd, nn, optim, testing, utils
from tinytorch._dlpack import from_dlpack
from tinytorch._dtype import (
    bool_ as bool,
)
from tinytorch._dtype import (
    dtype,
    float16,
    float32,
    float64,
    get_default_dtype,
    int8,
    int16,
    int32,
    int64,
    set_default_dtype,
    uint8,
)
from tinytorch._functions import *
from tinytorch._functions import __dict__ as _fn_namespace  # type: ignore[attr-defined]  # a module's __dict__ imports fine
from tinytorch.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from tinytorch.creation import (
    arange,
    as_tensor,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    multinomial,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from tinytorch.random import Generator, get_rng_state, initial_seed, manual_seed, set_rng_state
from tinytorch.serialization import load, save
from tinytorch.tensor import Size, Tensor

__version__ = "0.1.0"

_malloc.apply()  # glibc keeps freed array memory for reuse; see tinytorch/_malloc.py

# torch's dtype aliases
float = float32
double = float64
half = float16
long = int64
int = int32
short = int16

del _fn_namespace
