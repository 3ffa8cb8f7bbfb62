"""Reverse-mode automatic differentiation: ``backward``, ``grad``, grad mode, ``Function``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tinytorch.autograd import node as _node
from tinytorch.autograd.anomaly import (
    detect_anomaly,
    is_anomaly_check_nan_enabled,
    is_anomaly_enabled,
    set_detect_anomaly,
)
from tinytorch.autograd.diagnostics import GraphRetentionWarning, GraphStats, graph_stats
from tinytorch.autograd.engine import run_backward
from tinytorch.autograd.function import Function, FunctionCtx
from tinytorch.autograd.grad_mode import (
    enable_grad,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from tinytorch.autograd.node import Node

if TYPE_CHECKING:
    from tinytorch.tensor import Tensor

__all__ = [
    "Function", "FunctionCtx", "GraphRetentionWarning", "GraphStats", "Node", "backward",
    "detect_anomaly", "enable_grad", "grad", "gradcheck", "gradgradcheck", "graph_stats",
    "is_anomaly_check_nan_enabled", "is_anomaly_enabled", "is_grad_enabled", "no_grad",
    "set_detect_anomaly", "set_grad_enabled",
]  # fmt: skip


def _as_list(x: Any) -> list[Any]:
    if x is None:
        return []
    return [x] if isinstance(x, _node._tensor_cls) else list(x)


def _make_grads(outputs: list[Tensor], grads: list[Any]) -> list[Tensor]:
    if not grads:
        grads = [None] * len(outputs)
    if len(grads) != len(outputs):
        raise RuntimeError(f"grad can be implicitly created only for scalar outputs; got "
                           f"{len(outputs)} outputs and {len(grads)} gradients")  # fmt: skip
    out = []
    for t, g in zip(outputs, grads):
        if g is None:
            if t.data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs (got an output of "
                    f"shape {list(t.data.shape)}; pass gradient=... to backward)"
                )
            g = _node._wrap(np.ones(t.data.shape, t.data.dtype))
        elif not isinstance(g, _node._tensor_cls):
            g = _node._wrap(np.asarray(g, dtype=t.data.dtype))
        if g.data.shape != t.data.shape:
            raise RuntimeError(
                f"Mismatch in shape: grad_output[0] has a shape of {list(g.data.shape)} and "
                f"output[0] has a shape of {list(t.data.shape)}."
            )
        out.append(g)
    return out


def backward(
    tensors: Tensor | Sequence[Tensor],
    grad_tensors: Tensor | Sequence[Tensor] | None = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    inputs: Sequence[Tensor] | None = None,
) -> None:
    """Accumulate the gradients of ``tensors`` into the ``.grad`` of the graph's leaves.

    ``retain_graph`` defaults to ``create_graph``; without it the saved
    values are freed as backward proceeds.
    """
    outs = _as_list(tensors)
    grads = _make_grads(outs, _as_list(grad_tensors))
    if retain_graph is None:
        retain_graph = create_graph
    if inputs is not None:
        inputs = _as_list(inputs)
        found = run_backward(outs, grads, retain_graph, create_graph, capture=inputs,
                             allow_unused=True)  # fmt: skip
        from tinytorch.autograd.engine import _accumulate

        for t, g in zip(inputs, found or ()):
            if g is not None:
                _accumulate(t, g, create_graph, set())
        return
    run_backward(outs, grads, retain_graph, create_graph)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Tensor | Sequence[Tensor] | None = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool | None = None,
    materialize_grads: bool = False,
) -> tuple[Tensor | None, ...]:
    """The gradients of ``outputs`` w.r.t. ``inputs``, returned (``.grad`` untouched)."""
    outs = _as_list(outputs)
    ins = _as_list(inputs)
    grads = _make_grads(outs, _as_list(grad_outputs))
    if retain_graph is None:
        retain_graph = create_graph
    result = run_backward(outs, grads, retain_graph, create_graph, capture=ins,
                          allow_unused=bool(allow_unused) or materialize_grads)  # fmt: skip
    assert result is not None
    if materialize_grads:
        from tinytorch.tensor import Tensor

        result = tuple(g if g is not None else Tensor._make(np.zeros_like(t.data))
                       for g, t in zip(result, ins))  # fmt: skip
    return result


from tinytorch.autograd.gradcheck import gradcheck, gradgradcheck  # noqa: E402
