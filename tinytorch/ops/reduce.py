"""Reduction primitives: Sum, Amax/Amin, Prod, Cumsum, and the fused Softmax."""

from __future__ import annotations

import numpy as np

from tinytorch.autograd.grad_mode import STATE
from tinytorch.autograd.node import Node
from tinytorch.ops.elementwise import _const


def _keepdim_shape(in_shape: tuple[int, ...], axis: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axis else n for i, n in enumerate(in_shape))


class Sum(Node):
    """out = sum of a over ``axis``;  da = g broadcast back to a's shape."""

    __slots__ = ("axis", "in_shape", "keepdims")

    def forward(self, a, axis, keepdims, dtype=None):
        self.axis, self.keepdims, self.in_shape = axis, keepdims, a.shape
        return np.add.reduce(a, axis=axis, dtype=dtype, keepdims=keepdims)  # np.sum, unwrapped

    def backward(self, g):
        shape = g.data.shape if self.keepdims else _keepdim_shape(self.in_shape, self.axis)
        if not STATE.enabled:  # first order: the same broadcast view, made in numpy
            return _const(np.broadcast_to(g.data.reshape(shape), self.in_shape))
        return g.reshape(shape).expand(self.in_shape)


class _Extreme(Node):
    """Shared backward of Amax/Amin: g spread evenly over the tied extremes."""

    __slots__ = ("axis", "keepdims", "weights")

    def backward(self, g):
        if self.weights is None:
            self._raise_freed()
        if not self.keepdims:
            g = g.reshape(_keepdim_shape(self.weights.shape, self.axis))
        return g.expand(self.weights.shape) * _const(self.weights)

    def _save(self, a, out, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims
        hit = a == (out if keepdims else np.expand_dims(out, axis))
        self.weights = (hit / hit.sum(axis=axis, keepdims=True)).astype(a.dtype, copy=False)

    def release(self):
        self.weights = None


class Amax(_Extreme):
    """out = max of a over ``axis``;  da = g / (number of maxima) at each maximum."""

    __slots__ = ()

    def forward(self, a, axis, keepdims):
        out = np.maximum.reduce(a, axis=axis, keepdims=keepdims)
        self._save(a, out, axis, keepdims)
        return out


class Amin(_Extreme):
    """out = min of a over ``axis``;  da = g / (number of minima) at each minimum."""

    __slots__ = ()

    def forward(self, a, axis, keepdims):
        out = np.minimum.reduce(a, axis=axis, keepdims=keepdims)
        self._save(a, out, axis, keepdims)
        return out


class Prod(Node):
    """out = product of a over ``axis``;  da = g * (product of the other elements).

    Without zeros that is ``g * out / a`` (differentiable again). With zeros
    in the input the products of the others are formed in numpy from prefix
    and suffix products, so that path is once-differentiable.
    """

    __slots__ = ("axis", "has_zero", "keepdims")
    save_inputs = True
    save_output = True

    def forward(self, a, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims
        self.has_zero = bool((a == 0).any())
        return np.prod(a, axis=axis, keepdims=keepdims)

    def backward(self, g):
        (a,) = self.inputs
        out = self.output
        if not self.keepdims:
            shape = _keepdim_shape(a.shape, self.axis)
            g, out = g.reshape(shape), out.reshape(shape)
        if not self.has_zero:
            return g * out / a
        from tinytorch.autograd.grad_mode import STATE

        if STATE.enabled:
            raise RuntimeError(
                "ProdBackward0 with zeros in the input is only differentiable once "
                "(create_graph=True is not supported there)"
            )
        return g * _const(_prod_of_others(a.data, self.axis))


def _prod_of_others(a: np.ndarray, axis: tuple[int, ...]) -> np.ndarray:
    """For each element, the product of the other elements of its reduction group."""
    axis = tuple(sorted(axis))
    rest = [i for i in range(a.ndim) if i not in axis]
    moved = np.transpose(a, rest + list(axis))
    flat = moved.reshape(moved.shape[: len(rest)] + (-1,))
    ones = np.ones(flat.shape[:-1] + (1,), dtype=a.dtype)
    left = np.cumprod(np.concatenate([ones, flat[..., :-1]], -1), -1)
    right = np.cumprod(np.concatenate([ones, flat[..., :0:-1]], -1), -1)[..., ::-1]
    others = (left * right).reshape(moved.shape)
    return np.transpose(others, np.argsort(rest + list(axis)))


class Cumsum(Node):
    """out_i = sum_{j<=i} a_j along ``axis``;  da = reversed cumsum of reversed g."""

    __slots__ = ("axis",)

    def forward(self, a, axis, dtype=None):
        self.axis = axis
        return np.cumsum(a, axis=axis, dtype=dtype)

    def backward(self, g):
        return g.flip(self.axis).cumsum(self.axis).flip(self.axis)


class Softmax(Node):
    """p = exp(x - max) / sum exp(x - max) along ``dim``;  dx = p (g - sum(g p)) along ``dim``.

    One primitive instead of the composite's five (shift, exp, sum, divide, and the
    broadcast; ``softmax_reference`` in ``ops/composite.py``, the reference it is
    tested against); backward reads the saved output, in numpy unless ``create_graph``.
    """

    __slots__ = ("dim",)
    save_output = True

    def forward(self, x, dim):
        self.dim = dim
        e = x - np.maximum.reduce(x, axis=dim, keepdims=True)
        np.exp(e, out=e)
        e /= np.add.reduce(e, axis=dim, keepdims=True)
        return e

    def backward(self, g):
        p = self.output
        if STATE.enabled:
            return p * (g - (g * p).sum(self.dim, keepdim=True))
        pd = p.data
        d = g.data * pd
        s = np.add.reduce(d, axis=self.dim, keepdims=True)
        np.subtract(g.data, s, out=d)
        d *= pd
        return _const(d)
