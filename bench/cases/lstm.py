"""Case 5: LSTM training step (seq 32, batch 32, input 64, hidden 128, one layer).

A linear head (128 -> 10) classifies every time step; mean cross-entropy over all
``32 * 32`` predictions; SGD(lr=0.01).  torch/tinytorch: ``nn.LSTM``, ``nn.Linear``,
``F.cross_entropy``, ``optim.SGD``.

numpy reference: the input projection of all steps as one GEMM, a Python loop over the
32 steps for the recurrence, and backpropagation through time with the weight gradients
again as single GEMMs over all steps.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from bench.cases._common import (
    Bench,
    Case,
    data_rng,
    load_params,
    param_array,
    softmax_ce_grad_,
    train_step,
)
from bench.engines import import_engine

NAME = "lstm"
TITLE = "LSTM T32 B32 64->128 + linear head, train step (SGD)"
SIZES: tuple[str, ...] = ("t32",)
QUICK_SIZES: tuple[str, ...] = ("t8",)
ENGINES: tuple[str, ...] = ("numpy", "torch", "tinytorch")
UNIT: tuple[str, float] = ("ms", 1e3)

BATCH, N_IN, HIDDEN, N_CLASSES = 32, 64, 128, 10
LR = 0.01


def make_data(seq: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``(seq, batch, 64)`` and per-step labels ``(seq * batch,)``."""
    rng = data_rng()
    x = rng.standard_normal((seq, BATCH, N_IN)).astype(np.float32)
    y = rng.integers(0, N_CLASSES, seq * BATCH).astype(np.int64)
    return x, y


def build_torch_like(tt: ModuleType, seq: int) -> Bench:
    """Training step through the torch API."""
    lstm = tt.nn.LSTM(N_IN, HIDDEN)
    head = tt.nn.Linear(HIDDEN, N_CLASSES)
    load_params(tt, lstm)
    load_params(tt, head)
    opt = tt.optim.SGD(list(lstm.parameters()) + list(head.parameters()), lr=LR)
    xn, yn = make_data(seq)
    x, y = tt.tensor(xn), tt.tensor(yn)
    cross_entropy = tt.nn.functional.cross_entropy
    return train_step(opt, lambda: cross_entropy(head(lstm(x)[0]).reshape(-1, N_CLASSES), y))


def _sigmoid_(a: np.ndarray) -> None:
    """In-place logistic function."""
    np.negative(a, out=a)
    np.exp(a, out=a)
    np.add(a, 1.0, out=a)
    np.reciprocal(a, out=a)


def build_numpy(seq: int) -> Bench:
    """LSTM forward + BPTT by hand."""
    h4 = 4 * HIDDEN
    w_ih = param_array("weight_ih_l0", (h4, N_IN))
    w_hh = param_array("weight_hh_l0", (h4, HIDDEN))
    b_ih = param_array("bias_ih_l0", (h4,))
    b_hh = param_array("bias_hh_l0", (h4,))
    w_out = param_array("weight", (N_CLASSES, HIDDEN))
    b_out = param_array("bias", (N_CLASSES,))
    params = [w_ih, w_hh, b_ih, b_hh, w_out, b_out]
    grads = [np.empty_like(p) for p in params]
    dw_ih, dw_hh, db_ih, db_hh, dw_out, db_out = grads
    xn, yn = make_data(seq)
    x2 = xn.reshape(seq * BATCH, N_IN)
    hs = np.zeros((seq + 1, BATCH, HIDDEN), np.float32)  # hs[0] = h_0 = 0
    cs = np.zeros((seq + 1, BATCH, HIDDEN), np.float32)
    gates = np.empty((seq, BATCH, h4), np.float32)  # activated i, f, g, o
    tcs = np.empty((seq, BATCH, HIDDEN), np.float32)  # tanh(c_t)
    dz = np.empty((seq, BATCH, h4), np.float32)
    H = HIDDEN
    tmp = np.empty((BATCH, HIDDEN), np.float32)

    def step() -> float:
        # forward: input projection for all steps at once
        np.matmul(x2, w_ih.T, out=gates.reshape(seq * BATCH, h4))
        np.add(gates, b_ih + b_hh, out=gates)
        for t in range(seq):
            z = gates[t]
            z += hs[t] @ w_hh.T
            np.tanh(z[:, 2 * H : 3 * H], out=tmp)
            _sigmoid_(z)
            z[:, 2 * H : 3 * H] = tmp
            i, f, g, o = z[:, :H], z[:, H : 2 * H], z[:, 2 * H : 3 * H], z[:, 3 * H :]
            c = cs[t + 1]
            np.multiply(f, cs[t], out=c)
            c += i * g
            np.tanh(c, out=tcs[t])
            np.multiply(o, tcs[t], out=hs[t + 1])
        hflat = hs[1:].reshape(seq * BATCH, H)
        logits = hflat @ w_out.T
        logits += b_out
        loss = softmax_ce_grad_(logits, yn)  # logits := dL/dlogits
        np.matmul(logits.T, hflat, out=dw_out)
        np.sum(logits, axis=0, out=db_out)
        dhs = (logits @ w_out).reshape(seq, BATCH, H)
        # backward through time
        dh_next = np.zeros((BATCH, H), np.float32)
        dc_next = np.zeros((BATCH, H), np.float32)
        for t in range(seq - 1, -1, -1):
            z = gates[t]
            i, f, g, o = z[:, :H], z[:, H : 2 * H], z[:, 2 * H : 3 * H], z[:, 3 * H :]
            tc = tcs[t]
            dh = dhs[t] + dh_next
            dzt = dz[t]
            dc = dh * o * (1.0 - tc * tc) + dc_next
            np.multiply(dh * tc, o * (1.0 - o), out=dzt[:, 3 * H :])  # d o-gate
            np.multiply(dc * g, i * (1.0 - i), out=dzt[:, :H])  # d i-gate
            np.multiply(dc * cs[t], f * (1.0 - f), out=dzt[:, H : 2 * H])  # d f-gate
            np.multiply(dc * i, 1.0 - g * g, out=dzt[:, 2 * H : 3 * H])  # d g-gate
            dc_next = dc * f
            dh_next = dzt @ w_hh
        dz2 = dz.reshape(seq * BATCH, h4)
        np.matmul(dz2.T, x2, out=dw_ih)
        np.matmul(dz2.T, hs[:-1].reshape(seq * BATCH, H), out=dw_hh)
        np.sum(dz2, axis=0, out=db_ih)
        db_hh[...] = db_ih
        for p, gr in zip(params, grads):
            np.multiply(gr, LR, out=gr)
            np.subtract(p, gr, out=p)
        return loss

    # states, gates and their gradients; the weight gradients are state (see Bench.scratch)
    return Bench(step, scratch=(hs, cs, gates, tcs, dz, tmp))


def build(engine: str, size: str) -> Bench:
    """Build the LSTM step for ``engine``; ``size`` is ``t<sequence length>``."""
    seq = int(size.lstrip("t"))
    if engine == "numpy":
        return build_numpy(seq)
    return build_torch_like(import_engine(engine), seq)


_case = Case(build)
setup = _case.setup
step = _case.step
check = _case.check
scratch_bytes = _case.scratch_bytes
