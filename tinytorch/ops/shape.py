"""Movement and indexing primitives, in adjoint pairs.

Expand/Sum, Reshape/Reshape, Permute/Permute, Index/IndexAdd, Cat/Index,
Pad/Index: each backward is built from the op's adjoint, so every order of
derivative stays inside the same small set.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinytorch.autograd import node as _node
from tinytorch.autograd.grad_mode import STATE
from tinytorch.autograd.node import Node


class Expand(Node):
    """out = a broadcast to ``shape`` (a free numpy view);  da = g summed over broadcast dims.

    This is the only place where gradients are unbroadcast.
    """

    __slots__ = ("in_shape",)

    def forward(self, a, shape):
        self.in_shape = a.shape
        return np.broadcast_to(a, shape)

    def backward(self, g):
        in_shape = self.in_shape
        lead = g.ndim - len(in_shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(in_shape) if n == 1 and g.shape[lead + i] != 1
        )
        if axes:
            g = g.sum(axes, keepdim=True)
        return g.reshape(in_shape) if g.shape != in_shape else g


class Reshape(Node):
    """out = a reshaped (a view when numpy can);  da = g reshaped back."""

    __slots__ = ("in_shape",)

    def forward(self, a, shape):
        self.in_shape = a.shape
        return np.reshape(a, shape)

    def backward(self, g):
        return g.reshape(self.in_shape)


class Permute(Node):
    """out = a with axes permuted (a view);  da = g with the inverse permutation."""

    __slots__ = ("dims",)

    def forward(self, a, dims):
        self.dims = dims
        return np.transpose(a, dims)

    def backward(self, g):
        inverse = [0] * len(self.dims)
        for i, d in enumerate(self.dims):
            inverse[d] = i
        return g.permute(tuple(inverse))


class Index(Node):
    """out = a[idx] (numpy indexing);  da = zeros with g added at idx (``IndexAdd``)."""

    __slots__ = ("idx", "in_shape")

    def forward(self, a, idx):
        self.idx, self.in_shape = idx, a.shape
        return a[idx]

    def backward(self, g):
        if STATE.enabled:
            return IndexAdd.apply(g.new_zeros(self.in_shape), g, idx=self.idx)
        # First order: the same sum written straight into one zero array (IndexAdd would
        # copy its base first: two full-size arrays for every slice's gradient).
        out = np.zeros(self.in_shape, g.data.dtype)
        _add_at(out, self.idx, g.data)
        return _node._wrap(out)


def _is_advanced(idx: tuple) -> bool:
    return any(isinstance(i, np.ndarray) and i.dtype != np.bool_ for i in idx)


def _add_at(out: np.ndarray, idx: Any, src: np.ndarray) -> None:
    """``out[idx] += src`` in place, repeated integer indices accumulating."""
    if _is_advanced(idx if isinstance(idx, tuple) else (idx,)):
        np.add.at(out, idx, src)
    else:
        out[idx] += src


class IndexAdd(Node):
    """out = base with src added at idx (repeated indices accumulate).

    d base = g;  d src = g[idx].
    """

    __slots__ = ("idx",)

    def forward(self, base, src, idx):
        self.idx = idx
        out = base.copy()
        _add_at(out, idx, src)
        return out

    def backward(self, g):
        nb, ns = self.next_nodes
        return (g if nb is not None else None), (g[self.idx] if ns is not None else None)


class Cat(Node):
    """out = concatenation along ``axis``;  d input_k = the k-th slice of g."""

    __slots__ = ("axis", "sizes")

    def forward(self, *arrays, axis):
        self.axis = axis
        self.sizes = [a.shape[axis] for a in arrays]
        return np.concatenate(arrays, axis=axis)

    def backward(self, g):
        grads = []
        start = 0
        lead = (slice(None),) * self.axis
        for size, nxt in zip(self.sizes, self.next_nodes):
            grads.append(g[lead + (slice(start, start + size),)] if nxt is not None else None)
            start += size
        return tuple(grads)


class Pad(Node):
    """out = a padded with a constant;  da = the interior slice of g."""

    __slots__ = ("interior",)

    def forward(self, a, widths, value):
        self.interior = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, a.shape))
        return np.pad(a, widths, mode="constant", constant_values=value)

    def backward(self, g):
        return g[self.interior]


class IndexSet(Node):
    """out = base with ``out[idx] = src`` (src already shaped like ``base[idx]``).

    d base = g with zeros written at idx;  d src = g[idx].
    """

    __slots__ = ("idx",)

    def forward(self, base, src, idx):
        self.idx = idx
        out = base.copy()
        out[idx] = src
        return out

    def backward(self, g):
        nb, ns = self.next_nodes
        gb = IndexSet.apply(g, g.new_zeros(()).expand(g[self.idx].shape), idx=self.idx)
        return (gb if nb is not None else None), (g[self.idx] if ns is not None else None)
