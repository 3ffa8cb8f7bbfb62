"""Case 3: conv2d forward + backward alone (batch 64, 8->16 channels, 3x3, no padding).

torch/tinytorch: ``nn.Conv2d(8, 16, 3)`` on an input that requires grad, then
``out.backward(grad_out)`` with a fixed ``grad_out``; gradients are reset each step.

numpy reference: im2col via ``sliding_window_view`` + one GEMM for the forward; for the
backward two GEMMs (``dW`` computed transposed, as ``cols @ g^T``, which is
2x faster than ``g @ cols^T`` here; ``dcols``) and a col2im that accumulates over the 9 kernel
offsets.  It works in a ``(C, N, H, W)`` layout internally (a free transpose of NCHW).
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
    param_array,
    to_numpy,
)
from bench.engines import import_engine

NAME = "conv"
TITLE = "conv2d 8->16 3x3, batch 64, fwd+bwd"
SIZES: tuple[str, ...] = ("c28", "c14")
QUICK_SIZES: tuple[str, ...] = ("c14",)
ENGINES: tuple[str, ...] = ("numpy", "torch", "tinytorch")
UNIT: tuple[str, float] = ("ms", 1e3)

BATCH, C_IN, C_OUT, K = 64, 8, 16, 3


def make_data(hw: int) -> tuple[np.ndarray, np.ndarray]:
    """Input ``(64, 8, hw, hw)`` and output gradient ``(64, 16, hw-2, hw-2)``."""
    rng = data_rng()
    x = rng.standard_normal((BATCH, C_IN, hw, hw)).astype(np.float32)
    ho = hw - K + 1
    gy = rng.standard_normal((BATCH, C_OUT, ho, ho)).astype(np.float32)
    return x, gy


def build_torch_like(tt: ModuleType, hw: int) -> Bench:
    """Conv forward + backward through the torch API."""
    conv = tt.nn.Conv2d(C_IN, C_OUT, K)
    load_params(tt, conv)
    xn, gyn = make_data(hw)
    x = tt.tensor(xn, requires_grad=True)
    gy = tt.tensor(gyn)

    def step() -> object:
        conv.zero_grad()
        x.grad = None
        out = conv(x)
        out.backward(gy)
        return out

    def probe() -> list[float]:
        return probe_values(
            to_numpy(conv.weight.grad), to_numpy(conv.bias.grad), to_numpy(x.grad)[0, 0, 0]
        )

    return Bench(step, probe)


def probe_values(dw: np.ndarray, db: np.ndarray, dx_row: np.ndarray) -> list[float]:
    """A few gradient entries compared across engines."""
    return [float(v) for v in (*dw.reshape(C_OUT, -1)[0], *db[:4], *dx_row[:8])]


def build_numpy(hw: int) -> Bench:
    """im2col + GEMM forward, GEMM + col2im backward, preallocated buffers."""
    wmat = param_array("weight", (C_OUT, C_IN, K, K)).reshape(C_OUT, -1)
    bias = param_array("bias", (C_OUT,))[:, None]
    xn, gyn = make_data(hw)
    ho = hw - K + 1
    m = BATCH * ho * ho
    cols = np.empty((C_IN * K * K, m), np.float32)
    out = np.empty((C_OUT, m), np.float32)
    g2 = np.empty((C_OUT, m), np.float32)
    dw_t = np.empty((C_IN * K * K, C_OUT), np.float32)  # dW transposed: the faster GEMM
    db = np.empty((C_OUT,), np.float32)
    dcols = np.empty_like(cols)
    dx = np.empty((C_IN, BATCH, hw, hw), np.float32)

    def step() -> np.ndarray:
        xc = xn.transpose(1, 0, 2, 3)  # (C, N, H, W) view
        im2col(xc, K, out=cols)
        np.matmul(wmat, cols, out=out)
        np.add(out, bias, out=out)  # out.reshape(F, N, Ho, Wo) is the NCHW result transposed
        # backward
        np.copyto(g2.reshape(C_OUT, BATCH, ho, ho), gyn.transpose(1, 0, 2, 3))
        np.matmul(cols, g2.T, out=dw_t)
        np.sum(g2, axis=1, out=db)
        np.matmul(wmat.T, g2, out=dcols)
        col2im(dcols, xc.shape, K, out=dx)
        return out

    def probe() -> list[float]:
        return probe_values(dw_t.T, db, dx[0, 0, 0])

    # dw_t, db and dx are the gradients the step leaves behind (see Bench.scratch)
    return Bench(step, probe, scratch=(cols, out, g2, dcols))


def build(engine: str, size: str) -> Bench:
    """Build the conv step for ``engine``; ``size`` is ``c<height>``."""
    hw = int(size.lstrip("c"))
    if engine == "numpy":
        return build_numpy(hw)
    return build_torch_like(import_engine(engine), hw)


_case = Case(build)
setup = _case.setup
step = _case.step
check = _case.check
scratch_bytes = _case.scratch_bytes
