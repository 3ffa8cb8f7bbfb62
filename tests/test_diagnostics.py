"""Diagnostics: anomaly mode, the graph-retention warning, graph_stats, and
``tinytorch.testing`` (assert_close, compare_with_torch)."""

from __future__ import annotations

import collections
import inspect
import warnings

import numpy as np
import pytest
import torch

import tinytorch as tt
import tinytorch.nn.functional as F
from tinytorch.autograd import GraphRetentionWarning, diagnostics
from tinytorch.testing import assert_close, compare_with_torch

HERE = __file__


def _line_of(marker: str) -> int:
    """Line number in this file of the (unique) line containing ``marker``."""
    lines = inspect.getsource(inspect.getmodule(_line_of)).splitlines()  # type: ignore[arg-type]
    hits = [i + 1 for i, line in enumerate(lines) if marker in line and "_line_of" not in line]
    assert len(hits) == 1, hits
    return hits[0]


# --------------------------------------------------------------------------- anomaly
def test_forward_nan_names_op_shapes_and_user_line():
    x = tt.tensor([-1.0, 1.0], requires_grad=True)
    with tt.autograd.detect_anomaly(), pytest.raises(RuntimeError) as err:
        x.log()  # <mark:log>
    msg = str(err.value)
    assert "Log produced nan" in msg and "[2] float32" in msg
    assert f"line {_line_of('<mark:log>')}" in msg and HERE in msg
    assert "x.log()  # <mark" in msg  # the source text


def test_composite_reports_the_users_line_not_tinytorch_internals():
    logits = tt.tensor([[float("inf"), 0.0, 1.0]], requires_grad=True)
    with tt.autograd.detect_anomaly(), pytest.raises(RuntimeError) as err:
        F.cross_entropy(logits, tt.tensor([0]))  # composite call
    msg = str(err.value)
    where = msg.split("created at:")[1]
    assert "F.cross_entropy(logits, tt.tensor([0]))  # composite call" in where
    assert "tinytorch/" not in where.split("\n")[1]  # the File line is the user's
    assert "cross_entropy" in where  # ...and the tinytorch path it went through


def test_input_that_already_was_nan_is_blamed_on_the_data():
    data = tt.tensor([[1.0, float("nan")]])
    net = tt.nn.Linear(2, 3)
    with tt.autograd.detect_anomaly(), pytest.raises(RuntimeError, match="already non-finite"):
        net(data)


def test_backward_nan_names_backward_forward_op_and_creation_line():
    w = tt.tensor([1.0, 0.0], requires_grad=True)
    with tt.autograd.detect_anomaly():
        y = (w.sqrt() * 0.0).sum()  # <mark:sqrt> sqrt'(0) = inf, times 0 = nan
        with pytest.raises(RuntimeError) as err:
            y.backward()
    msg = str(err.value)
    assert "SqrtBackward0" in msg and "forward op Sqrt" in msg and "[2] float32" in msg
    assert f"line {_line_of('<mark:sqrt>')}" in msg


def test_check_nan_false_records_lines_without_raising():
    x = tt.tensor([-1.0, 2.0], requires_grad=True)
    with tt.autograd.detect_anomaly(check_nan=False):
        assert tt.autograd.is_anomaly_enabled()
        assert not tt.autograd.is_anomaly_check_nan_enabled()
        y = x.log()  # nan, allowed
        assert y.grad_fn._trace is not None
        y.sum().backward()  # nan gradient, allowed
    assert np.isnan(y.data[0]) and np.isnan(x.grad.data).sum() == 0  # 1/x is finite


def test_backward_error_gets_the_forward_line_as_a_note():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    with tt.autograd.detect_anomaly(check_nan=False):
        y = x.exp()
        z = y * y  # saves y
        y.add_(1.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation") as err:
            z.sum().backward()
    notes = "\n".join(getattr(err.value, "__notes__", []))
    assert "MulBackward0" in notes and "z = y * y  # saves y" in notes


def test_no_lines_are_recorded_outside_anomaly_mode():
    x = tt.ones(2, requires_grad=True)
    assert (x * 2).grad_fn._trace is None
    assert not tt.autograd.is_anomaly_enabled()


def test_set_detect_anomaly_function_and_context_manager():
    tt.autograd.set_detect_anomaly(True)
    try:
        assert tt.autograd.is_anomaly_enabled()
        with tt.autograd.set_detect_anomaly(False):
            assert not tt.autograd.is_anomaly_enabled()
        assert tt.autograd.is_anomaly_enabled()
    finally:
        tt.autograd.set_detect_anomaly(False)
    assert not tt.autograd.is_anomaly_enabled()

    @tt.autograd.detect_anomaly()
    def f(t: tt.Tensor) -> tt.Tensor:
        return t.log()

    with pytest.raises(RuntimeError, match="Log produced"):
        f(tt.tensor([-1.0], requires_grad=True))
    assert not tt.autograd.is_anomaly_enabled()


def test_custom_function_forward_is_checked():
    class Bad(tt.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x / 0.0

        @staticmethod
        def backward(ctx, g):
            return g

    with tt.autograd.detect_anomaly(), pytest.raises(RuntimeError, match="Bad produced inf"):
        Bad.apply(tt.ones(2, requires_grad=True))


def test_minus_inf_attention_mask_is_not_an_anomaly():
    scores = tt.randn(4, 4, requires_grad=True)
    mask = tt.ones(4, 4).triu(1) > 0
    with tt.autograd.detect_anomaly():
        att = scores.masked_fill(mask, float("-inf")).softmax(-1)
        (att * tt.randn(4, 4)).sum().backward()
    assert np.isfinite(scores.grad.data).all()


# --------------------------------------------------------------------------- retention
def _train(steps: int, pattern: str) -> list[warnings.WarningMessage]:
    diagnostics.reset_retention_check()
    tt.manual_seed(0)
    net = tt.nn.Sequential(tt.nn.Linear(4, 8), tt.nn.ReLU(), tt.nn.Linear(8, 2))
    opt = tt.optim.SGD(net.parameters(), lr=0.01)
    x, y = tt.randn(16, 4), tt.randint(0, 2, (16,))
    total: object = 0.0
    kept: collections.deque = collections.deque(maxlen=5)
    losses = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(steps):
            loss = F.cross_entropy(net(x), y)
            if pattern == "before":
                total += loss  # retention before backward
            opt.zero_grad()
            loss.backward()  # the backward line
            opt.step()
            if pattern == "after":
                total += loss  # retention after backward
            elif pattern == "list":
                losses.append(loss)
            elif pattern == "deque":
                kept.append(loss)
            elif pattern == "item":
                total += loss.item()
    diagnostics.reset_retention_check()
    return [w for w in caught if issubclass(w.category, GraphRetentionWarning)]


@pytest.mark.parametrize("pattern", ["after", "before"])
def test_retention_warning_points_at_the_accumulating_line(pattern):
    caught = _train(40, pattern)
    assert len(caught) == 1  # once
    w = caught[0]
    assert w.filename == HERE
    assert w.lineno == _line_of(f"# retention {pattern} backward")
    assert "loss.item()" in str(w.message)


def test_retention_warning_for_stored_losses_points_at_backward():
    caught = _train(70, "list")
    assert len(caught) == 1
    assert caught[0].lineno == _line_of("# the backward line")
    assert "losses.append(loss)" in str(caught[0].message)


@pytest.mark.parametrize("pattern", ["item", "deque"])
def test_no_retention_warning_for_healthy_loops(pattern):
    assert _train(80, pattern) == []


def test_no_retention_warning_for_many_graphs_backpropagated_one_by_one():
    """A step that builds 30 graphs, then backpropagates each, holds 30 roots for a
    moment; they all die at the end of the step, which is no leak."""
    diagnostics.reset_retention_check()
    w = tt.randn(3, requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(8):
            losses = [(w * float(i)).sum() for i in range(30)]
            for loss in losses:
                loss.backward()
            del losses, loss
    diagnostics.reset_retention_check()
    assert not [w for w in caught if issubclass(w.category, GraphRetentionWarning)]


# --------------------------------------------------------------------------- graph_stats
def test_graph_stats_counts_nodes_leaves_and_saved_bytes():
    x = tt.randn(8, 16)  # data: saved by MatMul, counted
    w = tt.randn(16, 4, requires_grad=True)  # a leaf: not counted as graph memory
    loss = (x @ w).tanh().sum()
    s = tt.autograd.graph_stats(loss)
    assert s.nodes == 3 and s.leaves == 1
    assert s.ops == {"MatMulBackward0": 1, "TanhBackward0": 1, "SumBackward0": 1}
    assert s.saved_bytes == x.data.nbytes + 8 * 4 * 4  # x and tanh's output
    assert s.freed_nodes == 0
    loss.backward()
    after = tt.autograd.graph_stats(loss)
    assert after.saved_bytes == 0 and after.freed_nodes == 2
    assert "nodes=3" in repr(s) and "640 B" in repr(s)
    assert tt.autograd.graph_stats(w).nodes == 0


def test_graph_stats_sees_a_growing_graph():
    w = tt.ones(3, requires_grad=True)
    total = 0
    sizes = []
    for _ in range(3):
        total = total + (w * 2).sum()
        sizes.append(tt.autograd.graph_stats(total).nodes)
    assert sizes[0] < sizes[1] < sizes[2]


# --------------------------------------------------------------------------- testing
def _both(a, e, **kw) -> tuple[str | None, str | None]:
    """Our assert_close message and torch's for the same values."""
    ours = theirs = None
    try:
        assert_close(tt.tensor(a), tt.tensor(e), **kw)
    except AssertionError as err:
        ours = str(err).replace("tinytorch.", "torch.")
    try:
        torch.testing.assert_close(torch.tensor(a), torch.tensor(e), **kw)
    except AssertionError as err:
        theirs = str(err)
    return ours, theirs


@pytest.mark.parametrize("a, e, kw", [
    ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0 + 1e-6], {}),
    ([1.0, 2.0, 3.0], [1.0, 2.5, 3.0], {}),
    ([[1.0, 2.0]], [[1.0, 2.0, 3.0]], {}),
    ([1, 2, 3], [1, 2, 4], {}),
    ([1.0, float("nan")], [1.0, float("nan")], {}),
    ([1.0, float("nan")], [1.0, float("nan")], {"equal_nan": True}),
    ([1.0, float("inf")], [1.0, 1e30], {}),
    ([1.0, 2.0], [1.1, 2.0], {"rtol": 0.2, "atol": 0.0}),
])  # fmt: skip
def test_assert_close_agrees_with_torch(a, e, kw):
    ours, theirs = _both(np.array(a), np.array(e), **kw)
    assert (ours is None) == (theirs is None)
    if theirs is not None:
        assert ours.splitlines()[:3] == theirs.splitlines()[:3]
        assert ours.split(" at index")[0] == theirs.split(" at index")[0]


def test_assert_close_mixed_libraries_dtypes_and_options():
    assert_close(tt.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0]))
    assert_close(tt.tensor([1.0, 2.0]), np.array([1.0, 2.0], np.float32))
    with pytest.raises(AssertionError, match="attribute 'dtype'"):
        assert_close(tt.tensor([1.0]), tt.tensor([1.0], dtype=tt.float64))
    assert_close(tt.tensor([1.0]), tt.tensor([1.0], dtype=tt.float64), check_dtype=False)
    with pytest.raises(ValueError, match="rtol"):
        assert_close(1.0, 1.0, atol=1e-3)
    with pytest.raises(AssertionError, match=r"^custom$"):
        assert_close(1.0, 2.0, msg="custom")
    with pytest.raises(AssertionError, match=r"^wrapped: Scalars"):
        assert_close(1.0, 2.0, msg=lambda m: "wrapped: " + m)
    with pytest.raises(AssertionError, match=r"item \['b'\]"):
        assert_close({"a": tt.ones(2), "b": tt.ones(2)}, {"a": tt.ones(2), "b": tt.zeros(2)})
    assert_close([tt.ones(2), 3], [torch.ones(2), 3])


def _mlp(lib):
    lib.manual_seed(0)
    return lib.nn.Sequential(lib.nn.Linear(6, 8), lib.nn.Tanh(), lib.nn.Linear(8, 3))


def test_compare_with_torch_reports_outputs_and_gradients():
    x = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
    report = compare_with_torch(_mlp, x)
    assert report.ok, str(report)
    names = [r.name for r in report.rows]
    assert names == ["output", "loss", "grad input[0]", "grad 0.weight", "grad 0.bias",
                     "grad 2.weight", "grad 2.bias"]  # fmt: skip
    assert "max abs diff" in str(report) and "all within tolerance" in str(report)
    report64 = compare_with_torch(_mlp, x, dtype=tt.float64)
    assert report64.ok and max(r.max_abs for r in report64.rows) < 1e-12


def test_compare_with_torch_finds_a_porting_bug():
    class Ours(tt.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = tt.nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(x).softmax(0)  # bug: torch's model uses dim=1

    class Theirs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(x).softmax(1)

    report = compare_with_torch(Ours(), np.ones((2, 4), np.float32), torch_model=Theirs())
    assert not report.ok and report.rows[0].name == "output" and not report.rows[0].ok
    assert "MISMATCHED" in str(report)
    with pytest.raises(AssertionError, match="MISMATCHED"):
        report.assert_ok()


def test_compare_with_torch_reports_every_state_dict_difference():
    ours = tt.nn.Sequential(tt.nn.Linear(4, 3), tt.nn.Linear(3, 2))
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Linear(5, 2),
                                 torch.nn.Linear(2, 2))  # fmt: skip
    with pytest.raises(ValueError) as err:
        compare_with_torch(ours, np.ones((1, 4), np.float32), torch_model=theirs)
    msg = str(err.value)
    assert "2.weight" in msg and "0.weight: tinytorch [3, 4] vs torch [5, 4]" in msg
    assert "1.weight: tinytorch [2, 3] vs torch [2, 5]" in msg
    with pytest.raises(TypeError, match="torch_model"):
        compare_with_torch(ours, np.ones((1, 4), np.float32))


def test_compare_with_torch_buffers_and_integer_inputs():
    def model(lib):
        lib.manual_seed(0)
        return lib.nn.Sequential(lib.nn.Embedding(10, 4), lib.nn.BatchNorm1d(3))

    report = compare_with_torch(model, np.array([[1, 2, 3], [4, 5, 6]]))
    names = [r.name for r in report.rows]
    assert "buffer 1.running_mean" in names and "grad 0.weight" in names
    assert report.ok, str(report)
