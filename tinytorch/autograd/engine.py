"""The backward engine: one iterative traversal in topological order.

``run_backward`` is shared by ``Tensor.backward`` (gradients accumulate into
leaves' ``.grad``) and ``autograd.grad`` (gradients are captured and
returned). There is no recursion, so graph depth is bounded by memory only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from tinytorch.autograd import node as _node
from tinytorch.autograd.diagnostics import after_backward
from tinytorch.autograd.grad_mode import STATE
from tinytorch.autograd.node import Node

if TYPE_CHECKING:
    from tinytorch.tensor import Tensor


def _count_dependencies(roots: list[object], needed: set[int] | None) -> dict[object, int]:
    """Number of incoming edges (consumers) of every node reachable from ``roots``
    (through the ``needed`` nodes only, when given)."""
    deps: dict[object, int] = {}
    stack = [r for r in roots if isinstance(r, Node)]
    # A root reached from another root is expanded once (as a root); one root cannot be.
    root_ids = set(map(id, roots)) if len(roots) > 1 else ()
    while stack:
        for nxt in stack.pop().next_nodes:
            if nxt is None or (needed is not None and id(nxt) not in needed):
                continue
            n = deps.get(nxt)
            if n is not None:
                deps[nxt] = n + 1
                continue
            deps[nxt] = 1
            if isinstance(nxt, Node) and id(nxt) not in root_ids:
                stack.append(nxt)
    return deps


def _needed(roots: list[object], wanted: dict[object, int]) -> set[int]:
    """ids of the nodes and leaves on a path from ``roots`` to a ``wanted`` one.

    ``autograd.grad`` (and ``backward(inputs=...)``) computes only these, as torch
    does: a MatMul whose weight gradient nobody asked for computes only the input's.
    Post-order over the graph: a node is needed if it is wanted or feeds a needed one.
    """
    needed: set[int] = set()
    seen: set[int] = set()
    stack: list[tuple[Any, bool]] = [(r, False) for r in roots]
    while stack:
        node, expanded = stack.pop()
        if expanded:  # every input of node is done
            if node in wanted or any(n is not None and id(n) in needed for n in node.next_nodes):
                needed.add(id(node))
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        if not isinstance(node, Node):  # a leaf
            if node in wanted:
                needed.add(id(node))
            continue
        stack.append((node, True))
        stack.extend((n, False) for n in node.next_nodes if n is not None and id(n) not in seen)
    return needed


def _check_grad(node: Node, nxt: object, index: int, g: Tensor) -> Tensor:
    """Validate the shape (and match the dtype) of a gradient an op returned."""
    if isinstance(nxt, Node):
        shape, dt = nxt.out_shape, nxt.out_dtype
    else:
        shape, dt = nxt.data.shape, nxt.data.dtype  # type: ignore[attr-defined]
    if g.data.shape != shape:
        raise RuntimeError(
            f"Function {node.name()} returned an invalid gradient at index {index} - "
            f"got {list(g.data.shape)} but expected shape compatible with {list(shape)}"
        )
    if g.data.dtype != dt:
        g = g.to(dt)
    return g


def run_backward(
    roots: Sequence[Tensor],
    grad_roots: Sequence[Tensor],
    retain_graph: bool,
    create_graph: bool,
    capture: Sequence[Tensor] | None = None,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...] | None:
    """Propagate ``grad_roots`` from ``roots`` back through the graph.

    Without ``capture``, gradients are accumulated into the ``.grad`` of every
    leaf that requires grad (and of non-leaves that ``retain_grad()``).
    With ``capture``, the gradients w.r.t. those tensors are returned instead
    and no ``.grad`` is written.
    """

    starts: list[Any] = []  # Nodes, or leaf Tensors (a root that is a leaf)
    pending: dict[Any, Tensor] = {}
    for t, g in zip(roots, grad_roots):
        if not t._requires_grad:
            raise RuntimeError(
                "element 0 of tensors does not require grad and does not have a grad_fn"
            )
        key = t.grad_fn if t.grad_fn is not None else t
        pending[key] = pending[key] + g if key in pending else g
        if key not in starts:
            starts.append(key)

    wanted: dict[object, int] = {}
    if capture is not None:
        for i, t in enumerate(capture):
            if not t._requires_grad:
                raise RuntimeError("One of the differentiated Tensors does not require grad")
            wanted[t.grad_fn if t.grad_fn is not None else t] = i
    captured: list[Tensor | None] = [None] * (len(capture) if capture is not None else 0)

    given = {id(memory_owner(g.data)) for g in grad_roots}  # arrays .grad must not take uncopied
    # Pending gradients this loop summed itself: no one else holds them, so the next
    # gradient for the same input is added in place (first-order backward only).
    owned: set[int] = set()
    needed = _needed(starts, wanted) if capture is not None else None
    # The common case calls backward directly; _call_backward adds the checks of
    # create_graph and anomaly mode, and hides pruned edges.
    direct = not create_graph and not STATE.anomaly and needed is None
    deps = _count_dependencies(starts, needed)
    ready = [s for s in starts if deps.get(s, 0) == 0]
    prev_mode = STATE.enabled
    STATE.enabled = create_graph
    try:
        while ready:
            node = ready.pop()
            g = pending.pop(node, None)  # type: ignore[arg-type]  # g: Tensor | None from here
            if g is not None and owned:
                owned.discard(id(g.data))
            if not isinstance(node, Node):  # a leaf Tensor: the end of a path
                if g is not None:
                    for hook in node._hooks or ():
                        out = hook(g)
                        g = out if out is not None else g
                    if capture is None:
                        _accumulate(node, g, create_graph, given)
                    elif node in wanted:
                        captured[wanted[node]] = g
                continue

            nexts: tuple[Any, ...] = node.next_nodes
            grads: tuple[Any, ...] | None = None
            if g is not None:
                if node._hooks is not None or node._retained is not None or wanted:
                    g = _node_extras(node, g, create_graph, capture, given, wanted, captured)
                if direct:
                    grads = node.backward(g)
                    if type(grads) is not tuple:
                        grads = (grads,)
                    if len(grads) != len(nexts):
                        _raise_count(node, grads)
                else:
                    live = nexts if needed is None else _live_edges(nexts, needed)
                    if live is not None:  # else nothing wanted lies behind this node
                        grads = _call_backward(node, g, create_graph, live)
                if not retain_graph and grads is not None:  # a node that ran frees its saved
                    if node.plain_release:
                        node._saved = node._out = None
                    else:
                        node.release()

            i = -1
            for nxt in nexts:
                i += 1
                if nxt is None or (needed is not None and id(nxt) not in needed):
                    continue
                if grads is not None:
                    gi = grads[i]
                    if gi is not None:
                        gd = gi.data
                        if isinstance(nxt, Node):
                            if gd.shape != nxt.out_shape or gd.dtype is not nxt.out_dtype:
                                gi = _check_grad(node, nxt, i, gi)
                        elif gd.shape != nxt.data.shape or gd.dtype is not nxt.data.dtype:
                            gi = _check_grad(node, nxt, i, gi)
                        prev = pending.get(nxt)
                        if prev is None:
                            pending[nxt] = gi
                        elif create_graph:
                            pending[nxt] = prev + gi
                        else:
                            pending[nxt] = _add_pending(prev, gi, owned)
                left = deps[nxt] - 1
                deps[nxt] = left
                if left == 0:
                    ready.append(nxt)
    finally:
        STATE.enabled = prev_mode
    if not retain_graph:  # O(1): remembers the root to notice graphs kept alive
        after_backward(starts)

    if capture is None:
        return None
    if not allow_unused:
        for i, c in enumerate(captured):
            if c is None:
                raise RuntimeError(
                    f"One of the differentiated Tensors (index {i}) appears to not have been "
                    f"used in the graph. Set allow_unused=True if this is the desired behavior."
                )
    return tuple(captured)


def _node_extras(node: Node, g: Tensor, create_graph: bool, capture: Any, given: set[int],
                 wanted: dict[object, int], captured: list[Tensor | None]) -> Tensor:  # fmt: skip
    """What a node's incoming gradient meets before its backward: the tensor hooks of
    its output, ``retain_grad()``, and capture by ``autograd.grad``."""
    if node._hooks is not None:
        for hook in node._hooks:
            out = hook(g)
            g = out if out is not None else g
    if node._retained is not None and capture is None:
        retained = node._retained()
        if retained is not None:
            _accumulate(retained, g, create_graph, given)
    if wanted and node in wanted:
        captured[wanted[node]] = g
    return g


def _call_backward(node: Node, g: Tensor, create_graph: bool, edges: tuple[Any, ...]
                   ) -> tuple[Tensor | None, ...]:  # fmt: skip
    """``node.backward(g)`` with the checks of create_graph and anomaly mode, seeing
    ``edges`` as its ``next_nodes`` (the live ones: see ``_live_edges``)."""
    if create_graph and node.once_differentiable:
        raise RuntimeError(
            f"{node.name()} is only differentiable once: its backward is computed in raw "
            f"numpy, so create_graph=True (higher-order gradients) is not supported through it"
        )
    full = node.next_nodes
    node.next_nodes = edges
    try:
        if STATE.anomaly:
            from tinytorch.autograd.anomaly import call_backward

            grads = call_backward(node, g)
        else:
            grads = node.backward(g)
    finally:
        node.next_nodes = full
    if type(grads) is not tuple:
        grads = (grads,)
    if len(grads) != len(full):
        _raise_count(node, grads)
    if STATE.anomaly:
        from tinytorch.autograd.anomaly import check_backward

        check_backward(node, grads)
    return grads


def _live_edges(edges: tuple[Any, ...], needed: set[int]) -> tuple[Any, ...] | None:
    """``edges`` with those to unneeded nodes replaced by None (a backward reads
    ``next_nodes`` to skip gradients nobody needs); None if no edge is left."""
    if all(n is None or id(n) in needed for n in edges):
        return edges
    live = tuple([n if n is not None and id(n) in needed else None for n in edges])
    return None if all(n is None for n in live) else live


def _raise_count(node: Node, grads: tuple[Any, ...]) -> NoReturn:
    raise RuntimeError(
        f"function {node.name()} returned an incorrect number of gradients "
        f"(expected {len(node.next_nodes)}, got {len(grads)})"
    )


def _add_pending(prev: Tensor, g: Tensor, owned: set[int]) -> Tensor:
    """``prev + g`` for a first-order backward, in place when this loop made ``prev``.

    ``prev`` may be memory someone else holds (an op may hand one array to two
    inputs, as ``Add`` does), so the first sum is a new array; the loop remembers
    it in ``owned`` and adds every later gradient for the same input into it.
    """
    pd = prev.data
    if id(pd) in owned:
        np.add(pd, g.data, out=pd)
        return prev
    total = np.add(pd, g.data)
    if type(total) is not np.ndarray:  # 0-d operands give a numpy scalar
        total = np.asarray(total)
    owned.add(id(total))
    return _node._wrap(total)


def memory_owner(arr: np.ndarray) -> np.ndarray:
    """The array that owns ``arr``'s memory (``base`` chains of strided views)."""
    while isinstance(arr.base, np.ndarray):
        arr = arr.base
    return arr


def _accumulate(t: Tensor, g: Tensor, create_graph: bool, given: set[int]) -> None:
    """``t.grad += g``, never in place on memory that someone else may hold.

    A backward may hand one array to two inputs (``Add``) or views of one
    array to several (``Cat``, ``Reshape``): ``given`` holds the memory owners
    already handed out in this backward (and the caller's root gradients), and
    ``.grad`` takes memory already given only as a copy, so that editing one
    ``.grad`` in place never changes another. Everything else — typically the
    transposed view of a fresh matmul result that is ``Linear``'s weight
    gradient — is taken without a copy.
    """
    if not create_graph:
        g = g.detach()
        owner = memory_owner(g.data)
        if id(owner) in given:
            g = _node._wrap(g.data.copy())  # clone, unrecorded
            owner = g.data
        given.add(id(owner))
    t.grad = g if t.grad is None else t.grad + g
