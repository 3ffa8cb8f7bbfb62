"""In-place numpy kernels reproducing torch's CPU point-wise ops used by the optimizers.

Each helper follows the exact evaluation order of the corresponding ATen kernel so that
float64 trajectories agree with torch to rounding (torch's vectorised kernels may fuse a
multiply-add into one FMA; numpy cannot, which is the only source of difference).
Scalars must be Python floats: numpy scalars are "strong" under NEP 50 and would upcast
float32 arithmetic to float64. ``tmp`` is a caller-provided scratch array of the same
shape/dtype, so no kernel allocates.
"""

from __future__ import annotations

import numpy as np

__all__ = ["add_", "addcdiv_", "addcmul_", "effective_grad", "lerp_"]


_BLOCK = 1 << 16  # elements per block of a blocked update: 256 KiB of float32, cache-sized


def add_(self: np.ndarray, other: np.ndarray, alpha: float, tmp: np.ndarray | None = None) -> None:
    """``self += alpha * other`` (torch ``add_(other, alpha=alpha)``).

    Without ``tmp`` the product is formed block by block in a small scratch
    buffer, so the update allocates no parameter-sized temporary (torch's
    fused kernel allocates none either); the values are the same.
    """
    if alpha == 1.0:
        np.add(self, other, out=self)
    elif alpha == -1.0:
        np.subtract(self, other, out=self)
    elif tmp is not None:
        np.multiply(other, alpha, out=tmp)
        np.add(self, tmp, out=self)
    elif (
        self.size <= _BLOCK or other.shape != self.shape
        or not (self.flags.c_contiguous and other.flags.c_contiguous)
    ):  # fmt: skip
        np.add(self, np.multiply(other, alpha), out=self)
    else:
        # Rows of a (blocks, _BLOCK) view of both arrays, and the tail; alpha as a 0-d
        # array of self's dtype (the value numpy gives a Python float here, ~0.25 us less
        # per call).
        n = self.size
        m = n - n % _BLOCK
        flat, src = self.reshape(-1), other.reshape(-1)  # views: both C-contiguous
        a = np.array(alpha, dtype=self.dtype)
        scratch = np.empty(_BLOCK, dtype=self.dtype)
        for w, g in zip(flat[:m].reshape(-1, _BLOCK), src[:m].reshape(-1, _BLOCK)):
            np.multiply(g, a, out=scratch)
            np.add(w, scratch, out=w)
        if m < n:
            part = scratch[: n - m]
            np.multiply(src[m:], a, out=part)
            np.add(flat[m:], part, out=flat[m:])


def addcmul_(
    self: np.ndarray, t1: np.ndarray, t2: np.ndarray, value: float, tmp: np.ndarray
) -> None:
    """``self += (value * t1) * t2`` (torch ``addcmul_``)."""
    np.multiply(t1, value, out=tmp)
    np.multiply(tmp, t2, out=tmp)
    np.add(self, tmp, out=self)


def addcdiv_(
    self: np.ndarray, t1: np.ndarray, t2: np.ndarray, value: float, tmp: np.ndarray
) -> None:
    """``self += (value * t1) / t2`` (torch ``addcdiv_``)."""
    np.multiply(t1, value, out=tmp)
    np.divide(tmp, t2, out=tmp)
    np.add(self, tmp, out=self)


def lerp_(self: np.ndarray, end: np.ndarray, weight: float, tmp: np.ndarray) -> None:
    """``self = self + weight * (end - self)`` with torch's two-branch formula.

    torch uses ``end - (end - self) * (1 - weight)`` when ``|weight| >= 0.5`` for accuracy.
    """
    np.subtract(end, self, out=tmp)
    if abs(weight) < 0.5:
        np.multiply(tmp, weight, out=tmp)
        np.add(self, tmp, out=self)
    else:
        np.multiply(tmp, 1.0 - weight, out=tmp)
        np.subtract(end, tmp, out=self)


def effective_grad(
    param: np.ndarray, grad: np.ndarray, maximize: bool, weight_decay: float
) -> np.ndarray:
    """``g = (-grad if maximize else grad) + weight_decay * param``.

    Returns ``grad`` itself (never written to) when no transformation is needed, otherwise a
    new array: torch never modifies ``p.grad`` in place either.
    """
    if weight_decay != 0:
        out = np.multiply(param, weight_decay)
        if maximize:
            np.subtract(out, grad, out=out)
        else:
            np.add(out, grad, out=out)
        return out
    if maximize:
        return np.negative(grad)
    return grad
