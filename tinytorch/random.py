"""One seeded generator behind ``manual_seed`` and every random op."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np

from tinytorch import _dtype
from tinytorch.ops.composite import _check_inplace

if TYPE_CHECKING:
    from tinytorch.tensor import Tensor


class Generator:
    """A seeded source of random numbers (numpy's PCG64), like ``torch.Generator``."""

    def __init__(self, seed: int | None = None) -> None:
        self._seed = 0 if seed is None else int(seed)
        self.np = np.random.Generator(np.random.PCG64(self._seed))

    def manual_seed(self, seed: int) -> Generator:
        self._seed = int(seed)
        self.np = np.random.Generator(np.random.PCG64(self._seed))
        return self

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict[str, Any]:
        return cast("dict[str, Any]", self.np.bit_generator.state)  # a dict at runtime

    def set_state(self, state: dict[str, Any]) -> None:
        self.np.bit_generator.state = state


default_generator = Generator(0)


def manual_seed(seed: int) -> Generator:
    """Seed the default generator (all of tinytorch's randomness)."""
    return default_generator.manual_seed(seed)


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state() -> dict[str, Any]:
    return default_generator.get_state()


def set_rng_state(state: dict[str, Any]) -> None:
    default_generator.set_state(state)


def _gen(generator: Generator | None) -> np.random.Generator:
    return (generator or default_generator).np


def _float_dtype(dtype: Any) -> np.dtype:
    npd = _dtype.to_numpy_dtype(dtype) or _dtype.get_default_dtype().np
    if npd.kind != "f":
        raise RuntimeError(f"expected a floating point dtype for a random float op, got {npd}")
    return npd


def uniform_array(shape: tuple[int, ...], dtype: Any = None, generator: Generator | None = None,
                  low: float = 0.0, high: float = 1.0) -> np.ndarray:  # fmt: skip
    npd = _float_dtype(dtype)
    gen = _gen(generator)
    if npd in (np.float32, np.float64):
        out = gen.random(shape, dtype=npd)
    else:
        out = gen.random(shape).astype(npd)
    if low != 0.0 or high != 1.0:
        out *= high - low
        out += low
    return out


def normal_array(shape: tuple[int, ...], dtype: Any = None, generator: Generator | None = None,
                 mean: float = 0.0, std: float = 1.0) -> np.ndarray:  # fmt: skip
    npd = _float_dtype(dtype)
    gen = _gen(generator)
    if npd in (np.float32, np.float64):
        out = gen.standard_normal(shape, dtype=npd)
    else:
        out = gen.standard_normal(shape).astype(npd)
    if std != 1.0:
        out *= std
    if mean != 0.0:
        out += mean
    return out


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0, generator: Generator | None = None
             ) -> Tensor:  # fmt: skip
    """Fill ``t`` in place with U(a, b) samples (not recorded by autograd)."""
    _check_inplace(t)
    t.data[...] = uniform_array(t.data.shape, t.data.dtype, generator, a, b)
    t._vc[0] += 1
    return t


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0, generator: Generator | None = None
            ) -> Tensor:  # fmt: skip
    """Fill ``t`` in place with N(mean, std^2) samples (not recorded by autograd)."""
    _check_inplace(t)
    t.data[...] = normal_array(t.data.shape, t.data.dtype, generator, mean, std)
    t._vc[0] += 1
    return t
