"""Memory and scale: flat memory over a training loop, very deep graphs, long
unrolled RNNs, and graphs freed by reference counting alone (no cyclic GC).

Memory is measured with ``tracemalloc``, which traces numpy's allocations too.
Timing belongs to ``bench/`` (``bench/memory_soak.py`` runs the long version).
"""

from __future__ import annotations

import gc
import os
import platform
import subprocess
import sys
import tracemalloc
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch

import tinytorch as tt
import tinytorch.nn.functional as F
from tinytorch.testing import assert_close


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _mlp_trainer(seed: int = 0) -> tuple[Callable[[], tt.Tensor], Callable[[], tt.Tensor]]:
    """(one Adam step, one forward-only evaluation) of a 64-128-64-10 MLP, batch 32."""
    tt.manual_seed(seed)
    net = tt.nn.Sequential(tt.nn.Linear(64, 128), tt.nn.ReLU(), tt.nn.Linear(128, 64),
                           tt.nn.ReLU(), tt.nn.Linear(64, 10))  # fmt: skip
    opt = tt.optim.Adam(net.parameters(), lr=1e-3)
    x, y = tt.randn(32, 64), tt.randint(0, 10, (32,))

    def step() -> tt.Tensor:
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    def evaluate() -> tt.Tensor:
        return F.cross_entropy(net(x), y)

    return step, evaluate


def _fill_tuple_freelists() -> int:
    """Fill CPython's tuple free lists (2000 per size); returns the bytes that took.

    Freed tuples stay allocated on those lists, so tracemalloc sees them as live:
    without this, a loop's traced memory creeps up by ~150 KB over its first
    few hundred steps and then stays flat, which looks like a small leak.
    """
    before = tracemalloc.get_traced_memory()[0]
    for n in range(1, 21):
        junk = [tuple([i] * n) for i in range(2100)]
        del junk
    return tracemalloc.get_traced_memory()[0] - before


def _traced_growth(step: Callable[[], object], warmup: int, steps: int) -> tuple[int, int]:
    """(bytes live after warm-up, growth over the following steps); tracing must be on
    before the model is built so that its arrays count in the base."""
    for _ in range(warmup):
        step()
    base = tracemalloc.get_traced_memory()[0]
    for _ in range(steps):
        step()
    return base, tracemalloc.get_traced_memory()[0] - base


def test_training_loop_holds_flat_memory():
    tracemalloc.start()
    try:
        junk = _fill_tuple_freelists()
        step, _ = _mlp_trainer()
        base, growth = _traced_growth(step, warmup=50, steps=250)
    finally:
        tracemalloc.stop()
    base -= junk
    assert growth < 0.05 * base, f"grew {growth} bytes over {base} after warm-up"


def test_the_memory_check_catches_a_retained_graph():
    """The same measurement flags an evaluation loop that sums losses without no_grad."""
    tracemalloc.start()
    try:
        junk = _fill_tuple_freelists()
        _, evaluate = _mlp_trainer()
        kept: list[tt.Tensor] = []
        base, growth = _traced_growth(lambda: kept.append(evaluate()), warmup=20, steps=100)
    finally:
        tracemalloc.stop()
    assert growth > 0.05 * (base - junk)


def test_graph_is_freed_after_backward_and_saved_arrays_released():
    step, _ = _mlp_trainer()
    with _no_cyclic_gc():
        loss = step()
        assert tt.autograd.graph_stats(loss).nodes > 0
        stats = tt.autograd.graph_stats(loss)
        # backward released the activations; only cross_entropy's O(batch) targets remain
        assert stats.saved_bytes < 1024 and stats.freed_nodes > 0
        node = weakref.ref(loss.grad_fn)
        del loss
        assert node() is None


@pytest.mark.parametrize("model", ["mlp", "lstm", "attention", "custom_function"])
def test_graphs_are_freed_without_the_cyclic_gc(model):
    tt.manual_seed(0)
    with _no_cyclic_gc():
        if model == "mlp":
            net = tt.nn.Sequential(tt.nn.Linear(8, 16), tt.nn.GELU(), tt.nn.LayerNorm(16),
                                   tt.nn.Linear(16, 4))  # fmt: skip
            out = F.cross_entropy(net(tt.randn(5, 8)), tt.tensor([0, 1, 2, 3, 0]))
        elif model == "lstm":
            out = tt.nn.LSTM(4, 6, batch_first=True)(tt.randn(2, 7, 4))[0].square().mean()
        elif model == "attention":
            mha = tt.nn.MultiheadAttention(8, 2, batch_first=True)
            q = tt.randn(2, 5, 8)
            out = mha(q, q, q, need_weights=False)[0].sum()
        else:

            class Square(tt.autograd.Function):
                @staticmethod
                def forward(ctx, x):
                    ctx.save_for_backward(x)
                    return x * x

                @staticmethod
                def backward(ctx, g):
                    (x,) = ctx.saved_tensors
                    return 2 * x * g

            out = Square.apply(tt.randn(3, requires_grad=True)).sum()
        hidden = weakref.ref(out.grad_fn)
        out.backward()
        del out
        assert hidden() is None  # freed by reference counting alone
        assert gc.collect() == 0


def test_dropping_an_unused_graph_frees_it_at_once():
    w = tt.randn(100, 100, requires_grad=True)
    with _no_cyclic_gc():
        y = (w @ w).tanh() @ w
        node = weakref.ref(y.grad_fn)
        del y
        assert node() is None


def test_100k_op_graph_backpropagates():
    x = tt.tensor([1.0], dtype=tt.float64, requires_grad=True)
    y = x
    for _ in range(50_000):
        y = y * 1.00001
        y = y + 0.5
    assert tt.autograd.graph_stats(y).nodes == 100_000
    y.backward(tt.ones_like(y))
    assert x.grad.item() == pytest.approx(1.00001**50_000, rel=1e-9)


def test_1000_step_unrolled_rnn_matches_torch():
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((1000, 2, 3)) * 0.5
    cell = tt.nn.RNNCell(3, 4).double()
    ref = torch.nn.RNNCell(3, 4).double()
    ref.load_state_dict({k: torch.from_numpy(v.data.copy()) for k, v in cell.state_dict().items()})
    h, h_ref = tt.zeros(2, 4, dtype=tt.float64), torch.zeros(2, 4, dtype=torch.float64)
    x_all = tt.tensor(xs, requires_grad=True)
    x_ref = torch.tensor(xs, requires_grad=True)
    for t in range(1000):
        h = cell(x_all[t], h)
        h_ref = ref(x_ref[t], h_ref)
    h.square().sum().backward()
    h_ref.square().sum().backward()
    assert_close(x_all.grad, x_ref.grad)
    for name, p in cell.named_parameters():
        assert_close(p.grad, dict(ref.named_parameters())[name].grad, msg=name)


@pytest.mark.parametrize("setting", ["0", "1"])
def test_malloc_tuning_is_applied_on_import_unless_disabled(setting: str) -> None:
    """glibc keeps freed array memory for reuse (tinytorch/_malloc.py); the environment
    variable ``TINYTORCH_MALLOC_TUNING=0`` keeps glibc's defaults."""
    code = "import tinytorch._malloc as m, tinytorch; print(m.applied)"
    env = dict(os.environ, TINYTORCH_MALLOC_TUNING=setting)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()  # fmt: skip
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert out == str(setting == "1" and glibc)


@pytest.mark.parametrize(
    "op,kept",
    [
        (lambda h: h * 0.5, False),  # d(h * c)/dh = c: h is not needed
        (lambda h: 0.5 * h, False),
        (lambda h: h / 4.0, False),  # d(h / c)/dh = 1/c
        (lambda h: 4.0 / h, True),  # d(c / h)/dh = -c/h^2 reads h
        (lambda h: h * h.detach(), True),  # dh reads the second factor: h's array again
    ],
)
def test_mul_and_div_keep_only_the_inputs_a_gradient_reads(op, kept) -> None:
    """``x * 0.5`` keeps no reference to x (torch's MulBackward saves only the scalar):
    an activation scaled by a constant is not held until backward."""
    w = tt.full((4,), 2.0, requires_grad=True)
    h = w * 3.0  # a non-leaf: only the graph may keep it alive
    ref = weakref.ref(h.data)
    y = op(h)
    del h
    assert (ref() is not None) == kept
    y.sum().backward()
    tw = torch.full((4,), 2.0, requires_grad=True)
    op(tw * 3.0).sum().backward()
    assert_close(w.grad, tt.tensor(tw.grad.numpy()))
