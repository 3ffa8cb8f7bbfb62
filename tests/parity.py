"""The one parity helper: run the same op in tinytorch and torch and compare.

``check(fn, *arrays)`` calls ``fn(lib, *tensors)`` with ``lib`` = tinytorch and
``lib`` = torch on the same float64 inputs, then compares

1. the forward outputs,
2. the gradients of ``sum(out * w)`` (fixed random ``w``) w.r.t. every float input,
3. tinytorch's gradients against central finite differences (``gradcheck``),
4. with ``second_order=True``: the gradient of ``sum(grad · v)`` against torch's
   double backward, and ``gradgradcheck``.

``check_error(fn, *arrays)`` asserts that both libraries reject the input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import tinytorch

RTOL, ATOL = 1e-7, 1e-9


def to_tt(a: np.ndarray, requires_grad: bool) -> tinytorch.Tensor:
    return tinytorch.tensor(a.copy(), requires_grad=requires_grad and a.dtype.kind == "f")


def to_torch(a: np.ndarray, requires_grad: bool) -> torch.Tensor:
    return torch.tensor(a.copy(), requires_grad=requires_grad and a.dtype.kind == "f")


def _flat(out: Any) -> list[Any]:
    if isinstance(out, (tuple, list)):
        return [o for x in out for o in _flat(x)]
    return [out]


def assert_same(ours: Any, theirs: Any, rtol: float = RTOL, atol: float = ATOL, what: str = ""
                ) -> None:  # fmt: skip
    a = ours.detach().numpy() if isinstance(ours, tinytorch.Tensor) else np.asarray(ours)
    if isinstance(theirs, torch.Tensor) and theirs._is_zerotensor():
        theirs = torch.zeros(theirs.shape, dtype=theirs.dtype)
    b = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs torch {b.shape}"
    assert a.dtype == b.dtype or str(b.dtype) == str(a.dtype), (
        f"{what}: dtype {a.dtype} vs {b.dtype}"
    )
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=what, equal_nan=True)


def check(
    fn: Callable[..., Any],
    *arrays: np.ndarray,
    grad: bool = True,
    second_order: bool = False,
    gradcheck: bool = True,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> None:
    """Compare ``fn(tinytorch, ...)`` with ``fn(torch, ...)``: values, grads, finite diffs."""
    tt_in = [to_tt(a, grad) for a in arrays]
    th_in = [to_torch(a, grad) for a in arrays]
    tt_out = _flat(fn(tinytorch, *tt_in))
    th_out = _flat(fn(torch, *th_in))
    assert len(tt_out) == len(th_out)
    for i, (a, b) in enumerate(zip(tt_out, th_out)):
        assert_same(a, b, rtol, atol, what=f"forward output {i}")
    if not grad:
        return
    diff = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    outs = [(a, b) for a, b in zip(tt_out, th_out)
            if isinstance(b, torch.Tensor) and b.requires_grad]  # fmt: skip
    if not outs or not diff:
        return
    rng = np.random.default_rng(1234)
    ws = [rng.standard_normal(b.shape) for _, b in outs]
    tt_loss = sum(((a * tinytorch.tensor(w)).sum() for (a, _), w in zip(outs, ws)),
                  tinytorch.tensor(0.0, dtype=tinytorch.float64))  # fmt: skip
    th_loss = sum((b * torch.tensor(w)).sum() for (_, b), w in zip(outs, ws))
    tt_g = tinytorch.autograd.grad(tt_loss, [tt_in[i] for i in diff], create_graph=second_order,
                                   allow_unused=True)  # fmt: skip
    th_g = torch.autograd.grad(th_loss, [th_in[i] for i in diff], create_graph=second_order,
                               allow_unused=True)  # fmt: skip
    for i, (a, b) in zip(diff, zip(tt_g, th_g)):
        if b is None:
            assert a is None or np.all(a.data == 0), f"grad of input {i}: torch has none"
            continue
        assert a is not None, f"grad of input {i} is None, torch has one"
        assert_same(a, b, rtol, atol, what=f"grad of input {i}")
    if gradcheck:

        def f(*xs: Any) -> Any:
            return _flat(fn(tinytorch, *xs))

        assert tinytorch.autograd.gradcheck(f, tt_in, eps=1e-6, atol=1e-5, rtol=1e-4)
    if second_order:
        pairs = [(a, b, i) for a, b, i in zip(tt_g, th_g, diff)
                 if b is not None and b.requires_grad]  # fmt: skip
        if not pairs:
            return
        vs = [rng.standard_normal(b.shape) for _, b, _ in pairs]
        th2 = sum((b * torch.tensor(v)).sum() for (_, b, _), v in zip(pairs, vs))
        gg_th = torch.autograd.grad(th2, [th_in[i] for i in diff], allow_unused=True)
        # Where our first-order gradient does not depend on the inputs at all
        # (e.g. abs: g * sign(x)), torch's second derivative must be zero.
        ours = [(a, v) for (a, _, _), v in zip(pairs, vs) if a.requires_grad]
        if ours:
            tt2 = sum((a * tinytorch.tensor(v)).sum() for a, v in ours)
            gg_tt = tinytorch.autograd.grad(tt2, [tt_in[i] for i in diff], allow_unused=True)
        else:
            gg_tt = [None] * len(diff)
        for i, (a, b) in zip(diff, zip(gg_tt, gg_th)):
            if b is None or a is None:
                other = a if b is None else b
                assert other is None or np.allclose(np.asarray(other.detach()), 0), (
                    f"second-order grad of input {i}: one library has none, the other nonzero"
                )
                continue
            assert_same(a, b, rtol=1e-6, atol=1e-8, what=f"second-order grad of input {i}")
        if gradcheck:

            def f2(*xs: Any) -> Any:
                return _flat(fn(tinytorch, *xs))

            xs = [to_tt(a, True) for a in arrays]
            assert tinytorch.autograd.gradgradcheck(f2, xs, atol=1e-4, rtol=1e-3)


def check_error(fn: Callable[..., Any], *arrays: np.ndarray, match: str | None = None) -> None:
    """Both libraries must raise for this input (the exception types may differ)."""
    import pytest

    with pytest.raises(Exception):  # noqa: B017 - torch and we may use different types
        fn(torch, *[to_torch(a, False) for a in arrays])
    with pytest.raises(Exception, match=match):
        fn(tinytorch, *[to_tt(a, False) for a in arrays])
