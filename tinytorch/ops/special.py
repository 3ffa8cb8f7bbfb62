"""``Erf``: the error function as a primitive (numpy has none), for exact GELU.

erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt. Two evaluations, chosen by dtype:

float32 / float16 (the training path): one branch-free rational function over every
element, evaluated in float64 and rounded once to the input's dtype::

    erf(x) = x P(x^2) / Q(x^2)   with x clamped to [-4, 4],

P of degree 6 and Q of degree 5 (a weighted least-squares fit of the relative error
of erf(x)/x on [0, 4], P(0) = 2/sqrt(pi) pinned; max relative error 2.4e-9, a
twentieth of a float32 ulp). erfc(4) = 1.5e-8 is below half a float32 ulp of 1, so
the clamp is exact; it also maps +-inf to +-1 and keeps nan and -0.0. Results are
within 0.54 float32 ulp of the exact erf (about 98% correctly rounded, checked on
a dense grid). Evaluating in float32 instead would cost about 6 ulp near |erf| = 1
(each rounding there is a whole ulp of the result), hence float64 arithmetic: about
25 array passes and no masks, gathers or scatters, which cost more than the
arithmetic (measured: 9-14 ms -> 2.6 ms on 524K float32 elements).

float64: to about one ulp with three pieces (sign handled by oddness, |x| = a):

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

from tinytorch.autograd.grad_mode import STATE
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
# x P(x^2) / Q(x^2) for float32 / float16, |x| <= _RAT_CLAMP (see the module docstring)
_RAT_CLAMP = 4.0
_RAT_P = (
    1.1283791670955126, 0.1853021295973506, 0.05433138871486745, 0.003854005587987653,
    0.00037976576867792443, 4.685901840798954e-06, -1.3213167939108083e-08,
)
_RAT_Q = (
    1.0, 0.49755312550681147, 0.1140005411552443, 0.015471134470372917,
    0.0013087058920875408, 6.312448062019367e-05,
)
# fmt: on
# Both divided by Q's leading coefficient: a monic Q saves one pass.
_RAT_PM = tuple(c / _RAT_Q[-1] for c in _RAT_P)
_RAT_QM = tuple(c / _RAT_Q[-1] for c in _RAT_Q[:-1])
_SQRT1_2 = 1.0 / math.sqrt(2.0)
_BLOCK = 1 << 15  # elements per block of _erf_rational: 3 float64 buffers of 256 KiB


def _clenshaw(u: np.ndarray, coefs: tuple[float, ...]) -> np.ndarray:
    """sum_k coefs[k] T_k(u) by Clenshaw's recurrence b_k = c_k + 2u b_{k+1} - b_{k+2}
    (a loop over terms, three in-place passes each)."""
    u2 = u + u
    b1 = u2 * coefs[-1]
    b1 += coefs[-2]  # b_{n-1}; b_n = coefs[-1] is a constant
    b2 = np.full_like(u, coefs[-1])
    tmp = np.empty_like(u)
    for c in coefs[-3:0:-1]:
        np.multiply(u2, b1, out=tmp)
        tmp -= b2
        tmp += c
        b1, b2, tmp = tmp, b1, b2
    b1 *= u
    b1 -= b2
    b1 += coefs[0]
    return b1


def _erf_rational(
    x: np.ndarray, dtype: np.dtype, scale: float = 1.0, cdf: bool = False, block: int = _BLOCK
) -> np.ndarray:
    """erf(scale x) = u P(u^2) / Q(u^2), u = scale x clamped to [-4, 4], in float64 and
    rounded once to ``dtype``; with ``cdf``, then 0.5 (1 + erf(scale x)) in ``dtype``.

    Evaluated ``block`` elements at a time in three reused float64 buffers: they stay
    in cache across the ~25 passes, and no full-size float64 temporaries are faulted in.
    """
    flat = x.reshape(-1)
    out = np.empty(flat.shape, dtype)
    n = flat.size
    m = min(n, block) or 1
    a, t, p = np.empty(m), np.empty(m), np.empty(m)
    for start in range(0, n, m):
        stop = min(start + m, n)
        if stop - start < m:
            a, t, p = a[: stop - start], t[: stop - start], p[: stop - start]
        if scale == 1.0:
            np.clip(flat[start:stop], -_RAT_CLAMP, _RAT_CLAMP, out=a)  # widen and clamp
        else:
            np.multiply(flat[start:stop], scale, out=a)
            np.clip(a, -_RAT_CLAMP, _RAT_CLAMP, out=a)
        np.multiply(a, a, out=t)
        np.multiply(t, _RAT_PM[-1], out=p)
        for c in _RAT_PM[-2:0:-1]:
            p += c
            p *= t
        p += _RAT_PM[0]
        p *= a
        q = np.add(t, _RAT_QM[-1], out=a)  # monic Q, in a's buffer (a is no longer needed)
        for c in _RAT_QM[-2::-1]:
            q *= t
            q += c
        o = np.divide(p, q, out=out[start:stop], casting="same_kind")
        if cdf:  # from erf rounded to dtype, as the composite: exactly 0 below x = -5.6
            o += 1.0
            o *= 0.5
    return out.reshape(x.shape)


def _erf_float64(x: np.ndarray) -> np.ndarray:
    """erf of a float64 array by the three pieces of the module docstring."""
    a = np.abs(x)
    out = np.ones_like(a)  # a >= 6 (and +inf)
    small = a < 1.0
    a_small = a[small]
    t = a_small * a_small
    acc = t * _TAYLOR[-1]
    for c in _TAYLOR[-2:0:-1]:
        acc += c
        acc *= t
    acc += _TAYLOR[0]
    acc *= a_small
    out[small] = acc
    for lo, hi, coefs in _CHEB:
        m = (a >= lo) & (a < hi)
        am = a[m]
        g = _clenshaw((2.0 * am - (lo + hi)) / (hi - lo), coefs)
        am *= am
        np.negative(am, out=am)
        np.exp(am, out=am)
        am *= g
        np.subtract(1.0, am, out=am)
        out[m] = am
    out[np.isnan(a)] = np.nan
    return np.copysign(out, x, out=out)


def erf_array(x: np.ndarray) -> np.ndarray:
    """erf of a float array, in x's dtype (float32 and float16 by ``_erf_rational``)."""
    x = np.asarray(x)
    if x.dtype == np.float64:
        return _erf_float64(x)
    return _erf_rational(x, x.dtype if x.dtype.kind == "f" else np.dtype(np.float32))


def normal_cdf_array(x: np.ndarray) -> np.ndarray:
    """Phi(x) = 0.5 (1 + erf(x / sqrt 2)), the standard normal CDF (exact GELU's gate),
    in x's float dtype; float32 and float16 in one fused pass over ``_erf_rational``."""
    x = np.asarray(x)
    if x.dtype == np.float64:
        out = _erf_float64(x * _SQRT1_2)
        out += 1.0
        out *= 0.5
        return out
    return _erf_rational(x, x.dtype if x.dtype.kind == "f" else np.dtype(np.float32),
                         scale=_SQRT1_2, cdf=True)  # fmt: skip


class Erf(Node):
    """out = erf(a);  da = g * 2/sqrt(pi) * exp(-a^2)."""

    __slots__ = ()
    save_inputs = True

    def forward(self, a):
        return erf_array(a)

    def backward(self, g):
        (a,) = self.inputs
        if STATE.enabled:  # create_graph: Tensor ops, differentiable again
            return g * ((-(a * a)).exp() * (2.0 / math.sqrt(math.pi)))
        d = a.data * a.data  # numpy in place: four passes, no recorded ops
        np.negative(d, out=d)
        np.exp(d, out=d)
        d *= 2.0 / math.sqrt(math.pi)
        d *= g.data
        return a._make(d)
