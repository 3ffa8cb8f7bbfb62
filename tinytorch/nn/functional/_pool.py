"""Pooling: max, average and adaptive average/max, in 1-D, 2-D and 3-D.

* Max pooling is the ``MaxPool`` primitive: a max chain over strided views, one
  per kernel offset (a loop over K offsets, never over positions). Its backward
  scatters g to each window's argmax; under create_graph that is ``IndexAdd``,
  the backward of ``max_pool_reference``, the composite that *gathers* the
  winners with the ``Index`` primitive (so every higher order comes for free).
* Average pooling is ``Im2Col`` + a sum over the window + a divide, so its
  backward is ``Col2Im``.
* Adaptive average pooling with uneven windows is separable: a matmul with a
  constant (O, S) averaging matrix per spatial dim.

Shape letters: N batch, C channels, S spatial sizes (L; H, W), O output sizes,
k kernel sizes, K = prod(k), M = prod(O).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tinytorch.autograd.grad_mode import STATE
from tinytorch.nn.functional._conv import IntOrSeq, ntuple
from tinytorch.ops.conv import Geometry, Im2Col, MaxPool, argmax_windows
from tinytorch.ops.shape import Index
from tinytorch.tensor import Tensor

__all__ = [
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d",
    "adaptive_max_pool2d", "avg_pool1d", "avg_pool2d", "avg_pool3d", "max_pool1d", "max_pool2d",
    "max_pool3d",
]  # fmt: skip


def _batched(input: Tensor, nd: int, op: str) -> tuple[Tensor, bool]:
    """(N, C, *S) as is; an unbatched (C, *S) input gets N = 1 (removed again after)."""
    if input.ndim == nd + 1:
        return input.unsqueeze(0), True
    if input.ndim != nd + 2 or input.numel() == 0:
        raise RuntimeError(
            f"{op}: non-empty {nd + 1}D or {nd + 2}D (batch mode) tensor expected for input, "
            f"but got input of size {list(input.shape)}"
        )
    return input, False


def _pool_geometry(op: str, shape: tuple[int, ...], kernel_size: IntOrSeq,
                   stride: IntOrSeq | None, padding: IntOrSeq, dilation: IntOrSeq,
                   ceil_mode: bool) -> Geometry:  # fmt: skip
    """Window geometry with torch's output-size rule; ceil_mode may add windows that
    hang over the high edge (the overhang becomes extra high padding)."""
    nd = len(shape) - 2
    kernel = ntuple(kernel_size, nd, "kernel_size", op)
    stride = kernel if stride is None or stride == [] else ntuple(stride, nd, "stride", op)
    pads = ntuple(padding, nd, "padding", op)
    dilation = ntuple(dilation, nd, "dilation", op)
    if any(s == 0 for s in stride):
        raise RuntimeError(f"{op}: stride should not be zero")
    if any(k <= 0 for k in kernel) or any(s < 0 for s in stride) or any(d <= 0 for d in dilation):
        raise RuntimeError(
            f"{op}: kernel_size, stride and dilation must be positive, got kernel_size="
            f"{list(kernel)}, stride={list(stride)}, dilation={list(dilation)}"
        )
    for p, k, d in zip(pads, kernel, dilation):
        if p < 0 or p > (d * (k - 1) + 1) // 2:
            raise RuntimeError(
                f"{op}: pad should be at most half of effective kernel size, but got pad={p}, "
                f"kernel_size={k} and dilation={d}"
            )
    size = shape[2:]
    outs = []
    for n, k, s, p, d in zip(size, kernel, stride, pads, dilation):
        span = n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
        o = span // s + 1
        if ceil_mode and (o - 1) * s >= n + p:  # the last window must start inside
            o -= 1
        outs.append(o)
    if any(o <= 0 for o in outs):
        raise RuntimeError(
            f"{op}: Given input size: ({'x'.join(map(str, shape[1:]))}). Calculated output "
            f"size: ({'x'.join(map(str, (shape[1], *outs)))}). Output size is too small"
        )
    highs = tuple(
        max(p, (o - 1) * s + d * (k - 1) + 1 - n - p)
        for n, k, s, p, d, o in zip(size, kernel, stride, pads, dilation, outs)
    )
    return Geometry(tuple(size), kernel, stride, tuple(zip(pads, highs)), dilation, tuple(outs))


def _gather_planes(x: Tensor, local: np.ndarray) -> Tensor:
    """out[n, c, o] = x[n, c].flatten()[local[n, c, o]] as an ``Index`` of the flat input
    (its backward is a scatter-add: ``IndexAdd``)."""
    n, c = x.shape[:2]
    plane = math.prod(x.shape[2:])
    offsets = (np.arange(n * c, dtype=np.int64) * plane).reshape((n, c) + (1,) * (local.ndim - 2))
    out = Index.apply(x.reshape(-1), idx=(local + offsets).reshape(-1))  # (N*C*M,)
    return out.reshape(local.shape)


def _max_pool(input: Tensor, kernel_size: IntOrSeq, stride: IntOrSeq | None, padding: IntOrSeq,
              dilation: IntOrSeq, ceil_mode: bool, return_indices: bool, nd: int
              ) -> Tensor | tuple[Tensor, Tensor]:  # fmt: skip
    op = f"max_pool{nd}d"
    x, unbatched = _batched(input, nd, op)
    geom = _pool_geometry(op, tuple(x.shape), kernel_size, stride, padding, dilation, ceil_mode)
    out = MaxPool.apply(x, geom=geom, record=STATE.enabled and x.requires_grad)  # (N, C, *O)
    if not return_indices:
        return out.squeeze(0) if unbatched else out
    local = argmax_windows(x.data, geom)  # (N, C, *O)
    if unbatched:
        out, local = out.squeeze(0), local[0]
    return out, Tensor._make(local)


def max_pool_reference(x: Tensor, geom: Geometry) -> Tensor:
    """The composite form of the ``MaxPool`` primitive, which the tests hold it against:
    the ``Index`` gather of each window's argmax. x (N, C, *S) -> (N, C, *O)."""
    return _gather_planes(x, argmax_windows(x.data, geom))


def max_pool1d(input: Tensor, kernel_size: IntOrSeq, stride: IntOrSeq | None = None,
               padding: IntOrSeq = 0, dilation: IntOrSeq = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:  # fmt: skip
    """out[n, c, l] = max_j x[n, c, l*s + j*d - p] (padding is -inf); stride defaults to
    kernel_size. Shape: (N, C, L) -> (N, C, L_out), L_out = floor or ceil of
    (L + 2p - d(k - 1) - 1) / s, plus 1. ``return_indices`` adds the argmax (flat in L)."""
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 1)


def max_pool2d(input: Tensor, kernel_size: IntOrSeq, stride: IntOrSeq | None = None,
               padding: IntOrSeq = 0, dilation: IntOrSeq = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:  # fmt: skip
    """out[n, c, h, w] = max over the (kH, kW) window at (h*s - p, w*s - p), dilated by d.

    Shape: (N, C, H, W) -> (N, C, H_out, W_out), sizes as ``max_pool1d`` per dim.
    ``return_indices`` also returns each maximum's flat index in its (H, W) plane.
    The gradient goes to that single element (first maximum on ties).
    """
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 2)


def max_pool3d(input: Tensor, kernel_size: IntOrSeq, stride: IntOrSeq | None = None,
               padding: IntOrSeq = 0, dilation: IntOrSeq = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:  # fmt: skip
    """3-D max pooling; Shape: (N, C, D, H, W) -> (N, C, D_out, H_out, W_out)."""
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 3)


def _divisor(geom: Geometry, count_include_pad: bool) -> np.ndarray:
    """Torch's window size per output position: the product over dims of the window's
    extent clipped to the padded input (or to the input without count_include_pad)."""
    div = np.ones((), dtype=np.int64)
    for n, k, s, (lo, _), o in zip(geom.size, geom.kernel, geom.stride, geom.padding, geom.out):
        start = np.arange(o) * s - lo
        end = np.minimum(start + k, n + lo)
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, n)
        div = np.multiply.outer(div, end - start)
    return div


def _avg_pool(input: Tensor, kernel_size: IntOrSeq, stride: IntOrSeq | None, padding: IntOrSeq,
              ceil_mode: bool, count_include_pad: bool, divisor_override: int | None, nd: int
              ) -> Tensor:  # fmt: skip
    op = f"avg_pool{nd}d"
    x, unbatched = _batched(input, nd, op)
    geom = _pool_geometry(op, tuple(x.shape), kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None:
        if divisor_override == 0:
            raise RuntimeError(f"{op}: divisor must be not zero")
        scale = np.asarray(1.0 / divisor_override, dtype=x.data.dtype)
    else:
        scale = (1.0 / _divisor(geom, count_include_pad)).astype(x.data.dtype)  # (*O)
    n, c = x.shape[:2]
    cols = Im2Col.apply(x, geom=geom).reshape((n, c, math.prod(geom.kernel)) + geom.out)
    out = cols.sum(2) * Tensor._make(scale)  # (N, C, K, *O) -> (N, C, *O)
    return out.squeeze(0) if unbatched else out


def avg_pool1d(input: Tensor, kernel_size: IntOrSeq, stride: IntOrSeq | None = None,
               padding: IntOrSeq = 0, ceil_mode: bool = False, count_include_pad: bool = True
               ) -> Tensor:  # fmt: skip
    """out[n, c, l] = sum_j xpad[n, c, l*s + j] / size of the window (zero padding counts
    unless ``count_include_pad=False``). Shape: (N, C, L) -> (N, C, L_out)."""
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, 1)


def avg_pool2d(input: Tensor, kernel_size: IntOrSeq, stride: IntOrSeq | None = None,
               padding: IntOrSeq = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:  # fmt: skip
    """The mean over each (kH, kW) window (divided by ``divisor_override`` if given).

    Shape: (N, C, H, W) -> (N, C, H_out, W_out), sizes as ``max_pool2d`` with d = 1.
    """
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, 2)  # fmt: skip


def avg_pool3d(input: Tensor, kernel_size: IntOrSeq, stride: IntOrSeq | None = None,
               padding: IntOrSeq = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:  # fmt: skip
    """3-D average pooling; Shape: (N, C, D, H, W) -> (N, C, D_out, H_out, W_out)."""
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, 3)  # fmt: skip


def _adaptive_bounds(n: int, o: int) -> tuple[np.ndarray, np.ndarray]:
    """Torch's adaptive windows: [floor(i n / o), ceil((i + 1) n / o)) for i < o."""
    i = np.arange(o)
    return (i * n) // o, -((-(i + 1) * n) // o)


def _output_size(op: str, x: Tensor, output_size: IntOrSeq | Sequence[int | None], nd: int
                 ) -> tuple[int, ...]:  # fmt: skip
    if x.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(
            f"{op}: Expected {nd + 1}D or {nd + 2}D tensor, but got input of size {list(x.shape)}"
        )
    if isinstance(output_size, int):
        output_size = (output_size,) * nd
    sizes = tuple(x.shape[-nd + i] if o is None else int(o) for i, o in enumerate(output_size))
    if len(sizes) != nd:
        raise RuntimeError(f"{op}: output_size must be {nd} ints, got {list(output_size)}")
    for i, n in enumerate(x.shape[-nd:]):
        if n == 0:
            raise RuntimeError(
                f"{op}(): Expected input to have non-zero size for non-batch dimensions, but "
                f"input has sizes {list(x.shape)} with dimension {x.ndim - nd + i} being empty"
            )
    return sizes


def _adaptive_avg_pool(input: Tensor, output_size: IntOrSeq | Sequence[int | None], nd: int
                       ) -> Tensor:  # fmt: skip
    op = f"adaptive_avg_pool{nd}d"
    outs = _output_size(op, input, output_size, nd)
    size = tuple(input.shape[-nd:])
    if all(n % o == 0 for n, o in zip(size, outs)):  # even windows: a plain average pool
        kernel = tuple(n // o for n, o in zip(size, outs))
        return _avg_pool(input, kernel, kernel, 0, False, True, None, nd)
    out = input
    for dim, (n, o) in enumerate(zip(size, outs)):
        start, end = _adaptive_bounds(n, o)
        pos = np.arange(n)
        inside = (pos >= start[:, None]) & (pos < end[:, None])  # (O, S)
        avg = (inside / (end - start)[:, None]).astype(input.data.dtype)
        axis = input.ndim - nd + dim
        # Average along this axis: move it last, multiply by avg^T (S, O), move it back.
        out = (out.transpose(axis, -1) @ Tensor._make(avg.T)).transpose(axis, -1)
    return out


def adaptive_avg_pool1d(input: Tensor, output_size: IntOrSeq) -> Tensor:
    """out[n, c, i] = mean of x[n, c, floor(i L / O) : ceil((i + 1) L / O)].

    Shape: (N, C, L) -> (N, C, O)."""
    return _adaptive_avg_pool(input, output_size, 1)


def adaptive_avg_pool2d(input: Tensor, output_size: IntOrSeq | Sequence[int | None]) -> Tensor:
    """The mean over torch's adaptive windows (the 1-D rule per dim; None keeps a size).

    Shape: (N, C, H, W) -> (N, C, O_H, O_W)."""
    return _adaptive_avg_pool(input, output_size, 2)


def adaptive_avg_pool3d(input: Tensor, output_size: IntOrSeq | Sequence[int | None]) -> Tensor:
    """3-D adaptive average pooling; Shape: (N, C, D, H, W) -> (N, C, *output_size)."""
    return _adaptive_avg_pool(input, output_size, 3)


def _adaptive_max_pool(input: Tensor, output_size: IntOrSeq | Sequence[int | None],
                       return_indices: bool, nd: int
                       ) -> Tensor | tuple[Tensor, Tensor]:  # fmt: skip
    op = f"adaptive_max_pool{nd}d"
    outs = _output_size(op, input, output_size, nd)
    x, unbatched = (input.unsqueeze(0), True) if input.ndim == nd + 1 else (input, False)
    size = tuple(x.shape[2:])
    # Every window padded to the widest one by repeating its last element (harmless
    # for a max), then gathered as (N, C, O_1, k_1, O_2, k_2, ...).
    index, flat_pos = [], np.zeros((), dtype=np.int64)
    for dim, (n, o) in enumerate(zip(size, outs)):
        start, end = _adaptive_bounds(n, o)
        width = int((end - start).max())
        idx = np.minimum(start[:, None] + np.arange(width), end[:, None] - 1)  # (O, k)
        shape = [1] * (2 * nd)
        shape[2 * dim : 2 * dim + 2] = idx.shape
        index.append(idx.reshape(shape))
        flat_pos = flat_pos * n + index[-1]  # flat index in the plane, (O_1, k_1, ...)
    # Built apart: mypy (3.10 target) flags any starred subscript, even parenthesised.
    key = (slice(None), slice(None), *index)
    win = x.data[key]
    order = tuple(range(0, 2 * nd, 2)) + tuple(range(1, 2 * nd, 2))  # O dims, then k dims
    win = win.transpose((0, 1) + tuple(i + 2 for i in order))
    win = win.reshape(win.shape[: 2 + nd] + (-1,))  # (N, C, *O, K)
    flat_pos = flat_pos.transpose(order).reshape(outs + (-1,))  # (*O, K)
    first_max = win.argmax(-1)[..., None]  # numpy's argmax: first maximum, NaN wins
    local = np.take_along_axis(np.broadcast_to(flat_pos, win.shape), first_max, -1)[..., 0]
    out = _gather_planes(x, local)
    if unbatched:
        out, local = out.squeeze(0), local[0]
    return (out, Tensor._make(local)) if return_indices else out


def adaptive_max_pool1d(input: Tensor, output_size: IntOrSeq, return_indices: bool = False
                        ) -> Tensor | tuple[Tensor, Tensor]:  # fmt: skip
    """The max over torch's adaptive windows; Shape: (N, C, L) -> (N, C, O)."""
    return _adaptive_max_pool(input, output_size, return_indices, 1)


def adaptive_max_pool2d(input: Tensor, output_size: IntOrSeq | Sequence[int | None],
                        return_indices: bool = False
                        ) -> Tensor | tuple[Tensor, Tensor]:  # fmt: skip
    """The max over torch's adaptive windows; Shape: (N, C, H, W) -> (N, C, O_H, O_W)."""
    return _adaptive_max_pool(input, output_size, return_indices, 2)
