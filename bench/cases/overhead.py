"""Case 2: per-op overhead, a chain of 100 elementwise ops on 16 elements.

The chain repeats ``y + a, y * b, tanh(y), exp(y)`` 25 times (values stay within about
``[-2, 3]``), then ``sum``; torch/tinytorch run forward + backward (``x`` requires
grad), the numpy reference runs the forward only (numpy has no backward).  The time is
reported per op: step time / 100.
"""

from __future__ import annotations

import numpy as np

from bench.cases._common import Bench, Case, data_rng
from bench.engines import import_engine

NAME = "overhead"
TITLE = "100 elementwise ops on 16 elements, fwd+bwd (numpy: fwd only)"
SIZES: tuple[str, ...] = ("n16",)
QUICK_SIZES: tuple[str, ...] = ("n16",)
ENGINES: tuple[str, ...] = ("numpy", "torch", "tinytorch")
N_OPS = 100
UNIT: tuple[str, float] = ("us/op", 1e6 / N_OPS)


def make_data(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Input ``x`` in (-1, 1), shift ``a`` around -1, scale ``b`` in (0.5, 1)."""
    rng = data_rng()
    x = rng.uniform(-1, 1, n).astype(np.float32)
    a = rng.uniform(-1.2, -0.8, n).astype(np.float32)
    b = rng.uniform(0.5, 1.0, n).astype(np.float32)
    return x, a, b


def build(engine: str, size: str) -> Bench:
    """Build the chain for ``engine``; ``size`` is ``n<elements>``."""
    n = int(size.lstrip("n"))
    xn, an, bn = make_data(n)
    reps = N_OPS // 4
    if engine == "numpy":
        buf = np.empty_like(xn)

        def step_np() -> object:
            y = buf
            np.add(xn, an, out=y)
            np.multiply(y, bn, out=y)
            np.tanh(y, out=y)
            np.exp(y, out=y)
            for _ in range(reps - 1):
                np.add(y, an, out=y)
                np.multiply(y, bn, out=y)
                np.tanh(y, out=y)
                np.exp(y, out=y)
            return y.sum()

        return Bench(step_np, scratch=(buf,))  # the chain's one intermediate buffer

    tt = import_engine(engine)
    x = tt.tensor(xn, requires_grad=True)
    a, b = tt.tensor(an), tt.tensor(bn)
    tanh, exp = tt.tanh, tt.exp

    def step() -> object:
        x.grad = None
        y = x
        for _ in range(reps):
            y = y + a
            y = y * b
            y = tanh(y)
            y = exp(y)
        loss = y.sum()
        loss.backward()
        return loss

    return Bench(step)


_case = Case(build)
setup = _case.setup
step = _case.step
check = _case.check
scratch_bytes = _case.scratch_bytes
