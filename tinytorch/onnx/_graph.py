"""``Builder``: the ONNX graph under construction (names, initializers, nodes).

Converters ask it for the ONNX name of a traced array (``name``), add
constants (``const``) and nodes (``op``); it knows the opset, so the few ops
whose signature changed between opsets (reductions' ``axes``) are written once
here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


class Builder:
    """Accumulates ONNX ``NodeProto``\\ s and initializers for one graph."""

    def __init__(self, onnx: Any, opset: int, params: dict[int, str]) -> None:
        self.onnx = onnx
        self.opset = opset
        self.nodes: list[Any] = []
        self.initializers: dict[str, Any] = {}
        self.values: dict[int, str] = {}  # id(array) -> ONNX name of a traced value
        self.params = params  # id(array) -> parameter/buffer name
        self.consts: dict[int, str] = {}  # id(array) -> initializer made for a constant
        self._keep: list[Any] = []  # arrays named here stay alive: their ids stay unique
        self.scope = ""  # module path of the record being converted (node names)
        self._count = 0

    # --- names -----------------------------------------------------------------------

    def name(self, arr: np.ndarray | None) -> str:
        """The ONNX name of an array a record reads ("" for an absent optional input)."""
        if arr is None:
            return ""
        key = id(arr)
        if key in self.values:
            return self.values[key]
        if key in self.params:
            name = self.params[key]
            if name not in self.initializers:
                self._add_initializer(name, arr)
            return name
        if key not in self.consts:
            self._keep.append(arr)
            self.consts[key] = self.const(arr, "const")
        return self.consts[key]

    def bind(self, arr: np.ndarray, name: str) -> None:
        """Record that ``arr`` (a traced output) is the ONNX value ``name``."""
        self._keep.append(arr)
        self.values[id(arr)] = name

    def fresh(self, hint: str) -> str:
        self._count += 1
        prefix = f"/{self.scope}/" if self.scope else "/"
        return f"{prefix}{hint}_{self._count}"

    # --- constants and nodes -------------------------------------------------------------

    def const(self, value: Any, hint: str = "const", dtype: Any = None) -> str:
        """A new initializer holding ``value`` (a number or array; ``dtype`` if given)."""
        arr = np.asarray(value, dtype=dtype)
        name = self.fresh(hint)
        self._add_initializer(name, arr)
        return name

    def ints(self, values: Any, hint: str = "ints") -> str:
        """A 1-D int64 initializer (shapes, axes, pads)."""
        return self.const(np.asarray(list(values), dtype=np.int64).reshape(-1), hint)

    def _add_initializer(self, name: str, arr: np.ndarray) -> None:
        from onnx import numpy_helper

        self.initializers[name] = numpy_helper.from_array(np.ascontiguousarray(arr), name)

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs: Any) -> Any:
        """Add a node; its output name (a list of names when ``n_out > 1``)."""
        name = self.fresh(op_type)
        outs = [f"{name}_output_{k}" for k in range(n_out)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        node = self.onnx.helper.make_node(op_type, inputs, outs, name=name, **attrs)
        self.nodes.append(node)
        return outs[0] if n_out == 1 else outs

    # --- ops whose form depends on the opset -----------------------------------------------

    def reduce(self, op_type: str, x: str, axes: tuple[int, ...] | None, keepdims: bool) -> str:
        """ReduceSum/Max/Min/Prod/Mean over ``axes`` (None: all); ``axes`` moved from an
        attribute to an input in opset 13 for ReduceSum and opset 18 for the rest."""
        if axes is not None and len(axes) == 0:
            return self.op("Identity", [x])
        as_input = self.opset >= (13 if op_type == "ReduceSum" else 18)
        if axes is None:
            return self.op(op_type, [x], keepdims=int(keepdims))
        if as_input:
            return self.op(op_type, [x, self.ints(axes, "axes")], keepdims=int(keepdims))
        return self.op(op_type, [x], axes=list(axes), keepdims=int(keepdims))

    def scalar_like(self, value: float, arr: np.ndarray) -> str:
        """A 0-d constant of ``arr``'s dtype (so ONNX's same-type rule holds)."""
        return self.const(np.asarray(value, dtype=arr.dtype), "scalar")

    def cast(self, x: str, dtype: np.dtype) -> str:
        return self.op("Cast", [x], to=self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))
