"""The engine: accumulation, long graphs, grad mode, hooks, Function, errors, memory."""

from __future__ import annotations

import gc
import importlib
import threading
import weakref

import numpy as np
import pytest
import torch
from parity import assert_same

import tinytorch as tt
from tinytorch.autograd import Function


def test_diamond_accumulates():
    x = tt.tensor(2.0, requires_grad=True)
    a = x * 3
    y = a * a + a.exp() + a  # a is used three times
    y.backward()
    tx = torch.tensor(2.0, requires_grad=True)
    ta = tx * 3
    (ta * ta + ta.exp() + ta).backward()
    assert_same(x.grad, tx.grad, rtol=1e-6)


def test_same_tensor_twice_in_one_op():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]


def test_long_chain_no_recursion_error():
    x = tt.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert x.grad.item() == 1.0


def test_grads_accumulate_across_backward_calls():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).sum().backward()
    (x * 3).sum().backward()
    assert x.grad.tolist() == [5.0, 5.0]


def test_no_grad_builds_no_graph():
    x = tt.ones(3, requires_grad=True)
    with tt.no_grad():
        y = x * 2
    assert y.grad_fn is None and not y.requires_grad
    assert tt.is_grad_enabled()


def test_grad_mode_decorators_and_set_grad_enabled():
    x = tt.ones(2, requires_grad=True)

    @tt.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad
    with tt.no_grad(), tt.enable_grad():
        assert (x * 2).requires_grad
    with tt.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert tt.is_grad_enabled()
    tt.set_grad_enabled(False)
    assert not tt.is_grad_enabled()
    tt.set_grad_enabled(True)


def test_grad_mode_is_thread_local():
    seen = []
    with tt.no_grad():
        t = threading.Thread(target=lambda: seen.append(tt.is_grad_enabled()))
        t.start()
        t.join()
    assert seen == [True]


def test_second_backward_without_retain_graph_raises():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    g1 = x.grad.clone()
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * g1.data)


def test_backward_errors():
    x = tt.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        tt.ones(3).sum().backward()
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * 2).backward(tt.ones(4))


def test_backward_with_gradient_argument():
    x = tt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).backward(tt.tensor([1.0, 0.5, 0.0]))
    assert x.grad.tolist() == [2.0, 2.0, 0.0]


def test_create_graph_higher_order():
    x = tt.tensor(1.5, dtype=tt.float64, requires_grad=True)
    y = x.sin() * x**3
    (g,) = tt.autograd.grad(y, x, create_graph=True)
    (gg,) = tt.autograd.grad(g, x, create_graph=True)
    (ggg,) = tt.autograd.grad(gg, x)
    tx = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    ty = tx.sin() * tx**3
    (tg,) = torch.autograd.grad(ty, tx, create_graph=True)
    (tgg,) = torch.autograd.grad(tg, tx, create_graph=True)
    (tggg,) = torch.autograd.grad(tgg, tx)
    for a, b in [(g, tg), (gg, tgg), (ggg, tggg)]:
        assert_same(a, b)


def test_backward_create_graph_gradient_penalty():
    w = tt.tensor([[0.5, -1.0], [2.0, 0.3]], dtype=tt.float64, requires_grad=True)
    x = tt.tensor([[1.0, 2.0]], dtype=tt.float64, requires_grad=True)
    out = (x @ w).tanh().sum()
    (gx,) = tt.autograd.grad(out, x, create_graph=True)
    penalty = (gx**2).sum()
    penalty.backward()
    tw = torch.tensor(w.data, requires_grad=True)
    tx = torch.tensor(x.data, requires_grad=True)
    tout = (tx @ tw).tanh().sum()
    (tgx,) = torch.autograd.grad(tout, tx, create_graph=True)
    (tgx**2).sum().backward()
    assert_same(w.grad, tw.grad)


def test_autograd_grad_does_not_touch_grad_and_allow_unused():
    x = tt.ones(2, requires_grad=True)
    z = tt.ones(2, requires_grad=True)
    y = (x * 3).sum()
    (g,) = tt.autograd.grad(y, x, retain_graph=True)
    assert x.grad is None and g.tolist() == [3.0, 3.0]
    with pytest.raises(RuntimeError, match="not have been used"):
        tt.autograd.grad(y, [x, z], retain_graph=True)
    _, gz = tt.autograd.grad(y, [x, z], allow_unused=True)
    assert gz is None


def test_grad_wrt_non_leaf():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    y = (h * h).sum()
    (gh,) = tt.autograd.grad(y, h)
    assert gh.tolist() == [4.0, 8.0]


def test_retain_grad_and_retain_grads_attribute():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    h.retain_grad()
    k = h * 3
    k.retain_grads = True  # our documented alias
    k.sum().backward()
    assert h.grad.tolist() == [3.0, 3.0]
    assert k.grad.tolist() == [1.0, 1.0]
    m = x * 2
    m.sum().backward()
    assert m.grad is None  # non-leaf grads are not kept by default


def test_hooks_can_replace_gradient():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    h = x * 2
    h.register_hook(lambda g: seen.append(g.tolist()))
    handle = x.register_hook(lambda g: g * 10)
    h.sum().backward()
    assert seen == [[1.0, 1.0]]
    assert x.grad.tolist() == [20.0, 20.0]
    handle.remove()
    x.grad = None
    (x * 2).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_leaf_grad_does_not_alias_another_leaf():
    a = tt.ones(3, requires_grad=True)
    b = tt.ones(3, requires_grad=True)
    (a + b).sum().backward()
    a.grad.data[0] = 99.0
    assert b.grad.tolist() == [1.0, 1.0, 1.0]


class Cube(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x**2


def test_custom_function_first_and_second_order():
    x = tt.tensor([1.0, -2.0], dtype=tt.float64, requires_grad=True)
    y = Cube.apply(x)
    assert y.grad_fn is not None and "Cube" in repr(y)
    (g,) = tt.autograd.grad(y.sum(), x, create_graph=True)
    assert g.tolist() == [3.0, 12.0]
    (gg,) = tt.autograd.grad(g.sum(), x)
    assert gg.tolist() == [6.0, -12.0]
    assert tt.autograd.gradcheck(Cube.apply, (x,))


def test_custom_function_needs_input_grad_and_non_tensor_args():
    class Scale(Function):
        @staticmethod
        def forward(ctx, x, k):
            ctx.k = k
            assert ctx.needs_input_grad == (True, False)
            return x * k

        @staticmethod
        def backward(ctx, grad):
            return grad * ctx.k, None

    x = tt.ones(2, requires_grad=True)
    Scale.apply(x, 5.0).sum().backward()
    assert x.grad.tolist() == [5.0, 5.0]


def test_inplace_on_saved_tensor_raises():
    x = tt.ones(3, requires_grad=True)
    y = x * 2
    z = y.exp()  # saves its output
    z.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()
    a = tt.ones(3, requires_grad=True)
    b = a * 1
    c = b * b  # saves b
    b.mul_(2)
    with pytest.raises(RuntimeError, match="inplace"):
        c.sum().backward()


def test_inplace_with_grad_matches_torch():
    x = tt.tensor([1.0, 2.0, 3.0], dtype=tt.float64, requires_grad=True)
    w = tt.tensor([0.5, -1.0, 2.0], dtype=tt.float64, requires_grad=True)
    y = x * 2
    y.mul_(w)
    y.add_(1.0)
    y.sum().backward()
    tx = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    tw = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    ty = tx * 2
    ty.mul_(tw)
    ty.add_(1.0)
    ty.sum().backward()
    assert_same(x.grad, tx.grad)
    assert_same(w.grad, tw.grad)


def test_inplace_on_leaf_requiring_grad_raises():
    x = tt.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        x.add_(1)
    with tt.no_grad():
        x.add_(1)
    assert x.tolist() == [2.0, 2.0, 2.0]


def test_setitem_gradient_flows_to_value_and_rest():
    x = tt.tensor([1.0, 2.0, 3.0, 4.0], dtype=tt.float64, requires_grad=True)
    v = tt.tensor([10.0, 20.0], dtype=tt.float64, requires_grad=True)
    y = x * 1
    y[1:3] = v * 2
    (y * tt.tensor([1.0, 2.0, 3.0, 4.0], dtype=tt.float64)).sum().backward()
    assert x.grad.tolist() == [1.0, 0.0, 0.0, 4.0]
    assert v.grad.tolist() == [4.0, 6.0]


def test_memory_released_after_backward():
    x = tt.ones(1000, requires_grad=True)
    y = x.exp()
    z = y * 2
    ref = weakref.ref(y)
    node = weakref.ref(z.grad_fn)
    del y
    z.sum().backward()
    del z
    assert ref() is None and node() is None  # freed by refcount, no gc needed


def test_graph_has_no_reference_cycles():
    x = tt.ones(10, requires_grad=True)
    gc.collect()
    gc.disable()
    try:
        for _ in range(50):
            h = (x * 2).exp()
            h.retain_grad()
            y = (h.sigmoid() @ h).tanh()
            y.backward()
        del y, h
        assert gc.collect() == 0  # everything was already freed by reference counting
    finally:
        gc.enable()


def test_detach_shares_memory_and_version():
    x = tt.ones(3, requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.grad_fn is None
    d.data[0] = 5.0
    assert x.data[0] == 5.0


def test_requires_grad_rules():
    with pytest.raises(RuntimeError, match="floating point"):
        tt.tensor([1, 2]).requires_grad_()
    y = tt.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad = False
    assert y.is_leaf is False and tt.ones(2).is_leaf


def test_gradcheck_detects_a_wrong_gradient():
    class Wrong(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * 3

    x = tt.randn(3, dtype=tt.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        tt.autograd.gradcheck(Wrong.apply, (x,))
    assert not tt.autograd.gradcheck(Wrong.apply, (x,), raise_exception=False)
    assert tt.autograd.gradgradcheck(lambda t: (t**3).sum(), (x,))


def test_anomaly_mode_names_the_op_and_line():
    x = tt.tensor([0.0, 1.0], requires_grad=True)
    with tt.autograd.detect_anomaly(), pytest.raises(RuntimeError, match="Log") as err:
        x.log()
    assert "test_autograd.py" in str(err.value)


def test_copy_and_fill_replace_history_without_touching_old_values():
    x = tt.tensor([float("inf"), 1.0], requires_grad=True)
    src = tt.tensor([2.0, 3.0], requires_grad=True)
    y = x * 1
    y.copy_(src)
    (y * tt.tensor([1.0, 2.0])).sum().backward()
    assert src.grad.tolist() == [1.0, 2.0]
    assert x.grad is None or x.grad.tolist() == [0.0, 0.0]  # never inf * 0 = nan
    z = x * 1
    z.fill_(5.0)
    assert z.grad_fn is None and z.tolist() == [5.0, 5.0]
    with pytest.raises(RuntimeError, match="leaf Variable"):
        x.fill_(0.0)


@pytest.mark.parametrize(
    "make",
    [
        lambda x: x.amax(0).sum(),
        lambda x: x.max(),
        lambda x: tt.nn.functional.cross_entropy(x, tt.tensor([0, 1, 1])),
        lambda x: tt.nn.functional.conv1d(x.unsqueeze(0), tt.ones(1, 3, 2)).sum(),
    ],
)
def test_second_backward_through_freed_state_raises_clearly(make):
    x = tt.randn(3, 4, requires_grad=True)
    y = make(x)
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_in_place_accumulation_of_pending_gradients_never_aliases():
    """The engine adds later gradients into a sum it allocated itself, in place; an
    array an op handed to two inputs (``Add`` returns ``g, g``) must never be written."""
    import torch

    def graph(lib, x):
        a = x * 1.5
        b = a + a  # one gradient array to both edges, both into a
        c = b + a  # a: three contributions
        d = c * a + b  # b: two, each an array also given elsewhere
        return (d * d).sum() + (a * 2.0).sum()

    xn = np.random.default_rng(0).standard_normal((3, 4))
    x, xt = tt.tensor(xn, requires_grad=True), torch.tensor(xn, requires_grad=True)
    graph(tt, x).backward()
    graph(torch, xt).backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("lib", ["tinytorch", "torch"])
def test_grad_computes_only_what_leads_to_the_inputs(lib):
    """As torch: autograd.grad skips branches that reach no requested input (a matmul
    computes no weight gradient, hooks there never fire), and values are unchanged."""
    lib = importlib.import_module(lib)
    calls = []
    x = lib.ones(2, 3, requires_grad=True)
    w = lib.ones(3, 4, requires_grad=True)
    w.register_hook(lambda g: calls.append("w"))
    h = x @ w
    h.register_hook(lambda g: calls.append("h"))
    (gx,) = lib.autograd.grad((h * h).sum(), x)
    assert gx.tolist() == [[24.0] * 3] * 2 and calls == ["h"]
    assert w.grad is None


def test_grad_keeps_saved_values_of_nodes_it_did_not_run() -> None:
    """``autograd.grad`` runs only the nodes between its outputs and inputs; as in torch,
    the others keep their saved values (a captured non-leaf's own node included), so a
    later backward through them still works."""
    results = []
    for lib in (tt, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        w = lib.tensor([0.5, -1.0], requires_grad=True)
        a = x * w  # Mul saves both inputs; grad below captures a but does not run Mul
        b = w.exp()  # saves its output; not on the path to a
        (ga,) = lib.autograd.grad((a * 3.0 + b).sum(), [a])
        (a + b).sum().backward()
        results.append((ga, x.grad, w.grad))
    for ours, theirs, what in zip(results[0], results[1], ("da", "dx", "dw")):
        assert_same(ours, theirs, what=what)
