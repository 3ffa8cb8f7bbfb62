"""Trace a forward pass into a list of records, one per primitive or leaf module.

While tracing, ``autograd.node.trace_hook`` sees every primitive's forward (its
input arrays, parameters and output array), and forward hooks on the modules
that have a direct ONNX form ("leaf" modules: ``Linear``, ``Conv2d``, ...)
replace the primitives their forward ran with one record of the module.

Values are identified by the identity of their numpy arrays (a tensor's
``data`` is the array a primitive returned), so each record input is one of:
a graph input, a value an earlier record produced, a parameter or buffer of
the model, or a constant made outside the primitives (``arange``, a mask, a
Python number). A constant made from the *input's values* in raw numpy
would be silently frozen, so the model is traced twice with different input
values (and, for dynamic axes, sizes) and every constant must come out the
same (``compare``). One such constant is recognized on purpose: the detached
``max`` that softmax/logsumexp subtract for stability (``DetachedMax``).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinytorch.autograd import node as _node
from tinytorch.autograd.grad_mode import enable_grad
from tinytorch.tensor import Tensor


class ExportError(RuntimeError):
    """The model can't be exported: the message names the op or module and why."""


@dataclass
class Record:
    """One step of the traced program."""

    op: str  # primitive class name, leaf module class name, or "DetachedMax"
    inputs: list[np.ndarray | None]
    outputs: list[np.ndarray]
    params: dict[str, Any]
    module: Any = None  # the leaf module, for a module record
    where: str = ""  # dotted name of the module whose forward ran it ("" = the model)
    srcs: list[tuple] = field(default_factory=list)  # filled by ``resolve``
    # Filled by ``compare`` from the second trace (other values, other dynamic sizes):
    inputs_b: list[np.ndarray | None] = field(default_factory=list)
    outputs_b: list[np.ndarray] = field(default_factory=list)
    params_b: dict[str, Any] = field(default_factory=dict)
    same_params: bool = True

    line: str = ""  # the first caller outside tinytorch ("model.py:42 in forward")

    def describe(self) -> str:
        where = f"'{self.where}'" if self.where else "the model"
        if self.module is not None:
            return f"module {self.op} ({where})"
        return f"op {self.op} in {where}" + (f" (called at {self.line})" if self.line else "")


@dataclass
class Trace:
    records: list[Record]
    inputs: list[np.ndarray]
    outputs: list[np.ndarray]
    outputs_src: list[tuple] = field(default_factory=list)  # filled by ``resolve``


def _tensors(obj: Any) -> Iterator[Tensor]:
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            yield from _tensors(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _tensors(o)


def flatten_outputs(result: Any) -> list[Tensor]:
    """The tensors of a forward's result (tuples, lists, dicts), None entries dropped."""
    if result is None or not (isinstance(result, (Tensor, tuple, list, dict))):
        raise ExportError(f"the model returned {type(result).__name__}, not tensors")
    outs = list(_tensors(result))
    if not outs:
        raise ExportError("the model returned no tensors")
    return outs


def run_trace(model: Any, inputs: list[np.ndarray], is_leaf: Callable[[Any], bool]) -> Trace:
    """Run ``model`` once on fresh tensors holding ``inputs`` and record what it computes."""
    if _node.trace_hook is not None:
        raise ExportError("an export is already tracing in this process")
    records: list[Record] = []
    paths: list[str] = []
    starts: list[int] = []
    thread = threading.get_ident()

    def on_primitive(node: Any, ins: tuple[Tensor, ...], params: dict, out: np.ndarray) -> None:
        if threading.get_ident() != thread:
            return
        where = paths[-1] if paths else ""
        records.append(Record(type(node).__name__, [t.data for t in ins], [out], dict(params),
                              None, where, line=_user_line()))  # fmt: skip

    def pre(name: str, leaf: bool) -> Callable[..., None]:
        def hook(module: Any, args: tuple) -> None:
            paths.append(name)
            if leaf:
                starts.append(len(records))

        return hook

    def post(name: str, leaf: bool) -> Callable[..., None]:
        def hook(module: Any, args: tuple, output: Any) -> None:
            paths.pop()
            if leaf:
                del records[starts.pop() :]
                outs = [t.data for t in flatten_outputs(output)]
                ins: list[np.ndarray | None] = [t.data for t in _tensors(args)]
                records.append(Record(type(module).__name__, ins, outs, {}, module, name))

        return hook

    handles = []
    for name, module in model.named_modules():
        leaf = is_leaf(module)
        handles.append(module.register_forward_pre_hook(pre(name, leaf)))
        handles.append(module.register_forward_hook(post(name, leaf)))
    # Float inputs and parameters require grad while tracing, so that every value
    # computed from them goes through the primitives (no-grad fast paths may not).
    frozen = [p for p in model.parameters() if not p.requires_grad and p.data.dtype.kind == "f"]
    tensors = [Tensor._make(a.copy(), a.dtype.kind == "f") for a in inputs]
    try:
        for p in frozen:
            p.requires_grad_(True)
        _node.trace_hook = on_primitive
        with enable_grad():
            result = model(*tensors)
    finally:
        _node.trace_hook = None
        for h in handles:
            h.remove()
        for p in frozen:
            p.requires_grad_(False)
    outs = [t.data for t in flatten_outputs(result)]
    return Trace(records, [t.data for t in tensors], outs)


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _user_line() -> str:
    """Where the user's code called into tinytorch (for error messages)."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return ""
    return (
        f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno} in {frame.f_code.co_name}"
    )


# --- what each input is -------------------------------------------------------------------


def resolve(trace: Trace, params: dict[int, str]) -> None:
    """Fill every record's ``srcs`` and insert ``DetachedMax`` records where softmax's
    detached max was computed in numpy. ``params``: id(array) -> parameter name."""
    known: dict[int, tuple] = {id(a): ("input", i) for i, a in enumerate(trace.inputs)}
    out: list[Record] = []
    compacted: dict[int, np.ndarray] = {}
    for rec in trace.records:
        if rec.op in BROADCASTING and rec.module is None:
            _compact_constants(rec, known, params, compacted)
        if rec.op == "Where" and rec.module is None:
            mask = _derived_mask(rec, known, params)
            if mask is not None:
                known[id(mask.outputs[0])] = ("value", len(out), 0)
                out.append(mask)
        srcs = [_src(a, known, params) for a in rec.inputs]
        if rec.op == "Sub" and len(srcs) == 2 and srcs[1][0] == "const" and srcs[0][0] != "const":
            v, c = rec.inputs
            assert v is not None and c is not None
            found = _detached_max(v, c)
            if found is not None:
                axes, guarded = found
                params_m = {"axes": axes, "guarded": guarded}
                out.append(Record("DetachedMax", [v], [c], params_m, None, rec.where, [srcs[0]]))
                known[id(c)] = ("value", len(out) - 1, 0)
                srcs[1] = known[id(c)]
        rec.srcs = srcs
        for k, a in enumerate(rec.outputs):
            known[id(a)] = ("value", len(out), k)
        out.append(rec)
        for v in rec.params.values():
            for arr in _arrays(v):
                rec.srcs.append(_src(arr, known, params))
    trace.records = out
    trace.outputs_src = [_src(a, known, params) for a in trace.outputs]


#: Elementwise primitives whose ONNX ops broadcast their inputs numpy-style.
BROADCASTING = {"Add", "Sub", "Mul", "Div", "Pow", "Maximum", "Minimum", "Where"}


def _compact_constants(rec: Record, known: dict[int, tuple], params: dict[int, str],
                       cache: dict[int, np.ndarray]) -> None:  # fmt: skip
    """Shrink constants that are broadcast views (a mask ``broadcast_to`` the batch shape)
    to their stored size, 1 along the broadcast dims: the op broadcasts them again, and
    the constant no longer changes with a dynamic axis."""

    def compact(a: Any) -> Any:
        if not isinstance(a, np.ndarray) or id(a) in known or id(a) in params:
            return a
        if not any(st == 0 and n > 1 for st, n in zip(a.strides, a.shape)):
            return a
        if id(a) not in cache:
            key = tuple(slice(0, 1) if st == 0 else slice(None) for st in a.strides)
            cache[id(a)] = np.ascontiguousarray(a[key])
            cache[-id(a)] = a  # keep the original alive: its id stays unique
        return cache[id(a)]

    inputs = [compact(a) for a in rec.inputs]
    cond = compact(rec.params["cond"]) if "cond" in rec.params else None
    shapes = [np.shape(a) for a in inputs] + ([np.shape(cond)] if cond is not None else [])
    if np.broadcast_shapes(*shapes) == rec.outputs[0].shape:
        rec.inputs = inputs
        if cond is not None:
            rec.params["cond"] = cond


def _src(arr: np.ndarray | None, known: dict[int, tuple], params: dict[int, str]) -> tuple:
    if arr is None:
        return ("none",)
    if id(arr) in known:
        return known[id(arr)]
    if id(arr) in params:
        return ("param", params[id(arr)])
    return ("const", arr)


def _arrays(value: Any) -> Iterator[np.ndarray]:
    if isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _arrays(v)


_COMPARISONS = {
    "Greater": np.greater,
    "GreaterOrEqual": np.greater_equal,
    "Less": np.less,
    "LessOrEqual": np.less_equal,
    "Equal": np.equal,
    "NotEqual": np.not_equal,
}


def _derived_mask(rec: Record, known: dict[int, tuple], params: dict[int, str]) -> Record | None:
    """A ``Compare`` record when ``Where``'s mask, made in numpy, equals a comparison of
    its traced operands (``a > b``, ``a >= 0``, ...: clamp, ``torch.where(x > 0, ...)``).
    The second trace checks that the same comparison holds for other values."""
    cond = rec.params.get("cond")
    if not isinstance(cond, np.ndarray) or cond.dtype != np.bool_:
        return None
    if _src(cond, known, params)[0] != "const":
        return None
    a, b = rec.inputs
    pairs: list[tuple[Any, Any]] = [(a, b), (a, None), (b, None)]
    for x, y in pairs:
        if x is None or _src(x, known, params)[0] == "const" or x.dtype.kind not in "fiu":
            continue
        other = np.zeros((), x.dtype) if y is None else y
        for name, fn in _COMPARISONS.items():
            res = fn(x, other)
            try:
                same = np.array_equal(np.broadcast_to(cond, res.shape), res)
            except ValueError:
                same = False
            if same:
                return Record(
                    "Compare",
                    [x, y],
                    [cond],
                    {"op": name},
                    None,
                    rec.where,
                    [_src(x, known, params), _src(y, known, params)],
                    line=rec.line,
                )
    return None


def _detached_max(v: np.ndarray, c: np.ndarray) -> tuple[tuple[int, ...], bool] | None:
    """(axes, guarded) when ``c`` is ``v``'s max over ``axes`` (keepdims), with infinities
    replaced by 0 if ``guarded`` (logsumexp's form); None otherwise."""
    if c.ndim != v.ndim or c.dtype != v.dtype or v.size == 0:
        return None
    if any(a not in (1, b) for a, b in zip(c.shape, v.shape)):
        return None
    axes = tuple(i for i, n in enumerate(c.shape) if n == 1)
    if not axes:
        return None
    m = np.max(v, axis=axes, keepdims=True)
    if np.array_equal(c, m, equal_nan=True):
        return axes, False
    if np.array_equal(c, np.where(np.isinf(m), 0, m).astype(m.dtype), equal_nan=True):
        return axes, True
    return None


# --- the two traces must agree --------------------------------------------------------------


def compare(a: Trace, b: Trace, dynamic: bool) -> None:
    """Raise unless trace ``b`` (other input values, other sizes on dynamic axes) ran the
    same program with the same constants; mark records whose parameters differ."""
    pairs = list(zip(a.records, b.records))
    at = next((i for i, (ra, rb) in enumerate(pairs)
               if ra.op != rb.op or ra.module is not rb.module), None)  # fmt: skip
    if at is not None or len(a.records) != len(b.records):
        i = len(pairs) if at is None else at
        first = a.records[i] if i < len(a.records) else b.records[i]
        other = b.records[i] if i < len(b.records) else first
        if {first.op, other.op} & {"Compare", "DetachedMax"}:
            culprit = first if first.op in ("Compare", "DetachedMax") else other
            raise ExportError(
                f"{culprit.describe()}: a mask or value that the model computed from the input "
                "in numpy could not be matched to tensor ops (the exporter recognizes "
                "comparisons of an op's operands with each other or with 0, and softmax's max)"
            )
        raise ExportError(
            f"the forward pass ran different ops for other input values (first at "
            f"{first.describe()}): Python control flow on tensor values can't be exported"
        )
    for ra, rb in zip(a.records, b.records):
        for sa, sb in zip(ra.srcs, rb.srcs):
            if sa[0] != sb[0] or (sa[0] != "const" and sa != sb):
                raise ExportError(f"{ra.describe()}: its inputs are wired differently for "
                                  f"other input values")  # fmt: skip
            if sa[0] == "const" and not _same_array(sa[1], sb[1]):
                why = ("its shape follows a dynamic axis" if dynamic and sa[1].shape != sb[1].shape
                       else "it is computed from the input's values outside tinytorch's ops "
                       "(raw numpy on .data, an in-place op, a data-dependent mask)")  # fmt: skip
                raise ExportError(
                    f"{ra.describe()} uses a constant of shape {list(sa[1].shape)} that changes "
                    f"with the input: {why}. ONNX would freeze it; call a module that the "
                    f"exporter supports, or compute it with tensor ops"
                )
        ra.params_b, ra.outputs_b, ra.inputs_b = rb.params, rb.outputs, rb.inputs
        ra.same_params = _same(ra.params, rb.params)
    if [s[0] for s in a.outputs_src] != [s[0] for s in b.outputs_src]:
        raise ExportError("the model's outputs are wired differently for other input values")


def _same_array(x: np.ndarray, y: np.ndarray) -> bool:
    if x.shape != y.shape or x.dtype != y.dtype:
        return False
    return bool(np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"))


def _same(x: Any, y: Any) -> bool:
    """Equal parameters; arrays count as equal (``compare`` checked them as sources)."""
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return isinstance(x, np.ndarray) and isinstance(y, np.ndarray)
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    if isinstance(x, (tuple, list)) and isinstance(y, (tuple, list)):
        return len(x) == len(y) and type(x) is type(y) and all(map(_same, x, y))
    if type(x) is not type(y):
        return False
    try:
        return bool(x == y)
    except Exception:
        return x is y
