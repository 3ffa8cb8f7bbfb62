"""Activation functions (``torch.nn.functional`` names and defaults).

Each is a composite of Tensor ops, so gradients of any order come for free, except
the hot one fused into a primitive (``Gelu``; softmax is ``ops.reduce.Softmax``), whose
backward is numpy unless ``create_graph`` asks for Tensor ops; the composites stay as
tested references.
Piecewise functions select with ``where`` on a constant mask and feed every
branch an input clamped to that branch's own range: the unused branch then
never overflows, and a zero gradient times an infinite local derivative can
never turn into NaN. Gradients at the kinks follow torch's conventions (noted
per function). ``inplace=True`` is accepted and computed out of place (the
result is the same tensor values; the input is left untouched).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from tinytorch._functions import erf
from tinytorch.autograd import node as _node
from tinytorch.autograd.grad_mode import STATE
from tinytorch.autograd.node import Node
from tinytorch.ops.special import normal_cdf_array
from tinytorch.tensor import Tensor

__all__ = [
    "threshold", "relu", "relu6", "hardtanh", "elu", "selu", "celu", "leaky_relu", "prelu",
    "rrelu", "glu", "gelu", "logsigmoid", "hardshrink", "tanhshrink", "softsign", "softplus",
    "softmin", "softmax", "log_softmax", "tanh", "sigmoid", "hardsigmoid", "silu", "mish",
    "hardswish", "softshrink",
]  # fmt: skip

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """``x if x > threshold else value``;  grad 1 where x > threshold, else 0."""
    return input.where(input.data > threshold, value)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """``max(x, 0)``;  grad ``[x > 0]``."""
    return input.relu()


def hardtanh(
    input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> Tensor:
    """``clamp(x, min_val, max_val)``;  grad 1 strictly inside (torch: 0 at the ends)."""
    x = input.data
    inside = (x > min_val) & (x < max_val)
    return input.where(inside, Tensor._make(np.clip(x, min_val, max_val)))


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """``min(max(x, 0), 6)`` (``hardtanh(x, 0, 6)``)."""
    return hardtanh(input, 0.0, 6.0)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``x if x > 0 else alpha (e^x - 1)``."""
    neg = input.clamp(max=0.0).expm1() * alpha
    return input.where(input.data > 0, neg)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """``scale * elu(x, alpha)`` with the self-normalizing constants
    alpha = 1.6732632..., scale = 1.0507009..."""
    return elu(input, _SELU_ALPHA) * _SELU_SCALE


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``max(0, x) + min(0, alpha (e^(x/alpha) - 1))``."""
    neg = (input.clamp(max=0.0) / alpha).expm1() * alpha
    return input.where(input.data > 0, neg)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """``x if x > 0 else negative_slope * x``;  grad at 0 is ``negative_slope`` (torch)."""
    return input.where(input.data > 0, input * negative_slope)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """``x if x > 0 else w_c * x`` with one learnable slope per channel (dim 1), or
    one shared slope when ``weight`` has a single element."""
    if weight.numel() == 1:
        w = weight.reshape(())
    else:
        channels = input.shape[1] if input.ndim >= 2 else 1
        if weight.numel() != channels:
            raise RuntimeError(
                f"Mismatch of parameter numbers and input channel size. Found parameter numbers "
                f"= {weight.numel()} and channel size = {channels}."
            )
        w = weight.reshape((channels,) + (1,) * (input.ndim - 2))
    return input.where(input.data > 0, input * w)


def rrelu(
    input: Tensor,
    lower: float = 1.0 / 8,
    upper: float = 1.0 / 3,
    training: bool = False,
    inplace: bool = False,
) -> Tensor:
    """Randomized leaky ReLU: slope ~ U(lower, upper) per element when training,
    the fixed slope ``(lower + upper) / 2`` otherwise."""
    if not training:
        return leaky_relu(input, (lower + upper) / 2)
    from tinytorch.random import default_generator

    slope = default_generator.np.uniform(lower, upper, input.shape).astype(input.data.dtype)
    return input.where(input.data >= 0, input * Tensor._make(slope))


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """Gated linear unit: split ``x`` in halves ``a, b`` along ``dim``; ``a * sigmoid(b)``."""
    if input.ndim == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    n = input.shape[dim]
    if n % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {dim} is size {n}")
    a, b = input.chunk(2, dim)
    return a * b.sigmoid()


_SQRT_2_PI = math.sqrt(2.0 / math.pi)  # the tanh form's scale
_GELU_A = 0.044715  # the tanh form's cubic coefficient
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


class Gelu(Node):
    """Fused GELU, ``y = x * c(x)`` with the gate

    exact:  c = Phi(x) = 0.5 (1 + erf(x / sqrt 2)),
            dy/dx = Phi(x) + x phi(x),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi);
    tanh:   c = 0.5 (1 + h),  h = tanh(k (x + a x^3)),  k = sqrt(2/pi), a = 0.044715,
            dy/dx = c + 0.5 x (1 - h^2) k (1 + 3 a x^2).

    Forward is one gate evaluation and one product (the composite, ``_gelu_composite``,
    records five ops and its backward about fifteen). Backward runs in numpy: the exact
    form recovers Phi(x) = y / x from the saved output, which the next layer keeps
    anyway, the tanh form recomputes h; like torch, GELU keeps no activation-sized array
    but its input. Under
    ``create_graph`` it is written with Tensor ops on the input, so higher derivatives
    stay exact.
    """

    __slots__ = ("approximate",)
    save_inputs = True
    save_output = True

    def forward(self, x, approximate):
        self.approximate = approximate
        gate = _gelu_gate(x, approximate)
        return np.multiply(x, gate, out=gate)

    def backward(self, g):
        (x,) = self.inputs
        if STATE.enabled:
            return g * _gelu_grad_tensor(x, self.approximate)
        xd = x.data
        if self.approximate == "none":
            d = xd * xd  # phi(x) = exp(-x^2/2 - log sqrt(2 pi))
            d *= -0.5
            d -= _LOG_SQRT_2PI
            np.exp(d, out=d)
            d *= xd  # x phi(x)
            self._add_cdf(d, xd)
        else:  # 0.5 k (1 - h^2) x (1 + 3 a x^2) + 0.5 (1 + h), h recomputed
            h = _tanh_inner(xd)
            d = h * h
            np.subtract(1.0, d, out=d)
            d *= xd
            x2 = xd * xd
            x2 *= 3.0 * _GELU_A
            x2 += 1.0
            d *= x2
            d *= 0.5 * _SQRT_2_PI
            h *= 0.5
            d += h
            d += 0.5
        d *= g.data
        return Tensor._make(d)

    def _add_cdf(self, d: np.ndarray, x: np.ndarray) -> None:
        """d += Phi(x), in place: Phi(x) = y / x from the saved output, which the next
        layer keeps anyway (so GELU holds no array of its own), as d = (x d + y) / x
        (no x-sized temporary), 1/2 at x = 0; recomputed if y changed in place."""
        if self._out is None:
            self._raise_freed()
        y, version = self._out
        if version[0] != 0:
            d += normal_cdf_array(x)
            return
        d *= x
        d += y
        mask = x != 0
        np.divide(d, x, out=d, where=mask)
        np.logical_not(mask, out=mask)
        d[mask] = 0.5  # Phi(0); x phi(x) is 0 there


def _tanh_inner(x: np.ndarray) -> np.ndarray:
    """h = tanh(k (x + a x^3)), computed as tanh(x (k + k a x^2)) in place."""
    h = x * x
    h *= _SQRT_2_PI * _GELU_A
    h += _SQRT_2_PI
    h *= x
    return np.tanh(h, out=h)


def _gelu_gate(x: np.ndarray, approximate: str) -> np.ndarray:
    """The gate c(x) of y = x c(x): Phi(x), or 0.5 (1 + h)."""
    if approximate == "none":
        return normal_cdf_array(x)
    gate = _tanh_inner(x)
    gate += 1.0
    gate *= 0.5
    return gate


def _gelu_grad_tensor(x: Tensor, approximate: str) -> Tensor:
    """dGELU/dx with Tensor ops (recorded: the create_graph path of ``Gelu``)."""
    if approximate == "none":
        cdf = (erf(x * (1.0 / math.sqrt(2.0))) + 1.0) * 0.5
        return cdf + x * ((x * x * -0.5 - _LOG_SQRT_2PI).exp())
    h = ((x + x * x * x * _GELU_A) * _SQRT_2_PI).tanh()
    return (h + 1.0) * 0.5 + x * (1.0 - h * h) * (x * x * (3.0 * _GELU_A) + 1.0) * (
        0.5 * _SQRT_2_PI
    )


def _gelu_composite(input: Tensor, approximate: str = "none") -> Tensor:
    """GELU as a composite of Tensor ops: the reference the fused ``Gelu`` is tested against."""
    if approximate == "none":
        return input * 0.5 * (1.0 + erf(input * (1.0 / math.sqrt(2.0))))
    inner = (input + input * input * input * _GELU_A) * _SQRT_2_PI
    return input * 0.5 * (1.0 + inner.tanh())


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """``x * Phi(x)``: exact ``0.5 x (1 + erf(x / sqrt 2))`` or, with ``approximate='tanh'``,
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` (fused: see ``Gelu``)."""
    if approximate not in ("none", "tanh"):
        raise RuntimeError("approximate argument must be either none or tanh.")
    if input.data.dtype.kind != "f" or _node.trace_hook is not None:  # ONNX: composite ops
        return _gelu_composite(input, approximate)
    return Gelu.apply(input, approximate=approximate)


def logsigmoid(input: Tensor) -> Tensor:
    """``log(sigmoid(x))`` = ``x - log(1 + e^x)`` for x < 0, ``-log(1 + e^-x)`` otherwise
    (each branch only exponentiates non-positive numbers)."""
    neg = input.clamp(max=0.0)
    pos = input.clamp(min=0.0)
    return (neg - neg.exp().log1p()).where(input.data < 0, -((-pos).exp().log1p()))


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """``x if |x| > lambd else 0``."""
    return input.where(np.abs(input.data) > lambd, 0.0)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """``x - lambd if x > lambd, x + lambd if x < -lambd, else 0``."""
    x = input.data
    return (input - lambd).where(x > lambd, (input + lambd).where(x < -lambd, 0.0))


def tanhshrink(input: Tensor) -> Tensor:
    """``x - tanh(x)``."""
    return input - input.tanh()


def softsign(input: Tensor) -> Tensor:
    """``x / (1 + |x|)``."""
    return input / (input.abs() + 1.0)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + e^(beta x)) / beta``, and ``x`` itself where ``beta x > threshold``."""
    bx = input * beta
    smooth = bx.clamp(max=threshold).exp().log1p() / beta
    return input.where(bx.data > threshold, smooth)


def _softmax_dim(name: str, ndim: int) -> int:
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. Change the call to "
        "include dim=X as an argument.",
        stacklevel=3,
    )
    return 0 if ndim in (0, 1, 3) else 1


def _cast(input: Tensor, dtype: Any) -> Tensor:
    return input if dtype is None else input.to(dtype)


def softmax(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None
) -> Tensor:
    """``exp(x_i) / sum_j exp(x_j)`` along ``dim`` (computed in ``dtype`` if given)."""
    if dim is None:
        dim = _softmax_dim("softmax", input.ndim)
    return _cast(input, dtype).softmax(dim)  # the fused Softmax primitive (ops/reduce.py)


def softmin(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None
) -> Tensor:
    """``softmax(-x)`` along ``dim``."""
    if dim is None:
        dim = _softmax_dim("softmin", input.ndim)
    return (-_cast(input, dtype)).softmax(dim)


def log_softmax(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None
) -> Tensor:
    """``x_i - log sum_j exp(x_j)`` along ``dim`` (max-shifted, so large logits are safe)."""
    if dim is None:
        dim = _softmax_dim("log_softmax", input.ndim)
    return _cast(input, dtype).log_softmax(dim)


def tanh(input: Tensor) -> Tensor:
    return input.tanh()


def sigmoid(input: Tensor) -> Tensor:
    return input.sigmoid()


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """``clamp(x / 6 + 1/2, 0, 1)``;  grad 1/6 strictly inside (-3, 3)."""
    x = input.data
    inside = (x > -3.0) & (x < 3.0)
    return ((input + 3.0) / 6.0).where(inside, Tensor._make(np.clip((x + 3.0) / 6.0, 0.0, 1.0)))


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * sigmoid(x)`` (swish)."""
    return input * input.sigmoid()


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * tanh(softplus(x))``."""
    return input * softplus(input).tanh()


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * relu6(x + 3) / 6``: 0 below -3, x above 3, ``x (x + 3) / 6`` between
    (grad ``x/3 + 1/2`` on the closed middle interval, as torch)."""
    x = input.data
    mid = input * (input + 3.0) / 6.0
    return input.where(x > 3.0, mid.where(x >= -3.0, 0.0))
