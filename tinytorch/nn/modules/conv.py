"""Convolution layers: ``Conv1d/2d/3d`` and ``ConvTranspose1d/2d/3d``.

Init (torch's): weight ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (that is
``kaiming_uniform_(a=sqrt(5))``) and bias with the same bound, where
fan_in = weight.shape[1] * prod(kernel_size): in_channels/groups * prod(k) for a
conv, out_channels/groups * prod(k) for a transposed conv (its weight is
(in_channels, out_channels/groups, *k)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

from tinytorch.creation import empty
from tinytorch.nn import init
from tinytorch.nn.functional import _conv as F
from tinytorch.nn.modules.module import Module
from tinytorch.nn.parameter import Parameter
from tinytorch.tensor import Tensor

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]

IntOrSeq = int | Sequence[int]


class _ConvNd(Module):
    """Shared constructor, init and repr of the convolution layers."""

    _nd: int = 0

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrSeq,
                 stride: IntOrSeq, padding: str | IntOrSeq, dilation: IntOrSeq,
                 transposed: bool, output_padding: IntOrSeq, groups: int, bias: bool,
                 padding_mode: str, device: Any = None, dtype: Any = None) -> None:  # fmt: skip
        super().__init__()
        nd = self._nd
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        self.kernel_size = F.ntuple(kernel_size, nd, "kernel_size")
        self.stride = F.ntuple(stride, nd, "stride")
        self.dilation = F.ntuple(dilation, nd, "dilation")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(
                    f"Invalid padding string {padding!r}, should be one of {{'valid', 'same'}}"
                )
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
        else:
            padding = F.ntuple(padding, nd, "padding")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(
                f"padding_mode must be one of {{'zeros', 'reflect', 'replicate', 'circular'}}, "
                f"but got padding_mode='{padding_mode}'"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.padding = padding
        self.transposed = transposed
        self.output_padding = F.ntuple(output_padding, nd, "output_padding")
        self.groups = groups
        self.padding_mode = padding_mode
        if transposed:
            shape = (in_channels, out_channels // groups, *self.kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = Parameter(empty(shape, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")  # fmt: skip
        if self.padding != (0,) * self._nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self._nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    """A cross-correlation layer; ``padding_mode`` other than zeros pads first."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrSeq,
                 stride: IntOrSeq = 1, padding: str | IntOrSeq = 0, dilation: IntOrSeq = 1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device: Any = None, dtype: Any = None) -> None:  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         False, 0, groups, bias, padding_mode, device, dtype)  # fmt: skip

    def forward(self, input: Tensor) -> Tensor:
        padding: str | IntOrSeq = self.padding
        if self.padding_mode != "zeros":
            pads = F.padding_pairs(padding, self._nd, self.kernel_size, self.stride, self.dilation)
            input = F.mode_pad(input, pads, self.padding_mode)
            padding = 0
        return F.conv_nd(input, self.weight, self.bias, self.stride, padding, self.dilation,
                       self.groups, self._nd)  # fmt: skip


class Conv1d(_Conv):
    """1-D convolution (``F.conv1d``). Shape: (N, C_in, L) -> (N, C_out, L_out),
    L_out = floor((L + 2 padding - dilation (k - 1) - 1) / stride) + 1."""

    _nd = 1


class Conv2d(_Conv):
    """2-D convolution (``F.conv2d``). Shape: (N, C_in, H, W) -> (N, C_out, H_out, W_out),
    H_out = floor((H + 2 padding - dilation (kH - 1) - 1) / stride) + 1 (W alike)."""

    _nd = 2


class Conv3d(_Conv):
    """3-D convolution (``F.conv3d``). Shape: (N, C_in, D, H, W) -> (N, C_out, *S_out)."""

    _nd = 3


class _ConvTranspose(_ConvNd):
    """A transposed-convolution layer; ``forward(input, output_size)`` picks the
    output_padding that gives ``output_size``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrSeq,
                 stride: IntOrSeq = 1, padding: IntOrSeq = 0, output_padding: IntOrSeq = 0,
                 groups: int = 1, bias: bool = True, dilation: IntOrSeq = 1,
                 padding_mode: str = "zeros", device: Any = None, dtype: Any = None
                 ) -> None:  # fmt: skip
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         True, output_padding, groups, bias, padding_mode, device,
                         dtype)  # fmt: skip

    def _output_padding(self, input: Tensor, output_size: Sequence[int] | None
                        ) -> tuple[int, ...]:  # fmt: skip
        if output_size is None:
            return self.output_padding
        nd = self._nd
        output_size = tuple(int(s) for s in output_size)
        if len(output_size) == input.ndim:  # given with the batch/channel dims
            output_size = output_size[input.ndim - nd :]
        if len(output_size) != nd:
            raise ValueError(
                f"ConvTranspose{nd}D: for {input.ndim}D input, output_size must have {nd} or "
                f"{input.ndim} elements (got {len(output_size)})"
            )
        spatial = input.shape[input.ndim - nd :]
        padding = cast("tuple[int, ...]", self.padding)  # ConvTranspose takes no padding string
        geometry = zip(spatial, self.stride, padding, self.dilation, self.kernel_size)
        min_sizes = [(n - 1) * s - 2 * p + d * (k - 1) + 1 for n, s, p, d, k in geometry]
        max_sizes = [m + s - 1 for m, s in zip(min_sizes, self.stride)]
        for size, lo, hi in zip(output_size, min_sizes, max_sizes):
            if size < lo or size > hi:
                raise ValueError(
                    f"requested an output size of {list(output_size)}, but valid sizes range "
                    f"from {min_sizes} to {max_sizes} (for an input of {list(spatial)})"
                )
        return tuple(size - lo for size, lo in zip(output_size, min_sizes))

    def forward(self, input: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        output_padding = self._output_padding(input, output_size)
        padding = cast("tuple[int, ...]", self.padding)  # ConvTranspose takes no padding string
        return F.conv_transpose_nd(input, self.weight, self.bias, self.stride, padding,
                                 output_padding, self.groups, self.dilation, self._nd)  # fmt: skip


class ConvTranspose1d(_ConvTranspose):
    """1-D transposed convolution (``F.conv_transpose1d``). Shape: (N, C_in, L) ->
    (N, C_out, L_out), L_out = (L - 1) stride - 2 padding + dilation (k - 1)
    + output_padding + 1."""

    _nd = 1


class ConvTranspose2d(_ConvTranspose):
    """2-D transposed convolution (``F.conv_transpose2d``). Shape: (N, C_in, H, W) ->
    (N, C_out, H_out, W_out), H_out = (H - 1) stride - 2 padding + dilation (kH - 1)
    + output_padding + 1 (W alike)."""

    _nd = 2


class ConvTranspose3d(_ConvTranspose):
    """3-D transposed convolution. Shape: (N, C_in, D, H, W) -> (N, C_out, *S_out)."""

    _nd = 3
