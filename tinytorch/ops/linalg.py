"""Linear-algebra primitives: MatMul, Linear (x W^T + b, fused) and Einsum."""

from __future__ import annotations

import numpy as np

from tinytorch.autograd.node import Node


class MatMul(Node):
    """out = a @ b for a, b of ndim >= 2 with batch dims already broadcast.

    da = g @ b^T,  db = a^T @ g  (transposes of the last two dims).

    Each gradient is produced in its input's memory layout: for a transposed
    input (``Linear`` multiplies by ``weight.T``) the same product is computed
    as ``(g^T @ a)^T``, so the parameter's gradient comes out C-contiguous,
    like the parameter, and the optimizer's update runs at full speed.
    """

    __slots__ = ()
    save_inputs = True

    def forward(self, a, b):
        return matmul_array(a, b)

    def backward(self, g):
        a, b = self.inputs
        na, nb = self.next_nodes
        ga = gb = None
        if na is not None:
            ga = (b @ g.mT).mT if _transposed(a.data) else g @ b.mT
        if nb is not None:
            gb = (g.mT @ a).mT if _transposed(b.data) else a.mT @ g
        return ga, gb


class Linear(Node):
    """out = x @ W^T + b for x (N, in), W (out, in), b (out,) (optional): ``F.linear``.

    dx = g @ W,  dW = g^T @ x,  db = g summed over N.

    The composite (``MatMul`` of x and a ``Permute`` of W, then an ``Expand`` of b
    and an ``Add``) is the same math in four nodes, and the reference this one is
    tested against; fused, a small-batch MLP step records a quarter of the nodes.
    dW comes out as (out, in) C-contiguous, like W.
    """

    __slots__ = ()
    save_inputs = True

    def forward(self, x, w, b=None):
        out = matmul_array(x, w.T)
        if b is not None:
            out += b
        return out

    def backward(self, g):
        x, w = self.inputs[:2]
        edges = self.next_nodes
        gx = self.vjp(_matmul, g, w) if edges[0] is not None else None
        gw = self.vjp(_matmul_at, g, x) if edges[1] is not None else None
        if len(edges) == 2:
            return gx, gw
        return gx, gw, (self.vjp(_sum_rows, g) if edges[2] is not None else None)


def _matmul(g, w):
    return g @ w


def _matmul_at(g, x):
    return g.mT @ x


def _sum_rows(g):
    return g.sum(0)


def matmul_array(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b``, choosing the faster of two equivalent GEMMs for x @ W^T."""
    if a.ndim == 2 and _transposed(b) and a.shape[0] < b.shape[1]:
        # x @ W^T (Linear) with fewer rows than outputs: OpenBLAS computes W @ x^T
        # about 1.5x faster (measured: 32x784 @ 784x512 in 0.34 ms instead of 0.51);
        # the product is copied back to C order, as torch returns it.
        return np.ascontiguousarray(np.matmul(b.T, a.T).T)
    return np.matmul(a, b)


def _transposed(x: np.ndarray) -> bool:
    """Whether the last two dims are laid out column-major (a ``.mT`` view)."""
    s = x.strides
    return x.shape[-1] > 1 and x.shape[-2] > 1 and s[-1] > s[-2]


class Einsum(Node):
    """out = einsum(spec, *operands).

    d operand_k = einsum of g with the other operands, written back onto
    operand k's subscripts; subscripts of operand k that appear nowhere else
    were summed away in forward, so the gradient is broadcast along them.
    """

    __slots__ = ("ins", "out")
    save_inputs = True

    def forward(self, *arrays, ins, out):
        self.ins, self.out = ins, out
        return np.einsum(",".join(ins) + "->" + out, *arrays, optimize=len(arrays) > 2)

    def backward(self, g):
        from tinytorch.ops import composite

        operands = self.inputs
        grads = []
        for k, nxt in enumerate(self.next_nodes):
            if nxt is None:
                grads.append(None)
                continue
            target = self.ins[k]
            others = [(s, t) for i, (s, t) in enumerate(zip(self.ins, operands)) if i != k]
            available = set(self.out).union(*[set(s) for s, _ in others])
            kept = "".join(c for c in dict.fromkeys(target) if c in available)
            subs = [self.out] + [s for s, _ in others]
            gk = composite.einsum(",".join(subs) + "->" + kept, g, *[t for _, t in others])
            if kept != target:
                shape = tuple(operands[k].shape[target.index(c)] for c in target)
                view = [operands[k].shape[target.index(c)] if c in kept else 1 for c in target]
                order = [kept.index(c) for c in target if c in kept]
                gk = gk.permute(tuple(order)).reshape(tuple(view)).expand(shape)
            grads.append(gk)
        return tuple(grads)
