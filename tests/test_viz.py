"""``tinytorch.viz.draw_graph``: the backward graph as DOT text (pictures with graphviz)."""

from __future__ import annotations

import re
import shutil
from typing import Any

import pytest

import tinytorch
import tinytorch.nn as nn
import tinytorch.nn.functional as F
from tinytorch.autograd import Function
from tinytorch.ops import MatMul, Mul
from tinytorch.viz import draw_graph, expand_sum_dims, gradient_rule, record_modules


def mlp() -> tuple[Any, Any]:
    tinytorch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    return model, tinytorch.randn(5, 4)


def labels(dot: str) -> list[str]:
    """The op name of every box (the bold first line)."""
    return re.findall(r"label=<<B>([^<]+)</B>", dot)


def test_mlp_graph_dot_text() -> None:
    model, x = mlp()
    loss = F.cross_entropy(model(x), tinytorch.tensor([0, 2, 1, 0, 1]))
    dot = draw_graph(loss, model=model).source
    assert dot.startswith("digraph tinytorch {") and dot.rstrip().endswith("}")
    names = labels(dot)
    for op in ("Linear", "Relu", "CrossEntropyIndices", "0.weight", "2.bias", "output"):
        assert op in names
    assert names.count("Linear") == 2
    # output shape and dtype, the forward and the gradient rule from the docstring
    assert "<B>Relu</B>  (5, 8) float32" in dot
    assert "forward: out = max(a, 0)" in dot and "grad: da = g * [a &gt; 0]." in dot
    assert "grad: dx = g @ W, dW = g^T @ x" in dot
    assert "<B>0.weight</B><BR/>(8, 4) float32" in dot
    # modules as clusters; the functional relu between them belongs to neither
    assert 'label="0 (Linear)"' in dot and 'label="2 (Linear)"' in dot
    cluster0 = dot[dot.index('label="0 (Linear)"') : dot.index('label="2 (Linear)"')]
    assert "<B>Linear</B>  (5, 8)" in cluster0 and "Relu" not in cluster0
    # edges carry the argument names the rules use
    for arg in ("w", "b"):
        assert re.search(rf'n\d+ -> n\d+ \[label="{arg}"\];', dot)
    assert dot.count(" -> ") == 9
    # the input x needs no grad: a dashed arrow into the first Linear
    assert re.search(r'c1 -> n\d+ \[label="x", style=dashed', dot)


def test_composite_linear_shows_matmul_permute_and_the_bias_sum() -> None:
    """The same map written with tensor ops: MatMul of a Permute, an Expanded bias."""
    from tinytorch.nn.functional._linear import linear_reference

    model, x = mlp()
    layer = model[0]
    loss = linear_reference(x, layer.weight, layer.bias).sum()
    dot = draw_graph(loss, model=model).source
    names = labels(dot)
    for op in ("MatMul", "Permute", "Expand", "Add"):
        assert names.count(op) == 1, op
    assert "grad: da = g @ b^T, db = a^T @ g" in dot  # MatMul's rule is in a later paragraph
    # the broadcast of the bias is undone by a sum over the batch dim
    assert "backward sums over dims (0,) of (5, 8), then" in dot
    for arg in ("a", "b"):  # a ufunc primitive's edges are named like its rule's arguments
        assert re.search(rf'n\d+ -> n\d+ \[label="{arg}"\];', dot)
    assert "no grad" not in draw_graph(loss, show_constants=False).source


def test_record_modules_gives_exact_clusters() -> None:
    model, x = mlp()
    with record_modules(model) as scopes:
        out = model(x)
    assert not model[0]._forward_hooks  # hooks are removed on exit
    dot = draw_graph(out.sum(), model=model, scopes=scopes).source
    relu = dot[dot.index('label="1 (ReLU)"') :]
    assert relu.index("<B>Relu</B>") < relu.index("}")
    assert "<B>Sum</B>" in dot and "axis=(0, 1)" in dot  # small attributes are shown


def test_nested_module_clusters() -> None:
    tinytorch.manual_seed(0)
    model = nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.Tanh()), nn.Linear(2, 1))
    with record_modules(model) as scopes:
        y = model(tinytorch.randn(3, 2))
    dot = draw_graph(y, model=model, scopes=scopes).source
    outer = dot.index('label="0 (Sequential)"')
    inner = dot.index('label="0.0 (Linear)"')
    assert outer < inner < dot.index('label="0.1 (Tanh)"')


def test_leaves_roots_and_options() -> None:
    a = tinytorch.randn(3, requires_grad=True)
    b = tinytorch.randn(2, 1, requires_grad=True)
    c = a * b  # broadcast: both expanded to (2, 3)
    dot = draw_graph([c, a], params={"a": a, "b": b}, show_rules=False, rankdir="LR").source
    assert "rankdir=LR" in dot and "grad:" not in dot
    assert "<B>a</B><BR/>(3,) float32" in dot and "<B>b</B>" in dot
    assert dot.count("<B>output</B>") == 2
    assert "sums over dims (0,) of (2, 3)" in dot and "sums over dims (1,) of (2, 3)" in dot
    # a tensor without history is a graph of nothing but the output box
    assert labels(draw_graph(tinytorch.ones(2)).source) == ["output"]


def test_gradient_rule_and_expand_dims() -> None:
    assert gradient_rule(Mul) == ("out = a * b", "da = g * b, db = g * a.")
    assert gradient_rule(MatMul)[1].startswith("da = g @ b^T")
    assert expand_sum_dims((3, 1), (4, 3, 5)) == (0, 2)
    assert expand_sum_dims((1,), (1,)) == ()


class Cube(Function):
    """out = x^3;  dx = 3 g x^2."""

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (x,) = ctx.saved_tensors
        return g * 3 * x**2


def test_custom_function_node() -> None:
    x = tinytorch.randn(2, requires_grad=True)
    dot = draw_graph(Cube.apply(x)).source
    assert "<B>Cube (Function)</B>" in dot and "grad: dx = 3 g x^2." in dot


def test_render(tmp_path: Any) -> None:
    model, x = mlp()
    g = draw_graph(model(x).sum(), model=model)
    assert g.render(tmp_path / "g.dot").read_text() == g.source == str(g)
    pytest.importorskip("graphviz")
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot program is not installed")
    png = g.render(tmp_path / "g.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    assert g._repr_svg_().lstrip().startswith("<?xml")
