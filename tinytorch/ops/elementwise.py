"""Elementwise primitives.

Most are one numpy ufunc (the class attribute ``ufunc``, which ``Node.forward``
calls): the class then holds only its backward. Backward formulas of more than one
operation go through ``Node.vjp``: written once with operators, they run on Tensors
under ``create_graph`` and on the bare arrays in a first-order backward.

Binary primitives receive operands already cast to one dtype and, where an
operand requires grad, already expanded to the output shape (``Tensor``'s
binary wrapper does both), so no backward here deals with broadcasting:
that is ``Expand``'s backward, in one place.
"""

from __future__ import annotations

import numpy as np

from tinytorch.autograd import node as _node
from tinytorch.autograd.grad_mode import STATE
from tinytorch.autograd.node import Node


class Add(Node):
    """out = a + b;  da = g, db = g."""

    __slots__ = ()
    ufunc = np.add

    def backward(self, g):
        return g, g


class Sub(Node):
    """out = a - b;  da = g, db = -g."""

    __slots__ = ()
    ufunc = np.subtract

    def backward(self, g):
        return g, (-g if self.next_nodes[1] is not None else None)


class Mul(Node):
    """out = a * b;  da = g * b, db = g * a."""

    __slots__ = ()
    ufunc = np.multiply
    save_inputs = True
    save_crossed = (True, True)

    def backward(self, g):
        a, b = self.inputs
        na, nb = self.next_nodes
        return (g * b if na is not None else None), (g * a if nb is not None else None)


class Div(Node):
    """out = a / b;  da = g / b, db = -g * a / b^2."""

    __slots__ = ()
    ufunc = np.true_divide
    save_inputs = True
    save_crossed = (True, False)  # b is read by both gradients

    def backward(self, g):
        a, b = self.inputs
        na, nb = self.next_nodes
        ga = g / b if na is not None else None
        gb = self.vjp(lambda g, a, b: -g * a / (b * b), g, a, b) if nb is not None else None
        return ga, gb


class Pow(Node):
    """out = a ** b;  da = g * b * a^(b-1), db = g * out * log(a) (0 where a == 0)."""

    __slots__ = ()
    ufunc = np.power
    save_inputs = True
    save_output = True

    def backward(self, g):
        a, b = self.inputs
        na, nb = self.next_nodes
        ga = g * b * a ** (b - 1) if na is not None else None
        gb = None
        if nb is not None:
            safe = a.detach().data != 0
            gb = g * self.output * a.where_mask(safe, 1.0).log()
            gb = gb.where_mask(safe | (b.detach().data < 0), 0.0)
        return ga, gb


class PowScalar(Node):
    """out = a ** p for a Python number p;  da = g * p * a^(p-1)."""

    __slots__ = ("p",)
    save_inputs = True

    def forward(self, a, p):
        self.p = p
        return np.power(a, p) if p != 2 else a * a

    def backward(self, g):
        (a,) = self.inputs
        p = self.p
        if p == 0:
            return g * 0.0
        if p == 1:
            return g
        if p == 2:
            return self.vjp(lambda g, a: g * a * 2.0, g, a)
        return self.vjp(lambda g, a: g * p * a ** (p - 1), g, a)


class Maximum(Node):
    """out = max(a, b); the gradient goes to the larger input, split in half on ties."""

    __slots__ = ()
    ufunc = np.maximum
    save_inputs = True

    def backward(self, g):
        return _select_backward(self, g, np.greater)


class Minimum(Node):
    """out = min(a, b); the gradient goes to the smaller input, split in half on ties."""

    __slots__ = ()
    ufunc = np.minimum
    save_inputs = True

    def backward(self, g):
        return _select_backward(self, g, np.less)


def _select_backward(node, g, wins):
    a, b = node.inputs
    ad, bd = a.data, b.data
    weight_a = np.where(wins(ad, bd), 1.0, np.where(ad == bd, 0.5, 0.0)).astype(ad.dtype)
    na, nb = node.next_nodes
    ga = g * _const(weight_a) if na is not None else None
    gb = g * _const(1.0 - weight_a) if nb is not None else None
    return ga, gb


def _const(arr):
    """A tensor without history around ``arr``."""
    return _node._wrap(np.asarray(arr))


class Neg(Node):
    """out = -a;  da = -g."""

    __slots__ = ()
    ufunc = np.negative

    def backward(self, g):
        return -g


class Exp(Node):
    """out = e^a;  da = g * out."""

    __slots__ = ()
    ufunc = np.exp
    save_output = True

    def backward(self, g):
        return self.vjp_output(lambda g, out: g * out, g)


class Expm1(Node):
    """out = e^a - 1;  da = g * (out + 1)."""

    __slots__ = ()
    ufunc = np.expm1
    save_output = True

    def backward(self, g):
        return self.vjp_output(lambda g, out: g * (out + 1.0), g)


class Log(Node):
    """out = ln a;  da = g / a."""

    __slots__ = ()
    ufunc = np.log
    save_inputs = True

    def backward(self, g):
        return g / self.inputs[0]


class Log1p(Node):
    """out = ln(1 + a);  da = g / (1 + a)."""

    __slots__ = ()
    ufunc = np.log1p
    save_inputs = True

    def backward(self, g):
        return self.vjp(lambda g, a: g / (a + 1.0), g, self.inputs[0])


class Sqrt(Node):
    """out = sqrt(a);  da = g / (2 out)."""

    __slots__ = ()
    ufunc = np.sqrt
    save_output = True

    def backward(self, g):
        return self.vjp_output(lambda g, out: g / (out * 2.0), g)


class Sin(Node):
    """out = sin a;  da = g cos a."""

    __slots__ = ()
    ufunc = np.sin
    save_inputs = True

    def backward(self, g):
        return g * self.inputs[0].cos()


class Cos(Node):
    """out = cos a;  da = -g sin a."""

    __slots__ = ()
    ufunc = np.cos
    save_inputs = True

    def backward(self, g):
        return -g * self.inputs[0].sin()


class Tanh(Node):
    """out = tanh a;  da = g (1 - out^2), computed as g - g out out (no Python-number
    operand: numpy takes ~0.25 us longer on one)."""

    __slots__ = ()
    ufunc = np.tanh
    save_output = True

    def backward(self, g):
        return self.vjp_output(lambda g, out: g - g * out * out, g)


class Sigmoid(Node):
    """out = 1 / (1 + e^-a), computed without overflow;  da = g out (1 - out)."""

    __slots__ = ()
    save_output = True

    def forward(self, a):
        return sigmoid_array(a)

    def backward(self, g):
        return self.vjp_output(lambda g, out: g * (out * (1.0 - out)), g)


def sigmoid_array(a: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-a) in a's dtype: 1 / (1 + e) for a >= 0 and e / (1 + e) below, with
    e = e^-|a| (the exp of a non-positive number never overflows). The numerator is
    max(e, [a >= 0]): 1 where a >= 0 (e <= 1), e elsewhere; cheaper than ``np.where``."""
    e = np.abs(a)
    np.negative(e, out=e)
    np.exp(e, out=e)
    out = np.maximum(e, a >= 0, dtype=e.dtype)
    np.divide(out, np.add(e, 1.0, out=e), out=out)
    return out


class Relu(Node):
    """out = max(a, 0);  da = g * [a > 0]."""

    __slots__ = ()
    save_output = True

    def forward(self, a):
        return np.maximum(a, 0)

    def backward(self, g):
        # The mask [out > 0] is piecewise constant: as a constant, second derivatives stay
        # exact.
        if STATE.enabled:  # create_graph: the same product, recorded
            return g * (self.output > 0)
        # First order: the mask [out > 0] is written as 0/1 straight into the result array,
        # which then takes the product in place (no bool temporary; faster than g * bool).
        out = self._output_array()
        d = np.greater(out, 0, out=np.empty_like(g.data), casting="unsafe")
        d *= g.data
        return _node._wrap(d)


class Abs(Node):
    """out = |a|;  da = g * sign(a) (0 at 0, as torch)."""

    __slots__ = ()
    ufunc = np.abs
    save_inputs = True

    def backward(self, g):
        return g * self.inputs[0].sign()


class Where(Node):
    """out = cond ? a : b (``cond`` a constant bool array);  da = g [cond], db = g [!cond]."""

    __slots__ = ("cond",)

    def forward(self, a, b, cond):
        self.cond = cond
        return np.where(cond, a, b)

    def backward(self, g):
        na, nb = self.next_nodes
        zero = g.new_zeros(())
        ga = g.where_mask(self.cond, zero) if na is not None else None
        gb = zero.where_mask(self.cond, g) if nb is not None else None
        return ga, gb


class Cast(Node):
    """out = a converted to ``dtype``;  da = g converted back."""

    __slots__ = ("src",)

    def forward(self, a, dtype):
        self.src = a.dtype
        # C order, as the no-grad path of clone (``ndarray.copy``): ``contiguous()`` is a
        # clone and must give an array that ``view`` can reshape.
        return a.astype(dtype, order="C")

    def backward(self, g):
        return g.to(self.src)


class Piecewise(Node):
    """out = fn(a) for a piecewise-constant ``fn`` (floor, ceil, round, sign, trunc);
    da = 0, as torch (the output still requires grad)."""

    __slots__ = ()

    def forward(self, a, fn):
        return fn(a)

    def backward(self, g):
        return g * 0.0
