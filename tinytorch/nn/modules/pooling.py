"""Pooling layers: max, average and adaptive pooling (no parameters).

The constructor arguments are stored as given (as torch does), so the printed
layer matches torch's: ``MaxPool2d(kernel_size=2, stride=2, padding=0, ...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

from tinytorch.nn.functional import _pool as F
from tinytorch.nn.modules.module import Module
from tinytorch.tensor import Tensor

__all__ = [
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d", "AvgPool1d", "AvgPool2d", "AvgPool3d", "MaxPool1d", "MaxPool2d",
    "MaxPool3d",
]  # fmt: skip

IntOrSeq = int | Sequence[int]


def _single(value: IntOrSeq) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (cast(int, value),)


class _MaxPoolNd(Module):
    """Shared constructor and repr; ``stride`` defaults to ``kernel_size``."""

    def __init__(self, kernel_size: IntOrSeq, stride: IntOrSeq | None = None,
                 padding: IntOrSeq = 0, dilation: IntOrSeq = 1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")  # fmt: skip


class MaxPool1d(_MaxPoolNd):
    """The max over each window (``F.max_pool1d``). Shape: (N, C, L) -> (N, C, L_out)."""

    def forward(self, input: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        return F.max_pool1d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)  # fmt: skip


class MaxPool2d(_MaxPoolNd):
    """The max over each window (``F.max_pool2d``).
    Shape: (N, C, H, W) -> (N, C, H_out, W_out)."""

    def forward(self, input: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)  # fmt: skip


class MaxPool3d(_MaxPoolNd):
    """The max over each window (``F.max_pool3d``).
    Shape: (N, C, D, H, W) -> (N, C, D_out, H_out, W_out)."""

    def forward(self, input: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        return F.max_pool3d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)  # fmt: skip


class _AvgPoolNd(Module):
    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """The mean over each window (``F.avg_pool1d``). Shape: (N, C, L) -> (N, C, L_out).
    The sizes are stored as 1-tuples, as torch."""

    def __init__(self, kernel_size: IntOrSeq, stride: IntOrSeq | None = None,
                 padding: IntOrSeq = 0, ceil_mode: bool = False, count_include_pad: bool = True
                 ) -> None:  # fmt: skip
        super().__init__()
        self.kernel_size = _single(kernel_size)
        self.stride = _single(stride if stride is not None else kernel_size)
        self.padding = _single(padding)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, input: Tensor) -> Tensor:
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)  # fmt: skip


class _AvgPool(_AvgPoolNd):
    """2-D/3-D average pooling: sizes stored as given, optional ``divisor_override``."""

    _fn = staticmethod(F.avg_pool2d)

    def __init__(self, kernel_size: IntOrSeq, stride: IntOrSeq | None = None,
                 padding: IntOrSeq = 0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:  # fmt: skip
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return self._fn(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                        self.count_include_pad, self.divisor_override)  # fmt: skip


class AvgPool2d(_AvgPool):
    """The mean over each window (``F.avg_pool2d``).
    Shape: (N, C, H, W) -> (N, C, H_out, W_out)."""


class AvgPool3d(_AvgPool):
    """The mean over each window (``F.avg_pool3d``).
    Shape: (N, C, D, H, W) -> (N, C, D_out, H_out, W_out)."""

    _fn = staticmethod(F.avg_pool3d)


class _AdaptivePool(Module):
    # Subclasses take narrower output sizes (1-D: ints only) or return (values, indices).
    _fn: Callable[..., Any] = staticmethod(F.adaptive_avg_pool2d)

    def __init__(self, output_size: IntOrSeq | Sequence[int | None]) -> None:
        super().__init__()
        self.output_size = output_size

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def forward(self, input: Tensor) -> Tensor:
        return self._fn(input, self.output_size)


class AdaptiveAvgPool1d(_AdaptivePool):
    """The mean over ``output_size`` near-even windows (``F.adaptive_avg_pool1d``).
    Shape: (N, C, L) -> (N, C, output_size)."""

    _fn = staticmethod(F.adaptive_avg_pool1d)


class AdaptiveAvgPool2d(_AdaptivePool):
    """The mean over near-even windows (``F.adaptive_avg_pool2d``); None keeps a size.
    Shape: (N, C, H, W) -> (N, C, *output_size)."""


class AdaptiveAvgPool3d(_AdaptivePool):
    """3-D adaptive average pooling. Shape: (N, C, D, H, W) -> (N, C, *output_size)."""

    _fn = staticmethod(F.adaptive_avg_pool3d)


class _AdaptiveMaxPool(_AdaptivePool):
    _fn: Callable[..., Any] = staticmethod(F.adaptive_max_pool2d)

    def __init__(self, output_size: IntOrSeq | Sequence[int | None],
                 return_indices: bool = False) -> None:  # fmt: skip
        super().__init__(output_size)
        self.return_indices = return_indices

    def forward(self, input: Tensor) -> Tensor | tuple[Tensor, Tensor]:  # type: ignore[override]
        return self._fn(input, self.output_size, self.return_indices)


class AdaptiveMaxPool1d(_AdaptiveMaxPool):
    """The max over near-even windows (``F.adaptive_max_pool1d``).
    Shape: (N, C, L) -> (N, C, output_size)."""

    _fn = staticmethod(F.adaptive_max_pool1d)


class AdaptiveMaxPool2d(_AdaptiveMaxPool):
    """The max over near-even windows (``F.adaptive_max_pool2d``).
    Shape: (N, C, H, W) -> (N, C, *output_size)."""
