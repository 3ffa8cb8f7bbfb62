"""Linear-algebra primitives: MatMul and Einsum."""

from __future__ import annotations

import numpy as np

from tinytorch.autograd.node import Node


class MatMul(Node):
    """out = a @ b for a, b of ndim >= 2 with batch dims already broadcast.

    da = g @ b^T,  db = a^T @ g  (transposes of the last two dims).
    """

    __slots__ = ()
    save_inputs = True

    def forward(self, a, b):
        return np.matmul(a, b)

    def backward(self, g):
        a, b = self.inputs
        na, nb = self.next_nodes
        ga = g @ b.mT if na is not None else None
        gb = a.mT @ g if nb is not None else None
        return ga, gb


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
