"""Convolutions: ``conv1d/2d/3d``, ``conv_transpose1d/2d/3d``, ``unfold``, ``fold``.

A convolution is im2col + one matmul: every receptive field becomes a column
(``Im2Col``, one strided copy) and the weight multiplies all columns at once
(grouped: one batched matmul over the groups). Its gradients come from the
adjoint pair ``Im2Col``/``Col2Im`` and ``MatMul``, so double backward (e.g. a
gradient penalty through a conv) works. A transposed convolution is the same
pair used the other way round: matmul, then ``Col2Im``.

Shape letters: N batch, C in channels, F out channels, G groups, S the spatial
sizes, k the kernel sizes, K = prod(k), M the number of output positions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

from tinytorch.ops.conv import Col2Im, Conv, Geometry, Im2Col, out_size
from tinytorch.ops.shape import Index
from tinytorch.tensor import Tensor

__all__ = [
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "fold", "unfold",
]  # fmt: skip

IntOrSeq = int | Sequence[int]


def ntuple(value: IntOrSeq, n: int, name: str, op: str = "convolution") -> tuple[int, ...]:
    """``value`` as an n-tuple of ints (an int is repeated), or torch's error."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        return value * n
    if len(value) != n:
        raise RuntimeError(
            f"expected {name} to be a single integer value or a list of {n} values to match "
            f"the {op} dimensions, but got {name}={list(value)}"
        )
    return value


def _fmt(sizes: Sequence[int]) -> str:
    return " x ".join(map(str, sizes))


def _batched(input: Tensor, nd: int, op: str) -> tuple[Tensor, bool]:
    """(N, C, *S) as is; an unbatched (C, *S) input gets N = 1 (removed again after)."""
    if input.ndim == nd + 1:
        return input.unsqueeze(0), True
    if input.ndim != nd + 2:
        raise RuntimeError(
            f"Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input to {op}, but got "
            f"input of size: {list(input.shape)}"
        )
    return input, False


def _check_dtypes(op: str, input: Tensor, weight: Tensor, bias: Tensor | None) -> None:
    for t, what in ((weight, "weight"), (bias, "bias")):
        if t is not None and t.data.dtype != input.data.dtype:
            raise RuntimeError(
                f"{op}: Input type ({input.dtype}) and {what} type ({t.dtype}) should be the same"
            )


def _check_bias(weight: Tensor, bias: Tensor | None, n_out: int) -> None:
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != n_out):
        raise RuntimeError(
            f"Given weight of size {list(weight.shape)}, expected bias to be 1-dimensional "
            f"with {n_out} elements, but got bias of size {list(bias.shape)} instead"
        )


def _check_common(stride: tuple[int, ...], dilation: tuple[int, ...], groups: int) -> None:
    if any(s <= 0 for s in stride):
        raise RuntimeError("non-positive stride is not supported")
    if any(d <= 0 for d in dilation):
        raise RuntimeError(f"dilation should be greater than zero, but got {list(dilation)}")
    if groups <= 0:
        raise RuntimeError("non-positive groups is not supported")


def padding_pairs(padding: str | IntOrSeq, nd: int, kernel: tuple[int, ...],
                  stride: tuple[int, ...], dilation: tuple[int, ...]
                  ) -> tuple[tuple[int, int], ...]:  # fmt: skip
    """(lo, hi) per dim; ``'same'`` puts the odd extra pixel of an even kernel at the end."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding != "same":
            raise RuntimeError(f"Invalid padding string: {padding!r}")
        if any(s != 1 for s in stride):
            raise RuntimeError("padding='same' is not supported for strided convolutions")
        total = [d * (k - 1) for d, k in zip(dilation, kernel)]
        return tuple((t // 2, t - t // 2) for t in total)
    pads = ntuple(padding, nd, "padding")
    if any(p < 0 for p in pads):
        raise RuntimeError("negative padding is not supported")
    return tuple((p, p) for p in pads)


def conv_nd(input: Tensor, weight: Tensor, bias: Tensor | None, stride: IntOrSeq,
            padding: str | IntOrSeq, dilation: IntOrSeq, groups: int, nd: int
            ) -> Tensor:  # fmt: skip
    """``conv1d/2d/3d`` for ``nd`` spatial dims: checks, geometry, then the fused ``Conv``."""
    op = f"conv{nd}d"
    input, unbatched = _batched(input, nd, op)
    if weight.ndim != nd + 2:
        raise RuntimeError(
            f"{op}: expected a {nd + 2}D weight (out_channels, in_channels/groups, "
            f"{', '.join('k' * nd)}), but got weight of size {list(weight.shape)}"
        )
    _check_dtypes(op, input, weight, bias)
    c = input.shape[1]
    f, c_g = weight.shape[:2]
    kernel = tuple(weight.shape[2:])
    stride = ntuple(stride, nd, "stride")
    dilation = ntuple(dilation, nd, "dilation")
    _check_common(stride, dilation, groups)
    if f % groups:
        raise RuntimeError(
            f"Given groups={groups}, expected weight to be divisible by {groups} at dimension "
            f"0, but got weight of size [{list(weight.shape)}] instead"
        )
    if c != c_g * groups:
        raise RuntimeError(
            f"Given groups={groups}, weight of size {list(weight.shape)}, expected "
            f"input{list(input.shape)} to have {c_g * groups} channels, but got {c} channels "
            f"instead"
        )
    _check_bias(weight, bias, f)
    pads = padding_pairs(padding, nd, kernel, stride, dilation)
    size = tuple(input.shape[2:])
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(size, pads))
    if any(p < d * (k - 1) + 1 for p, k, d in zip(padded, kernel, dilation)):
        raise RuntimeError(
            f"Calculated padded input size per channel: ({_fmt(padded)}). Kernel size: "
            f"({_fmt(kernel)}). Kernel size can't be greater than actual input size"
        )
    outs = tuple(out_size(*a) for a in zip(size, kernel, stride, *zip(*pads), dilation))
    geom = Geometry(size, kernel, stride, pads, dilation, outs)
    operands = (input, weight) if bias is None else (input, weight, bias)
    out = Conv.apply(*operands, geom=geom, groups=groups)  # (N, F, *O)
    return out.squeeze(0) if unbatched else out


def conv_reference(input: Tensor, weight: Tensor, bias: Tensor | None, geom: Geometry,
                   groups: int) -> Tensor:  # fmt: skip
    """The composite form of the fused ``Conv`` primitive (Im2Col + matmul), which the
    tests hold it against. Shapes as ``Conv``; ``input`` is batched."""
    n, c = input.shape[:2]
    f = weight.shape[0]
    ck_g = c // groups * math.prod(geom.kernel)
    m = math.prod(geom.out)
    cols = Im2Col.apply(input, geom=geom).reshape(n, groups, ck_g, m)  # (N, G, C/G*K, M)
    w = weight.reshape(groups, f // groups, ck_g)  # (G, F/G, C/G*K)
    out = (w @ cols).reshape(n, f, m)  # (N, G, F/G, M) -> (N, F, M)
    if bias is not None:
        out = out + bias.reshape(f, 1)
    return out.reshape((n, f) + geom.out)  # (N, F, *O)


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrSeq = 1,
           padding: str | IntOrSeq = 0, dilation: IntOrSeq = 1, groups: int = 1
           ) -> Tensor:  # fmt: skip
    """1-D cross-correlation: out[n, f, l] = b[f] + sum_{c, j} w[f, c, j] x[n, c, l*s + j*d - p].

    Shape: input (N, C, L) or (C, L); weight (F, C/G, k); output (N, F, L_out) with
    L_out = floor((L + 2p - d(k - 1) - 1) / s) + 1. ``padding`` may be ``'same'``/``'valid'``.
    """
    return conv_nd(input, weight, bias, stride, padding, dilation, groups, 1)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrSeq = 1,
           padding: str | IntOrSeq = 0, dilation: IntOrSeq = 1, groups: int = 1
           ) -> Tensor:  # fmt: skip
    """2-D cross-correlation:
    out[n, f, h, w] = b[f] + sum_{c, i, j} wt[f, c, i, j] x[n, c, h*s + i*d - p, w*s + j*d - p].

    Shape: input (N, C, H, W) or (C, H, W); weight (F, C/G, kH, kW); output
    (N, F, H_out, W_out), H_out = floor((H + 2p - d(kH - 1) - 1) / s) + 1 (W alike).
    """
    return conv_nd(input, weight, bias, stride, padding, dilation, groups, 2)


def conv3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrSeq = 1,
           padding: str | IntOrSeq = 0, dilation: IntOrSeq = 1, groups: int = 1
           ) -> Tensor:  # fmt: skip
    """3-D cross-correlation; Shape: (N, C, D, H, W) -> (N, F, D_out, H_out, W_out)."""
    return conv_nd(input, weight, bias, stride, padding, dilation, groups, 3)


def conv_transpose_nd(input: Tensor, weight: Tensor, bias: Tensor | None, stride: IntOrSeq,
                      padding: IntOrSeq, output_padding: IntOrSeq, groups: int,
                      dilation: IntOrSeq, nd: int) -> Tensor:  # fmt: skip
    """``conv_transpose1d/2d/3d`` for ``nd`` spatial dims: W^T @ x, then ``Col2Im``."""
    op = f"conv_transpose{nd}d"
    input, unbatched = _batched(input, nd, op)
    if weight.ndim != nd + 2:
        raise RuntimeError(
            f"{op}: expected a {nd + 2}D weight (in_channels, out_channels/groups, "
            f"{', '.join('k' * nd)}), but got weight of size {list(weight.shape)}"
        )
    _check_dtypes(op, input, weight, bias)
    n, c = input.shape[:2]
    c_w, f_g = weight.shape[:2]
    kernel = tuple(weight.shape[2:])
    stride = ntuple(stride, nd, "stride")
    dilation = ntuple(dilation, nd, "dilation")
    pads = ntuple(padding, nd, "padding")
    out_pads = ntuple(output_padding, nd, "output_padding")
    _check_common(stride, dilation, groups)
    if any(p < 0 for p in pads):
        raise RuntimeError("negative padding is not supported")
    if any(op_ >= s and op_ >= d for op_, s, d in zip(out_pads, stride, dilation)):
        raise RuntimeError(
            f"output padding must be smaller than either stride or dilation, but got "
            f"output_padding={list(out_pads)}, stride={list(stride)}, dilation={list(dilation)}"
        )
    if c_w % groups:
        raise RuntimeError(
            f"Given groups={groups}, expected weight to be divisible by {groups} at dimension "
            f"0, but got weight of size [{list(weight.shape)}] instead"
        )
    if c != c_w:
        raise RuntimeError(
            f"Given transposed=1, weight of size {list(weight.shape)}, expected "
            f"input{list(input.shape)} to have {c_w} channels, but got {c} channels instead"
        )
    f = f_g * groups
    _check_bias(weight, bias, f)
    size = tuple(input.shape[2:])
    outs = tuple(
        (s - 1) * st - 2 * p + d * (k - 1) + op_ + 1
        for s, st, p, d, k, op_ in zip(size, stride, pads, dilation, kernel, out_pads)
    )
    if any(o <= 0 for o in outs):
        raise RuntimeError(
            f"{op}: Given input size per channel: ({_fmt(size)}). Calculated output size per "
            f"channel: ({_fmt(outs)}). Output size is too small"
        )
    # The adjoint of a conv from the (N, F, *outs) output to the (N, C, *size) input; the
    # output_padding rows at the high end lie past every window and stay zero.
    geom = Geometry(outs, kernel, stride, tuple((p, p) for p in pads), dilation, size)
    m = math.prod(size)
    big_k = math.prod(kernel)
    w = weight.reshape(groups, c // groups, f_g * big_k)  # (G, C/G, F/G*K)
    x = input.reshape(n, groups, c // groups, m)  # (N, G, C/G, M)
    cols = (w.mT @ x).reshape(n, f * big_k, m)  # (N, G, F/G*K, M) -> (N, F*K, M)
    out = Col2Im.apply(cols, geom=geom)  # (N, F, *outs)
    if bias is not None:
        out = out + bias.reshape((f,) + (1,) * nd)
    return out.squeeze(0) if unbatched else out


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None,
                     stride: IntOrSeq = 1, padding: IntOrSeq = 0, output_padding: IntOrSeq = 0,
                     groups: int = 1, dilation: IntOrSeq = 1) -> Tensor:  # fmt: skip
    """The adjoint of ``conv1d`` w.r.t. its input (a "deconvolution").

    Shape: input (N, C, L); weight (C, F/G, k); output (N, F, L_out) with
    L_out = (L - 1) s - 2p + d(k - 1) + output_padding + 1.
    """
    return conv_transpose_nd(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 1)  # fmt: skip


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None,
                     stride: IntOrSeq = 1, padding: IntOrSeq = 0, output_padding: IntOrSeq = 0,
                     groups: int = 1, dilation: IntOrSeq = 1) -> Tensor:  # fmt: skip
    """The adjoint of ``conv2d`` w.r.t. its input: every input pixel scatters
    ``x[n, c, h, w] * weight[c, f, i, j]`` to output pixel ``(h s + i d - p, w s + j d - p)``.

    Shape: input (N, C, H, W); weight (C, F/G, kH, kW); output (N, F, H_out, W_out),
    H_out = (H - 1) s - 2p + d(kH - 1) + output_padding + 1 (W alike).
    """
    return conv_transpose_nd(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 2)  # fmt: skip


def conv_transpose3d(input: Tensor, weight: Tensor, bias: Tensor | None = None,
                     stride: IntOrSeq = 1, padding: IntOrSeq = 0, output_padding: IntOrSeq = 0,
                     groups: int = 1, dilation: IntOrSeq = 1) -> Tensor:  # fmt: skip
    """The adjoint of ``conv3d`` w.r.t. its input; Shape: (N, C, D, H, W) -> (N, F, *S_out)."""
    return conv_transpose_nd(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 3)  # fmt: skip


def unfold(input: Tensor, kernel_size: IntOrSeq, dilation: IntOrSeq = 1, padding: IntOrSeq = 0,
           stride: IntOrSeq = 1) -> Tensor:  # fmt: skip
    """Extract sliding blocks (im2col). Shape: (N, C, H, W) -> (N, C*kH*kW, L), or
    unbatched (C, H, W) -> (C*kH*kW, L)."""
    if input.ndim == 3:
        return unfold(input.unsqueeze(0), kernel_size, dilation, padding, stride).squeeze(0)
    if input.ndim != 4:
        raise RuntimeError(
            f"unfold: expected a 3D or 4D (N, C, H, W) input, got {list(input.shape)}"
        )
    kernel = ntuple(kernel_size, 2, "kernel_size", "unfold")
    stride = ntuple(stride, 2, "stride", "unfold")
    dilation = ntuple(dilation, 2, "dilation", "unfold")
    pads = tuple((p, p) for p in ntuple(padding, 2, "padding", "unfold"))
    _check_common(stride, dilation, 1)
    size = tuple(input.shape[2:])
    outs = tuple(out_size(*a) for a in zip(size, kernel, stride, *zip(*pads), dilation))
    if any(o <= 0 for o in outs):
        raise RuntimeError(
            f"unfold: given input with spatial size ({_fmt(size)}), kernel_size "
            f"({_fmt(kernel)}), dilation ({_fmt(dilation)}) and padding {list(pads)}, the "
            f"calculated shape of the array of sliding blocks is ({_fmt(outs)}), which is too small"
        )
    return Im2Col.apply(input, geom=Geometry(size, kernel, stride, pads, dilation, outs))


def fold(input: Tensor, output_size: IntOrSeq, kernel_size: IntOrSeq, dilation: IntOrSeq = 1,
         padding: IntOrSeq = 0, stride: IntOrSeq = 1) -> Tensor:  # fmt: skip
    """Sum sliding blocks back into an image (col2im), the adjoint of ``unfold``.

    Shape: (N, C*kH*kW, L) -> (N, C, H, W) with ``(H, W) = output_size``, or unbatched
    (C*kH*kW, L) -> (C, H, W).
    """
    if input.ndim == 2:
        return fold(input.unsqueeze(0), output_size, kernel_size, dilation, padding,
                    stride).squeeze(0)  # fmt: skip
    size = ntuple(output_size, 2, "output_size", "fold")
    kernel = ntuple(kernel_size, 2, "kernel_size", "fold")
    stride = ntuple(stride, 2, "stride", "fold")
    dilation = ntuple(dilation, 2, "dilation", "fold")
    pads = tuple((p, p) for p in ntuple(padding, 2, "padding", "fold"))
    _check_common(stride, dilation, 1)
    outs = tuple(out_size(*a) for a in zip(size, kernel, stride, *zip(*pads), dilation))
    big_k = math.prod(kernel)
    if input.ndim != 3 or input.shape[1] % big_k or input.shape[2] != math.prod(outs):
        raise RuntimeError(
            f"fold: expected an input of shape (N, C*{big_k}, {math.prod(outs)}) for "
            f"output_size={list(size)} and kernel_size={list(kernel)}, but got "
            f"{list(input.shape)}"
        )
    return Col2Im.apply(input, geom=Geometry(size, kernel, stride, pads, dilation, outs))


_NP_PAD_MODES: dict[str, Literal["reflect", "edge", "wrap"]] = {
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
}


def mode_pad(input: Tensor, pads: Sequence[tuple[int, int]], mode: str) -> Tensor:
    """Pad the trailing ``len(pads)`` dims by ``(lo, hi)`` each with a non-constant
    ``mode`` (``'reflect'``, ``'replicate'``, ``'circular'``), as an index gather so
    the gradient is a scatter-add. (The conv layers' ``padding_mode``.)"""
    if mode not in _NP_PAD_MODES:
        raise ValueError(f"mode_pad: unknown padding mode {mode!r}")
    first = input.ndim - len(pads)
    for axis, (lo, hi) in enumerate(pads, start=first):
        if not lo and not hi:
            continue
        n = input.shape[axis]
        if (mode == "reflect" and max(lo, hi) >= n) or (mode == "circular" and max(lo, hi) > n):
            raise RuntimeError(
                f"Padding size should be less than{'' if mode == 'reflect' else ' or equal to'} "
                f"the corresponding input dimension, but got: padding ({lo}, {hi}) at "
                f"dimension {axis} of input {list(input.shape)}"
            )
        src = np.pad(np.arange(n), (lo, hi), mode=_NP_PAD_MODES[mode])  # source of each slot
        input = Index.apply(input, idx=(slice(None),) * axis + (src,))
    return input
