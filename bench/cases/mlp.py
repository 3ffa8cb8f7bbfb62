"""Case 1: MLP training step 784-512-256-10 (ReLU), float32, cross-entropy, SGD(lr=0.01).

torch/tinytorch: ``nn.Sequential`` of ``nn.Linear``/``nn.ReLU``, ``F.cross_entropy``,
``optim.SGD``; one step is ``zero_grad, forward, backward, opt.step``.

numpy reference: hand-written forward/backward into preallocated buffers
(``np.matmul(..., out=)``), fused softmax-CE gradient, in-place SGD.
"""

from __future__ import annotations

from itertools import pairwise
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

NAME = "mlp"
TITLE = "MLP 784-512-256-10 train step (SGD)"
SIZES: tuple[str, ...] = ("b32", "b128", "b1024")
QUICK_SIZES: tuple[str, ...] = ("b32",)
ENGINES: tuple[str, ...] = ("numpy", "torch", "tinytorch")
UNIT: tuple[str, float] = ("ms", 1e3)

DIMS: tuple[int, ...] = (784, 512, 256, 10)
LR = 0.01


def batch_of(size: str) -> int:
    """Batch size encoded in a size name such as ``"b128"``."""
    return int(size.lstrip("b"))


def make_data(batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed random inputs ``(batch, 784)`` float32 and labels ``(batch,)`` int64."""
    rng = data_rng()
    x = rng.standard_normal((batch, DIMS[0])).astype(np.float32)
    y = rng.integers(0, DIMS[-1], batch).astype(np.int64)
    return x, y


def make_model(tt: ModuleType) -> object:
    """The torch-API model; parameter names are ``0.weight``, ``0.bias``, ``2.weight``..."""
    nn = tt.nn
    return nn.Sequential(
        nn.Linear(DIMS[0], DIMS[1]),
        nn.ReLU(),
        nn.Linear(DIMS[1], DIMS[2]),
        nn.ReLU(),
        nn.Linear(DIMS[2], DIMS[3]),
    )


def build_torch_like(tt: ModuleType, batch: int) -> Bench:
    """Training step written against the torch API (``tt`` is torch or tinytorch)."""
    model = make_model(tt)
    load_params(tt, model)
    opt = tt.optim.SGD(model.parameters(), lr=LR)
    xn, yn = make_data(batch)
    x, y = tt.tensor(xn), tt.tensor(yn)
    cross_entropy = tt.nn.functional.cross_entropy
    return train_step(opt, lambda: cross_entropy(model(x), y))


def numpy_weights() -> list[tuple[np.ndarray, np.ndarray]]:
    """``(W, b)`` per layer with ``W`` stored ``(in, out)`` (= torch weight transposed)."""
    out = []
    for i, (d_in, d_out) in enumerate(pairwise(DIMS)):
        w = param_array(f"{2 * i}.weight", (d_out, d_in))
        b = param_array(f"{2 * i}.bias", (d_out,))
        out.append((np.ascontiguousarray(w.T), b))
    return out


def build_numpy(batch: int) -> Bench:
    """Best straightforward numpy: preallocated buffers, ``out=``, fused softmax-CE."""
    (w1, b1), (w2, b2), (w3, b3) = numpy_weights()
    x, y = make_data(batch)
    f32 = np.float32
    h1 = np.empty((batch, DIMS[1]), f32)
    h2 = np.empty((batch, DIMS[2]), f32)
    logits = np.empty((batch, DIMS[3]), f32)
    g2 = np.empty_like(h2)
    g1 = np.empty_like(h1)
    grads = [np.empty_like(a) for a in (w1, b1, w2, b2, w3, b3)]
    dw1, db1, dw2, db2, dw3, db3 = grads
    params = [w1, b1, w2, b2, w3, b3]

    def step() -> float:
        # forward
        np.matmul(x, w1, out=h1)
        np.add(h1, b1, out=h1)
        np.maximum(h1, 0, out=h1)
        np.matmul(h1, w2, out=h2)
        np.add(h2, b2, out=h2)
        np.maximum(h2, 0, out=h2)
        np.matmul(h2, w3, out=logits)
        np.add(logits, b3, out=logits)
        loss = softmax_ce_grad_(logits, y)  # logits now holds dL/dlogits
        # backward
        np.matmul(h2.T, logits, out=dw3)
        np.sum(logits, axis=0, out=db3)
        np.matmul(logits, w3.T, out=g2)
        np.multiply(g2, h2 > 0, out=g2)
        np.matmul(h1.T, g2, out=dw2)
        np.sum(g2, axis=0, out=db2)
        np.matmul(g2, w2.T, out=g1)
        np.multiply(g1, h1 > 0, out=g1)
        np.matmul(x.T, g1, out=dw1)
        np.sum(g1, axis=0, out=db1)
        # SGD, in place
        for p, g in zip(params, grads):
            np.multiply(g, LR, out=g)
            np.subtract(p, g, out=p)
        return loss

    # activations and their gradients; the weight gradients are state (see Bench.scratch)
    return Bench(step, scratch=(h1, h2, logits, g2, g1))


def build(engine: str, size: str) -> Bench:
    """Build the MLP step for ``engine`` at ``size``."""
    batch = batch_of(size)
    if engine == "numpy":
        return build_numpy(batch)
    return build_torch_like(import_engine(engine), batch)


_case = Case(build)
setup = _case.setup
step = _case.step
check = _case.check
scratch_bytes = _case.scratch_bytes
