"""Draw the backward graph: ``draw_graph(loss)`` gives Graphviz DOT text.

Every recorded op is a box with its name, output shape and dtype, and the local
gradient rule its backward applies (the first paragraph of the primitive's
docstring, ``out = a * b;  da = g * b, db = g * a``). ``Expand`` boxes also say
which dims their backward sums over: that is where broadcasting is undone.
Leaves (parameters, inputs that require grad) are the boxes gradients end in.
Arrows point the way data flowed forward; backward walks them in reverse, and
each arrow is labelled with the argument name the rule uses (``a``, ``b``, ...).

    g = draw_graph(model(x).sum(), model=model)
    print(g.source)          # DOT text, no dependency
    g.render("graph.png")    # SVG/PNG/PDF through the ``graphviz`` package

With ``model`` the parameters get their dotted names and are grouped into one
cluster per submodule, and so is every op that first brings a submodule's
parameters in (``MatMul`` with ``fc1.weight`` goes into ``fc1``). For exact
module boundaries record them during the forward pass:

    with record_modules(model) as scopes:
        y = model(x)
    draw_graph(y, model=model, scopes=scopes)
"""

from __future__ import annotations

import html
import inspect
import itertools
import re
import textwrap
import weakref
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tinytorch.autograd.node import Node
from tinytorch.tensor import Tensor

__all__ = ["Graph", "ModuleScopes", "draw_graph", "gradient_rule", "record_modules"]

_COLORS = {"op": "#dbe9f6", "expand": "#f9d9c8", "leaf": "#e4f2d9", "output": "#fbe7b2"}
# Node slots that hold arrays or big objects: never printed as attributes.
_HIDDEN_ATTRS = {"idx", "cond", "weights", "cols", "geom", "fn", "src"}
_DERIVATIVE = re.compile(r"d ?\w+ ?=")  # "da = ...", "d base = ..."


class Graph:
    """A drawn graph: ``source`` is the DOT text; ``render``/``pipe`` need ``graphviz``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __str__(self) -> str:
        return self.source

    def pipe(self, format: str = "svg") -> bytes:
        """The graph rendered by Graphviz's ``dot`` into ``format`` (svg, png, pdf, ...)."""
        try:
            import graphviz
        except ImportError as e:
            raise ImportError(
                "rendering needs the graphviz package (pip install graphviz) and Graphviz's "
                "dot program (e.g. apt-get install graphviz); Graph.source is the DOT text"
            ) from e
        return graphviz.Source(self.source).pipe(format=format)

    def render(self, path: str | Path) -> Path:
        """Write the graph to ``path``; ``.dot``/``.gv`` is the text, other suffixes a picture."""
        path = Path(path)
        fmt = path.suffix.lstrip(".").lower()
        if fmt in ("dot", "gv", ""):
            path.write_text(self.source)
        else:
            path.write_bytes(self.pipe(fmt))
        return path

    def _repr_svg_(self) -> str:  # Jupyter shows the picture
        return self.pipe("svg").decode()


class ModuleScopes:
    """Which module produced each op node, recorded by forward hooks (innermost wins).

    A module's forward hook walks back from its outputs to its inputs' nodes;
    every node met on the way that no inner module claimed is the module's.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.owner: weakref.WeakKeyDictionary[Node, str] = weakref.WeakKeyDictionary()
        self._handles: list[Any] = []

    def __enter__(self) -> ModuleScopes:
        for name, module in self.model.named_modules():
            if name:  # the model itself is the whole graph, not a cluster
                self._handles.append(module.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _hook(self, name: str) -> Any:
        def hook(module: Any, args: tuple, output: Any) -> None:
            stop = {id(a.grad_fn) for a in _tensors(args) if a.grad_fn is not None}
            todo = [t.grad_fn for t in _tensors(output) if t.grad_fn is not None]
            seen: set[int] = set()
            while todo:
                node = todo.pop()
                if id(node) in seen or id(node) in stop:
                    continue
                seen.add(id(node))
                self.owner.setdefault(node, name)
                todo.extend(n for n in node.next_nodes if isinstance(n, Node))

        return hook


def record_modules(model: Any) -> ModuleScopes:
    """Context manager recording which submodule of ``model`` produced each op."""
    return ModuleScopes(model)


def gradient_rule(node_cls: type) -> tuple[str, str]:
    """(forward, backward) of a primitive, read from its docstring.

    The convention is a first paragraph ``out = ...;  da = ...``; otherwise the
    backward is the first later paragraph that starts ``dx = ...`` or says ``VJP``.
    """
    doc = (inspect.getdoc(node_cls) or "").replace("``", "")
    paras = [" ".join(p.split()) for p in doc.split("\n\n") if p.strip()]
    if not paras:
        return "", ""
    fwd, bwd = paras[0], ""
    if ";" in fwd:
        head, tail = (t.strip() for t in fwd.split(";", 1))
        if "=" in tail or "gradient" in tail:
            fwd, bwd = head, tail
    if not bwd:
        for p in paras[1:]:
            if "VJP" in p:
                bwd = p[p.index("VJP") :]
                break
            if _DERIVATIVE.match(p):
                bwd = p
                break
    return _clip(fwd, 140), _clip(bwd, 200)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1].rstrip() + "\u2026"


def draw_graph(
    output: Tensor | Sequence[Tensor],
    *,
    model: Any = None,
    params: Mapping[str, Tensor] | None = None,
    scopes: ModuleScopes | None = None,
    show_rules: bool = True,
    show_attrs: bool = True,
    show_constants: bool = True,
    rankdir: str = "TB",
) -> Graph:
    """The backward graph that reaches ``output`` (one tensor or several) as DOT text.

    ``model`` (an ``nn.Module``) names its parameters and clusters them, and the ops
    that bring them in, by submodule; ``params`` names more leaves (``{"x": x}``);
    ``scopes`` (from ``record_modules``) gives exact module boundaries.
    ``show_rules``/``show_attrs`` add each op's gradient rule / its small attributes;
    ``show_constants`` marks the inputs that need no gradient (data, constants) as
    dashed "no grad" arrows.
    """
    roots = [output] if isinstance(output, Tensor) else list(output)
    names: dict[int, str] = {}
    owner_of_leaf: dict[int, str] = {}
    if model is not None:
        for pname, p in model.named_parameters(remove_duplicate=False):
            names.setdefault(id(p), pname)
            owner_of_leaf.setdefault(id(p), pname.rpartition(".")[0])
    for pname, p in (params or {}).items():
        names[id(p)] = pname
    order = _topological(roots)
    if scopes is not None:
        owner = {id(n): scopes.owner[n] for n in order if isinstance(n, Node) and n in scopes.owner}
    else:
        owner = _owners_from_params(order, owner_of_leaf)
    for n in order:
        if isinstance(n, Tensor) and id(n) in owner_of_leaf:
            owner[id(n)] = owner_of_leaf[id(n)]
    ids = {id(n): f"n{i}" for i, n in enumerate(order)}
    lines = [
        "digraph tinytorch {",
        f'  graph [rankdir={rankdir}, fontname="Helvetica", fontsize=12, nodesep=0.3, '
        "ranksep=0.35, labeljust=l];",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11, '
        'margin="0.12,0.06"];',
        '  edge [fontname="Helvetica", fontsize=9, color="#555555", arrowsize=0.7];',
        '  label="Arrows show the forward pass. backward() walks them in reverse: each op '
        "turns g, the gradient of its output, into its inputs' gradients by its grad rule.\";",
        "  labelloc=b; fontsize=10;",
    ]
    statements = {id(n): _node_statement(ids[id(n)], n, names, show_rules, show_attrs)
                  for n in order}  # fmt: skip
    lines += _clusters(order, owner, statements, model)
    n_const = 0
    for n in order:
        if isinstance(n, Node):
            labels = _arg_names(type(n), len(n.next_nodes))
            for arg, src in zip(labels, n.next_nodes):
                label = f'label="{arg}"' if len(n.next_nodes) > 1 else ""
                if src is not None:
                    lines.append(
                        f"  {ids[id(src)]} -> {ids[id(n)]}{f' [{label}]' if label else ''};"
                    )
                elif show_constants:  # an input that needs no gradient: nothing flows back
                    n_const += 1
                    lines.append(f'  c{n_const} [label="no grad", shape=plaintext, style="", '
                                 f'fontsize=9, fontcolor="#888888"];')  # fmt: skip
                    sep = ", " if label else ""
                    lines.append(f'  c{n_const} -> {ids[id(n)]} [{label}{sep}style=dashed, '
                                 f'color="#aaaaaa"];')  # fmt: skip
    for k, r in enumerate(roots):
        out_id = f"out{k}"
        text = f"<B>output</B><BR/>{_shape_dtype(r.data.shape, r.data.dtype)}"
        lines.append(f'  {out_id} [label=<{text}>, fillcolor="{_COLORS["output"]}"];')
        src = r.grad_fn if r.grad_fn is not None else r
        if id(src) in ids:
            lines.append(f"  {ids[id(src)]} -> {out_id};")
    lines.append("}")
    return Graph("\n".join(lines) + "\n")


# --- graph walk ------------------------------------------------------------------------


def _tensors(obj: Any) -> Iterator[Tensor]:
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            yield from _tensors(o)


def _topological(roots: Sequence[Tensor]) -> list[Node | Tensor]:
    """Nodes and leaf tensors, inputs before the ops that use them (iterative DFS)."""
    order: list[Node | Tensor] = []
    done: set[int] = set()
    starts = [r.grad_fn if r.grad_fn is not None else r for r in roots if r.requires_grad]
    for start in starts:
        stack: list[tuple[Any, bool]] = [(start, False)]
        while stack:
            item, expanded = stack.pop()
            if id(item) in done:
                continue
            if expanded or not isinstance(item, Node):
                done.add(id(item))
                order.append(item)
                continue
            stack.append((item, True))
            stack.extend((n, False) for n in reversed(item.next_nodes) if n is not None)
    return order


def _owners_from_params(order: list[Node | Tensor], leaf_owner: dict[int, str]) -> dict[int, str]:
    """Put an op in a module's cluster when the parameters it brings in are that module's.

    An op whose inputs all come from one module's parameters (``Permute`` of a weight)
    belongs to it; so does an op that combines such inputs with other data (the
    ``MatMul`` of ``x`` and that weight), when they all come from one module. Ops on
    data alone (a functional ``relu``) stay outside: their module can't be told.
    """
    pure: dict[int, str] = {}  # op or leaf -> module, for things made of parameters only
    owner: dict[int, str] = {}
    for n in order:
        if isinstance(n, Tensor):
            if id(n) in leaf_owner:
                pure[id(n)] = leaf_owner[id(n)]
            continue
        # A None input is data that needs no grad (the model's input, a constant).
        mods: set[str | None] = {pure.get(id(s)) for s in n.next_nodes}
        known = {m for m in mods if m is not None}
        if len(known) == 1:
            (mod,) = known
            if mod:
                owner[id(n)] = mod
            if None not in mods:
                pure[id(n)] = mod
    return owner


# --- labels -----------------------------------------------------------------------------


def _shape_dtype(shape: tuple[int, ...], dtype: Any) -> str:
    return f"({', '.join(map(str, shape))}{',' if len(shape) == 1 else ''}) {np.dtype(dtype)}"


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _wrapped(text: str, width: int = 46) -> str:
    return "<BR ALIGN=\"LEFT\"/>".join(_esc(t) for t in textwrap.wrap(text, width)) + (
        '<BR ALIGN="LEFT"/>')  # fmt: skip


def _is_function(n: Node) -> bool:
    """Whether ``n`` is the node of a user ``autograd.Function``."""
    return type(n).__name__ == "FunctionCtx" and isinstance(getattr(n, "fn", None), type)


def _rule_source(n: Node) -> type:
    """The class whose docstring states ``n``'s rule (the user's Function for a ctx)."""
    return n.fn if _is_function(n) else type(n)  # type: ignore[attr-defined]


def _op_name(n: Node) -> str:
    return f"{_rule_source(n).__name__} (Function)" if _is_function(n) else type(n).__name__


def expand_sum_dims(in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The dims of the output that ``Expand``'s backward sums over (as in its backward)."""
    lead = len(out_shape) - len(in_shape)
    return tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(in_shape) if d == 1 and out_shape[lead + i] != 1
    )


def _attrs(n: Node) -> list[str]:
    out = []
    for cls in type(n).__mro__:
        if cls is Node or cls is object:
            break
        for slot in getattr(cls, "__slots__", ()):
            if slot.startswith("_") or slot in _HIDDEN_ATTRS:
                continue
            value = getattr(n, slot, None)
            if value is None or isinstance(value, np.ndarray):
                continue
            text = f"{slot}={value}"
            if len(text) <= 40 and "array" not in text:
                out.append(text)
    return out


def _node_statement(
    nid: str, n: Node | Tensor, names: dict[int, str], show_rules: bool, show_attrs: bool
) -> str:
    if isinstance(n, Tensor):
        title = names.get(id(n), "leaf")
        parts = [f"<B>{_esc(title)}</B>", _esc(_shape_dtype(n.data.shape, n.data.dtype))]
        parts.append('<FONT POINT-SIZE="9">leaf: grad accumulates in .grad</FONT>')
        body = "<BR/>".join(parts)
        return f'{nid} [label=<{body}>, fillcolor="{_COLORS["leaf"]}"];'
    cls = type(n)
    head = f"<B>{_esc(_op_name(n))}</B>  {_esc(_shape_dtype(n.out_shape, n.out_dtype))}"
    rows = [head + '<BR ALIGN="LEFT"/>']
    if show_attrs and not _is_function(n):  # a Function's ctx slots are bookkeeping
        attrs = _attrs(n)
        if attrs:
            rows.append(f'<FONT POINT-SIZE="9">{_wrapped(", ".join(attrs))}</FONT>')
    color = _COLORS["op"]
    if show_rules:
        fwd, bwd = gradient_rule(_rule_source(n))
        if fwd:
            rows.append(f'<FONT POINT-SIZE="9">{_wrapped("forward: " + fwd)}</FONT>')
        if bwd:
            rows.append(f'<FONT POINT-SIZE="9" COLOR="#9c2f00">{_wrapped("grad: " + bwd)}</FONT>')
    if cls.__name__ == "Expand" and hasattr(n, "in_shape"):
        dims = expand_sum_dims(tuple(n.in_shape), tuple(n.out_shape))
        note = (f"backward sums over dims {dims} of {tuple(n.out_shape)}, then reshapes to "
                f"{tuple(n.in_shape)}")  # fmt: skip
        rows.append(f'<FONT POINT-SIZE="9" COLOR="#9c2f00">{_wrapped(note)}</FONT>')
        color = _COLORS["expand"]
    return f'{nid} [label=<{"".join(rows)}>, fillcolor="{color}"];'


def _arg_names(cls: type[Node], n: int) -> list[str]:
    """Labels for a node's input edges: its forward's positional argument names
    (``a``, ``b`` for a ufunc primitive, as its docstring's rule names them)."""
    if cls.ufunc is not None and cls.forward is Node.forward:
        return ["a", "b"][:n] if n <= 2 else [str(i) for i in range(n)]
    names: list[str] = []
    try:
        sig = inspect.signature(cls.forward)
        for p in list(sig.parameters.values())[1:]:
            if p.kind is p.VAR_POSITIONAL:
                names += [f"{p.name}[{i}]" for i in range(n - len(names))]
                break
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                names.append(p.name)
    except (TypeError, ValueError):
        pass
    if len(names) < n or cls.__name__ == "FunctionCtx":
        names = [str(i) for i in range(n)]
    return names[:n]


# --- clusters ---------------------------------------------------------------------------


def _clusters(order: list[Node | Tensor], owner: dict[int, str], statements: dict[int, str],
              model: Any) -> list[str]:  # fmt: skip
    """Node statements nested in one ``subgraph cluster_*`` per module path."""
    members: dict[str, list[str]] = {}
    for n in order:
        members.setdefault(owner.get(id(n), ""), []).append(statements[id(n)])
    paths = {p for p in members if p}
    for p in list(paths):  # every ancestor of a used module gets a cluster too
        parts = p.split(".")
        paths.update(".".join(parts[:i]) for i in range(1, len(parts)))
    kinds = {}
    if model is not None:
        kinds = {name: type(m).__name__ for name, m in model.named_modules()}
    counter = itertools.count()

    def emit(path: str, depth: int) -> list[str]:
        pad = "  " * depth
        out = [pad + s for s in members.get(path, [])]
        prefix = path + "." if path else ""
        children = sorted(p for p in paths if p.startswith(prefix) and "." not in p[len(prefix) :])
        for child in children:
            title = f"{child} ({kinds[child]})" if child in kinds else child
            out.append(f"{pad}subgraph cluster_{next(counter)} {{")
            label = title.replace("\\", "\\\\").replace('"', '\\"')
            out.append(
                f'{pad}  label="{label}"; labelloc=t; style="rounded,dashed"; color="#7a7a7a";'
            )
            out += emit(child, depth + 1)
            out.append(pad + "}")
        return out

    return emit("", 1)
