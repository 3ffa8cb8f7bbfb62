"""Composite ops: everything built from the primitives, in one visible place.

Each function here is differentiable (to any order) because it only calls
primitives or other composites; none has a backward of its own.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tinytorch import _dtype
from tinytorch.autograd import node as _node
from tinytorch.autograd.grad_mode import STATE
from tinytorch.ops import elementwise as E
from tinytorch.ops import linalg as L
from tinytorch.ops import reduce as R
from tinytorch.ops import shape as S

if TYPE_CHECKING:
    from tinytorch.autograd.node import Node
    from tinytorch.tensor import Tensor


def _T():  # noqa: N802 - the Tensor class, imported late to avoid a cycle
    from tinytorch.tensor import Tensor

    return Tensor


def as_tensor(x: Any, dtype: np.dtype | None = None) -> Tensor:
    T = _T()
    if isinstance(x, T):
        return x if dtype is None or x.data.dtype == dtype else x.to(dtype)
    if dtype is None:
        arr = np.asarray(x)
        if arr.dtype == np.float64 and not isinstance(x, np.ndarray):
            arr = arr.astype(_dtype.get_default_dtype().np)
        return T._make(arr)
    return T._make(np.asarray(x, dtype=dtype))


def norm_dim(t: Tensor, dim: int) -> int:
    n = max(t.data.ndim, 1)
    if not -n <= dim < n:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})"
        )
    return dim % n


def norm_dims(t: Tensor, dim: Any) -> tuple[int, ...] | None:
    """``dim`` as a sorted tuple of non-negative axes; None means all axes."""
    if dim is None:
        return None
    if isinstance(dim, int):
        dim = (dim,)
    axes = [norm_dim(t, d) for d in dim]
    if len(set(axes)) != len(axes):  # numpy would reduce the dim once and say nothing
        dup = next(a for a in axes if axes.count(a) > 1)
        raise RuntimeError(f"dim {dup} appears multiple times in the list of dims")
    if t.data.ndim == 0:
        return ()
    return tuple(sorted(axes))


# --- elementwise ------------------------------------------------------------------------


def unary(cls: type[Node], x: Tensor) -> Tensor:
    """Apply a float-valued unary primitive; integer inputs are promoted to float."""
    if x.data.dtype.kind != "f":
        x = x.to(_dtype.get_default_dtype().np)
    return cls.apply(x)


def no_grad_op(fn: Callable[[np.ndarray], np.ndarray], x: Tensor) -> Tensor:
    """A piecewise-constant or non-differentiable op: computed, never recorded."""
    return _T()._make(np.asarray(fn(x.data)))


def piecewise(fn: Callable[[np.ndarray], np.ndarray], x: Tensor) -> Tensor:
    """A piecewise-constant op: zero gradient for floats, no graph for ints."""
    if x.data.dtype.kind != "f":
        return no_grad_op(fn, x)
    return E.Piecewise.apply(x, fn=fn)


def compare(fn: Callable, a: Any, b: Any) -> Tensor:
    """Comparisons and logical ops: promote like torch, return a bool tensor, no grad."""
    from tinytorch.tensor import broadcast_shape

    T = _T()
    ad = a.data if isinstance(a, T) else a
    bd = b.data if isinstance(b, T) else b
    dt = _dtype.result_type(ad, bd)
    ad = np.asarray(ad, dtype=dt)
    bd = np.asarray(bd, dtype=dt)
    if ad.shape != bd.shape:
        broadcast_shape(fn.__name__, ad.shape, bd.shape)
    return T._make(np.asarray(fn(ad, bd)))


def logical_not(x: Tensor) -> Tensor:
    return _T()._make(np.logical_not(x.data))


def pow(a: Any, b: Any) -> Tensor:
    """``a ** b``; a Python-number exponent uses ``PowScalar`` (no log in the backward)."""
    from tinytorch.tensor import _binary

    T = _T()
    if isinstance(a, T) and isinstance(b, (int, float)) and not isinstance(b, bool):
        if a.data.dtype == np.bool_:  # torch: bool ** int is int64 (numpy kept bool here)
            a = a.to(np.int64)
        if a.data.dtype.kind != "f" and (isinstance(b, float) or b < 0):
            if isinstance(b, int):
                raise RuntimeError("Integers to negative integer powers are not allowed.")
            a = a.to(_dtype.get_default_dtype().np)
        return E.PowScalar.apply(a, p=b)
    if isinstance(a, T) and isinstance(b, T) and a.data.dtype == b.data.dtype == np.bool_:
        raise RuntimeError('"pow" not implemented for bool tensors')  # numpy: int8
    return _binary(E.Pow, a, b)


def div(a: Tensor, b: Any, rounding_mode: str | None) -> Tensor:
    if rounding_mode is None:
        return a / b
    if rounding_mode == "floor":
        return floor_divide(a, b)
    if rounding_mode == "trunc":
        q = a / b
        return q.trunc().to(_result(a, b))
    raise ValueError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' "
                     f"but found '{rounding_mode}'")  # fmt: skip


def _result(a: Any, b: Any) -> np.dtype:
    T = _T()
    return _dtype.result_type(a.data if isinstance(a, T) else a, b.data if isinstance(b, T) else b)


def floor_divide(a: Any, b: Any) -> Tensor:
    """``a // b`` rounding toward -inf, like torch (no gradient)."""
    T = _T()
    dt = _result(a, b)
    ad = np.asarray(a.data if isinstance(a, T) else a, dtype=dt)
    bd = np.asarray(b.data if isinstance(b, T) else b, dtype=dt)
    from tinytorch.tensor import broadcast_shape

    shape = broadcast_shape("floor_divide", ad.shape, bd.shape)  # names op and shapes
    if dt == np.bool_:  # numpy would answer in int8; torch refuses
        raise RuntimeError('"floor_divide" not implemented for bool tensors')
    if dt.kind in "iu" and np.any(bd == 0) and 0 not in shape:
        raise RuntimeError("ZeroDivisionError: integer division by zero (floor_divide)")
    return T._make(np.asarray(np.floor_divide(ad, bd)))


def remainder(a: Any, b: Any) -> Tensor:
    """``a % b`` with the sign of ``b`` (Python's rule, as torch);  d/da = 1, d/db = -floor(a/b)."""
    q = floor_divide(a, b)
    if q.data.dtype.kind != "f":
        T = _T()
        dt = q.data.dtype
        ad = np.asarray(a.data if isinstance(a, T) else a, dtype=dt)
        bd = np.asarray(b.data if isinstance(b, T) else b, dtype=dt)
        return T._make(np.asarray(np.remainder(ad, bd)))
    if isinstance(a, _T()) and a.data.dtype == np.bool_:  # bool - float is refused
        a = a.to(q.data.dtype)
    return a - q * b


def reciprocal(x: Tensor) -> Tensor:
    return 1.0 / (x if x.data.dtype.kind == "f" else x.to(_dtype.get_default_dtype().np))


def rsqrt(x: Tensor) -> Tensor:
    return reciprocal(unary(E.Sqrt, x))


def log2(x: Tensor) -> Tensor:
    return unary(E.Log, x) * (1.0 / math.log(2.0))


def log10(x: Tensor) -> Tensor:
    return unary(E.Log, x) * (1.0 / math.log(10.0))


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """``condition ? a : b`` with broadcasting over all three and dtype promotion of a, b."""
    from tinytorch.tensor import broadcast_shape, expand_for_grad

    T = _T()
    cond = condition.data if isinstance(condition, T) else np.asarray(condition)
    if cond.dtype != np.bool_:
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got {cond.dtype}")
    dt = _result(a, b)
    a, b = as_tensor(a, dt), as_tensor(b, dt)
    shape = broadcast_shape("where", broadcast_shape("where", cond.shape, a.data.shape),
                            b.data.shape)  # fmt: skip
    a, b = expand_for_grad(a, shape), expand_for_grad(b, shape)
    if cond.shape != shape and (a._requires_grad or b._requires_grad):
        cond = np.broadcast_to(cond, shape)
    return E.Where.apply(a, b, cond=cond)


def clamp(x: Tensor, min: Any = None, max: Any = None) -> Tensor:
    """``min(max(x, lo), hi)``; the gradient passes where ``lo <= x <= hi`` (as torch)."""
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    T = _T()
    out = x
    if min is not None:
        lo = min.data if isinstance(min, T) else min
        out = where(np.asarray(out.data >= lo), out, min)
    if max is not None:
        hi = max.data if isinstance(max, T) else max
        out = where(np.asarray(out.data <= hi), out, max)
    return out


def lerp(start: Tensor, end: Any, weight: Any) -> Tensor:
    """``start + weight * (end - start)``."""
    return start + weight * (end - start)


def clone(x: Tensor) -> Tensor:
    """A copy with its own memory; gradient flows through unchanged."""
    return E.Cast.apply(x, dtype=x.data.dtype) if x._requires_grad and STATE.enabled else (
        _T()._make(x.data.copy()))  # fmt: skip


# --- in-place ---------------------------------------------------------------------------


def _check_inplace(t: Tensor) -> bool:
    """Whether an in-place op on ``t`` must be recorded; raise where torch raises."""
    if not STATE.enabled:
        return False
    if t.grad_fn is None and t._requires_grad:
        raise RuntimeError(
            "a leaf Variable that requires grad is being used in an in-place operation."
        )
    if t._base is not None and t._base._requires_grad:
        raise RuntimeError(
            "in-place operation on a view of a tensor that requires grad is not supported "
            "by tinytorch (torch rewrites the base's history here); write through the base "
            "instead, e.g. base[idx] = value, or use the out-of-place op"
        )
    return True


def inplace(t: Tensor, op: Callable[[Tensor], Tensor]) -> Tensor:
    """Run ``op`` out of place, then make ``t`` hold the result (memory and history).

    The op sees a snapshot of ``t`` (same history, its own copy of the data),
    so values it saved for backward stay valid after ``t`` is overwritten;
    ``t``'s version counter is bumped so that any *other* node that saved
    ``t`` raises instead of computing a wrong gradient.
    """
    T = _T()
    if _check_inplace(t):
        snapshot = T._make(t.data.copy(), t._requires_grad, t.grad_fn)
        result = op(snapshot)
    else:
        result = op(T._make(t.data))
    if result.data.dtype != t.data.dtype and not np.can_cast(result.data.dtype, t.data.dtype,
                                                              "same_kind"):  # fmt: skip
        raise RuntimeError(
            f"result type {_dtype.from_numpy_dtype(result.data.dtype).name} can't be cast to "
            f"the desired output type {_dtype.from_numpy_dtype(t.data.dtype).name}"
        )
    if result.data.shape != t.data.shape:
        raise RuntimeError(
            f"output with shape {list(t.data.shape)} doesn't match the broadcast shape "
            f"{list(result.data.shape)}"
        )
    np.copyto(t.data, result.data, casting="unsafe")
    t._vc[0] += 1
    if result.grad_fn is not None:
        t.grad_fn = result.grad_fn
        t._requires_grad = True
    return t


def fill(t: Tensor, value: Any) -> Tensor:
    """``t.fill_(value)``: ``copy_`` of a scalar (or 0-d tensor) broadcast over ``t``."""
    return copy_(t, value)


def copy_(t: Tensor, src: Any) -> Tensor:
    """Overwrite ``t`` with ``src`` (broadcast): gradient flows to ``src`` only."""
    src = as_tensor(src)
    if _check_inplace(t) and src._requires_grad:
        # clone: a node of its own, so t never shares src's history object
        return inplace(t, lambda s: expand(clone(src.to(s.data.dtype)), s.data.shape))
    try:
        src_view = np.broadcast_to(src.data, t.data.shape)
    except ValueError:
        raise RuntimeError(
            f"copy_: the source of shape {list(src.data.shape)} cannot be "
            f"broadcast to the destination's shape {list(t.data.shape)}"
        ) from None
    np.copyto(t.data, src_view, casting="unsafe")
    t._vc[0] += 1
    if STATE.enabled and t.grad_fn is not None:  # the old history no longer matters
        t.grad_fn = None
        t._requires_grad = False
    return t


def setitem(t: Tensor, key: Any, value: Any) -> None:
    """``t[key] = value`` in place; gradient flows to value and to the untouched part of t."""
    idx = normalize_index(key)
    value = as_tensor(value, t.data.dtype)
    if STATE.enabled and (value._requires_grad or t._requires_grad) and _check_inplace(t):
        target_shape = t.data[idx].shape
        src = value if value.data.shape == target_shape else expand(value, target_shape)
        inplace(t, lambda s: S.IndexSet.apply(s, src, idx=idx))
        return
    try:
        t.data[idx] = value.data
    except ValueError as e:  # numpy's message names neither the op nor the tensor's shape
        raise RuntimeError(
            f"setitem: value of shape {list(value.data.shape)} cannot be "
            f"assigned to index {key!r} of a tensor of shape "
            f"{list(t.data.shape)} ({e})"
        ) from None
    t._vc[0] += 1


# --- linear algebra ---------------------------------------------------------------------


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product with torch's rules: 1-D operands are promoted and the dim removed
    again; leading (batch) dims broadcast."""
    a, b = as_tensor(a), as_tensor(b)
    if a.data.ndim == 0 or b.data.ndim == 0:
        raise RuntimeError(
            f"matmul: both arguments to matmul need to be at least 1D, but they are "
            f"{a.data.ndim}D and {b.data.ndim}D"
        )
    if a.data.dtype != b.data.dtype:
        dt = _result(a, b)
        a, b = a.to(dt), b.to(dt)
    squeeze = []
    if a.data.ndim == 1:
        a = unsqueeze(a, 0)
        squeeze.append(-2)
    if b.data.ndim == 1:
        b = unsqueeze(b, 1)
        squeeze.append(-1)
    if a.data.shape[-1] != b.data.shape[-2]:
        raise RuntimeError(
            f"matmul: mat1 and mat2 shapes cannot be multiplied "
            f"({'x'.join(map(str, a.data.shape))} and {'x'.join(map(str, b.data.shape))})"
        )
    if a.data.ndim > 2 or b.data.ndim > 2:
        from tinytorch.tensor import broadcast_shape, expand_for_grad

        batch = broadcast_shape("matmul", a.data.shape[:-2], b.data.shape[:-2])
        a = expand_for_grad(a, batch + a.data.shape[-2:])
        b = expand_for_grad(b, batch + b.data.shape[-2:])
    out = L.MatMul.apply(a, b)
    if len(squeeze) == 2:
        return reshape(out, out.data.shape[:-2])
    if squeeze:
        return squeeze_dim(out, squeeze[0])
    return out


def mm(a: Tensor, b: Tensor) -> Tensor:
    if a.data.ndim != 2 or b.data.ndim != 2:
        raise RuntimeError(f"mm: expected 2D tensors, got {a.data.ndim}D and {b.data.ndim}D")
    return matmul(a, b)


def bmm(a: Tensor, b: Tensor) -> Tensor:
    if a.data.ndim != 3 or b.data.ndim != 3:
        raise RuntimeError(f"bmm: expected 3D tensors, got {a.data.ndim}D and {b.data.ndim}D")
    if a.data.shape[0] != b.data.shape[0]:
        raise RuntimeError(
            f"bmm: batch sizes must match, got shapes {list(a.data.shape)} and {list(b.data.shape)}"
        )
    return matmul(a, b)


def dot(a: Tensor, b: Tensor) -> Tensor:
    if a.data.ndim != 1 or b.data.ndim != 1:
        raise RuntimeError("1D tensors expected, but got {a.data.ndim}D and {b.data.ndim}D tensors")
    return matmul(a, b)


def outer(a: Tensor, b: Tensor) -> Tensor:
    if a.data.ndim != 1 or b.data.ndim != 1:
        raise RuntimeError(f"outer: expected 1-D arguments, but got shapes "
                           f"{list(a.data.shape)} and {list(b.data.shape)}")  # fmt: skip
    return unsqueeze(a, 1) * unsqueeze(b, 0)


def einsum(equation: str, *operands: Any) -> Tensor:
    """``einsum`` over tensors; subscripts ``a-zA-Z``, optional ``->`` (implicit mode sorts)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    ops = [as_tensor(o) for o in operands]
    eq = equation.replace(" ", "")
    if "." in eq:
        raise NotImplementedError("einsum: ellipsis ('...') is not supported yet")
    if "->" in eq:
        lhs, out = eq.split("->")
    else:
        lhs = eq
        letters = lhs.replace(",", "")
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    ins = lhs.split(",")
    if len(ins) != len(ops):
        raise RuntimeError(f"einsum(): {len(ins)} operand subscripts but {len(ops)} operands")
    for s, o in zip(ins, ops):
        if len(s) != o.data.ndim:
            raise RuntimeError(
                f"einsum(): the number of subscripts in the equation ({len(s)}) does not match "
                f"the number of dimensions ({o.data.ndim}) for operand {ins.index(s)}"
            )
        if len(set(s)) != len(s) and o._requires_grad:
            raise NotImplementedError("einsum: repeated subscripts in one operand (diagonals)")
    sizes: dict[str, int] = {}
    for i, (s, o) in enumerate(zip(ins, ops)):
        for letter, n in zip(s, o.data.shape):
            seen = sizes.setdefault(letter, n)
            if seen != n and 1 not in (seen, n):
                raise RuntimeError(
                    f"einsum(): subscript {letter} has size {n} for operand {i} which does not "
                    f"broadcast with previously seen size {seen} (operand shapes "
                    f"{[list(t.data.shape) for t in ops]})"
                )
    dt = _dtype.result_type(*[o.data for o in ops])
    ops = [o.to(dt) for o in ops]
    return L.Einsum.apply(*ops, ins=tuple(ins), out=out)


# --- reductions -------------------------------------------------------------------------


def sum(x: Tensor, dim: Any = None, keepdim: bool = False, dtype: Any = None) -> Tensor:
    axes = norm_dims(x, dim)
    if axes is None:
        axes = tuple(range(x.data.ndim))
    npd = _dtype.to_numpy_dtype(dtype)
    if npd is None and x.data.dtype.kind in "bi" and x.data.dtype != np.int64:
        npd = np.dtype(np.int64)  # torch sums bool/int to int64
    if npd is not None and npd != x.data.dtype:
        x = x.to(npd)
    return R.Sum.apply(x, axis=axes, keepdims=keepdim)


def mean(x: Tensor, dim: Any = None, keepdim: bool = False, dtype: Any = None) -> Tensor:
    if dtype is not None:
        x = x.to(_dtype.to_numpy_dtype(dtype))
    if x.data.dtype.kind != "f":
        raise RuntimeError(
            f"mean(): could not infer output dtype. Input dtype must be either a floating point "
            f"or complex dtype. Got: {_dtype.from_numpy_dtype(x.data.dtype).name.capitalize()}"
        )
    axes = norm_dims(x, dim)
    n = x.data.size if axes is None else math.prod([x.data.shape[a] for a in axes])
    return sum(x, dim, keepdim) / n if n else sum(x, dim, keepdim) * math.nan


def prod(x: Tensor, dim: int | None, keepdim: bool) -> Tensor:
    if x.data.dtype.kind in "bi" and x.data.dtype != np.int64:
        x = x.to(np.int64)
    axes = tuple(range(x.data.ndim)) if dim is None else (norm_dim(x, dim),)
    if x.data.ndim == 0:
        axes = ()
    return R.Prod.apply(x, axis=axes, keepdims=keepdim and dim is not None)


def amax_amin(x: Tensor, dim: Any, keepdim: bool, cls: type[Node]) -> Tensor:
    axes = norm_dims(x, dim if dim != () else None)
    if axes is None:
        axes = tuple(range(x.data.ndim))
    for a in axes:
        if x.data.shape[a] == 0:
            raise IndexError(f"{cls.__name__.lower()}(): Expected reduction dim {a} to have "
                             f"non-zero size.")  # fmt: skip
    return cls.apply(x, axis=axes, keepdims=keepdim)


def max_min(x: Tensor, dim: Any, keepdim: bool, is_max: bool) -> Any:
    """``max()``/``min()``: full reduction, elementwise against a tensor, or
    ``(values, indices)`` along ``dim`` (the gradient goes to the returned index)."""
    T = _T()
    if isinstance(dim, T):
        return x.maximum(dim) if is_max else x.minimum(dim)
    if dim is None:
        if x.data.size == 0:
            raise RuntimeError(
                "max(): Expected reduction dim to be specified for input.numel() == 0. "
                "Specify the reduction dim with the 'dim' argument."
            )
        return amax_amin(x, None, False, R.Amax if is_max else R.Amin)
    d = norm_dim(x, dim)
    idx = arg_extreme(np.argmax if is_max else np.argmin, x, d, True)
    values = gather(x, d, idx) if x.data.ndim else x
    if not keepdim and x.data.ndim:
        values, idx = squeeze_dim(values, d), squeeze_dim(idx, d)
    from tinytorch.return_types import MinMax

    return MinMax(values, idx)


def arg_extreme(fn: Callable, x: Tensor, dim: int | None, keepdim: bool) -> Tensor:
    T = _T()
    if dim is None:
        out = np.asarray(fn(x.data))
        if keepdim:
            out = out.reshape((1,) * x.data.ndim)
        return T._make(out.astype(np.int64))
    d = norm_dim(x, dim)
    if x.data.ndim == 0:
        return T._make(np.zeros((), np.int64))
    return T._make(np.asarray(fn(x.data, axis=d, keepdims=keepdim)).astype(np.int64))


def var(x: Tensor, dim: Any, unbiased: bool | None, keepdim: bool, correction: Any) -> Tensor:
    """``sum((x - mean)^2) / (N - correction)``; ``unbiased=False`` means correction 0."""
    if correction is None:
        correction = 0 if unbiased is False else 1
    axes = norm_dims(x, dim)
    n = x.data.size if axes is None else math.prod([x.data.shape[a] for a in axes])
    centered = x - mean(x, dim, True)
    return sum(centered * centered, dim, keepdim) / max(n - correction, 0)


def logsumexp(x: Tensor, dim: Any, keepdim: bool = False) -> Tensor:
    """``log(sum(exp(x)))`` shifted by the (detached) max so that nothing overflows."""
    if x.data.dtype.kind != "f":
        x = x.to(_dtype.get_default_dtype().np)
    m = np.max(x.data, axis=norm_dims(x, dim), keepdims=True) if x.data.size else np.zeros(())
    m = np.where(np.isinf(m), 0, m).astype(x.data.dtype)
    m_t = _T()._make(m)
    out = unary(E.Log, sum(unary(E.Exp, x - m_t), dim, True)) + m_t
    return out if keepdim else squeeze_dims(out, norm_dims(x, dim))


def softmax(x: Tensor, dim: int) -> Tensor:
    """``exp(x - max) / sum(exp(x - max))`` along ``dim``: the fused ``Softmax``
    primitive; the composite while the ONNX tracer runs, and for 0-d or empty x."""
    if x.data.dtype.kind != "f":
        x = x.to(_dtype.get_default_dtype().np)
    d = norm_dim(x, dim)
    if x.data.ndim and x.data.size and _node.trace_hook is None:
        return R.Softmax.apply(x, dim=d)
    return softmax_reference(x, d)


def softmax_reference(x: Tensor, dim: int) -> Tensor:
    """The composite softmax of a float x (the reference ``Softmax`` is tested against)."""
    d = norm_dim(x, dim)
    m = np.max(x.data, axis=d, keepdims=True) if x.data.size else np.zeros((), x.data.dtype)
    shifted = x - _T()._make(m)
    e = unary(E.Exp, shifted)
    return e / sum(e, dim, True)


def log_softmax(x: Tensor, dim: int) -> Tensor:
    """``x - logsumexp(x)`` along ``dim``."""
    return x - logsumexp(x, dim, True)


def norm(x: Tensor, p: Any = "fro", dim: Any = None, keepdim: bool = False) -> Tensor:
    """Vector p-norm ``(sum |x|^p)^(1/p)`` over ``dim`` (all elements by default)."""
    if x.data.dtype.kind not in "fc":
        raise RuntimeError(f"norm: Expected a floating point or complex tensor as input. "
                           f"Got {x.data.dtype}")  # fmt: skip
    if p == "fro" or p == 2:
        return unary(E.Sqrt, sum(x * x, dim, keepdim))
    if p in (math.inf, "inf"):
        return amax_amin(x.abs(), dim if dim is not None else (), keepdim, R.Amax)
    if p in (-math.inf, "-inf"):
        return amax_amin(x.abs(), dim if dim is not None else (), keepdim, R.Amin)
    if p == 1:
        return sum(x.abs(), dim, keepdim)
    if p == 0:
        return sum((x != 0).to(x.data.dtype), dim, keepdim)
    return sum(x.abs() ** p, dim, keepdim) ** (1.0 / p)


def cumsum(x: Tensor, dim: int, dtype: Any = None) -> Tensor:
    npd = _dtype.to_numpy_dtype(dtype)
    if npd is None and x.data.dtype.kind in "bi":
        npd = np.dtype(np.int64)
    if npd is not None and npd != x.data.dtype:
        x = x.to(npd)
    if x.data.ndim == 0:
        return clone(x)
    return R.Cumsum.apply(x, axis=norm_dim(x, dim))


# --- shape ------------------------------------------------------------------------------


def _view_of(out: Tensor, base: Tensor) -> Tensor:
    """Mark ``out`` as a view of ``base``: they share the version counter."""
    if np.may_share_memory(out.data, base.data):
        out._vc = base._vc
        out._base = base._base if base._base is not None else base
    return out


def _infer_shape(x: Tensor, shape: tuple[int, ...], op: str) -> tuple[int, ...]:
    n = x.data.size
    if -1 not in shape and math.prod(shape) == n:  # the common case, checked cheaply
        return shape
    if shape.count(-1) > 1:
        raise RuntimeError(f"{op}: only one dimension can be inferred (shape {list(shape)})")
    known = math.prod([s for s in shape if s != -1])
    if -1 in shape:
        if known == 0 or n % known:
            raise RuntimeError(f"{op}: shape '{list(shape)}' is invalid for input of size {n}")
        shape = tuple(n // known if s == -1 else s for s in shape)
    elif known != n:
        raise RuntimeError(f"{op}: shape '{list(shape)}' is invalid for input of size {n}")
    return shape


def reshape(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    shape = _infer_shape(x, tuple(shape), "reshape")
    if shape == x.data.shape:
        return x
    return _view_of(S.Reshape.apply(x, shape=shape), x)


def view(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    shape = _infer_shape(x, tuple(shape), "view")
    out = S.Reshape.apply(x, shape=shape)
    if out.data.size and not np.may_share_memory(out.data, x.data):
        raise RuntimeError(
            f"view size is not compatible with input tensor's size and stride (at least one "
            f"dimension spans across two contiguous subspaces) for shape {list(x.data.shape)} "
            f"-> {list(shape)}. Use .reshape(...) instead."
        )
    return _view_of(out, x)


def permute(x: Tensor, dims: tuple[int, ...]) -> Tensor:
    if len(dims) != x.data.ndim:
        raise RuntimeError(
            f"permute(sparse_coo): number of dimensions in the tensor input does not match the "
            f"length of the desired ordering of dimensions i.e. input.dim() = {x.data.ndim} is "
            f"not equal to len(dims) = {len(dims)}"
        )
    dims = tuple(norm_dim(x, d) for d in dims)
    if len(set(dims)) != len(dims):
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    if dims == tuple(range(x.data.ndim)):
        return x
    return _view_of(S.Permute.apply(x, dims=dims), x)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    if x.data.ndim == 0:
        return x
    d0, d1 = norm_dim(x, dim0), norm_dim(x, dim1)
    if d0 == d1:
        return x
    dims = list(range(x.data.ndim))
    dims[d0], dims[d1] = d1, d0
    return _view_of(S.Permute.apply(x, dims=tuple(dims)), x)


def t(x: Tensor) -> Tensor:
    if x.data.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {x.data.ndim}D")
    return transpose(x, 0, 1) if x.data.ndim == 2 else x


def squeeze_dim(x: Tensor, dim: int) -> Tensor:
    d = norm_dim(x, dim)
    if x.data.ndim == 0 or x.data.shape[d] != 1:
        return x
    return reshape(x, x.data.shape[:d] + x.data.shape[d + 1 :])


def squeeze_dims(x: Tensor, dims: tuple[int, ...] | None) -> Tensor:
    if dims is None:
        dims = tuple(range(x.data.ndim))
    shape = tuple(n for i, n in enumerate(x.data.shape) if not (i in dims and n == 1))
    return reshape(x, shape)


def squeeze(x: Tensor, dim: Any = None) -> Tensor:
    if dim is None:
        return squeeze_dims(x, None)
    return squeeze_dims(x, norm_dims(x, dim))


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    n = x.data.ndim + 1
    if not -n <= dim < n:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})"
        )
    d = dim % n
    return reshape(x, x.data.shape[:d] + (1,) + x.data.shape[d:])


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if x.data.ndim == 0:
        return reshape(x, (1,))
    s, e = norm_dim(x, start_dim), norm_dim(x, end_dim)
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    shape = x.data.shape
    return reshape(x, shape[:s] + (math.prod(shape[s : e + 1]),) + shape[e + 1 :])


def unflatten(x: Tensor, dim: int, sizes: Sequence[int]) -> Tensor:
    d = norm_dim(x, dim)
    sizes = tuple(sizes)
    if -1 in sizes:
        known = int(np.prod([s for s in sizes if s != -1]))
        sizes = tuple(x.data.shape[d] // known if s == -1 else s for s in sizes)
    if int(np.prod(sizes)) != x.data.shape[d]:
        raise RuntimeError(
            f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim "
            f"{dim} ({x.data.shape[d]}) in the input tensor"
        )
    return reshape(x, x.data.shape[:d] + sizes + x.data.shape[d + 1 :])


def expand(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    shape = tuple(shape)
    lead = len(shape) - x.data.ndim
    if lead < 0:
        raise RuntimeError(
            f"expand: the number of sizes provided ({len(shape)}) must be greater or equal to "
            f"the number of dimensions in the tensor ({x.data.ndim})"
        )
    shape = tuple(x.data.shape[i - lead] if s == -1 and i >= lead else s
                  for i, s in enumerate(shape))  # fmt: skip
    for i, n in enumerate(x.data.shape):
        if n != 1 and n != shape[lead + i]:
            raise RuntimeError(
                f"expand: The expanded size of the tensor ({shape[lead + i]}) must match the "
                f"existing size ({n}) at non-singleton dimension {lead + i}.  Target sizes: "
                f"{list(shape)}.  Tensor sizes: {list(x.data.shape)}"
            )
    if shape == x.data.shape:
        return x
    return _view_of(S.Expand.apply(x, shape=shape), x)


def repeat(x: Tensor, sizes: tuple[int, ...]) -> Tensor:
    """Tile ``x``: expand an interleaved view, then reshape (no Python loops)."""
    if len(sizes) < x.data.ndim:
        raise RuntimeError(
            "Number of dimensions of repeat dims can not be smaller than number of dimensions "
            "of tensor"
        )
    shape = (1,) * (len(sizes) - x.data.ndim) + x.data.shape
    x = reshape(x, shape)
    inter = tuple(v for n in shape for v in (1, n))
    target = tuple(v for r, n in zip(sizes, shape) for v in (r, n))
    tiled = expand(reshape(x, inter), target)
    return reshape(tiled, tuple(r * n for r, n in zip(sizes, shape)))


def flip(x: Tensor, dims: Any) -> Tensor:
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    idx = [slice(None)] * x.data.ndim
    for d in dims:
        idx[norm_dim(x, d)] = slice(None, None, -1)
    return _view_of(S.Index.apply(x, idx=tuple(idx)), x)


def roll(x: Tensor, shifts: Any, dims: Any = None) -> Tensor:
    if dims is None:
        return reshape(roll(flatten(x), shifts, 0), x.data.shape)
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    for s, d in zip(shifts, dims):
        d = norm_dim(x, d)
        n = x.data.shape[d]
        if n == 0:
            continue
        s %= n
        if s:
            x = cat([narrow(x, d, n - s, s), narrow(x, d, 0, n - s)], d)
    return x


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise RuntimeError("torch.cat(): expected a non-empty list of Tensors")
    # torch skips legacy empty 1-D tensors of shape (0,)
    tensors = [t for t in tensors if t.data.shape != (0,)] or tensors[:1]
    ref = tensors[0]
    d = norm_dim(ref, dim)
    for i, t in enumerate(tensors):
        if t.data.ndim != ref.data.ndim or any(
            a != b for j, (a, b) in enumerate(zip(t.data.shape, ref.data.shape)) if j != d
        ):
            raise RuntimeError(
                f"cat: Sizes of tensors must match except in dimension {d}. Expected "
                f"{list(ref.data.shape)} but got {list(t.data.shape)} for tensor number {i} "
                f"in the list."
            )
    dt = _dtype.result_type(*[t.data for t in tensors])
    return S.Cat.apply(*[t.to(dt) for t in tensors], axis=d)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    for i, t in enumerate(tensors):
        if t.data.shape != tensors[0].data.shape:
            raise RuntimeError(
                f"stack expects each tensor to be equal size, but got {list(tensors[0].shape)} "
                f"at entry 0 and {list(t.shape)} at entry {i}"
            )
    return cat([unsqueeze(t, dim) for t in tensors], dim)


def narrow(x: Tensor, dim: int, start: int, length: int) -> Tensor:
    d = norm_dim(x, dim)
    idx = (slice(None),) * d + (slice(start, start + length),)
    return _view_of(S.Index.apply(x, idx=idx), x)


def split(x: Tensor, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
    d = norm_dim(x, dim)
    n = x.data.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        sizes = [min(step, n - i) for i in range(0, n, step)] if step else [n]
    else:
        sizes = list(split_size_or_sections)
        if np.sum(sizes) != n:
            raise RuntimeError(
                f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's "
                f"size at dimension {d}), but got split_sizes={sizes}"
            )
    out, start = [], 0
    for s in sizes:
        out.append(narrow(x, d, start, s))
        start += s
    return tuple(out)


def chunk(x: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    n = x.data.shape[norm_dim(x, dim)]
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    return split(x, max(-(-n // chunks), 1), dim)


def unbind(x: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    d = norm_dim(x, dim)
    lead = (slice(None),) * d
    return tuple(_view_of(S.Index.apply(x, idx=lead + (i,)), x) for i in range(x.data.shape[d]))


def tri(x: Tensor, diagonal: int, lower: bool) -> Tensor:
    if x.data.ndim < 2:
        raise RuntimeError(f"{'tril' if lower else 'triu'}: input tensor must have at least 2 "
                           f"dimensions")  # fmt: skip
    rows, cols = x.data.shape[-2:]
    keep = (np.tri(rows, cols, diagonal, dtype=bool) if lower
            else ~np.tri(rows, cols, diagonal - 1, dtype=bool))  # fmt: skip
    return where(keep, x, x.new_zeros(()))


# --- indexing ---------------------------------------------------------------------------


def normalize_index(key: Any) -> tuple:
    """Turn an indexing key into a tuple numpy understands (tensors -> arrays)."""
    T = _T()
    if not isinstance(key, tuple):
        key = (key,)
    out = []
    for k in key:
        if isinstance(k, T):
            k = k.data
            if k.dtype.kind == "f":
                raise IndexError(f"tensors used as indices must be long, int, byte or bool "
                                 f"tensors, got {k.dtype}")  # fmt: skip
        elif isinstance(k, list):
            k = np.asarray(_unwrap_list(k))
            if k.dtype.kind == "f":
                raise IndexError("indices must be integers or booleans, got float values")
        out.append(k)
    return tuple(out)


def _unwrap_list(k: list) -> list:
    T = _T()
    return [x.data if isinstance(x, T) else x for x in k]


def _split_ints(idx: tuple, ndim: int) -> tuple[tuple, tuple] | None:
    """torch applies integer indices as plain selections before advanced (array)
    indexing, where numpy treats them as advanced too (which moves dims around).
    Split such a key into a basic step (ints, slices, None) and an advanced step."""
    has_int = any(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in idx)
    has_array = any(isinstance(k, np.ndarray) and k.ndim > 0 for k in idx)
    if not (has_int and has_array):
        return None
    consumed = builtins.sum(k.ndim if isinstance(k, np.ndarray) and k.dtype == np.bool_ else 1
                   for k in idx if k is not None and k is not Ellipsis)  # fmt: skip
    full: list[Any] = []
    for k in idx:
        if k is Ellipsis:
            full.extend([slice(None)] * (ndim - consumed))
        else:
            full.append(k)
    basic: list[Any] = []
    advanced: list[Any] = []
    for k in full:
        if isinstance(k, np.ndarray) and k.ndim > 0:
            basic.append(slice(None))
            advanced.append(k)
        elif isinstance(k, (int, np.integer)) and not isinstance(k, bool):
            basic.append(k)
        else:
            basic.append(k)
            advanced.append(slice(None))
    return tuple(basic), tuple(advanced)


def _check_masks(idx: tuple, shape: tuple[int, ...]) -> None:
    """A bool mask must match the shape of the dims it indexes (torch's rule; numpy
    lets an empty mask through against a dim of size 1)."""
    if not any(isinstance(k, np.ndarray) and k.dtype == np.bool_ and k.ndim for k in idx):
        return
    used = builtins.sum(k.ndim if isinstance(k, np.ndarray) and k.dtype == np.bool_ else 1
                        for k in idx if k is not None and k is not Ellipsis)  # fmt: skip
    pos = 0
    for k in idx:
        if k is None:
            continue
        if k is Ellipsis:
            pos += max(len(shape) - used, 0)
        elif isinstance(k, np.ndarray) and k.dtype == np.bool_:
            dims = shape[pos : pos + k.ndim]
            if k.ndim and tuple(k.shape) != tuple(dims):
                raise IndexError(
                    f"The shape of the mask {list(k.shape)} at index {pos} does not match the "
                    f"shape of the indexed tensor {list(shape)} at index {pos}"
                )
            pos += k.ndim
        else:
            pos += 1


def getitem(x: Tensor, key: Any) -> Tensor:
    idx = normalize_index(key)
    _check_masks(idx, x.data.shape)
    try:
        split = _split_ints(idx, x.data.ndim)
        if split is not None:
            part = _view_of(S.Index.apply(x, idx=split[0]), x)
            return S.Index.apply(part, idx=split[1])
        out = S.Index.apply(x, idx=idx)
    except IndexError as e:
        raise IndexError(f"index {key!r} on tensor of shape {list(x.data.shape)}: {e}") from None
    return _view_of(out, x)


def _check_index(op: str, ind: np.ndarray, size: int, d: int) -> None:
    """Integer indices in ``[0, size)``: as torch, negative indices are errors here
    (numpy would wrap them and read the wrong element)."""
    if ind.dtype.kind not in "iu":
        raise RuntimeError(f"{op}(): Expected dtype int32/int64 for index, got {ind.dtype}")
    if ind.size and (ind.min() < 0 or ind.max() >= size):
        bad = int(ind.min()) if ind.min() < 0 else int(ind.max())
        raise RuntimeError(
            f"{op}(): index {bad} is out of bounds for dimension {d} with size {size}"
        )


def gather(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """``out[i][j][k] = x[index[i][j][k]][j][k]`` (for dim 0), via advanced indexing."""
    d = norm_dim(x, dim)
    ind = index.data
    if ind.ndim != x.data.ndim:
        raise RuntimeError(f"gather(): Index tensor must have the same number of dimensions as "
                           f"input tensor (index shape {list(ind.shape)}, input shape "
                           f"{list(x.data.shape)})")  # fmt: skip
    _check_index("gather", ind, x.data.shape[d], d)
    grids = list(np.ogrid[tuple(slice(n) for n in ind.shape)])
    grids[d] = ind
    return S.Index.apply(x, idx=tuple(grids))


def scatter_add(x: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """``out = x`` with ``out[index[i][j]][j] += src[i][j]`` (for dim 0); repeats accumulate."""
    d = norm_dim(x, dim)
    ind = index.data
    if ind.ndim != x.data.ndim:
        raise RuntimeError("scatter_add(): Index tensor must have the same number of dimensions "
                           f"as self tensor (index shape {list(ind.shape)}, self shape "
                           f"{list(x.data.shape)})")  # fmt: skip
    _check_index("scatter_add", ind, x.data.shape[d], d)
    grids = list(np.ogrid[tuple(slice(n) for n in ind.shape)])
    grids[d] = ind
    src_part = src[tuple(slice(n) for n in ind.shape)]
    return S.IndexAdd.apply(x, src_part.to(x.data.dtype), idx=tuple(grids))


def index_select(x: Tensor, dim: int, index: Tensor) -> Tensor:
    d = norm_dim(x, dim)
    ind = as_tensor(index).data
    if ind.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    _check_index("index_select", ind, x.data.shape[d], d)
    return S.Index.apply(x, idx=(slice(None),) * d + (ind.reshape(-1),))


def masked_fill(x: Tensor, mask: Any, value: Any) -> Tensor:
    T = _T()
    m = mask.data if isinstance(mask, T) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise RuntimeError(f"masked_fill only supports boolean masks, but got mask with dtype "
                           f"{m.dtype}")  # fmt: skip
    value = as_tensor(value, x.data.dtype)
    if value.data.ndim:
        raise RuntimeError("masked_fill only supports a 0-dimensional value tensor")
    from tinytorch.tensor import broadcast_shape

    broadcast_shape("masked_fill", m.shape, x.data.shape)
    out = where(m, value, x)
    if out.data.shape != x.data.shape:
        raise RuntimeError(f"masked_fill: mask of shape {list(m.shape)} does not broadcast to "
                           f"the input's shape {list(x.data.shape)}")  # fmt: skip
    return out


def masked_select(x: Tensor, mask: Any) -> Tensor:
    T = _T()
    m = mask.data if isinstance(mask, T) else np.asarray(mask)
    shape = np.broadcast_shapes(m.shape, x.data.shape)
    return getitem(expand(x, shape), np.broadcast_to(m, shape))
