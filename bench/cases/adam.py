"""Case 7: one Adam step on ~1M parameters (four matrices and four vectors).

torch/tinytorch: ``optim.Adam(params, lr=1e-3)`` with fixed gradients assigned once;
the timed step is ``opt.step()`` alone (torch's default single-tensor CPU path).

numpy reference: hand-written in-place Adam with ``out=`` and one scratch buffer per
tensor, the same arithmetic as torch's (bias corrections folded into scalars).
"""

from __future__ import annotations

import math

import numpy as np

from bench.cases._common import Bench, Case, data_rng, param_array, to_numpy
from bench.engines import import_engine

NAME = "adam"
TITLE = "Adam step on 996,864 parameters"
SIZES: tuple[str, ...] = ("p1M",)
QUICK_SIZES: tuple[str, ...] = ("p1M",)
ENGINES: tuple[str, ...] = ("numpy", "torch", "tinytorch")
UNIT: tuple[str, float] = ("ms", 1e3)

SHAPES: tuple[tuple[int, ...], ...] = (
    (512, 784),
    (512,),
    (512, 512),
    (512,),
    (256, 512),
    (256,),
    (256, 784),
    (256,),
)
LR, BETA1, BETA2, EPS = 1e-3, 0.9, 0.999, 1e-8


def make_arrays() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Initial parameters and their (fixed) gradients."""
    params = [param_array(f"p{i}", s) for i, s in enumerate(SHAPES)]
    rng = data_rng()
    grads = [(0.01 * rng.standard_normal(s)).astype(np.float32) for s in SHAPES]
    return params, grads


def probe_values(params: list[np.ndarray]) -> list[float]:
    """The first 4 entries of every parameter."""
    return [float(v) for p in params for v in p.reshape(-1)[:4]]


def build(engine: str, size: str) -> Bench:
    """Build the Adam step for ``engine`` (``size`` is fixed)."""
    params_np, grads_np = make_arrays()
    if engine == "numpy":
        ms = [np.zeros_like(p) for p in params_np]
        vs = [np.zeros_like(p) for p in params_np]
        tmps = [np.empty_like(p) for p in params_np]
        state = {"t": 0}

        def step_np() -> None:
            state["t"] += 1
            t = state["t"]
            step_size = LR / (1 - BETA1**t)
            bc2_sqrt = math.sqrt(1 - BETA2**t)
            for p, g, m, v, tmp in zip(params_np, grads_np, ms, vs, tmps):
                np.multiply(m, BETA1, out=m)  # m = b1 m + (1-b1) g
                np.multiply(g, 1 - BETA1, out=tmp)
                np.add(m, tmp, out=m)
                np.multiply(v, BETA2, out=v)  # v = b2 v + (1-b2) g^2
                np.multiply(g, g, out=tmp)
                np.multiply(tmp, 1 - BETA2, out=tmp)
                np.add(v, tmp, out=v)
                np.sqrt(v, out=tmp)  # denom = sqrt(v)/sqrt(bc2) + eps
                np.divide(tmp, bc2_sqrt, out=tmp)
                np.add(tmp, EPS, out=tmp)
                np.divide(m, tmp, out=tmp)  # p -= step_size * m / denom
                np.multiply(tmp, step_size, out=tmp)
                np.subtract(p, tmp, out=p)

        # ms and vs are optimizer state, grads_np the fixed input: only tmps is scratch
        return Bench(step_np, lambda: probe_values(params_np), scratch=tmps)

    tt = import_engine(engine)
    params = [tt.tensor(p, requires_grad=True) for p in params_np]
    for p, g in zip(params, grads_np):
        p.grad = tt.tensor(g)
    opt = tt.optim.Adam(params, lr=LR, betas=(BETA1, BETA2), eps=EPS)

    def step() -> None:
        opt.step()

    return Bench(step, lambda: probe_values([to_numpy(p) for p in params]))


_case = Case(build)
setup = _case.setup
step = _case.step
check = _case.check
scratch_bytes = _case.scratch_bytes
