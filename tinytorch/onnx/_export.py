"""``export``: trace twice, check, convert each record, write the ONNX model."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tinytorch.onnx._graph import Builder
from tinytorch.onnx._modules import module_converter
from tinytorch.onnx._primitives import PRIMITIVES
from tinytorch.onnx._trace import (
    BROADCASTING,
    ExportError,
    Record,
    Trace,
    compare,
    resolve,
    run_trace,
)
from tinytorch.tensor import Tensor

#: Ops whose parameters may differ between the two traces (their converters handle
#: dynamic axes); any other op must run with the same parameters both times.
_SHAPE_OPS = {"Reshape", "Expand", "Index"}
MIN_OPSET = 13


def export(
    model: Any,
    args: Tensor | Sequence[Tensor],
    f: str | os.PathLike[str] | Any = None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    opset_version: int = 17,
    dynamic_axes: Mapping[str, Sequence[int] | Mapping[int, str]] | None = None,
) -> Any:
    """Export ``model`` (an ``nn.Module``) run on ``args`` to ONNX; returns the ``ModelProto``.

    ``args`` is the example input (a tensor, or a tuple of positional tensors); ``f``
    a path or binary file to write (None: only return the model). Names default
    to ``input_0``, ``output_0``, ... . ``dynamic_axes`` maps an input or output
    name to the axes whose size may change (``{"x": {0: "batch"}}`` or
    ``{"x": [0]}``). The model runs in eval mode (restored afterwards).
    Raises ``ExportError`` naming the op or module that can't be exported.
    """
    try:
        import onnx
    except ImportError as e:
        raise ImportError("tinytorch.onnx.export needs the onnx package: "
                          "pip install 'tinytorch[onnx]' (or pip install onnx)") from e  # fmt: skip
    if not MIN_OPSET <= opset_version <= onnx.defs.onnx_opset_version():
        raise ValueError(f"opset_version must be in [{MIN_OPSET}, "
                         f"{onnx.defs.onnx_opset_version()}], got {opset_version}")  # fmt: skip
    inputs = _input_arrays(args)
    in_names = list(input_names) if input_names else [f"input_{i}" for i in range(len(inputs))]
    if len(in_names) != len(inputs):
        raise ValueError(f"{len(in_names)} input_names for {len(inputs)} inputs")
    dyn = _dynamic_axes(dynamic_axes)
    params: dict[int, str] = {}
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        params.setdefault(id(t.data), name)

    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:

        def is_leaf(m: Any) -> bool:
            return module_converter(m, opset_version) is not None

        trace = run_trace(model, inputs, is_leaf)
        other = _other_inputs(inputs, [dyn.get(n, {}) for n in in_names])
        trace_b = run_trace(model, other, is_leaf)
    finally:
        for m, mode in modes:
            m.training = mode
    out_names = (list(output_names) if output_names
                 else [f"output_{i}" for i in range(len(trace.outputs))])  # fmt: skip
    if len(out_names) != len(trace.outputs):
        raise ValueError(f"{len(out_names)} output_names for {len(trace.outputs)} outputs")
    unknown = set(dyn) - set(in_names) - set(out_names)
    if unknown:
        raise ValueError(f"dynamic_axes names {sorted(unknown)} are not input or output names")
    resolve(trace, params)
    resolve(trace_b, params)
    compare(trace, trace_b, dynamic=bool(dyn))
    proto = _build(onnx, trace, trace_b, params, opset_version, in_names, out_names, dyn)
    if f is not None:
        if hasattr(f, "write"):
            f.write(proto.SerializeToString())
        else:
            onnx.save(proto, os.fspath(f))
    return proto


def _input_arrays(args: Any) -> list[np.ndarray]:
    items = [args] if isinstance(args, Tensor) else list(args)
    out = []
    for a in items:
        if not isinstance(a, Tensor):
            raise TypeError(f"export: example inputs must be tensors, got {type(a).__name__}")
        out.append(a.data)
    return out


def _dynamic_axes(spec: Mapping[str, Any] | None) -> dict[str, dict[int, str]]:
    out: dict[str, dict[int, str]] = {}
    for name, axes in (spec or {}).items():
        if isinstance(axes, Mapping):
            out[name] = {int(k): str(v) for k, v in axes.items()}
        else:
            out[name] = {int(k): f"{name}_dynamic_axes_{i + 1}" for i, k in enumerate(axes)}
    return out


def _other_inputs(inputs: list[np.ndarray], dyn: list[dict[int, str]]) -> list[np.ndarray]:
    """Inputs with other values (and one more element along each dynamic axis), for the
    second trace that shows which constants depend on the input."""
    rng = np.random.default_rng(20240601)
    out = []
    for arr, axes in zip(inputs, dyn):
        shape = list(arr.shape)
        for axis in axes:
            shape[axis] += 1
        if arr.dtype.kind == "f":
            std = float(arr.std()) if arr.size > 1 and arr.std() > 0 else 1.0
            mean = float(arr.mean()) if arr.size else 0.0
            new = (rng.standard_normal(shape) * std + mean).astype(arr.dtype)
        elif arr.dtype == np.bool_:
            new = rng.random(shape) < 0.5
        else:  # indices: draw from the values the example uses, so they stay in range
            values = np.unique(arr) if arr.size else np.zeros(1, arr.dtype)
            new = rng.choice(values, size=shape).astype(arr.dtype)
        out.append(new)
    return out


def _convert(b: Builder, rec: Record, opset: int) -> list[str]:
    if rec.module is not None:
        conv = module_converter(rec.module, opset)
        assert conv is not None
        return conv(b, rec)
    if rec.op not in PRIMITIVES:
        raise ExportError(
            f"{rec.describe()}: the primitive {rec.op} has no ONNX converter "
            f"(exportable primitives: {', '.join(sorted(PRIMITIVES))}); the supported layers "
            f"are listed in tinytorch.onnx's docstring"
        )
    if not rec.same_params and rec.op not in _SHAPE_OPS:
        raise ExportError(f"{rec.describe()}: its parameters change with the input "
                          f"(sizes along a dynamic axis, or values)")  # fmt: skip
    return PRIMITIVES[rec.op](b, rec)


def _redundant_expands(trace: Trace) -> set[int]:
    """Indices of the ``Expand`` records that only feed broadcasting elementwise ops which
    give the same shape without them (the binary wrapper's expand of an operand that
    requires grad, e.g. a bias). Dropping them keeps the graph free of shapes that a
    dynamic axis would change."""
    consumers: dict[int, list[Record]] = {}
    for rec in trace.records:
        for a in rec.inputs:
            consumers.setdefault(id(a), []).append(rec)
    outputs = {id(a) for a in trace.outputs}
    expands = {id(r.outputs[0]): r for r in trace.records if r.op == "Expand" and r.module is None}
    elided = set()
    for i, rec in enumerate(trace.records):
        out = rec.outputs[0]
        if rec.op != "Expand" or rec.module is not None or id(out) in outputs:
            continue
        users = consumers.get(id(out), [])
        if users and all(u.op in BROADCASTING and _same_shape_without(u, expands)
                         for u in users):  # fmt: skip
            elided.add(i)
    return elided


def _same_shape_without(rec: Record, expands: dict[int, Record]) -> bool:
    """Whether ``rec`` broadcasts to its output shape, in both traces, when its expanded
    inputs are replaced by what they expanded."""
    for ins, outs, params in ((rec.inputs, rec.outputs, rec.params),
                              (rec.inputs_b, rec.outputs_b, rec.params_b)):  # fmt: skip
        shapes: list[tuple[int, ...]] = []
        for k, a in enumerate(ins):
            src = expands.get(id(rec.inputs[k]))  # the same record in trace A
            if src is not None:
                a = src.inputs[0] if ins is rec.inputs else src.inputs_b[0]
            shapes.append(() if a is None else a.shape)
        if "cond" in params:
            shapes.append(np.shape(params["cond"]))
        try:
            if np.broadcast_shapes(*shapes) != outs[0].shape:
                return False
        except ValueError:
            return False
    return True


def _build(onnx: Any, trace: Trace, trace_b: Trace, params: dict[int, str], opset: int,
           in_names: list[str], out_names: list[str], dyn: dict[str, dict[int, str]]
           ) -> Any:  # fmt: skip
    helper = onnx.helper
    b = Builder(onnx, opset, params)
    for arr, name in zip(trace.inputs, in_names):
        b.bind(arr, name)
    elided = _redundant_expands(trace)
    for i, rec in enumerate(trace.records):
        b.scope = rec.where
        if i in elided:  # the consumers broadcast by themselves
            b.bind(rec.outputs[0], b.name(rec.inputs[0]))
            continue
        outs = _convert(b, rec, opset)
        for arr, name in zip(rec.outputs, outs):
            b.bind(arr, name)
    b.scope = ""
    # Dims that changed in the second trace are dynamic; name them after the input dim
    # they follow when there is one ("batch"), else after the output.
    sizes: dict[tuple[int, int], str] = {}
    for name, arr, arr_b in zip(in_names, trace.inputs, trace_b.inputs):
        for axis, dim in dyn.get(name, {}).items():
            sizes.setdefault((arr.shape[axis], arr_b.shape[axis]), dim)

    def value_info(name: str, arr: np.ndarray, arr_b: np.ndarray) -> Any:
        declared = dyn.get(name, {})
        dims: list[Any] = []
        for axis, (n, nb) in enumerate(zip(arr.shape, arr_b.shape)):
            if axis in declared:
                dims.append(declared[axis])
            elif n != nb:
                dims.append(sizes.get((n, nb), f"{name}_dim_{axis}"))
            else:
                dims.append(n)
        elem = helper.np_dtype_to_tensor_dtype(arr.dtype)
        return helper.make_tensor_value_info(name, elem, dims)

    graph_inputs = [
        value_info(n, a, ab) for n, a, ab in zip(in_names, trace.inputs, trace_b.inputs)
    ]
    graph_outputs = []
    for name, arr, arr_b in zip(out_names, trace.outputs, trace_b.outputs):
        b.nodes.append(helper.make_node("Identity", [b.name(arr)], [name], name=f"/{name}"))
        graph_outputs.append(value_info(name, arr, arr_b))
    graph = helper.make_graph(b.nodes, "tinytorch", graph_inputs, graph_outputs,
                              initializer=list(b.initializers.values()))  # fmt: skip
    opset_id = helper.make_opsetid("", opset)
    from tinytorch import __version__

    proto = helper.make_model(graph, opset_imports=[opset_id], producer_name="tinytorch",
                              producer_version=__version__)  # fmt: skip
    proto.ir_version = helper.find_min_ir_version_for([opset_id])
    onnx.checker.check_model(proto)
    return proto
