"""Sliding-window primitives: the adjoint pair ``Im2Col`` / ``Col2Im``, ``Conv`` and
``MaxPool``.

Transposed convolution, average pooling, ``unfold`` and ``fold`` are composites
of the pair and a matmul (see ``nn/functional/_conv.py`` and ``_pool.py``), so
their gradients of every order come from the two formulas below. ``Conv`` fuses
``Im2Col`` + matmul + bias for speed; its backward is written with the pair, and
``conv_reference`` keeps the composite it is tested against. ``MaxPool`` likewise
fuses the ``Index`` gather of each window's argmax (``max_pool_reference`` in
``nn/functional/_pool.py``).

Shape letters: N batch, C channels, S the spatial sizes (L, or H and W), P the
padded spatial sizes, k the kernel sizes, K = prod(k), O the output positions
per spatial dim and M = prod(O).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from tinytorch.autograd import node as _node
from tinytorch.autograd.grad_mode import STATE
from tinytorch.autograd.node import Node
from tinytorch.ops.shape import IndexAdd


class Geometry(NamedTuple):
    """Where the windows of a convolution or pooling lie, one entry per spatial dim.

    Window ``o`` along a dim reads the padded positions ``o * stride + j * dilation``
    for ``j < kernel``; ``padding`` is ``(lo, hi)`` per dim (asymmetric for
    ``padding='same'`` with an even kernel, and for pooling's ``ceil_mode``).
    """

    size: tuple[int, ...]  # S: the unpadded spatial sizes
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...]
    out: tuple[int, ...]  # O: the number of windows per dim

    @property
    def padded(self) -> tuple[int, ...]:
        return tuple(n + lo + hi for n, (lo, hi) in zip(self.size, self.padding))

    def interior(self) -> tuple[slice, ...]:
        """The index of the unpadded input inside the padded (N, C, *P) array."""
        return (slice(None), slice(None)) + tuple(
            slice(lo, lo + n) for n, (lo, _) in zip(self.size, self.padding)
        )

    def offset_slice(self, offset: tuple[int, ...]) -> tuple[slice, ...]:
        """The padded positions read by kernel offset ``offset`` in every window."""
        return (slice(None), slice(None)) + tuple(
            slice(j * d, j * d + s * (o - 1) + 1, s)
            for j, d, s, o in zip(offset, self.dilation, self.stride, self.out)
        )


def out_size(n: int, k: int, s: int, lo: int, hi: int, d: int) -> int:
    """Number of windows along a dim of size ``n`` padded by ``(lo, hi)`` (floor mode)."""
    return (n + lo + hi - d * (k - 1) - 1) // s + 1


def pad_array(x: np.ndarray, geom: Geometry, value: float = 0.0) -> np.ndarray:
    """``x`` (N, C, *S) padded to (N, C, *P) with ``value`` (``x`` itself without padding)."""
    if not any(lo or hi for lo, hi in geom.padding):
        return x
    out = np.full(x.shape[:2] + geom.padded, value, dtype=x.dtype)
    out[geom.interior()] = x
    return out


def windows(xp: np.ndarray, geom: Geometry) -> np.ndarray:
    """A read-only strided view (N, C, *k, *O) of the padded (N, C, *P) array:
    ``view[n, c, j.., o..] = xp[n, c, o * stride + j * dilation]`` (no copy)."""
    s_n, s_c, *s_sp = xp.strides
    shape = xp.shape[:2] + geom.kernel + geom.out
    strides = (
        (s_n, s_c)
        + tuple(s * d for s, d in zip(s_sp, geom.dilation))
        + tuple(s * st for s, st in zip(s_sp, geom.stride))
    )
    return as_strided(xp, shape, strides, writeable=False)


def offset_views(xp: np.ndarray, geom: Geometry) -> list[np.ndarray]:
    """The K strided views (N, C, *O) of the padded (N, C, *P) array, one per kernel offset
    in row-major order: ``views[j][n, c, o] = xp[n, c, o * stride + j * dilation]``."""
    return [xp[geom.offset_slice(j)] for j in itertools.product(*map(range, geom.kernel))]


def window_max(views: list[np.ndarray]) -> np.ndarray:
    """The elementwise maximum of the views (NaN wins): K - 1 passes, one new array."""
    if len(views) == 1:
        return views[0].copy()
    best = np.maximum(views[0], views[1])
    for v in views[2:]:
        np.maximum(best, v, out=best)
    return best


def im2col(x: np.ndarray, geom: Geometry) -> np.ndarray:
    """The columns (N, C*K, M) of x (N, C, *S): one strided copy, the only pass over
    the K-times larger column array."""
    n, c = x.shape[:2]
    cols = np.empty((n, c) + geom.kernel + geom.out, dtype=x.dtype)
    np.copyto(cols, windows(pad_array(x, geom), geom))
    return cols.reshape(n, c * math.prod(geom.kernel), math.prod(geom.out))


def col2im(cols: np.ndarray, geom: Geometry) -> np.ndarray:
    """Sum the columns (N, C*K, M) back into (N, C, *S): one strided add per kernel offset."""
    n = cols.shape[0]
    c = cols.shape[1] // math.prod(geom.kernel)
    out = np.zeros((n, c) + geom.padded, dtype=cols.dtype)
    per_offset = cols.reshape((n, c) + geom.kernel + geom.out)  # (N, C, *k, *O)
    lead = (slice(None), slice(None))
    for offset in itertools.product(*map(range, geom.kernel)):
        region = out[geom.offset_slice(offset)]
        np.add(region, per_offset[lead + offset], out=region)
    if any(lo or hi for lo, hi in geom.padding):
        out = out[geom.interior()]
    return out


def _is_pointwise(geom: Geometry) -> bool:
    """Whether every window is a single pixel read in place (1x1 kernel, stride 1, no pad)."""
    return (
        all(k == 1 for k in geom.kernel)
        and all(s == 1 for s in geom.stride)
        and not any(lo or hi for lo, hi in geom.padding)
    )


class Im2Col(Node):
    """cols[n, (c, j), m] = xpad[n, c, o_m * stride + j * dilation]: every window as a column.

    Shape: (N, C, *S) -> (N, C*K, M), channel-major rows so that groups of
    channels are contiguous row blocks. VJP: dx = Col2Im(g), each column
    entry added back to the pixel it was read from.
    """

    __slots__ = ("geom",)

    def forward(self, x, geom):
        self.geom = geom
        return im2col(x, geom)

    def backward(self, g):
        return Col2Im.apply(g, geom=self.geom)


class Col2Im(Node):
    """out[n, c, p] = sum of cols[n, (c, j), m] over the (j, m) with o_m * stride + j * dilation
    = p, then the padding cropped. The adjoint of ``Im2Col``.

    Shape: (N, C*K, M) -> (N, C, *S). VJP: dcols = Im2Col(g).
    The sum loops over the K kernel offsets only, one strided add each.
    """

    __slots__ = ("geom",)

    def forward(self, cols, geom):
        self.geom = geom
        return col2im(cols, geom)

    def backward(self, g):
        return Im2Col.apply(g, geom=self.geom)


#: The im2col columns are K times the input (12.5 MiB for a batch of 64 8-channel 28x28
#: images and a 3x3 kernel, GBs for larger nets). Conv keeps them for the weight gradient
#: only up to ``_COLS_KEEP_BYTES`` (the backward then skips making them again: 7-17%
#: faster on small convs); larger ones are made ``_COLS_CHUNK_BYTES`` of images at a time,
#: in forward and again in backward, so that a conv holds no more than its input, as
#: torch's does (in cache, the chunked forward is faster than one big im2col).
_COLS_KEEP_BYTES = 1 << 22
_COLS_CHUNK_BYTES = 1 << 21


def _cols_bytes_per_image(x: np.ndarray, geom: Geometry) -> int:
    return x.shape[1] * math.prod(geom.kernel) * math.prod(geom.out) * x.itemsize


def _column_chunks(x: np.ndarray, geom: Geometry, groups: int
                   ) -> Iterator[tuple[slice, np.ndarray]]:  # fmt: skip
    """(a slice of x's batch, its columns (n, G, C/G*K, M)), ``_COLS_CHUNK_BYTES`` each."""
    step = max(1, _COLS_CHUNK_BYTES // _cols_bytes_per_image(x, geom))
    for i in range(0, x.shape[0], step):
        part = slice(i, i + step)
        cols = im2col(x[part], geom)  # (n, C*K, M)
        yield part, cols.reshape(cols.shape[0], groups, -1, cols.shape[2])


class Conv(Node):
    """Fused convolution: out[n, f, o] = b[f] + sum_{c, j} w[f, c, j] xpad[n, c, o*stride + j*dil]
    over the channels c of f's group.

    Shape: x (N, C, *S), w (F, C/G, *k), b (F,) -> (N, F, *O).
    Forward: ``Im2Col`` (one strided copy) + one GEMM batched over (N, G), bias
    added in place. The composite ``Im2Col`` + ``matmul`` (``conv_reference`` in
    ``nn/functional/_conv.py``) is the same math; fused, it skips the bias-add pass
    and the broadcast copies of the weight.

    VJP, with W = w as (G, F/G, C/G*K) and cols = Im2Col(x):
    dx = Col2Im(W^T @ g),  dw = sum_n g @ cols^T,  db = sum of g over N and O.
    Under create_graph this is computed with tinytorch ops (``cols`` recomputed as an
    ``Im2Col`` node of x, so second derivatives reach x). A first-order backward
    computes the same in numpy: dw from the forward's columns (kept when small, else
    made again in chunks: see ``_COLS_KEEP_BYTES``), dx fusing W^T @ g into the col2im
    loop one kernel offset at a time (no (N, C*K, M) temporary).
    """

    __slots__ = ("cols", "geom", "groups")
    save_inputs = True

    def forward(self, x, w, b=None, *, geom, groups):
        self.geom, self.groups = geom, groups
        n, f = x.shape[0], w.shape[0]
        m = math.prod(geom.out)
        ck_g = w[0].size  # C/G * K
        w3 = w.reshape(groups, f // groups, ck_g)
        if _is_pointwise(geom) or _cols_bytes_per_image(x, geom) * n <= _COLS_KEEP_BYTES:
            # columns made at once and kept (a 1x1 conv's are a view of x)
            cols = x.reshape(n, -1, m) if _is_pointwise(geom) else im2col(x, geom)
            self.cols = cols.reshape(n, groups, ck_g, m)  # (N, G, C/G*K, M)
            # (G, F/G, C/G*K) @ (N, G, C/G*K, M) -> (N, G, F/G, M): w broadcast over N.
            out = np.matmul(w3, self.cols)
        else:  # columns made a chunk of images at a time, and not kept
            self.cols = None
            out = np.empty((n, groups, f // groups, m), dtype=np.result_type(x, w))
            for part, cols in _column_chunks(x, geom, groups):
                np.matmul(w3, cols, out=out[part])
        out = out.reshape(n, f, m)  # (N, F, M)
        if b is not None:
            out += b.reshape(f, 1)
        return out.reshape((n, f) + geom.out)

    def backward(self, g):
        need = self.needs_input_grad
        grads = self._backward_graph(g) if STATE.enabled else self._backward_numpy(g)
        gb = g.sum((0,) + tuple(range(2, g.ndim))) if len(need) > 2 and need[2] else None
        return (*grads, gb)[: len(need)]

    def _backward_graph(self, g):
        """dx, dw with tinytorch ops (differentiable again)."""
        x, w = self.inputs[:2]
        need = self.needs_input_grad
        n, f = g.shape[:2]
        groups, geom = self.groups, self.geom
        m = math.prod(geom.out)
        ck_g = w.shape[1] * math.prod(geom.kernel)
        g4 = g.reshape(n, groups, f // groups, m)  # (N, G, F/G, M)
        w3 = w.reshape(groups, f // groups, ck_g)  # (G, F/G, C/G*K)
        gx = gw = None
        if need[0]:
            gcols = (w3.mT @ g4).reshape(n, groups * ck_g, m)  # (N, G, C/G*K, M) -> (N, C*K, M)
            gx = Col2Im.apply(gcols, geom=geom)
        if need[1]:
            cols = Im2Col.apply(x, geom=geom).reshape(n, groups, ck_g, m)  # (N, G, C/G*K, M)
            gw = (g4 @ cols.mT).sum(0).reshape(w.shape)  # (N, G, F/G, C/G*K) -> (F, C/G, *k)
        return gx, gw

    def _backward_numpy(self, g):
        """dx, dw in numpy (first order only; no graph is being recorded)."""
        w = self.inputs[1].data
        need = self.needs_input_grad
        g = g.data
        n, f = g.shape[:2]
        groups, geom = self.groups, self.geom
        m = math.prod(geom.out)
        g4 = g.reshape(n, groups, f // groups, m)  # (N, G, F/G, M)
        make = _node._tensor_cls._make
        gx = gw = None
        if need[0]:
            c = w.shape[1] * groups
            # (F, C/G, *k) -> (*k, G, C/G, F/G): per kernel offset, W_k^T of every group.
            k_nd = len(geom.kernel)
            w_t = w.reshape((groups, f // groups) + w.shape[1:])
            w_t = w_t.transpose(tuple(range(3, 3 + k_nd)) + (0, 2, 1))
            out = np.zeros((n, c) + geom.padded, dtype=g.dtype)
            for offset in itertools.product(*map(range, geom.kernel)):
                part = np.matmul(w_t[offset], g4)  # (G, C/G, F/G) @ (N, G, F/G, M)
                region = out[geom.offset_slice(offset)]
                np.add(region, part.reshape(region.shape), out=region)
            gx = make(out[geom.interior()] if geom.padded != geom.size else out)
        if need[1]:
            ck_g = w[0].size
            # (N, G, F/G, M) @ (N, G, M, C/G*K) summed over N -> (G, F/G, C/G*K)
            if self.cols is not None:
                gw = np.matmul(g4, self.cols.swapaxes(-1, -2)).sum(0)
            else:  # the forward's columns again, a chunk of images at a time
                x = self.inputs[0].data
                gw = np.zeros((groups, f // groups, ck_g), dtype=g.dtype)
                for part, cols in _column_chunks(x, geom, groups):
                    gw += np.matmul(g4[part], cols.swapaxes(-1, -2)).sum(0)
            gw = make(gw.reshape(w.shape))
        return gx, gw

    def release(self):
        super().release()
        self.cols = None


# --- max pooling -------------------------------------------------------------------------


def _window_starts(geom: Geometry) -> np.ndarray:
    """The flat index in the (unpadded) plane of every window's start, shape (*O)."""
    starts = np.zeros((), dtype=np.int64)
    for n, s, (lo, _), o in zip(geom.size, geom.stride, geom.padding, geom.out):
        starts = np.add.outer(starts * n, np.arange(o) * s - lo)
    return starts


def _offset_table(geom: Geometry) -> list[int]:
    """Each kernel offset's flat distance in the plane from its window's start."""
    plane_strides = [math.prod(geom.size[d + 1 :]) for d in range(len(geom.size))]
    return [sum(j * d * s for j, d, s in zip(offset, geom.dilation, plane_strides))
            for offset in itertools.product(*map(range, geom.kernel))]  # fmt: skip


def _first_hits(views: list[np.ndarray], best: np.ndarray) -> list[np.ndarray]:
    """Per kernel offset k, the bool mask (N, C, *O) of the windows whose first element
    equal to ``best`` sits at offset k (no NaN in ``best``)."""
    hits = [views[0] == best]
    found = hits[0].copy()
    for v in views[1:]:
        eq = v == best
        hits.append(eq > found)  # equal here and not at an earlier offset
        found |= eq
    return hits


def _pick(hits: list[np.ndarray], values: Sequence[int]) -> np.ndarray:
    """``values[k]`` in each window whose first maximum is at offset k (``hits`` as
    made by ``_first_hits``)."""
    out = np.full(hits[0].shape, values[0], dtype=np.int64)
    for hit, value in zip(hits[1:], values[1:]):
        out += hit * (value - values[0])
    return out


def _first_hit(views: list[np.ndarray], best: np.ndarray, values: Sequence[int]) -> np.ndarray:
    """``values[k]`` for the first view k equal to ``best`` (the last NaN where NaN won)."""
    out = _pick(_first_hits(views, best), values)
    if np.isnan(best).any():
        for v, value in zip(views, values):
            out = np.where(np.isnan(v), value, out)
    return out


def _argmax_clipped(views: list[np.ndarray], best: np.ndarray, geom: Geometry) -> np.ndarray:
    """The slow path for windows where only -inf competed: a padded slot may have won, and
    torch then picks the first in-range element, i.e. the winner's clipped position."""
    arg = _first_hit(views, best, range(len(views)))
    flat = np.zeros((), dtype=np.int64)
    for dim, j in enumerate(np.unravel_index(arg, geom.kernel)):
        first = np.arange(geom.out[dim]) * geom.stride[dim] - geom.padding[dim][0]
        pos = first.reshape((-1,) + (1,) * (len(geom.out) - 1 - dim)) + j * geom.dilation[dim]
        flat = flat * geom.size[dim] + np.clip(pos, 0, geom.size[dim] - 1)
    return flat


def argmax_windows(x: np.ndarray, geom: Geometry) -> np.ndarray:
    """Flat index into each (n, c) plane of x (N, C, *S) of every window's maximum, as torch:
    the first maximum on ties, the last NaN where NaN won, and where only -inf padding
    competed the clipped position of the winning slot. Shape (N, C, *O)."""
    xp = pad_array(x, geom, -np.inf)
    views = offset_views(xp, geom)
    best = window_max(views)
    if xp is not x and np.isneginf(best).any():
        return _argmax_clipped(views, best, geom)
    return _first_hit(views, best, _offset_table(geom)) + _window_starts(geom)


class MaxPool(Node):
    """out[n, c, o] = max_j xpad[n, c, o * stride + j * dilation], the padding -inf.

    Shape: (N, C, *S) -> (N, C, *O). Forward: ``np.maximum`` chained over the K kernel
    offsets' strided views (``record=True`` also keeps, per offset, the mask of the windows
    whose first maximum is there). VJP: g goes to each window's argmax (``argmax_windows``),
    dx = IndexAdd(0, g at the flat argmax): the backward of ``max_pool_reference``'s
    ``Index`` gather, used under create_graph (so every order follows) and for the rare
    windows won by NaN or padding, or a non-finite g. A first-order backward instead writes
    g * mask_k into kernel offset k's strided view of dx: K passes, no index arrays.
    """

    __slots__ = ("geom", "hits", "in_shape", "local")

    def forward(self, x, geom, record):
        self.geom, self.in_shape = geom, x.shape
        xp = pad_array(x, geom, -np.inf)
        views = offset_views(xp, geom)
        best = window_max(views)
        self.hits = self.local = None
        if record:
            if np.isnan(best).any() or (xp is not x and np.isneginf(best).any()):
                self.local = argmax_windows(x, geom)
            else:
                self.hits = _first_hits(views, best)
        return best

    def backward(self, g):
        if STATE.enabled or self.hits is None or not np.isfinite(g.data).all():
            return self._backward_graph(g)  # inf * a 0 mask would give NaN, not 0
        return self._backward_numpy(g.data)

    def _argmax(self) -> np.ndarray:
        """The flat argmax (N, C, *O) in each plane."""
        if self.local is not None:
            return self.local
        assert self.hits is not None
        return _pick(self.hits, _offset_table(self.geom)) + _window_starts(self.geom)

    def _backward_graph(self, g):
        """dx with tinytorch ops: ``IndexAdd`` of g at the flat argmax (differentiable)."""
        n, c = self.in_shape[:2]
        plane = math.prod(self.in_shape[2:])
        local = self._argmax()
        offsets = np.arange(n * c, dtype=np.int64).reshape((n, c) + (1,) * (local.ndim - 2))
        zeros = g.new_zeros((math.prod(self.in_shape),))
        gx = IndexAdd.apply(zeros, g.reshape(-1), idx=(local + offsets * plane).reshape(-1))
        return gx.reshape(self.in_shape)

    def _backward_numpy(self, g: np.ndarray):
        """dx in numpy (first order only), one masked product per kernel offset."""
        geom = self.geom
        assert self.hits is not None
        # Disjoint windows (each pixel in at most one): the products can be written, not added;
        # when they also tile the padded input, no pixel is left for the zero fill.
        kernel_stride = list(zip(geom.kernel, geom.stride, geom.dilation))
        disjoint = all(s >= d * (k - 1) + 1 for k, s, d in kernel_stride)
        tiled = all(k == s and (d == 1 or k == 1) for k, s, d in kernel_stride) and all(
            o * s == p for o, s, p in zip(geom.out, geom.stride, geom.padded)
        )
        shape = self.in_shape[:2] + geom.padded
        dx = np.empty(shape, dtype=g.dtype) if tiled else np.zeros(shape, dtype=g.dtype)
        offsets = itertools.product(*map(range, geom.kernel))
        for hit, offset in zip(self.hits, offsets):
            region = dx[geom.offset_slice(offset)]
            if disjoint:
                np.multiply(g, hit, out=region)
            else:
                region += g * hit
        if geom.padded != geom.size:
            dx = dx[geom.interior()]
        return _node._tensor_cls._make(dx)

    def release(self):
        super().release()
        self.hits = self.local = None
