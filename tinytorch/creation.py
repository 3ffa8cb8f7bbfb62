"""Tensor factories: ``tensor``, ``zeros``, ``arange``, ``randn``, ... with torch's defaults."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tinytorch import _dtype
from tinytorch.random import Generator, _gen, normal_array, uniform_array
from tinytorch.tensor import Tensor, _shape_arg, _unwrap


def _finish(arr: np.ndarray, requires_grad: bool) -> Tensor:
    t = Tensor._make(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _infer_dtype(data: Any) -> np.dtype:
    """torch's inference: bools -> bool, ints -> int64, floats -> default float."""
    arr = np.asarray(data)
    if arr.dtype == np.bool_:
        return arr.dtype
    if arr.dtype.kind in "iu":
        return np.dtype(np.int64)
    if arr.dtype.kind == "f":
        return _dtype.get_default_dtype().np
    if arr.dtype == object or arr.dtype.kind in "US":
        raise TypeError(f"can't convert {type(data).__name__} of {arr.dtype} to a tensor")
    return arr.dtype


def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (nested lists, scalars, arrays or tensors).

    Python floats become ``float32`` (the default dtype), ints ``int64``;
    numpy arrays keep their dtype.
    """
    raw = _unwrap(data)
    npd = _dtype.to_numpy_dtype(dtype)
    if npd is None:
        if isinstance(raw, (np.ndarray, np.generic)) or isinstance(data, Tensor):
            npd = np.asarray(raw).dtype
            _dtype.from_numpy_dtype(npd)
        else:
            npd = _infer_dtype(raw)
    return _finish(np.array(raw, dtype=npd), requires_grad)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """Like ``tensor`` but shares memory with a tensor or array of the right dtype."""
    npd = _dtype.to_numpy_dtype(dtype)
    if isinstance(data, Tensor):
        return data if npd is None else data.to(npd)
    if isinstance(data, np.ndarray) and (npd is None or data.dtype == npd):
        return from_numpy(data)
    return tensor(data, dtype)


def from_numpy(arr: np.ndarray) -> Tensor:
    """A tensor sharing memory with ``arr`` (writes to one show in the other)."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(arr).__name__})")
    _dtype.from_numpy_dtype(arr.dtype)
    return Tensor._make(arr)


def _factory(fn: Any, size: Sequence[Any], dtype: Any, requires_grad: bool, *extra: Any) -> Tensor:
    npd = _dtype.to_numpy_dtype(dtype) or _dtype.get_default_dtype().np
    return _finish(fn(_shape_arg(size), *extra, dtype=npd), requires_grad)


def zeros(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _factory(np.zeros, size, dtype, requires_grad)


def ones(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _factory(np.ones, size, dtype, requires_grad)


def empty(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _factory(np.empty, size, dtype, requires_grad)


def full(size: Sequence[int], fill_value: Any, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:  # fmt: skip
    """A tensor of ``fill_value``; the dtype is inferred from the value like torch's."""
    npd = _dtype.to_numpy_dtype(dtype)
    if npd is None:
        npd = _infer_dtype(fill_value.item() if isinstance(fill_value, Tensor) else fill_value)
    return _finish(np.full(_shape_arg((size,)), fill_value, dtype=npd), requires_grad)


def _like(t: Tensor, dtype: Any) -> tuple[tuple[int, ...], np.dtype]:
    return t.data.shape, _dtype.to_numpy_dtype(dtype) or t.data.dtype


def zeros_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    shape, npd = _like(t, dtype)
    return _finish(np.zeros(shape, npd), requires_grad)


def ones_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    shape, npd = _like(t, dtype)
    return _finish(np.ones(shape, npd), requires_grad)


def empty_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    shape, npd = _like(t, dtype)
    return _finish(np.empty(shape, npd), requires_grad)


def full_like(t: Tensor, fill_value: Any, dtype: Any = None, requires_grad: bool = False
              ) -> Tensor:  # fmt: skip
    shape, npd = _like(t, dtype)
    return _finish(np.full(shape, fill_value, npd), requires_grad)


def arange(start: Any, end: Any = None, step: Any = 1, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:  # fmt: skip
    """``[start, end)`` in steps; int64 when all bounds are ints, else the default float."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("step must be nonzero")
    npd = _dtype.to_numpy_dtype(dtype)
    if npd is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        npd = np.dtype(np.int64) if ints else _dtype.get_default_dtype().np
    n = max(math.ceil((end - start) / step), 0)
    arr = (start + step * np.arange(n, dtype=np.float64)) if npd.kind == "f" else (
        np.arange(start, end, step))  # fmt: skip
    return _finish(arr.astype(npd), requires_grad)


def linspace(start: float, end: float, steps: int, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:  # fmt: skip
    npd = _dtype.to_numpy_dtype(dtype) or _dtype.get_default_dtype().np
    return _finish(np.linspace(start, end, steps).astype(npd), requires_grad)


def eye(n: int, m: int | None = None, dtype: Any = None, device: Any = None,
        requires_grad: bool = False) -> Tensor:  # fmt: skip
    npd = _dtype.to_numpy_dtype(dtype) or _dtype.get_default_dtype().np
    return _finish(np.eye(n, m, dtype=npd), requires_grad)


def rand(*size: Any, generator: Generator | None = None, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:  # fmt: skip
    """Samples from U[0, 1)."""
    return _finish(uniform_array(_shape_arg(size), dtype, generator), requires_grad)


def randn(*size: Any, generator: Generator | None = None, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:  # fmt: skip
    """Samples from N(0, 1)."""
    return _finish(normal_array(_shape_arg(size), dtype, generator), requires_grad)


def randint(low: int, high: int | None = None, size: Sequence[int] = (), *,
            generator: Generator | None = None, dtype: Any = None, device: Any = None,
            requires_grad: bool = False) -> Tensor:  # fmt: skip
    """Integers uniform in ``[low, high)``; ``randint(high, size)`` form as torch."""
    if high is None:
        raise TypeError("randint() missing required argument 'size'")
    if isinstance(high, (tuple, list)):
        low, high, size = 0, low, high
    npd = _dtype.to_numpy_dtype(dtype) or np.dtype(np.int64)
    arr = _gen(generator).integers(low, high, size=tuple(size)).astype(npd)
    return _finish(arr, requires_grad)


def randperm(n: int, *, generator: Generator | None = None, dtype: Any = None,
             device: Any = None) -> Tensor:  # fmt: skip
    npd = _dtype.to_numpy_dtype(dtype) or np.dtype(np.int64)
    return Tensor._make(_gen(generator).permutation(n).astype(npd))


def rand_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    shape, npd = _like(t, dtype)
    return _finish(uniform_array(shape, npd), requires_grad)


def randn_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    shape, npd = _like(t, dtype)
    return _finish(normal_array(shape, npd), requires_grad)


def randint_like(t: Tensor, low: int, high: int | None = None, dtype: Any = None) -> Tensor:
    if high is None:
        low, high = 0, low
    return randint(low, high, t.data.shape, dtype=dtype or t.dtype)


def multinomial(probs: Tensor, num_samples: int, replacement: bool = False, *,
                generator: Generator | None = None) -> Tensor:  # fmt: skip
    """Sample category indices from (unnormalised) probabilities, rows independently."""
    p = np.atleast_2d(probs.data.astype(np.float64))
    if np.any(p < 0) or np.any(~np.isfinite(p)):
        raise RuntimeError(
            "multinomial: probability tensor contains either inf, nan or element < 0"
        )
    gen = _gen(generator)
    rows = []
    for row in p:
        total = row.sum()
        if total <= 0:
            raise RuntimeError(
                "multinomial: invalid multinomial distribution (sum of probabilities <= 0)"
            )
        rows.append(gen.choice(row.size, size=num_samples, replace=replacement, p=row / total))
    out = np.asarray(rows, dtype=np.int64)
    return Tensor._make(out if probs.data.ndim == 2 else out[0])
