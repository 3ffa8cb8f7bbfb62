"""ONNX forms of tinytorch's primitives (``tinytorch/ops``), one converter each.

A converter takes the builder and the record and returns the ONNX names of the
record's outputs. Shapes that involve a dynamic axis are written so that ONNX
computes them at run time: a reshape copies (0) or infers (-1) such dims, an
expand leaves them at 1 (ONNX's ``Expand`` broadcasts both ways), a slice to
the end uses an open end. The second trace (``Record.*_b``) tells which dims
those are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinytorch.onnx._graph import INT64_MAX, INT64_MIN, Builder
from tinytorch.onnx._trace import ExportError, Record

Converter = Callable[[Builder, Record], list[str]]


def _ins(b: Builder, rec: Record) -> list[str]:
    return [b.name(a) for a in rec.inputs]


def _unary(op_type: str) -> Converter:
    return lambda b, rec: [b.op(op_type, _ins(b, rec)[:1])]


def _binary(op_type: str) -> Converter:
    return lambda b, rec: [b.op(op_type, _ins(b, rec)[:2])]


def _expm1(b: Builder, rec: Record) -> list[str]:
    x = rec.inputs[0]
    return [b.op("Sub", [b.op("Exp", [b.name(x)]), b.scalar_like(1.0, x)])]  # type: ignore[arg-type]


def _log1p(b: Builder, rec: Record) -> list[str]:
    x = rec.inputs[0]
    return [b.op("Log", [b.op("Add", [b.name(x), b.scalar_like(1.0, x)])])]  # type: ignore[arg-type]


def _pow_scalar(b: Builder, rec: Record) -> list[str]:
    x = rec.inputs[0]
    p = rec.params["p"]
    if p == 2:
        return [b.op("Mul", [b.name(x), b.name(x)])]
    return [b.op("Pow", [b.name(x), b.scalar_like(p, x)])]  # type: ignore[arg-type]


def _where(b: Builder, rec: Record) -> list[str]:
    a, c = _ins(b, rec)[:2]
    cond = b.name(np.asarray(rec.params["cond"], dtype=bool) if not isinstance(
        rec.params["cond"], np.ndarray) else rec.params["cond"])  # fmt: skip
    return [b.op("Where", [cond, a, c])]


def _cast(b: Builder, rec: Record) -> list[str]:
    x = rec.inputs[0]
    if x is not None and x.dtype == rec.outputs[0].dtype:
        return [b.op("Identity", [b.name(x)])]
    return [b.cast(b.name(x), rec.outputs[0].dtype)]


def _piecewise(b: Builder, rec: Record) -> list[str]:
    fn = getattr(rec.params["fn"], "__name__", "")
    (x,) = _ins(b, rec)
    direct = {"floor": "Floor", "ceil": "Ceil", "round": "Round", "rint": "Round",
              "sign": "Sign"}  # fmt: skip
    if fn in direct:
        return [b.op(direct[fn], [x])]
    if fn == "trunc":  # trunc(x) = sign(x) * floor(|x|)
        return [b.op("Mul", [b.op("Sign", [x]), b.op("Floor", [b.op("Abs", [x])])])]
    raise ExportError(f"{rec.describe()}: piecewise function {fn!r} has no ONNX form here")


def _permute(b: Builder, rec: Record) -> list[str]:
    return [b.op("Transpose", _ins(b, rec), perm=[int(d) for d in rec.params["dims"]])]


def _reshape(b: Builder, rec: Record) -> list[str]:
    x = rec.inputs[0]
    assert x is not None
    out_a, out_b = rec.outputs[0].shape, rec.outputs_b[0].shape
    in_a, in_b = x.shape, rec.inputs_b[0].shape  # type: ignore[union-attr]
    target: list[int] = []
    for i, (oa, ob) in enumerate(zip(out_a, out_b)):
        if oa == ob:
            target.append(oa)
        elif i < len(in_a) and in_a[i] == oa and in_b[i] == ob:
            target.append(0)  # ONNX: copy this dim from the input
        else:
            target.append(-1)
    if target.count(-1) > 1:
        raise ExportError(f"{rec.describe()}: reshape to {list(out_a)} has several dims that "
                          f"follow dynamic axes; ONNX can infer only one")  # fmt: skip
    if any(t == 0 for t in out_a):  # a real zero-size dim must not read as "copy"
        raise ExportError(f"{rec.describe()}: reshape of a zero-size tensor")
    return [b.op("Reshape", [b.name(x), b.ints(target, "shape")])]


def _expand(b: Builder, rec: Record) -> list[str]:
    x = rec.inputs[0]
    assert x is not None
    out_a, out_b = rec.outputs[0].shape, rec.outputs_b[0].shape
    lead = len(out_a) - x.ndim
    in_a = (1,) * lead + x.shape
    in_b = (1,) * lead + rec.inputs_b[0].shape  # type: ignore[union-attr]
    target: list[int] = []
    for oa, ob, ia, ib in zip(out_a, out_b, in_a, in_b):
        if oa == ob:
            target.append(oa)
        elif ia == oa and ib == ob:
            target.append(1)  # ONNX's Expand keeps the input's size where the shape says 1
        else:
            raise ExportError(f"{rec.describe()}: broadcast to {list(out_a)} follows a "
                              f"dynamic axis that its input doesn't have")  # fmt: skip
    return [b.op("Expand", [b.name(x), b.ints(target, "shape")])]


def _cat(b: Builder, rec: Record) -> list[str]:
    return [b.op("Concat", _ins(b, rec), axis=int(rec.params["axis"]))]


def _pad(b: Builder, rec: Record) -> list[str]:
    x = rec.inputs[0]
    widths = rec.params["widths"]
    pads = [int(lo) for lo, _ in widths] + [int(hi) for _, hi in widths]
    value = b.scalar_like(rec.params.get("value", 0.0), x)  # type: ignore[arg-type]
    return [b.op("Pad", [b.name(x), b.ints(pads, "pads"), value], mode="constant")]


def _reduce(op_type: str) -> Converter:
    def convert(b: Builder, rec: Record) -> list[str]:
        x = b.name(rec.inputs[0])
        dtype = rec.params.get("dtype")
        if dtype is not None and np.dtype(dtype) != rec.inputs[0].dtype:  # type: ignore[union-attr]
            x = b.cast(x, np.dtype(dtype))
        axis = rec.params.get("axis")
        axes: tuple[int, ...] | None
        if axis is None:
            axes = None
        elif isinstance(axis, (tuple, list)):
            axes = tuple(int(a) for a in axis)
        else:
            axes = (int(axis),)
        return [b.reduce(op_type, x, axes, bool(rec.params.get("keepdims", False)))]

    return convert


def _cumsum(b: Builder, rec: Record) -> list[str]:
    x = b.name(rec.inputs[0])
    if rec.outputs[0].dtype != rec.inputs[0].dtype:  # type: ignore[union-attr]
        x = b.cast(x, rec.outputs[0].dtype)
    axis = b.const(np.asarray(int(rec.params["axis"]), dtype=np.int64), "axis")
    return [b.op("CumSum", [x, axis])]


def _einsum(b: Builder, rec: Record) -> list[str]:
    eq = ",".join(rec.params["ins"]) + "->" + rec.params["out"]
    return [b.op("Einsum", _ins(b, rec), equation=eq)]


def _conv(b: Builder, rec: Record) -> list[str]:
    geom, groups = rec.params["geom"], rec.params["groups"]
    pads = [int(lo) for lo, _ in geom.padding] + [int(hi) for _, hi in geom.padding]
    return [b.op("Conv", _ins(b, rec), kernel_shape=list(geom.kernel), strides=list(geom.stride),
                 pads=pads, dilations=list(geom.dilation), group=int(groups))]  # fmt: skip


def _linear(b: Builder, rec: Record) -> list[str]:
    """x W^T + b on a 2-D x: ONNX's Gemm with W transposed."""
    return [b.op("Gemm", _ins(b, rec), transB=1)]


def _max_pool(b: Builder, rec: Record) -> list[str]:
    """``F.max_pool*d``'s primitive; padding (also ceil_mode's) never wins a max in ONNX."""
    geom = rec.params["geom"]
    pads = [int(lo) for lo, _ in geom.padding] + [int(hi) for _, hi in geom.padding]
    return [b.op("MaxPool", _ins(b, rec), kernel_shape=list(geom.kernel),
                 strides=list(geom.stride), pads=pads, dilations=list(geom.dilation))]  # fmt: skip


def _detached_max(b: Builder, rec: Record) -> list[str]:
    """softmax/logsumexp's stabilizing max (computed in numpy there, a ReduceMax here)."""
    x = rec.inputs[0]
    m = b.reduce("ReduceMax", b.name(x), rec.params["axes"], True)
    if rec.params["guarded"]:  # logsumexp: an infinite max is replaced by 0
        m = b.op("Where", [b.op("IsInf", [m]), b.scalar_like(0.0, x), m])  # type: ignore[arg-type]
    return [m]


def _compare(b: Builder, rec: Record) -> list[str]:
    """A mask the model made in numpy from its operands (see ``_trace._derived_mask``)."""
    x, y = rec.inputs
    assert x is not None
    other = b.name(y) if y is not None else b.scalar_like(0, x)
    op = rec.params["op"]
    if op == "NotEqual":
        return [b.op("Not", [b.op("Equal", [b.name(x), other])])]
    return [b.op(op, [b.name(x), other])]


# --- indexing -----------------------------------------------------------------------------


def _index(b: Builder, rec: Record) -> list[str]:
    x = rec.inputs[0]
    assert x is not None
    for arr in _flat(rec.params["idx"]):
        if arr.dtype == np.bool_ and id(arr) in b.values:
            raise ExportError(f"{rec.describe()}: a boolean mask computed by the model gives a "
                              f"data-dependent shape, which is not supported")  # fmt: skip
    key = _key(rec.params["idx"], x.ndim)
    key_b = _key(rec.params_b.get("idx", rec.params["idx"]), x.ndim)
    arrays = [i for i, k in enumerate(key) if isinstance(k, np.ndarray)]
    if not arrays:
        return [_basic_index(b, rec, key, key_b)]
    return [_advanced_index(b, rec, key)]


def _flat(idx: Any) -> list[np.ndarray]:
    return [k for k in (idx if isinstance(idx, tuple) else (idx,)) if isinstance(k, np.ndarray)]


def _key(idx: Any, ndim: int) -> list[Any]:
    """The index as a list with one entry per input dim (or None for a new one): ints,
    slices, None, integer arrays (bool arrays and 0-d arrays turned into those)."""
    key = list(idx) if isinstance(idx, tuple) else [idx]
    out: list[Any] = []
    for k in key:
        if isinstance(k, np.ndarray) and k.dtype == np.bool_ and k.ndim > 0:
            out.extend(np.nonzero(k))  # a constant mask; a traced one was refused earlier
        elif isinstance(k, np.ndarray) and k.ndim == 0:
            out.append(int(k) if k.dtype.kind in "iu" else k)
        elif isinstance(k, (np.integer, int)) and not isinstance(k, bool):
            out.append(int(k))
        else:
            out.append(k)
    used = sum(1 for k in out if k is not None and k is not Ellipsis)
    at = next((i for i, k in enumerate(out) if k is Ellipsis), None)
    if at is not None:
        out[at : at + 1] = [slice(None)] * (ndim - used)
    return out + [slice(None)] * (ndim - sum(1 for k in out if k is not None))


def _basic_index(b: Builder, rec: Record, key: list[Any], key_b: list[Any]) -> str:
    x = rec.inputs[0]
    assert x is not None
    starts, ends, axes, steps, squeeze, unsqueeze = [], [], [], [], [], []
    dim = out_pos = 0
    for k, kb in zip(key, key_b):
        if k is None:
            unsqueeze.append(out_pos)
            out_pos += 1
            continue
        if isinstance(k, int):
            if k != kb:
                raise ExportError(f"{rec.describe()}: index {k} follows a dynamic axis")
            starts.append(k)
            ends.append(k + 1 if k != -1 else INT64_MAX)
            axes.append(dim)
            steps.append(1)
            squeeze.append(dim)
        elif isinstance(k, slice):
            s = _slice(rec, k, kb, x.shape[dim], rec.inputs_b[0].shape[dim])  # type: ignore[union-attr]
            if s is not None:
                starts.append(s[0])
                ends.append(s[1])
                axes.append(dim)
                steps.append(s[2])
            out_pos += 1
        else:
            raise ExportError(f"{rec.describe()}: index entry {k!r} is not supported")
        dim += 1
    y = b.name(x)
    if axes:
        y = b.op("Slice", [y, b.ints(starts, "starts"), b.ints(ends, "ends"),
                           b.ints(axes, "axes"), b.ints(steps, "steps")])  # fmt: skip
    if squeeze:
        y = b.op("Squeeze", [y, b.ints(squeeze, "axes")])
    if unsqueeze:
        y = b.op("Unsqueeze", [y, b.ints(unsqueeze, "axes")])
    if y == b.name(x):
        y = b.op("Identity", [y])
    return y


def _slice(rec: Record, s: slice, sb: Any, n: int, nb: int) -> tuple[int, int, int] | None:
    """(start, end, step) for ONNX's Slice, or None for a slice that keeps the whole dim."""
    step = 1 if s.step is None else int(s.step)
    whole = s.stop is None or s.stop >= n
    whole_b = sb.stop is None or sb.stop >= nb
    if step == 1 and s.start in (None, 0) and whole and whole_b:
        return None
    start = (0 if step > 0 else INT64_MAX) if s.start is None else int(s.start)
    end = (INT64_MAX if step > 0 else INT64_MIN) if s.stop is None else int(s.stop)
    if (s.start, s.step) != (sb.start, sb.step):
        raise ExportError(f"{rec.describe()}: slice {s} follows a dynamic axis")
    if s.stop != sb.stop:
        if not (step > 0 and s.stop >= n and sb.stop >= nb):
            raise ExportError(f"{rec.describe()}: slice {s} follows a dynamic axis")
        end = INT64_MAX
    return start, end, step


def _advanced_index(b: Builder, rec: Record, key: list[Any]) -> str:
    x = rec.inputs[0]
    assert x is not None
    arrays = [i for i, k in enumerate(key) if isinstance(k, np.ndarray)]
    full = [isinstance(k, slice) and k == slice(None) for k in key]
    if len(arrays) == 1 and all(full[i] for i in range(len(key)) if i != arrays[0]):
        (d,) = arrays
        idx = key[d]
        return b.op("Gather", [b.name(x), b.name(idx)], axis=d)
    if len(arrays) == x.ndim == len(key):
        # gather()'s form: open grids (np.ogrid) on every dim but one.
        out_shape = np.broadcast_shapes(*[k.shape for k in key])
        others = [i for i, k in enumerate(key) if not _is_grid(k, i, len(key))]
        if len(others) == 1:
            (d,) = others
            idx = key[d]
            name = b.name(idx)
            if idx.shape != out_shape:
                name = b.op("Expand", [name, b.ints(out_shape, "shape")])
            return b.op("GatherElements", [b.name(x), name], axis=d)
    raise ExportError(
        f"{rec.describe()}: indexing with {len(arrays)} index arrays mixed with slices is not "
        f"supported (one index array, or gather(), is)"
    )


def _is_grid(k: np.ndarray, axis: int, ndim: int) -> bool:
    """Whether ``k`` is ``arange(n)`` laid along ``axis`` (an ``np.ogrid`` entry)."""
    if k.ndim != ndim or any(n != 1 for i, n in enumerate(k.shape) if i != axis):
        return False
    return bool(np.array_equal(k.reshape(-1), np.arange(k.shape[axis])))


PRIMITIVES: dict[str, Converter] = {
    "Add": _binary("Add"), "Sub": _binary("Sub"), "Mul": _binary("Mul"),
    "Div": _binary("Div"), "Pow": _binary("Pow"), "Maximum": _binary("Max"),
    "Minimum": _binary("Min"), "MatMul": _binary("MatMul"),
    "Neg": _unary("Neg"), "Exp": _unary("Exp"), "Log": _unary("Log"), "Sqrt": _unary("Sqrt"),
    "Sin": _unary("Sin"), "Cos": _unary("Cos"), "Tanh": _unary("Tanh"),
    "Sigmoid": _unary("Sigmoid"), "Relu": _unary("Relu"), "Abs": _unary("Abs"),
    "Erf": _unary("Erf"), "Expm1": _expm1, "Log1p": _log1p, "PowScalar": _pow_scalar,
    "Where": _where, "Cast": _cast, "Piecewise": _piecewise,
    "Permute": _permute, "Reshape": _reshape, "Expand": _expand, "Index": _index,
    "Cat": _cat, "Pad": _pad,
    "Sum": _reduce("ReduceSum"), "Amax": _reduce("ReduceMax"), "Amin": _reduce("ReduceMin"),
    "Prod": _reduce("ReduceProd"), "Cumsum": _cumsum, "Einsum": _einsum, "Conv": _conv,
    "MaxPool": _max_pool, "Linear": _linear,
    "DetachedMax": _detached_max, "Compare": _compare,
}  # fmt: skip
