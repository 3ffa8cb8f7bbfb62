"""Graph diagnostics: ``graph_stats`` and the graph-retention warning.

**graph_stats(t)** walks the graph behind ``t`` once and reports how many nodes
it has and how many bytes of arrays they keep for backward.

**The retention warning** catches the classic leak ``total_loss += loss``: each
step's graph is chained to the next one, so no graph is ever freed. It costs
nothing per op. After each ``backward()`` that frees its graph, the engine
hands the root node to ``after_backward``, which keeps it in a ``WeakSet``: in
a healthy loop the root dies when ``loss`` is rebound next step, so the set
stays small. When more than ``_ALIVE_THRESHOLD`` freed roots are still alive,
the watch turns on for ``_WATCH_BACKWARDS`` backward calls: it borrows anomaly
mode's forward hook to find the op that consumes a root, and warns once with
that op's source line. If nothing consumes them (e.g. the losses are appended
to a list) it warns, with the line of the ``backward()`` call, only once
``_GENERIC_FACTOR`` times the threshold are alive: a step that builds many
graphs and backpropagates them one by one also holds several roots for a
while, but drops them all at its end, which resets the suspicion.
"""

from __future__ import annotations

import dataclasses
import warnings
import weakref
from collections import Counter
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from tinytorch.autograd import anomaly
from tinytorch.autograd.node import Node

if TYPE_CHECKING:
    from tinytorch.tensor import Tensor

__all__ = ["GraphRetentionWarning", "GraphStats", "graph_stats"]

_ALIVE_THRESHOLD = 16  # freed graphs still referenced before we suspect a leak
_WATCH_BACKWARDS = 3  # backward calls the watch may take to find the culprit line
_GENERIC_FACTOR = 4  # alive roots (x threshold) before warning without a culprit line


class GraphRetentionWarning(UserWarning):
    """Autograd graphs that already went through ``backward()`` are being kept alive."""


# --------------------------------------------------------------------------- graph_stats
@dataclasses.dataclass(frozen=True)
class GraphStats:
    """What the graph behind a tensor holds.

    Attributes:
        nodes: recorded ops reachable from the tensor (its ``grad_fn`` included).
        leaves: distinct leaf tensors that require grad (parameters, inputs).
        saved_arrays: distinct arrays the nodes keep for backward (views of one
            array count once); the leaves' own arrays are not counted.
        saved_bytes: their total size in bytes (what freeing the graph releases).
        freed_nodes: nodes whose saved values were already freed by a backward.
        ops: how many nodes of each kind, e.g. ``{"MulBackward0": 3}``.
    """

    nodes: int
    leaves: int
    saved_arrays: int
    saved_bytes: int
    freed_nodes: int
    ops: dict[str, int]

    def __repr__(self) -> str:
        top = ", ".join(f"{name}: {n}" for name, n in Counter(self.ops).most_common(4))
        more = ", ..." if len(self.ops) > 4 else ""
        return (
            f"GraphStats(nodes={self.nodes:,}, leaves={self.leaves}, "
            f"saved={self.saved_arrays:,} arrays / {_human(self.saved_bytes)}, "
            f"freed_nodes={self.freed_nodes:,}, ops={{{top}{more}}})"
        )


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


_SKIP_SLOTS = {"__weakref__", "__dict__", "next_nodes", "_hooks", "_retained", "_trace"}
_slot_cache: dict[type, tuple[str, ...]] = {}


def _slot_values(node: Node) -> list[Any]:
    """Every attribute an op stored on its node (slots and, for Functions, ``__dict__``)."""
    cls = type(node)
    names = _slot_cache.get(cls)
    if names is None:
        names = tuple(name for c in cls.__mro__ for name in getattr(c, "__slots__", ())
                      if name not in _SKIP_SLOTS)  # fmt: skip
        _slot_cache[cls] = names
    values = [getattr(node, name, None) for name in names]
    if hasattr(node, "__dict__"):
        values.extend(node.__dict__.values())
    return values


def _arrays_in(value: Any, out: list[np.ndarray], tensor_cls: type[Any], depth: int = 0) -> None:
    """Collect the ndarrays inside ``value`` (tensors, arrays, tuples/lists of them)."""
    if isinstance(value, np.ndarray):
        out.append(value)
    elif isinstance(value, tensor_cls):
        out.append(value.data)
    elif isinstance(value, (tuple, list)) and depth < 3:
        for v in value:
            _arrays_in(v, out, tensor_cls, depth + 1)


def _root_array(a: np.ndarray) -> np.ndarray:
    """The array that owns the memory of ``a`` (a view keeps all of it alive)."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def graph_stats(tensor: Tensor) -> GraphStats:
    """Count the nodes behind ``tensor`` and the bytes their saved arrays hold.

    Useful to check that a loop does not grow a graph (compare two steps), or
    to see what a model keeps in memory between forward and backward::

        >>> loss = model(x).square().mean()
        >>> tinytorch.autograd.graph_stats(loss)
        GraphStats(nodes=9, leaves=4, saved=6 arrays / 52.0 KiB, freed_nodes=0, ...)
    """
    from tinytorch.tensor import Tensor

    root = tensor.grad_fn
    if root is None:
        return GraphStats(0, 1 if tensor.requires_grad else 0, 0, 0, 0, {})
    seen = {id(root)}
    stack: list[Node] = [root]
    leaves: list[Tensor] = []
    arrays: list[np.ndarray] = []
    ops: Counter[str] = Counter()
    freed = 0
    while stack:
        node = stack.pop()
        ops[node.name()] += 1
        if getattr(node, "_saved", None) is None and getattr(node, "_out", None) is None and (
            node.save_inputs or node.save_output or getattr(node, "to_save", ()) is None
        ):  # fmt: skip
            freed += 1
        for value in _slot_values(node):
            if value is not None:
                _arrays_in(value, arrays, Tensor)
        for nxt in node.next_nodes:
            if nxt is None or id(nxt) in seen:
                continue
            seen.add(id(nxt))
            if isinstance(nxt, Node):
                stack.append(nxt)
            else:
                leaves.append(nxt)
    leaf_memory = {id(_root_array(t.data)) for t in leaves}
    held: dict[int, int] = {}
    for a in arrays:
        base = _root_array(a)
        if id(base) not in leaf_memory:
            held[id(base)] = base.nbytes
    return GraphStats(
        nodes=sum(ops.values()),
        leaves=len(leaves),
        saved_arrays=len(held),
        saved_bytes=sum(held.values()),
        freed_nodes=freed,
        ops=dict(ops),
    )


# --------------------------------------------------------------------------- retention
class _Retention:
    """Module state of the retention check (one per process)."""

    def __init__(self) -> None:
        self.roots: weakref.WeakSet[Node] = weakref.WeakSet()
        self.warned = False
        self.watching = 0  # backward calls left in the watch window; 0 = off
        self.suspected = False  # more than _ALIVE_THRESHOLD roots alive since then
        # (weakref to a consumed node, creation site of the op that consumed it)
        self.consumers: list[tuple[weakref.ref[Node], Any]] = []


_R = _Retention()


def reset_retention_check() -> None:
    """Forget the roots seen so far and allow the warning again (for tests)."""
    global _R
    if _R.watching:
        anomaly.set_watch(False)
    _R = _Retention()


def after_backward(roots: list[object]) -> None:
    """Called by the engine after each backward that freed its graph."""
    r = _R
    if r.warned:
        return
    if len(roots) == 1:  # the usual loss.backward(): skip building a list
        if not isinstance(roots[0], Node):
            return
        nodes = cast("list[Node]", roots)
    else:
        nodes = [n for n in roots if isinstance(n, Node)]
        if not nodes:
            return
    if r.watching:
        for ref, where in r.consumers:
            if ref() in nodes:  # the root was used by a new op before its backward
                _warn(where, consumed=True)
                return
        r.consumers.clear()
        _set_watch(r, r.watching - 1)
    for node in nodes:
        r.roots.add(node)
    alive = len(r.roots)  # dead roots leave the WeakSet as they die
    if alive <= _ALIVE_THRESHOLD:
        r.suspected = False
        _set_watch(r, 0)
    elif not r.suspected:
        r.suspected = True
        _set_watch(r, _WATCH_BACKWARDS)
    elif alive >= _GENERIC_FACTOR * _ALIVE_THRESHOLD:  # nothing consumed them: stored
        _warn(anomaly.user_frame(), consumed=False)


def _set_watch(r: _Retention, backwards: int) -> None:
    if (backwards > 0) != (r.watching > 0):
        anomaly.set_watch(backwards > 0)
    r.watching = backwards
    if not backwards:
        r.consumers.clear()


def watch_forward(node: Node) -> None:
    """During the watch: is this new op consuming a graph that went through backward?"""
    r = _R
    if not r.watching:
        return
    where = None
    for nxt in node.next_nodes:
        if not isinstance(nxt, Node):
            continue
        if nxt in r.roots:
            _warn(anomaly.user_frame(), consumed=True)
            return
        if where is None:
            where = anomaly.user_frame()
        r.consumers.append((weakref.ref(nxt), where))


def _warn(where: Any, consumed: bool) -> None:
    r = _R
    r.warned = True
    r.watching = 0
    r.consumers.clear()
    anomaly.set_watch(False)
    n = len(r.roots)
    if consumed:
        msg = (
            f"{n} autograd graphs that already went through backward() are still alive: this "
            f"line uses the output of a graph that goes through backward() (e.g. the loss) as "
            f"an input to a new op that requires grad, which chains every step's graph to the "
            f"next so none is ever freed. Accumulate a number instead "
            f"(`total_loss += loss.item()`) or a detached tensor (`loss.detach()`)."
        )
    else:
        msg = (
            f"{n} autograd graphs that already went through backward() are still alive: "
            f"something keeps references to their outputs (e.g. `losses.append(loss)`), so "
            f"their graphs are never freed. Store `loss.item()` or `loss.detach()` instead."
        )
    if where is None:
        warnings.warn(msg, GraphRetentionWarning, stacklevel=3)
        return
    filename, lineno, _func, _chain = where
    warnings.warn_explicit(msg, GraphRetentionWarning, filename, lineno)
