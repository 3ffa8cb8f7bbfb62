"""``repr`` of tensors in torch's layout: ``tensor([1.0000, 2.5000], grad_fn=<MulBackward0>)``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tinytorch.tensor import Tensor

_DEFAULT_DTYPES = ("float32", "int64", "bool")


def _float_formatter(values: np.ndarray):
    finite = values[np.isfinite(values)]
    nonzero = np.abs(finite[finite != 0])
    if finite.size and np.all(finite == np.ceil(finite)):
        if nonzero.size and (nonzero.max() / nonzero.min() > 1000.0 or nonzero.max() > 1e8):
            return lambda v: f"{v:.4e}"
        return lambda v: f"{v:.0f}." if np.isfinite(v) else f"{v}"
    if nonzero.size and (
        nonzero.max() / nonzero.min() > 1000.0 or nonzero.max() > 1e8 or nonzero.min() < 1e-4
    ):
        return lambda v: f"{v:.4e}"
    return lambda v: f"{v:.4f}"


def _format_array(a: np.ndarray, indent: int) -> str:
    if a.dtype.kind == "f":
        fmt = _float_formatter(a.astype(np.float64))
        to_str = lambda v: fmt(float(v))
        key = "float_kind"
    elif a.dtype == np.bool_:
        to_str = lambda v: "True" if v else "False"
        key = "bool"
    else:
        to_str = lambda v: str(int(v))
        key = "int"
    if a.ndim == 0:
        return to_str(a.item())
    # torch right-aligns every element to the widest one
    shown = a if a.size <= 1000 else np.concatenate([a.reshape(-1)[:3], a.reshape(-1)[-3:]])
    width = max((len(to_str(v)) for v in shown.reshape(-1)), default=0)
    formatter = {key: lambda v: to_str(v).rjust(width)}
    return np.array2string(
        a,
        separator=", ",
        formatter=formatter,  # type: ignore[arg-type]
        prefix=" " * indent,
        threshold=1000,
        edgeitems=3,
        max_line_width=80,
    )


def tensor_repr(t: Tensor, prefix: str = "tensor(") -> str:
    body = _format_array(t.data, len(prefix))
    if t.data.size == 0 and t.data.ndim == 1:
        body = "[]"
    suffixes = []
    if t.data.size == 0 and t.data.shape != (0,):
        suffixes.append(f"size={tuple(t.data.shape)}")
    name = t.dtype.name
    if name not in _DEFAULT_DTYPES or (t.data.size == 0 and name != "float32"):
        suffixes.append(f"dtype=tinytorch.{name}")
    if t.grad_fn is not None:
        suffixes.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    tail = "".join(", " + s for s in suffixes)
    return f"{prefix}{body}{tail})"
