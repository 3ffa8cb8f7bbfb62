"""``pad`` (constant mode), torch's argument order: last dimension first."""

from __future__ import annotations

from collections.abc import Sequence

from tinytorch.ops import shape as S
from tinytorch.tensor import Tensor

__all__ = ["pad"]


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: float | None = None
        ) -> Tensor:  # fmt: skip
    """Pad the last ``len(pad) // 2`` dims: ``pad = (left_last, right_last, left_prev, ...)``.

    Negative widths crop. Only ``mode="constant"`` is supported.
    """
    if mode != "constant":
        raise NotImplementedError(f"pad: mode {mode!r} is not supported (only 'constant')")
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise RuntimeError(
            f"pad: padding length must be even and at most twice the input's dims, got "
            f"{len(pad)} for a {input.ndim}-D input"
        )
    n = len(pad) // 2
    widths = [(0, 0)] * (input.ndim - n) + [
        (int(pad[2 * (n - 1 - i)]), int(pad[2 * (n - 1 - i) + 1])) for i in range(n)
    ]
    for d, ((lo, hi), size) in enumerate(zip(widths, input.shape)):
        if size + min(lo, 0) + min(hi, 0) < 0:  # a crop larger than the dim
            raise RuntimeError(
                f"pad: cropping ({lo}, {hi}) from dim {d} of size {size} leaves a negative "
                f"size (input shape {list(input.shape)}, pad {list(pad)})"
            )
    crop = tuple(slice(-lo if lo < 0 else 0, size + hi if hi < 0 else None)
                 for (lo, hi), size in zip(widths, input.shape))  # fmt: skip
    if any(lo < 0 or hi < 0 for lo, hi in widths):
        input = input[crop]
        widths = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
    if not any(lo or hi for lo, hi in widths):
        return input
    return S.Pad.apply(input, widths=tuple(widths), value=0.0 if value is None else value)
