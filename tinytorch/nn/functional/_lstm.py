"""``LSTMLayer``: one LSTM layer over a whole sequence as a single fused primitive.

Shape letters: T time steps, B batch, H hidden features; gates in torch's order
[i, f, g, o], each an H-column block of a (B, 4H) row.

The composite layer (``_lstm_step`` in ``nn/modules/rnn.py``, a dozen recorded
ops per time step) is the reference this node is tested against. Fused, the
forward runs the recurrence in numpy and the backward runs backpropagation
through time in numpy: one node instead of ~400 for a 32-step sequence, no
per-step slices of the input, and the recurrent weight's gradient as one GEMM
over all steps (measured: see ``BENCHMARKS.md``, case ``lstm``).

Forward, per step t (in reverse order for the backward direction), with
z_t = gi_t + h_{t-1} W^T (gi: the input projection with both biases, precomputed
for all steps by one matmul):

    i, f, o = sigmoid(z_i, z_f, z_o),  g = tanh(z_g)
    c_t = f * c_{t-1} + i * g,  h_t = o * tanh(c_t)

Output: Y (T + 1, B, H) with Y[t] = h_t for t < T and Y[T] = the final c.

Backward (BPTT), from dh_t = dY[t] + dz_{t+1} W and dc_T = dY[T]:

    dc = dh * o * (1 - tanh(c_t)^2) + dc_{t+1} * f_{t+1}
    dz = [dc g i (1 - i), dc c_{t-1} f (1 - f), dc i (1 - g^2), dh tanh(c_t) o (1 - o)]
    dgi_t = dz,  dh_0 = dz_first W,  dc_0 = dc_first * f_first,  dW = sum_t dz_t^T h_{t-1}

Kept for the backward, per step: the activated row [i, f, g, o] and c_{t-1}; h_{t-1}
is read from the output and tanh(c_t) recomputed (5 (B, H) arrays per step instead of
7; the LSTM step's peak memory: 11.1 -> 7.9 MiB, ``python -m bench --only lstm``).

The same two functions (``_recurrence``, ``_bptt``) run on numpy arrays for a
first-order backward, and on Tensors under ``create_graph`` (the forward
recomputed from the inputs, so second derivatives are exact).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tinytorch.autograd.grad_mode import STATE
from tinytorch.autograd.node import Node
from tinytorch.ops import composite as C
from tinytorch.ops.elementwise import sigmoid_array
from tinytorch.tensor import Tensor

# Per time step: (a, c_prev): a (B, 4H) is the activated row [i, f, g, o], c_prev (B, H);
# arrays or Tensors. The backward reads h_prev from the layer's output and recomputes
# tanh(c_t) from the next step's c_prev (one tanh per step instead of a kept array).
Step = tuple[Any, Any]


class _Ops:
    """The few steps whose spelling differs between numpy and Tensor code."""

    def __init__(self, gates: Callable, split: Callable, dgates: Callable, tanh: Callable,
                 cat: Callable, stack: Callable, slots: Callable, stacked: Callable):  # fmt: skip
        self.gates, self.split, self.dgates, self.tanh = gates, split, dgates, tanh
        self.cat, self.stack = cat, stack
        # slots(n, like): n per-step places for arrays like ``like``; stacked(slots): (n, ...)
        self.slots, self.stacked = slots, stacked


def _gates_numpy(z: np.ndarray, n_h: int) -> np.ndarray:
    """The activated row a = [i, f, g, o] from z (B, 4H): one sigmoid over the whole
    row, tanh on the g block."""
    a = sigmoid_array(z)
    np.tanh(z[:, 2 * n_h : 3 * n_h], out=a[:, 2 * n_h : 3 * n_h])
    return a


def _split_numpy(a: np.ndarray, n_h: int) -> tuple[np.ndarray, ...]:
    """(i, f, g, o): views of the four H-column blocks."""
    return a[:, :n_h], a[:, n_h : 2 * n_h], a[:, 2 * n_h : 3 * n_h], a[:, 3 * n_h :]


def _gates_tensor(z: Tensor, n_h: int) -> Tensor:
    i, f, g, o = z.chunk(4, 1)
    return C.cat([i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()], 1)


def _split_tensor(a: Tensor, n_h: int) -> tuple[Tensor, ...]:
    return tuple(a.chunk(4, 1))


def _dgates_numpy(a: np.ndarray, n_h: int) -> np.ndarray:
    """The activations' derivatives along the row: [i(1-i), f(1-f), 1-g^2, o(1-o)]."""
    d = np.subtract(1.0, a)
    d *= a
    g, dg = a[:, 2 * n_h : 3 * n_h], d[:, 2 * n_h : 3 * n_h]
    np.multiply(g, g, out=dg)
    np.subtract(1.0, dg, out=dg)
    return d


def _dgates_tensor(a: Tensor, n_h: int) -> Tensor:
    i, f, g, o = _split_tensor(a, n_h)
    return C.cat([i * (1.0 - i), f * (1.0 - f), 1.0 - g * g, o * (1.0 - o)], 1)


_NUMPY = _Ops(_gates_numpy, _split_numpy, _dgates_numpy, np.tanh,
              lambda xs: np.concatenate(xs, axis=1), np.stack,
              lambda n, like: np.empty((n,) + like.shape, like.dtype),  # written in place
              lambda slots: slots)  # fmt: skip
_TENSOR = _Ops(_gates_tensor, _split_tensor, _dgates_tensor, Tensor.tanh,
               lambda xs: C.cat(xs, 1), C.stack,
               lambda n, like: [None] * n, C.stack)  # fmt: skip


def _order(n_t: int, reverse: bool) -> range:
    return range(n_t - 1, -1, -1) if reverse else range(n_t)


def _recurrence(gi: Any, h: Any, c: Any, w_t: Any, reverse: bool, ops: _Ops
                ) -> tuple[list[Any], Any, list[Step]]:  # fmt: skip
    """Run the cell over gi (T, B, 4H) from (h, c) with w_t = W^T (H, 4H); returns h_t
    per step, the last c, and what the backward needs per step."""
    n_h = h.shape[-1]
    hs: list[Any] = [None] * gi.shape[0]
    steps: list[Step] = [None] * gi.shape[0]  # type: ignore[list-item]
    for t in _order(gi.shape[0], reverse):
        z = gi[t] + h @ w_t  # (B, 4H)
        a = ops.gates(z, n_h)
        i, f, g, o = ops.split(a, n_h)
        c_prev = c
        c = f * c_prev + i * g
        tc = ops.tanh(c)
        h = o * tc
        hs[t] = h
        steps[t] = (a, c_prev)
    return hs, c, steps


def _bptt(dy: Any, w: Any, steps: Sequence[Step], h0: Any, hs: Any, c_last: Any,
          reverse: bool, ops: _Ops) -> tuple[Any, Any, Any, Any]:  # fmt: skip
    """Gradients (dgi, dh0, dc0, dW) from dy (T + 1, B, H), with hs (T, B, H) the h_t of
    every step and c_last the final c (the layer's output); see the module docstring."""
    n_t = len(steps)
    dzs = ops.slots(n_t, steps[0][0])
    dh_next: Any = None
    dc_next = dy[n_t]
    n_h = dc_next.shape[-1]
    for t in reversed(_order(n_t, reverse)):
        a, c_prev = steps[t]
        tc = ops.tanh(c_last)  # tanh(c_t)
        c_last = c_prev
        i, f, g, o = ops.split(a, n_h)
        dh = dy[t] if dh_next is None else dy[t] + dh_next
        dc = dh * o * (1.0 - tc * tc) + dc_next
        # d/d(i, f, g, o) times each activation's derivative (one product over the row)
        dz = ops.cat([dc * g, dc * c_prev, dc * i, dh * tc]) * ops.dgates(a, n_h)
        dzs[t] = dz
        dc_next = dc * f
        dh_next = dz @ w  # (B, 4H) @ (4H, H)
    dgi = ops.stacked(dzs)  # (T, B, 4H)
    # dW = sum_t dz_t^T h_prev_t: the first step's h_prev is h0, the others' are h_t of
    # the neighbouring step, a slice of hs: two GEMMs, no stacked copy of the h_prev.
    first, rest_dz, rest_h = (n_t - 1, dgi[:-1], hs[1:]) if reverse else (0, dgi[1:], hs[:-1])
    dw = dgi[first].mT @ h0  # (4H, H)
    if n_t > 1:
        n_rest = (n_t - 1) * rest_dz.shape[1]
        dw = dw + rest_dz.reshape(n_rest, -1).mT @ rest_h.reshape(n_rest, -1)
    return dgi, dh_next, dc_next, dw


class LSTMLayer(Node):
    """See the module docstring. Inputs: gi (T, B, 4H), h0 (B, H), c0 (B, H),
    w_hh (4H, H); parameter ``reverse``. Output (T + 1, B, H)."""

    __slots__ = ("reverse", "steps")
    save_inputs = True
    save_output = True  # its h_t rows are the next steps' h_prev in backward

    def forward(self, gi, h0, c0, w, *, reverse):
        self.reverse = reverse
        w_t = np.ascontiguousarray(w.T)  # (H, 4H): a GEMM with a transposed operand is slower
        hs, c, self.steps = _recurrence(gi, h0, c0, w_t, reverse, _NUMPY)
        return np.stack(hs + [c])

    def backward(self, g):
        if STATE.enabled:  # create_graph: recompute the steps as a graph of the inputs
            gi, h0, c0, w = self.inputs
            hs, c, steps = _recurrence(gi, h0, c0, w.mT, self.reverse, _TENSOR)
            return _bptt(g, w, steps, h0, C.stack(hs), c, self.reverse, _TENSOR)
        _, h0, _, w = self.inputs
        y, n_t = self._output_array(), len(self.steps)
        grads = _bptt(g.data, w.data, self.steps, h0.data, y[:n_t], y[n_t], self.reverse, _NUMPY)
        return tuple(Tensor._make(a) for a in grads)

    def release(self):
        super().release()
        self.steps = None


def lstm_layer(gi: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, reverse: bool
               ) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """Outputs (T, B, H), final h (B, H) and final c (B, H) of one fused LSTM layer."""
    y = LSTMLayer.apply(gi, h0, c0, w_hh, reverse=reverse)  # (T + 1, B, H)
    n_t = gi.shape[0]
    return y[:n_t], y[0 if reverse else n_t - 1], y[n_t]
