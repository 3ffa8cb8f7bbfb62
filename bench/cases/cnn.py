"""Case 4: small CNN training step on 28x28 inputs, batch 64, cross-entropy, SGD.

conv 1->8 3x3, ReLU, max-pool 2, conv 8->16 3x3, ReLU, max-pool 2, flatten (16*5*5),
linear to 10.  torch/tinytorch: ``nn.Sequential`` of ``Conv2d``, ``ReLU``, ``MaxPool2d``,
``Flatten``, ``Linear``; ``F.cross_entropy``; ``optim.SGD(lr=0.01)``.

numpy reference: the same network by hand in a ``(C, N, H, W)`` layout, im2col + GEMM
convolutions, 2x2 max pooling as the maximum of four strided views, fused softmax-CE
gradient, in-place SGD.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from bench.cases._common import (
    Bench,
    Case,
    col2im,
    data_rng,
    im2col,
    load_params,
    maxpool2_bwd,
    maxpool2_fwd,
    param_array,
    softmax_ce_grad_,
    train_step,
)
from bench.engines import import_engine

NAME = "cnn"
TITLE = "CNN conv8-pool-conv16-pool-linear train step, 28x28 (SGD)"
SIZES: tuple[str, ...] = ("b64",)
QUICK_SIZES: tuple[str, ...] = ("b16",)
ENGINES: tuple[str, ...] = ("numpy", "torch", "tinytorch")
UNIT: tuple[str, float] = ("ms", 1e3)

HW, C1, C2, K, N_CLASSES = 28, 8, 16, 3, 10
LR = 0.01
FLAT = C2 * 5 * 5


def make_data(batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed images ``(batch, 1, 28, 28)`` and labels."""
    rng = data_rng()
    x = rng.standard_normal((batch, 1, HW, HW)).astype(np.float32)
    y = rng.integers(0, N_CLASSES, batch).astype(np.int64)
    return x, y


def make_model(tt: ModuleType) -> object:
    """Parameters: ``0.*`` (conv1), ``3.*`` (conv2), ``7.*`` (linear)."""
    nn = tt.nn
    return nn.Sequential(
        nn.Conv2d(1, C1, K),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(C1, C2, K),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(FLAT, N_CLASSES),
    )


def build_torch_like(tt: ModuleType, batch: int) -> Bench:
    """Training step through the torch API."""
    model = make_model(tt)
    load_params(tt, model)
    opt = tt.optim.SGD(model.parameters(), lr=LR)
    xn, yn = make_data(batch)
    x, y = tt.tensor(xn), tt.tensor(yn)
    cross_entropy = tt.nn.functional.cross_entropy
    return train_step(opt, lambda: cross_entropy(model(x), y))


def build_numpy(batch: int) -> Bench:
    """The same network by hand."""
    w1 = param_array("0.weight", (C1, 1, K, K)).reshape(C1, -1)
    b1 = param_array("0.bias", (C1,))[:, None]
    w2 = param_array("3.weight", (C2, C1, K, K)).reshape(C2, -1)
    b2 = param_array("3.bias", (C2,))[:, None]
    w3t = np.ascontiguousarray(param_array("7.weight", (N_CLASSES, FLAT)).T)
    b3 = param_array("7.bias", (N_CLASSES,))
    params = [w1, b1, w2, b2, w3t, b3]
    xn, yn = make_data(batch)
    n = batch
    h1, h2 = HW - K + 1, (HW - K + 1) // 2 - K + 1  # 26, 11
    s1 = (C1, n, h1, h1)
    s2 = (C2, n, h2, h2)
    sp1 = (C1, n, h1 // 2, h1 // 2)
    cols1 = np.empty((K * K, n * h1 * h1), np.float32)
    a1 = np.empty((C1, n * h1 * h1), np.float32)
    cols2 = np.empty((C1 * K * K, n * h2 * h2), np.float32)
    a2 = np.empty((C2, n * h2 * h2), np.float32)
    dcols2 = np.empty_like(cols2)
    dp1 = np.empty(sp1, np.float32)
    dw1_t = np.empty((K * K, C1), np.float32)  # conv dW computed transposed (faster GEMM)
    dw2_t = np.empty((C1 * K * K, C2), np.float32)
    grads = [
        dw1_t.T,
        np.empty_like(b1),
        dw2_t.T,
        np.empty_like(b2),
        np.empty_like(w3t),
        np.empty_like(b3),
    ]
    _, db1, _, db2, dw3t, db3 = grads

    def step() -> float:
        # forward
        im2col(xn.transpose(1, 0, 2, 3), K, out=cols1)
        np.matmul(w1, cols1, out=a1)
        np.add(a1, b1, out=a1)
        np.maximum(a1, 0, out=a1)
        p1, mask1 = maxpool2_fwd(a1.reshape(s1))
        im2col(p1, K, out=cols2)
        np.matmul(w2, cols2, out=a2)
        np.add(a2, b2, out=a2)
        np.maximum(a2, 0, out=a2)
        p2, mask2 = maxpool2_fwd(a2.reshape(s2))
        flat = p2.transpose(1, 0, 2, 3).reshape(n, FLAT)
        logits = flat @ w3t
        np.add(logits, b3, out=logits)
        loss = softmax_ce_grad_(logits, yn)  # logits := dL/dlogits
        # backward
        np.matmul(flat.T, logits, out=dw3t)
        np.sum(logits, axis=0, out=db3)
        dflat = logits @ w3t.T
        dp2 = dflat.reshape(n, C2, 5, 5).transpose(1, 0, 2, 3)
        da2 = maxpool2_bwd(dp2, mask2, s2).reshape(C2, -1)
        np.multiply(da2, a2 > 0, out=da2)
        np.matmul(cols2, da2.T, out=dw2_t)
        np.sum(da2, axis=1, keepdims=True, out=db2)
        np.matmul(w2.T, da2, out=dcols2)
        col2im(dcols2, sp1, K, out=dp1)
        da1 = maxpool2_bwd(dp1, mask1, s1).reshape(C1, -1)
        np.multiply(da1, a1 > 0, out=da1)
        np.matmul(cols1, da1.T, out=dw1_t)
        np.sum(da1, axis=1, keepdims=True, out=db1)
        # SGD
        for p, g in zip(params, grads):
            np.multiply(g, LR, out=g)
            np.subtract(p, g, out=p)
        return loss

    # im2col columns, activations and their gradients; dw1_t, dw2_t and grads are state
    return Bench(step, scratch=(cols1, a1, cols2, a2, dcols2, dp1))


def build(engine: str, size: str) -> Bench:
    """Build the CNN step for ``engine``; ``size`` is ``b<batch>``."""
    batch = int(size.lstrip("b"))
    if engine == "numpy":
        return build_numpy(batch)
    return build_torch_like(import_engine(engine), batch)


_case = Case(build)
setup = _case.setup
step = _case.step
check = _case.check
scratch_bytes = _case.scratch_bytes
