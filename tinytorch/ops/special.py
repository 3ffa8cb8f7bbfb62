"""``Erf``: the error function as a primitive (numpy has none), for exact GELU.

erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt, evaluated in float64 to about
one ulp with three vectorized pieces (sign handled by oddness, |x| = a):

* a < 1:        erf(a) = a * sum_n c_n a^(2n), the Taylor series
                c_n = 2/sqrt(pi) (-1)^n / (n! (2n+1)), 19 terms (error < 1e-17);
* 1 <= a < 6:   erf(a) = 1 - exp(-a^2) G(a) with G(a) = exp(a^2) erfc(a), a smooth,
                slowly varying function expanded in Chebyshev polynomials on
                [1, 2.5] and [2.5, 6] (coefficients computed for this file with
                mpmath at 50 digits; max relative error of G below 3e-16);
* a >= 6:       erf(a) = 1 (erfc(6) = 2e-17 is below half an ulp of 1).

Exposed as ``Tensor.erf`` / ``tinytorch.erf``; exact GELU uses it.
"""

from __future__ import annotations

import math

import numpy as np

from tinytorch.autograd.node import Node

# fmt: off
_TAYLOR = (
    1.1283791670955126, -0.37612638903183754, 0.11283791670955126, -0.026866170645131252,
    0.005223977625442188, -0.0008548327023450853, 0.00012055332981789664, -1.492565035840625e-05,
    1.6462114365889248e-06, -1.6365844691234924e-07, 1.4807192815879218e-08,
    -1.2290555301717928e-09, 9.422759064650411e-11, -6.7113668551641105e-12,
    4.4632242632864775e-13, -2.7835162072109215e-14, 1.6342614095367152e-15,
    -9.063970842808673e-17, 4.763348040515068e-18,
)
# Chebyshev coefficients of G(a) = exp(a^2) erfc(a) on [lo, hi], in u = (2a - lo - hi)/(hi - lo)
_CHEB = (
    (1.0, 2.5, (
        0.3017138902444292, -0.10574990110152695, 0.017104848474406763, -0.002587682261135065,
        0.0003696145268036729, -5.0198560605167956e-05, 6.517935170561901e-06,
        -8.126449775613485e-07, 9.763690285483578e-08, -1.133813656364367e-08,
        1.2757869239497698e-09, -1.3939984728303207e-10, 1.4818660272094163e-11,
        -1.535083855929386e-12, 1.5518968060622196e-13, -1.533073757450008e-14,
        1.4816184838693498e-15, -1.4022871840291417e-16, 1.3009973201083394e-17,
        -1.1842123609128873e-18,
    )),
    (2.5, 6.0, (
        0.14016047004976134, -0.05677604943259737, 0.011209463278240392, -0.0021611166170954787,
        0.00040747765264847823, -7.523771561693374e-05, 1.3620051895515644e-05,
        -2.4198114237545286e-06, 4.223228134648387e-07, -7.246499552340511e-08,
        1.223372886245904e-08, -2.0334473033647613e-09, 3.329826004203619e-10,
        -5.374937749488635e-11, 8.556925347830744e-12, -1.3442073415954262e-12,
        2.084564956391692e-13, -3.192625432717342e-14, 4.8309695226060365e-15,
        -7.224932337043964e-16, 1.0683063372619959e-16, -1.562286501680805e-17,
        2.2602709241233146e-18,
    )),
)
# fmt: on


def _clenshaw(u: np.ndarray, coefs: tuple[float, ...]) -> np.ndarray:
    """sum_k coefs[k] T_k(u) by Clenshaw's recurrence (a loop over terms, not elements)."""
    b1 = np.full_like(u, coefs[-1])
    b2 = np.zeros_like(u)
    u2 = 2.0 * u
    for c in coefs[-2:0:-1]:
        b2 -= u2 * b1  # b2 becomes -(new b1) - c; flip below
        b2 *= -1.0
        b2 += c
        b1, b2 = b2, b1
    return u * b1 - b2 + coefs[0]


def _terms(coefs: tuple[float, ...], dtype: np.dtype) -> tuple[float, ...]:
    """float32 needs only the terms above ~1e-9: a third fewer operations."""
    if dtype == np.float64:
        return coefs
    return tuple(c for c in coefs if abs(c) > 1e-9)


def erf_array(x: np.ndarray) -> np.ndarray:
    """erf of a float array, computed in x's precision (float16 via float32)."""
    x = np.asarray(x)
    dt = np.dtype(np.float64) if x.dtype == np.float64 else np.dtype(np.float32)
    a = np.abs(x).astype(dt, copy=False)
    out = np.ones_like(a)  # a >= 6 (and +inf)
    small = a < 1.0
    a_small = a[small]
    t = a_small * a_small
    taylor = _terms(_TAYLOR, dt)
    acc = np.full_like(t, taylor[-1])
    for c in taylor[-2::-1]:
        acc *= t
        acc += c
    acc *= a_small
    out[small] = acc
    for lo, hi, coefs in _CHEB:
        m = (a >= lo) & (a < hi)
        am = a[m]
        g = _clenshaw((2.0 * am - (lo + hi)) / (hi - lo), _terms(coefs, dt))
        am *= am
        np.negative(am, out=am)
        np.exp(am, out=am)
        out[m] = 1.0 - am * g
    out[np.isnan(a)] = np.nan
    return np.copysign(out, x).astype(x.dtype, copy=False)


class Erf(Node):
    """out = erf(a);  da = g * 2/sqrt(pi) * exp(-a^2)."""

    __slots__ = ()
    save_inputs = True

    def forward(self, a):
        return erf_array(a)

    def backward(self, g):
        (a,) = self.inputs
        return g * ((-(a * a)).exp() * (2.0 / math.sqrt(math.pi)))
