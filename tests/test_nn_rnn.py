"""RNN, LSTM, GRU and their cells against torch: outputs, final states and every gradient.

Each case builds the torch layer, copies its weights into ours through
``state_dict`` (numpy arrays), runs both on the same input and initial state,
backpropagates ``sum(out * w)`` over every output, and compares outputs, input
and initial-state gradients and every parameter gradient.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

import tinytorch
import tinytorch.nn as nn

rng = np.random.default_rng(0)
T, B, IN, H = 5, 3, 4, 6


def twins(name: str, *args: Any, dtype: str = "float64", **kwargs: Any) -> tuple[Any, Any]:
    """The torch layer and ours with torch's weights copied in (as numpy arrays)."""
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(*args, **kwargs).to(getattr(torch, dtype))
    ours = getattr(nn, name)(*args, **kwargs).to(getattr(tinytorch, dtype))
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def both(a: np.ndarray | None) -> tuple[Any, Any]:
    """The same array as a tinytorch and a torch leaf that requires grad."""
    if a is None:
        return None, None
    return tinytorch.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def flat(x: Any) -> list[Any]:
    if isinstance(x, (tuple, list)):
        return [y for item in x for y in flat(item)]
    return [x]


def assert_close(ours: Any, theirs: Any, rtol: float, what: str) -> None:
    """Elementwise ``rtol``, with an absolute floor of ``rtol`` times the tensor's largest
    magnitude: entries that cancel to near zero carry the rounding of the large ones."""
    assert theirs is not None and ours is not None, f"{what}: one gradient is missing"
    a, b = ours.detach().numpy(), theirs.detach().numpy()
    assert a.shape == b.shape and a.dtype == b.dtype, f"{what}: {a.shape} {a.dtype} vs {b.shape}"
    scale = float(np.abs(b).max()) if b.size else 0.0
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale, err_msg=what)


def compare(ours: Any, theirs: Any, inputs: list[tuple[Any, Any]], rtol: float,
            call: Any) -> None:  # fmt: skip
    """Run ``call(module, *inputs)`` in both libraries; compare values and all gradients."""
    out_ours = flat(call(ours, *[a for a, _ in inputs]))
    out_theirs = flat(call(theirs, *[b for _, b in inputs]))
    assert len(out_ours) == len(out_theirs)
    loss_ours, loss_theirs = 0.0, 0.0
    for k, (a, b) in enumerate(zip(out_ours, out_theirs)):
        if b is None:  # e.g. attention weights with need_weights=False
            assert a is None, f"output {k}: torch's is None"
            continue
        assert_close(a, b, rtol, f"output {k}")
        w = rng.standard_normal(tuple(b.shape))
        loss_ours = loss_ours + (a * tinytorch.tensor(w, dtype=a.dtype)).sum()
        loss_theirs = loss_theirs + (b * torch.tensor(w, dtype=b.dtype)).sum()
    loss_ours.backward()
    loss_theirs.backward()
    for k, (a, b) in enumerate(inputs):
        if b is not None:
            assert_close(a.grad, b.grad, rtol, f"grad of input {k}")
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, theirs_params[name].grad, rtol, f"grad of {name}")


def run_seq(m: Any, x: Any, *state: Any) -> Any:
    state = [s for s in state if s is not None]
    if not state:
        return m(x)
    return m(x, tuple(state) if len(state) == 2 else state[0])


def seq_inputs(layer: Any, batch_first: bool, unbatched: bool, with_state: bool,
               dtype: type = np.float64) -> list[tuple[Any, Any]]:  # fmt: skip
    """Input (and h0 / (h0, c0)) in the layout the layer expects."""
    shape = (T, IN) if unbatched else ((B, T, IN) if batch_first else (T, B, IN))
    inputs = [both(rng.standard_normal(shape).astype(dtype))]
    if with_state:
        k = layer.num_layers * (2 if layer.bidirectional else 1)
        s_shape = (k, H) if unbatched else (k, B, H)
        for _ in range(2 if layer.mode == "LSTM" else 1):
            inputs.append(both(rng.standard_normal(s_shape).astype(dtype)))
    return inputs


LAYERS = [("RNN", {}), ("RNN", {"nonlinearity": "relu"}), ("LSTM", {}), ("GRU", {})]
CONFIGS = [
    dict(),
    dict(num_layers=2),
    dict(bidirectional=True),
    dict(num_layers=2, bidirectional=True, batch_first=True),
    dict(bias=False),
    dict(num_layers=2, dropout=0.5, eval=True),
]


@pytest.mark.parametrize("with_state", [False, True], ids=["no_h0", "h0"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(c) or "default")
@pytest.mark.parametrize("layer", LAYERS, ids=lambda c: c[0] + "-".join(c[1].values()))
def test_sequence_layer_matches_torch(layer: Any, config: dict, with_state: bool) -> None:
    name, extra = layer
    config = dict(config)
    eval_mode = config.pop("eval", False)
    ours, theirs = twins(name, IN, H, **extra, **config)
    if eval_mode:
        ours.eval()
        theirs.eval()
    inputs = seq_inputs(ours, config.get("batch_first", False), False, with_state)
    compare(ours, theirs, inputs, 1e-10, run_seq)


@pytest.mark.parametrize("with_state", [False, True], ids=["no_h0", "h0"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_unbatched_input(name: str, batch_first: bool, with_state: bool) -> None:
    ours, theirs = twins(name, IN, H, num_layers=2, bidirectional=True, batch_first=batch_first)
    inputs = seq_inputs(ours, batch_first, True, with_state)
    compare(ours, theirs, inputs, 1e-10, run_seq)


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_float32_matches_torch(name: str) -> None:
    ours, theirs = twins(name, IN, H, num_layers=2, bidirectional=True, dtype="float32")
    inputs = seq_inputs(ours, False, False, True, dtype=np.float32)
    compare(ours, theirs, inputs, 1e-5, run_seq)


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_names_state_dict_and_repr(name: str) -> None:
    for kwargs in [{}, dict(num_layers=3, bias=False, batch_first=True, dropout=0.25,
                            bidirectional=True)]:  # fmt: skip
        ours, theirs = twins(name, IN, H, **kwargs)
        assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == [
            (n, tuple(p.shape)) for n, p in theirs.named_parameters()
        ]
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert repr(ours) == repr(theirs)
        assert [[tuple(p.shape) for p in ws] for ws in ours.all_weights] == [
            [tuple(p.shape) for p in ws] for ws in theirs.all_weights
        ]
    assert repr(nn.RNN(2, 3, nonlinearity="relu")) == repr(torch.nn.RNN(2, 3, nonlinearity="relu"))


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"])
def test_init_is_uniform_in_one_over_sqrt_hidden(name: str) -> None:
    tinytorch.manual_seed(0)
    m = getattr(nn, name)(IN, 100)
    bound = 1 / math.sqrt(100)
    for p in m.parameters():
        assert p.dtype == tinytorch.float32
        assert np.all(np.abs(p.data) <= bound) and np.std(p.data) > bound / 3


def test_dropout_between_layers_only_in_training() -> None:
    tinytorch.manual_seed(0)
    m = nn.LSTM(IN, H, num_layers=2, dropout=0.5).double()
    x = tinytorch.tensor(rng.standard_normal((T, B, IN)))
    first = m(x)[0]
    assert not np.allclose(first.data, m(x)[0].data)  # a fresh mask each call
    m.eval()
    assert np.array_equal(m(x)[0].data, m(x)[0].data)
    with pytest.warns(UserWarning, match="dropout"):
        nn.GRU(IN, H, dropout=0.2)


def test_errors_match_torch() -> None:
    m = nn.GRU(IN, H)
    with pytest.raises(ValueError, match="2D or 3D"):
        m(tinytorch.zeros(2, 3, 4, IN))
    with pytest.raises(RuntimeError, match="input_size"):
        m(tinytorch.zeros(T, B, IN + 1))
    with pytest.raises(RuntimeError, match="hidden size"):
        m(tinytorch.zeros(T, B, IN), tinytorch.zeros(1, B + 1, H))
    with pytest.raises(RuntimeError, match="3-D"):
        m(tinytorch.zeros(T, B, IN), tinytorch.zeros(B, H))
    with pytest.raises(ValueError, match="dtype"):
        m(tinytorch.zeros(T, B, IN, dtype=tinytorch.float64))
    with pytest.raises(NotImplementedError):
        nn.LSTM(IN, H, proj_size=2)
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(IN, H, nonlinearity="gelu")
    with pytest.raises(ValueError, match="dropout"):
        nn.RNN(IN, H, dropout=1.5)


CELLS = [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu"}), ("LSTMCell", {}),
         ("GRUCell", {}), ("GRUCell", {"bias": False}), ("LSTMCell", {"bias": False})]  # fmt: skip


@pytest.mark.parametrize("unbatched", [False, True], ids=["batched", "unbatched"])
@pytest.mark.parametrize("with_state", [False, True], ids=["no_hx", "hx"])
@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c[0] + "-".join(map(str, c[1].values())))
def test_cell_matches_torch(cell: Any, with_state: bool, unbatched: bool) -> None:
    name, kwargs = cell
    ours, theirs = twins(name, IN, H, **kwargs)
    inputs = [both(rng.standard_normal((IN,) if unbatched else (B, IN)))]
    if with_state:
        for _ in range(2 if name == "LSTMCell" else 1):
            inputs.append(both(rng.standard_normal((H,) if unbatched else (B, H))))
    compare(ours, theirs, inputs, 1e-10, run_seq)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_cell_unrolled_over_a_sequence_matches_layer() -> None:
    ours, theirs = twins("GRUCell", IN, H)

    def unroll(m: Any, x: Any, h: Any) -> Any:
        outs = []
        for t in range(x.shape[0]):
            h = m(x[t], h)
            outs.append(h)
        return outs

    inputs = [both(rng.standard_normal((T, B, IN))), both(rng.standard_normal((B, H)))]
    compare(ours, theirs, inputs, 1e-10, unroll)


def test_thousand_step_cell_loop_backpropagates() -> None:
    cell = nn.RNNCell(2, 3).double()
    x = tinytorch.tensor(rng.standard_normal((1000, 1, 2)), requires_grad=True)
    h = None
    for t in range(1000):
        h = cell(x[t], h)
    h.sum().backward()  # the engine is iterative: no RecursionError
    assert x.grad.shape == (1000, 1, 2) and np.isfinite(x.grad.data).all()


def test_long_sequence_layer_backpropagates() -> None:
    ours, theirs = twins("LSTM", IN, H)
    inputs = [both(rng.standard_normal((300, 1, IN)))]
    compare(ours, theirs, inputs, 1e-10, run_seq)


def test_second_order_gradients() -> None:
    lstm = nn.LSTM(2, 2, bidirectional=True).double()
    gru = nn.GRUCell(2, 3).double()
    x = tinytorch.tensor(rng.standard_normal((3, 1, 2)), requires_grad=True)
    h = tinytorch.tensor(rng.standard_normal((1, 3)), requires_grad=True)
    assert tinytorch.autograd.gradgradcheck(lambda x: lstm(x)[0], [x])
    assert tinytorch.autograd.gradgradcheck(lambda x, h: gru(x[0], h), [x, h])


@pytest.mark.parametrize("reverse", [False, True])
def test_fused_lstm_layer_matches_the_composite_steps(reverse: bool) -> None:
    """``LSTMLayer`` (one node, numpy BPTT) against the per-step composite it replaces."""
    from tinytorch.nn.functional._lstm import lstm_layer
    from tinytorch.nn.modules.rnn import _lstm_step

    gi, h0, c0 = (tinytorch.tensor(rng.standard_normal(s), requires_grad=True)
                  for s in ((T, B, 4 * H), (B, H), (B, H)))  # fmt: skip
    w = tinytorch.tensor(rng.standard_normal((4 * H, H)) * 0.3, requires_grad=True)
    weights = [tinytorch.tensor(rng.standard_normal((T, B, H))) for _ in range(3)]

    def loss(out: Any, h: Any, c: Any) -> Any:
        return (out * weights[0]).sum() + (h * weights[1][0]).sum() + (c * weights[2][0]).sum()

    def composite() -> Any:
        h, c, outs = h0, c0, [None] * T
        for t in range(T - 1, -1, -1) if reverse else range(T):
            h, c = _lstm_step(gi[t], h, c, w, None)
            outs[t] = h
        return loss(tinytorch.stack(outs), h, c)

    results = []
    for run in (lambda: loss(*lstm_layer(gi, h0, c0, w, reverse)), composite):
        value = run()
        grads = tinytorch.autograd.grad(value, [gi, h0, c0, w])
        results.append([value.detach().numpy()] + [g.numpy() for g in grads])
    for ours, ref in zip(*results):
        np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
