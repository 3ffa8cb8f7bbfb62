"""Recurrent layers: ``RNN``, ``LSTM``, ``GRU`` and their one-step ``...Cell`` forms.

Shape letters: T time steps, B batch, I input features, H hidden features,
G gates (1 for RNN, 4 for LSTM, 3 for GRU), L layers, K directions (1 or 2).

A layer projects the input of *all* time steps with one matmul, then loops over
time only for the recurrent product ``h @ W_hh^T``; the outputs are stacked once.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from tinytorch import _dtype
from tinytorch.autograd import node as _node
from tinytorch.autograd.grad_mode import no_grad
from tinytorch.nn import functional as F
from tinytorch.nn.functional._lstm import lstm_layer
from tinytorch.nn.modules.module import Module
from tinytorch.nn.parameter import Parameter
from tinytorch.ops.composite import cat, stack
from tinytorch.tensor import Tensor

__all__ = ["GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNBase", "RNNCell", "RNNCellBase"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
State = Any  # h (B, H), or (h, c) for the LSTM


def _rnn_step(gi: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None, relu: bool) -> Tensor:
    """h' = act(gi + h W_hh^T + b_hh), with gi = x W_ih^T + b_ih and act = tanh or relu."""
    pre = gi + h @ w_hh.t()
    if b_hh is not None:
        pre = pre + b_hh
    return pre.relu() if relu else pre.tanh()


def _lstm_step(gi: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, b_hh: Tensor | None
               ) -> tuple[Tensor, Tensor]:  # fmt: skip
    """[i, f, g, o] = gi + h W_hh^T + b_hh (four H-column blocks), then
    c' = sigmoid(f) * c + sigmoid(i) * tanh(g),  h' = sigmoid(o) * tanh(c')."""
    gates = gi + h @ w_hh.t()  # (B, 4H)
    if b_hh is not None:
        gates = gates + b_hh
    i, f, g, o = gates.chunk(4, 1)
    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c.tanh(), c


def _gru_step(gi: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> Tensor:
    """[r, z] = sigmoid(gi[:2H] + gh[:2H]) with gh = h W_hh^T + b_hh,
    n = tanh(gi[2H:] + r * gh[2H:]),  h' = (1 - z) * n + z * h."""
    gh = h @ w_hh.t()  # (B, 3H)
    if b_hh is not None:
        gh = gh + b_hh
    n_h = h.shape[-1]
    rz = (gi[:, : 2 * n_h] + gh[:, : 2 * n_h]).sigmoid()  # (B, 2H)
    r, z = rz[:, :n_h], rz[:, n_h:]
    n = (gi[:, 2 * n_h :] + r * gh[:, 2 * n_h :]).tanh()
    return n + z * (h - n)


def _step(mode: str, gi: Tensor, state: State, w_hh: Tensor, b_hh: Tensor | None) -> State:
    if mode == "LSTM":
        return _lstm_step(gi, state[0], state[1], w_hh, b_hh)
    if mode == "GRU":
        return _gru_step(gi, state, w_hh, b_hh)
    return _rnn_step(gi, state, w_hh, b_hh, relu=mode == "RNN_RELU")


def _time_steps(x: Tensor) -> list[Tensor]:
    """``list(x.unbind(0))``, split by halving.

    Why: the backward of a slice is a zero tensor the size of what was sliced with
    the gradient written in. Slicing T steps straight out of (T, ...) costs T
    full-size tensors (O(T^2)); halving costs O(T log T).
    """
    n = x.shape[0]
    if n <= 1:
        return [x[0]] if n else []
    return _time_steps(x[: n // 2]) + _time_steps(x[n // 2 :])


def _run_direction(mode: str, x: Tensor, state: State, weights: list[Tensor | None],
                   reverse: bool) -> tuple[Tensor, State]:  # fmt: skip
    """Run one layer in one direction over x (T, B, I); returns (T, B, H) and the last state."""
    w_ih, w_hh, b_ih, b_hh = weights
    assert w_ih is not None and w_hh is not None  # only the biases are optional
    if b_ih is not None and mode != "GRU":
        # RNN and LSTM add b_hh to the same pre-activation: fold it in once, not per step.
        b_ih, b_hh = b_ih + b_hh, None
    gi = F.linear(x, w_ih, b_ih)  # (T, B, I) -> (T, B, G * H), one matmul for all steps
    if mode == "LSTM" and b_hh is None and _node.trace_hook is None and gi.shape[0]:
        # One fused node for the whole recurrence (the ONNX tracer sees the steps instead).
        out, h, c = lstm_layer(gi, state[0], state[1], w_hh, reverse)
        return out, (h, c)
    steps = _time_steps(gi)  # T x (B, G * H)
    n_t = x.shape[0]
    outs: list[Tensor] = [None] * n_t  # type: ignore[list-item]
    for t in range(n_t - 1, -1, -1) if reverse else range(n_t):
        state = _step(mode, steps[t], state, w_hh, b_hh)
        outs[t] = state[0] if mode == "LSTM" else state
    return stack(outs), state  # (T, B, H)


def _empty(shape: tuple[int, ...], dtype: Any) -> Parameter:
    npd = _dtype.to_numpy_dtype(dtype) or _dtype.get_default_dtype().np
    return Parameter(Tensor._make(np.empty(shape, dtype=npd)))


def _uniform_init(module: Module, hidden_size: int) -> None:
    """Every parameter ~ U(-1/sqrt(H), 1/sqrt(H)) (torch's init for recurrent layers)."""
    stdv = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    with no_grad():
        for weight in module.parameters():
            weight.uniform_(-stdv, stdv)


class RNNBase(Module):
    """Shared machinery of ``RNN``, ``LSTM`` and ``GRU`` (parameters, checks, layer loop).

    Parameters per layer l and direction (suffix ``_reverse`` for the backward one):
    ``weight_ih_l{l}`` (G*H, I or K*H), ``weight_hh_l{l}`` (G*H, H), and with ``bias``
    ``bias_ih_l{l}``, ``bias_hh_l{l}`` (G*H); all ~ U(-1/sqrt(H), 1/sqrt(H)).
    Between layers (not after the last) the output is dropped out with probability
    ``dropout`` in training mode.
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device: Any = None,
                 dtype: Any = None) -> None:  # fmt: skip
        super().__init__()
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not (
                0 <= dropout <= 1):  # fmt: skip
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             "probability of an element being zeroed")  # fmt: skip
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero "
                f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                f"num_layers={num_layers}",
                stacklevel=2,
            )
        for name, value, kind in (("bias", bias, bool), ("batch_first", batch_first, bool),
                                  ("input_size", input_size, int),
                                  ("hidden_size", hidden_size, int)):  # fmt: skip
            if not isinstance(value, kind):
                raise TypeError(f"{name} should be of type {kind.__name__}, got: "
                                f"{type(value).__name__}")  # fmt: skip
        if input_size <= 0:
            raise ValueError("input_size must be greater than zero")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size != 0:
            raise NotImplementedError("tinytorch's LSTM does not support proj_size")
        if mode not in _GATES:
            raise ValueError("Unrecognized RNN mode: " + mode)
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        gate_size = _GATES[mode] * hidden_size
        num_directions = 2 if bidirectional else 1
        self._flat_weights_names: list[str] = []
        self._all_weights: list[list[str]] = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * num_directions
            for direction in range(num_directions):
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes: dict[str, tuple[int, ...]] = {"weight_ih": (gate_size, layer_input),
                          "weight_hh": (gate_size, hidden_size)}  # fmt: skip
                if bias:
                    shapes.update(bias_ih=(gate_size,), bias_hh=(gate_size,))
                names = [kind + suffix for kind in shapes]
                for name, shape in zip(names, shapes.values()):
                    setattr(self, name, _empty(shape, dtype))
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _uniform_init(self, self.hidden_size)

    def flatten_parameters(self) -> None:
        """A no-op (torch packs weights for cuDNN here)."""

    @property
    def _flat_weights(self) -> list[Parameter]:
        return [getattr(self, name) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[Parameter]]:
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def extra_repr(self) -> str:
        s = "{input_size}, {hidden_size}"
        if self.num_layers != 1:
            s += ", num_layers={num_layers}"
        if self.bias is not True:
            s += ", bias={bias}"
        if self.batch_first is not False:
            s += ", batch_first={batch_first}"
        if self.dropout != 0:
            s += ", dropout={dropout}"
        if self.bidirectional is not False:
            s += ", bidirectional={bidirectional}"
        return s.format(**self.__dict__)

    def _layer_weights(self, layer: int, direction: int) -> list[Tensor | None]:
        suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        return [getattr(self, kind + suffix, None)
                for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]  # fmt: skip

    def forward(self, input: Tensor, hx: Any = None) -> tuple[Tensor, Any]:
        """Run all layers over the sequence; see the subclasses for the returned states."""
        lstm = self.mode == "LSTM"
        name = {"LSTM": "LSTM", "GRU": "GRU"}.get(self.mode, "RNN")
        if input.ndim not in (2, 3):
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.ndim}D "
                             f"tensor instead")  # fmt: skip
        batched = input.ndim == 3
        batch_dim = 0 if self.batch_first else 1
        states = (hx if lstm else (hx,)) if hx is not None else None
        if states is not None and any(s.ndim != input.ndim for s in states):
            dims = ", ".join(f"{s.ndim}-D" for s in states)
            kind = "batched 3-D" if batched else "unbatched 2-D"
            raise RuntimeError(f"For {kind} input, hx{' and cx' if lstm else ''} should also "
                               f"be {input.ndim}-D but got ({dims}) tensors")  # fmt: skip
        if not batched:
            input = input.unsqueeze(batch_dim)
            states = tuple(s.unsqueeze(1) for s in states) if states is not None else None
        x = input.transpose(0, 1) if self.batch_first else input  # (B, T, I) -> (T, B, I)
        w = self.weight_ih_l0
        if x.dtype != w.dtype:
            raise ValueError(
                f"RNN input dtype ({x.dtype}) does not match weight dtype ({w.dtype}). "
                f"Convert input: input.to({w.dtype}), or convert model: model.to({x.dtype})"
            )
        if x.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected "
                               f"{self.input_size}, got {x.shape[-1]}")  # fmt: skip
        num_directions = 2 if self.bidirectional else 1
        expected = (self.num_layers * num_directions, x.shape[1], self.hidden_size)
        if states is None:
            zeros = Tensor._make(np.zeros(expected, dtype=x.data.dtype))
            states = (zeros, zeros) if lstm else (zeros,)
        for s, what in zip(states, ("hidden", "cell")):
            if tuple(s.shape) != expected:
                raise RuntimeError(f"Expected {what} size {expected}, got {list(s.shape)}")
        output, finals = self._run_layers(x, states)
        if self.batch_first:
            output = output.transpose(0, 1)  # (T, B, K * H) -> (B, T, K * H)
        if not batched:
            output = output.squeeze(batch_dim)
            finals = tuple(f.squeeze(1) for f in finals)
        return output, (finals if lstm else finals[0])

    def _run_layers(self, x: Tensor, states: tuple[Tensor, ...]
                    ) -> tuple[Tensor, tuple[Tensor, ...]]:  # fmt: skip
        """x (T, B, I), states each (L * K, B, H) -> output (T, B, K * H), final states."""
        lstm = self.mode == "LSTM"
        num_directions = 2 if self.bidirectional else 1
        finals: list[list[Tensor]] = [[] for _ in states]
        for layer in range(self.num_layers):
            outs = []
            for direction in range(num_directions):
                k = layer * num_directions + direction
                state = (states[0][k], states[1][k]) if lstm else states[0][k]
                out, state = _run_direction(self.mode, x, state,
                                            self._layer_weights(layer, direction),
                                            reverse=direction == 1)  # fmt: skip
                outs.append(out)
                for slot, s in zip(finals, state if lstm else (state,)):
                    slot.append(s)
            x = outs[0] if num_directions == 1 else cat(outs, 2)  # (T, B, K * H)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        return x, tuple(stack(f) for f in finals)  # each (L * K, B, H)


class RNN(RNNBase):
    """Elman RNN: ``h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``, act tanh or relu.

    Shape: input (T, B, I) (or (B, T, I) with ``batch_first``, or unbatched (T, I)),
    h_0 (L * K, B, H) (zeros if omitted). Returns ``(output, h_n)``: output
    (T, B, K * H), the last layer's h_t for every t (both directions concatenated);
    h_n (L * K, B, H), every layer's final state.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:
            self.nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            self.nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if self.nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{self.nonlinearity}'. Select from 'tanh' "
                             f"or 'relu'.")  # fmt: skip
        mode = "RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(mode, *args, **kwargs)


class LSTM(RNNBase):
    """Long short-term memory, per layer and time step (gate order i, f, g, o as torch):

    ``i, f, o = sigmoid(x W_i^T + b_i + h W_hi^T + b_hi)`` (each its block),
    ``g = tanh(...)``, ``c' = f * c + i * g``, ``h' = o * tanh(c')``.

    Shape: input (T, B, I) (``batch_first``: (B, T, I); unbatched (T, I)); the initial
    state ``(h_0, c_0)``, each (L * K, B, H). Returns ``(output, (h_n, c_n))`` with
    output (T, B, K * H). ``proj_size`` is not supported.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__("LSTM", *args, **kwargs)


class GRU(RNNBase):
    """Gated recurrent unit, per layer and time step (gate order r, z, n as torch):

    ``r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)``, ``z`` likewise,
    ``n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))``, ``h' = (1 - z) * n + z * h``.

    Shape: as ``RNN``; returns ``(output, h_n)``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)


class RNNCellBase(Module):
    """One time step's parameters: ``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H), and with
    ``bias`` ``bias_ih``, ``bias_hh`` (G*H); all ~ U(-1/sqrt(H), 1/sqrt(H))."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int,
                 device: Any = None, dtype: Any = None) -> None:  # fmt: skip
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        gates = num_chunks * hidden_size
        self.weight_ih = _empty((gates, input_size), dtype)
        self.weight_hh = _empty((gates, hidden_size), dtype)
        if bias:
            self.bias_ih = _empty((gates,), dtype)
            self.bias_hh = _empty((gates,), dtype)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def extra_repr(self) -> str:
        s = "{input_size}, {hidden_size}"
        if "bias" in self.__dict__ and self.bias is not True:
            s += ", bias={bias}"
        if "nonlinearity" in self.__dict__ and self.nonlinearity != "tanh":
            s += ", nonlinearity={nonlinearity}"
        return s.format(**self.__dict__)

    def reset_parameters(self) -> None:
        _uniform_init(self, self.hidden_size)

    def _prepare(self, input: Tensor, hx: Tensor | None, name: str, what: str = "hidden"
                 ) -> tuple[Tensor, Tensor, bool]:  # fmt: skip
        """Check ranks; return input (B, I), the input projection gi (B, G*H) and batched."""
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D instead")
        if hx is not None and hx.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected {what} to be 1D or 2D, got {hx.ndim}D instead")
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)  # (I,) -> (1, I)
        return x, F.linear(x, self.weight_ih, self.bias_ih), batched  # gi (B, G * H)

    def _zeros(self, x: Tensor) -> Tensor:
        return Tensor._make(np.zeros((x.shape[0], self.hidden_size), dtype=x.data.dtype))


class RNNCell(RNNCellBase):
    """``h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)``, act ``tanh`` or ``relu``.

    Shape: input (B, I) or (I,), hx (B, H) or (H,) (zeros if omitted) -> h' (B, H) or (H,).
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device: Any = None, dtype: Any = None
                 ) -> None:  # fmt: skip
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, gi, batched = self._prepare(input, hx, "RNNCell")
        if self.nonlinearity not in ("tanh", "relu"):
            raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")
        h = self._zeros(x) if hx is None else (hx if batched else hx.unsqueeze(0))
        h = _rnn_step(gi, h, self.weight_hh, self.bias_hh, relu=self.nonlinearity == "relu")
        return h if batched else h.squeeze(0)


class LSTMCell(RNNCellBase):
    """One LSTM step (gates i, f, g, o): ``c' = f * c + i * g``, ``h' = o * tanh(c')``.

    Shape: input (B, I) or (I,), hx = (h, c) each (B, H) or (H,) (zeros if omitted);
    returns ``(h', c')``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device: Any = None, dtype: Any = None) -> None:  # fmt: skip
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None
                ) -> tuple[Tensor, Tensor]:  # fmt: skip
        if hx is not None:
            for idx, value in enumerate(hx):
                if value.ndim not in (1, 2):
                    raise ValueError(f"LSTMCell: Expected hx[{idx}] to be 1D or 2D, got "
                                     f"{value.ndim}D instead")  # fmt: skip
        x, gi, batched = self._prepare(input, None, "LSTMCell")
        if hx is None:
            h = c = self._zeros(x)
        else:
            h, c = (hx[0], hx[1]) if batched else (hx[0].unsqueeze(0), hx[1].unsqueeze(0))
        h, c = _lstm_step(gi, h, c, self.weight_hh, self.bias_hh)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    """One GRU step (gates r, z, n): ``n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))``,
    ``h' = (1 - z) * n + z * h``.

    Shape: input (B, I) or (I,), hx (B, H) or (H,) (zeros if omitted) -> h' (B, H) or (H,).
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device: Any = None, dtype: Any = None) -> None:  # fmt: skip
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, gi, batched = self._prepare(input, hx, "GRUCell")
        h = self._zeros(x) if hx is None else (hx if batched else hx.unsqueeze(0))
        h = _gru_step(gi, h, self.weight_hh, self.bias_hh)
        return h if batched else h.squeeze(0)
