"""dtypes and torch's type-promotion rules.

A ``dtype`` wraps a numpy dtype. Promotion follows torch: operands are ranked
bool < integer < floating; within the winning category, dimensioned tensors
decide before 0-d tensors, which decide before Python scalars, and a Python
scalar (or 0-d tensor) of a *higher* category gives that category's default
(``float32`` for floats, ``int64`` for ints).
"""

from __future__ import annotations

import numpy as np


class dtype:  # noqa: N801 - torch's name
    """A tensor element type (``tinytorch.float32``, ...)."""

    __slots__ = ("_category", "is_floating_point", "itemsize", "name", "np")

    def __init__(self, name: str, np_dtype: type, category: int) -> None:
        self.name = name
        self.np = np.dtype(np_dtype)
        self.is_floating_point = category == 2
        self.itemsize = self.np.itemsize
        self._category = category  # 0 bool, 1 integer, 2 floating

    def __repr__(self) -> str:
        return f"tinytorch.{self.name}"

    def __reduce__(self) -> str:
        return self.name


float16 = dtype("float16", np.float16, 2)
float32 = dtype("float32", np.float32, 2)
float64 = dtype("float64", np.float64, 2)
uint8 = dtype("uint8", np.uint8, 1)
int8 = dtype("int8", np.int8, 1)
int16 = dtype("int16", np.int16, 1)
int32 = dtype("int32", np.int32, 1)
int64 = dtype("int64", np.int64, 1)
bool_ = dtype("bool", np.bool_, 0)

ALL_DTYPES = (float16, float32, float64, uint8, int8, int16, int32, int64, bool_)
_FROM_NP = {d.np: d for d in ALL_DTYPES}

_default_float = float32


def get_default_dtype() -> dtype:
    """The dtype of floating tensors made from Python floats (``float32``)."""
    return _default_float


def set_default_dtype(d: dtype) -> None:
    """Set the default floating dtype (``float32`` or ``float64``)."""
    global _default_float
    if d not in (float32, float64):
        raise TypeError(f"only float32 and float64 can be the default dtype, got {d}")
    _default_float = d


def from_numpy_dtype(npd: np.dtype) -> dtype:
    """The tinytorch dtype of a numpy dtype; TypeError for unsupported ones."""
    try:
        return _FROM_NP[npd]
    except KeyError:
        raise TypeError(f"numpy dtype {npd} is not supported by tinytorch") from None


def to_numpy_dtype(d: dtype | type | str | np.dtype | None) -> np.dtype | None:
    """Accept a tinytorch dtype, numpy dtype or Python type; return the numpy dtype."""
    if d is None:
        return None
    if isinstance(d, dtype):
        return d.np
    if d is float:
        return _default_float.np
    if d is int:
        return int64.np
    if d is bool:
        return bool_.np
    return from_numpy_dtype(np.dtype(d)).np


def _category_of_scalar(x: object) -> int:
    if isinstance(x, (bool, np.bool_)):
        return 0
    if isinstance(x, (int, np.integer)):
        return 1
    if isinstance(x, (float, np.floating)):
        return 2
    raise TypeError(f"unsupported operand type {type(x).__name__}")


def _default_for(category: int) -> np.dtype:
    return (np.dtype(np.bool_), np.dtype(np.int64), _default_float.np)[category]


def _promote(a: np.dtype | None, b: np.dtype) -> np.dtype:
    """torch's promotion of two tensor dtypes: the higher category wins outright
    (``float32 + int64 -> float32``); within a category numpy's rule applies."""
    if a is None:
        return b
    ca, cb = _FROM_NP[a]._category, _FROM_NP[b]._category
    if ca != cb:
        return a if ca > cb else b
    return np.promote_types(a, b)


def result_type(*operands: object) -> np.dtype:
    """The numpy dtype torch would give ``op(*operands)``.

    ``operands`` are numpy arrays (standing for tensors) or Python scalars.
    """
    dim_dt = zero_dt = None
    best_cat = scalar_cat = -1
    for x in operands:
        if isinstance(x, np.ndarray):
            d = x.dtype
            cat = _FROM_NP[d]._category
            if x.ndim:
                dim_dt = _promote(dim_dt, d)
            else:
                zero_dt = _promote(zero_dt, d)
        else:
            cat = _category_of_scalar(x)
            scalar_cat = max(scalar_cat, cat)
        best_cat = max(best_cat, cat)
    if dim_dt is not None and _FROM_NP[dim_dt]._category == best_cat:
        return dim_dt
    if zero_dt is not None and _FROM_NP[zero_dt]._category == best_cat:
        return zero_dt
    return _default_for(best_cat)
