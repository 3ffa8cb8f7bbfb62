"""Every op against torch: forward, gradient, finite differences, second order.

One table of cases drives one parametrized test (a light OpInfo). Inputs are
float64 and drawn away from kinks where an op has one.
"""

from __future__ import annotations

import numpy as np
import pytest
from parity import check, check_error

rng = np.random.default_rng(0)


def R(*shape: int, low: float = -2.0, high: float = 2.0) -> np.ndarray:
    return rng.uniform(low, high, size=shape)


def P(*shape: int) -> np.ndarray:  # positive, away from 0
    return rng.uniform(0.5, 2.0, size=shape)


def AWAY(*shape: int) -> np.ndarray:  # |x| >= 0.3: away from kinks at 0
    x = rng.uniform(0.3, 2.0, size=shape)
    return x * rng.choice([-1.0, 1.0], size=shape)


def INT(*shape: int, high: int = 3) -> np.ndarray:
    return rng.integers(0, high, size=shape)


# (id, fn(lib, *tensors), inputs, second_order)
CASES = [
    ("add", lambda L, a, b: a + b, [R(3, 4), R(3, 4)], True),
    ("add_bcast", lambda L, a, b: a + b, [R(3, 1, 4), R(5, 1)], True),
    ("add_scalar", lambda L, a: 2.5 + a, [R(3)], True),
    ("add_alpha", lambda L, a, b: L.add(a, b, alpha=2), [R(3), R(3)], True),
    ("sub", lambda L, a, b: a - b, [R(2, 3), R(3)], True),
    ("rsub", lambda L, a: 1 - a, [R(2, 3)], True),
    ("mul", lambda L, a, b: a * b, [R(2, 3), R(2, 1)], True),
    ("mul_0d", lambda L, a, b: a * b, [R(), R(4)], True),
    ("div", lambda L, a, b: a / b, [R(3, 4), AWAY(4)], True),
    ("rdiv", lambda L, a: 2 / a, [AWAY(3)], True),
    ("neg", lambda L, a: -a, [R(3)], True),
    ("pow_scalar", lambda L, a: a**3, [R(2, 3)], True),
    ("pow_half", lambda L, a: a**0.5, [P(4)], True),
    ("pow_neg", lambda L, a: a**-1.5, [P(4)], True),
    ("pow_tensor", lambda L, a, b: a**b, [P(3, 2), R(2)], True),
    ("rpow", lambda L, a: 2.0**a, [R(3)], True),
    ("exp", lambda L, a: a.exp(), [R(3, 2)], True),
    ("expm1", lambda L, a: L.expm1(a), [R(3)], True),
    ("log", lambda L, a: a.log(), [P(5)], True),
    ("log1p", lambda L, a: a.log1p(), [P(5)], True),
    ("log2", lambda L, a: a.log2(), [P(5)], True),
    ("sqrt", lambda L, a: a.sqrt(), [P(5)], True),
    ("rsqrt", lambda L, a: a.rsqrt(), [P(5)], True),
    ("abs", lambda L, a: a.abs(), [AWAY(6)], True),
    ("erf", lambda L, a: a.erf(), [R(6) * 2], True),
    ("erf_fn", lambda L, a: L.erf(a), [R(6) * 4], False),
    ("sin", lambda L, a: a.sin(), [R(4)], True),
    ("cos", lambda L, a: a.cos(), [R(4)], True),
    ("tanh", lambda L, a: a.tanh(), [R(4)], True),
    ("sigmoid", lambda L, a: a.sigmoid(), [R(4) * 5], True),
    ("relu", lambda L, a: a.relu(), [AWAY(6)], True),
    ("reciprocal", lambda L, a: a.reciprocal(), [AWAY(6)], True),
    ("square", lambda L, a: a.square(), [R(6)], True),
    ("clamp", lambda L, a: a.clamp(-0.5, 0.7), [AWAY(10)], True),
    ("clamp_min", lambda L, a: L.clamp(a, min=0.1), [AWAY(10)], True),
    ("clamp_tensor", lambda L, a, lo: a.clamp(min=lo), [R(3, 4), R(4)], True),
    ("clip", lambda L, a: a.clip(max=0.2), [AWAY(10)], True),
    ("maximum", lambda L, a, b: L.maximum(a, b), [R(3, 4), R(4)], True),
    ("minimum", lambda L, a, b: L.minimum(a, b), [R(3, 4), R(3, 4)], True),
    ("where", lambda L, a, b: L.where(a > 0, a, b), [R(3, 4), R(4)], True),
    ("lerp", lambda L, a, b: L.lerp(a, b, 0.3), [R(3), R(3)], True),
    ("lerp_tensor_w", lambda L, a, b, w: L.lerp(a, b, w), [R(3), R(3), R(3)], True),
    ("sum", lambda L, a: a.sum(), [R(3, 4)], True),
    ("sum_dim", lambda L, a: a.sum(1), [R(3, 4, 2)], True),
    ("sum_dims_keep", lambda L, a: a.sum((0, 2), keepdim=True), [R(3, 4, 2)], True),
    ("sum_neg_dim", lambda L, a: a.sum(-1), [R(3, 4)], True),
    ("mean", lambda L, a: a.mean(), [R(3, 4)], True),
    ("mean_dim", lambda L, a: a.mean((0, -1)), [R(3, 4, 2)], True),
    ("prod", lambda L, a: a.prod(), [AWAY(5)], True),
    ("prod_dim", lambda L, a: a.prod(1, keepdim=True), [AWAY(3, 4)], True),
    ("amax", lambda L, a: a.amax(1), [R(3, 4)], True),
    ("amin_keep", lambda L, a: a.amin((0, 1), keepdim=True), [R(3, 4)], True),
    ("max_full", lambda L, a: a.max(), [R(3, 4)], True),
    ("min_full", lambda L, a: a.min(), [R(3, 4)], True),
    ("max_dim", lambda L, a: a.max(1), [R(3, 4)], True),
    ("min_dim_keep", lambda L, a: a.min(0, keepdim=True), [R(3, 4)], True),
    ("max_ties", lambda L, a: a.max(), [np.array([1.0, 3.0, 3.0, 2.0])], False),
    ("amax_ties", lambda L, a: a.amax(0), [np.array([[1.0, 3.0], [1.0, 2.0]])], False),
    ("argmax", lambda L, a: a.argmax(1), [R(3, 4)], False),
    ("argmin_full", lambda L, a: a.argmin(), [R(3, 4)], False),
    ("var", lambda L, a: a.var(), [R(3, 4)], True),
    ("var_dim_biased", lambda L, a: a.var(1, unbiased=False), [R(3, 4)], True),
    ("var_correction", lambda L, a: L.var(a, 0, correction=0, keepdim=True), [R(3, 4)], True),
    ("std", lambda L, a: a.std(1), [R(3, 4)], True),
    ("logsumexp", lambda L, a: a.logsumexp(1), [R(3, 4)], True),
    ("logsumexp_big", lambda L, a: a.logsumexp(0), [R(3, 2) * 1e4], False),
    ("softmax", lambda L, a: a.softmax(-1), [R(3, 4)], True),
    ("log_softmax", lambda L, a: a.log_softmax(0), [R(3, 4)], True),
    ("norm", lambda L, a: a.norm(), [R(3, 4)], True),
    ("norm_dim", lambda L, a: a.norm(dim=1), [R(3, 4)], True),
    ("norm_p1", lambda L, a: a.norm(p=1), [AWAY(3, 4)], True),
    ("norm_p3", lambda L, a: L.norm(a, p=3, dim=0), [AWAY(3, 4)], True),
    ("cumsum", lambda L, a: a.cumsum(1), [R(3, 4)], True),
    ("all", lambda L, a: (a > 0).all(1), [R(3, 4)], False),
    ("any", lambda L, a: (a > 0).any(), [R(3, 4)], False),
    ("matmul_2d", lambda L, a, b: a @ b, [R(3, 4), R(4, 5)], True),
    ("matmul_1d_2d", lambda L, a, b: a @ b, [R(4), R(4, 5)], True),
    ("matmul_2d_1d", lambda L, a, b: a @ b, [R(3, 4), R(4)], True),
    ("matmul_1d_1d", lambda L, a, b: L.matmul(a, b), [R(4), R(4)], True),
    ("matmul_batch_bcast", lambda L, a, b: a @ b, [R(2, 1, 3, 4), R(5, 4, 2)], True),
    ("matmul_batch_2d", lambda L, a, b: a @ b, [R(2, 3, 4), R(4, 2)], True),
    ("mm", lambda L, a, b: L.mm(a, b), [R(3, 4), R(4, 2)], True),
    ("bmm", lambda L, a, b: L.bmm(a, b), [R(2, 3, 4), R(2, 4, 2)], True),
    ("outer", lambda L, a, b: L.outer(a, b), [R(3), R(4)], True),
    ("dot", lambda L, a, b: L.dot(a, b), [R(3), R(3)], True),
    ("einsum_mm", lambda L, a, b: L.einsum("ij,jk->ik", a, b), [R(3, 4), R(4, 2)], True),
    ("einsum_sum", lambda L, a: L.einsum("ij->", a), [R(3, 4)], True),
    (
        "einsum_batch",
        lambda L, a, b: L.einsum("bij,bkj->bik", a, b),
        [R(2, 3, 4), R(2, 5, 4)],
        True,
    ),
    ("einsum_implicit", lambda L, a, b: L.einsum("ij,jk", a, b), [R(3, 4), R(4, 2)], True),
    ("einsum_outer_sum", lambda L, a, b: L.einsum("i,j->j", a, b), [R(3), R(4)], True),
    (
        "einsum_3",
        lambda L, a, b, c: L.einsum("ij,jk,kl->il", a, b, c),
        [R(2, 3), R(3, 4), R(4, 2)],
        True,
    ),
    ("view", lambda L, a: a.view(4, 3), [R(3, 4)], True),
    ("view_infer", lambda L, a: a.view(-1, 2), [R(3, 4)], True),
    ("reshape_nc", lambda L, a: a.t().reshape(-1), [R(3, 4)], True),
    ("permute", lambda L, a: a.permute(2, 0, 1), [R(2, 3, 4)], True),
    ("transpose", lambda L, a: a.transpose(0, 2), [R(2, 3, 4)], True),
    ("t", lambda L, a: a.t(), [R(2, 3)], True),
    ("T", lambda L, a: a.T, [R(2, 3)], True),
    ("mT", lambda L, a: a.mT, [R(4, 2, 3)], True),
    ("squeeze", lambda L, a: a.squeeze(), [R(1, 3, 1, 2)], True),
    ("squeeze_dim", lambda L, a: a.squeeze(2), [R(1, 3, 1, 2)], True),
    ("squeeze_tuple", lambda L, a: a.squeeze((0, 2)), [R(1, 3, 1, 2)], True),
    ("unsqueeze", lambda L, a: a.unsqueeze(-1), [R(3, 2)], True),
    ("flatten", lambda L, a: a.flatten(1), [R(2, 3, 4)], True),
    ("flatten_mid", lambda L, a: a.flatten(0, 1), [R(2, 3, 4)], True),
    ("unflatten", lambda L, a: a.unflatten(1, (2, -1)), [R(3, 4)], True),
    ("expand", lambda L, a: a.expand(3, 4, 2), [R(4, 1)], True),
    ("expand_neg1", lambda L, a: a.expand(2, -1, -1), [R(1, 4, 2)], True),
    ("expand_as", lambda L, a, b: a.expand_as(b), [R(1, 3), R(2, 3)], True),
    ("broadcast_to", lambda L, a: L.broadcast_to(a, (2, 3)), [R(3)], True),
    ("repeat", lambda L, a: a.repeat(2, 1, 3), [R(3, 2)], True),
    ("flip", lambda L, a: a.flip(0), [R(3, 2)], True),
    ("flip_dims", lambda L, a: a.flip((0, 1)), [R(3, 2)], True),
    ("roll", lambda L, a: a.roll(1, 0), [R(4, 2)], True),
    ("roll_multi", lambda L, a: L.roll(a, (1, -1), (0, 1)), [R(4, 3)], True),
    ("roll_flat", lambda L, a: L.roll(a, 2), [R(4, 3)], True),
    ("contiguous", lambda L, a: a.t().contiguous(), [R(3, 2)], True),
    ("cat", lambda L, a, b: L.cat([a, b], 1), [R(2, 3), R(2, 1)], True),
    ("cat_neg", lambda L, a, b: L.cat((a, b), -1), [R(2, 3), R(2, 2)], True),
    ("stack", lambda L, a, b: L.stack([a, b], 1), [R(2, 3), R(2, 3)], True),
    ("split", lambda L, a: a.split(2, 1), [R(2, 5)], True),
    ("split_sizes", lambda L, a: a.split([1, 4], 1), [R(2, 5)], True),
    ("chunk", lambda L, a: a.chunk(3, 0), [R(7, 2)], True),
    ("unbind", lambda L, a: a.unbind(1), [R(2, 3)], True),
    ("tril", lambda L, a: a.tril(), [R(3, 4)], True),
    ("triu_k", lambda L, a: a.triu(1), [R(2, 3, 3)], True),
    ("pad", lambda L, a: L.nn.functional.pad(a, (1, 2)), [R(2, 3)], True),
    ("pad_2d_value", lambda L, a: L.nn.functional.pad(a, (1, 0, 2, 1), value=0.5), [R(2, 3)], True),
    ("pad_negative_crops", lambda L, a: L.nn.functional.pad(a, (-1, 1)), [R(2, 3)], True),
    ("getitem_int", lambda L, a: a[1], [R(3, 4)], True),
    ("getitem_slice_step", lambda L, a: a[::2, 1:], [R(5, 4)], True),
    ("getitem_neg_step_free", lambda L, a: a[..., 1], [R(2, 3, 4)], True),
    ("getitem_none", lambda L, a: a[None, :, None], [R(3)], True),
    ("getitem_bool", lambda L, a: a[a > 0], [R(3, 4)], True),
    ("getitem_list_repeat", lambda L, a: a[[0, 2, 0, 0]], [R(3, 4)], True),
    ("getitem_tensor_idx", lambda L, a, i: a[i], [R(3, 4), INT(5, 2)], True),
    ("getitem_two_adv", lambda L, a, i, j: a[i, :, j], [R(3, 2, 4), INT(5), INT(5)], True),
    ("gather", lambda L, a, i: a.gather(1, i), [R(3, 4), INT(3, 6, high=4)], True),
    ("gather_dim0", lambda L, a, i: L.gather(a, 0, i), [R(3, 4), INT(2, 4)], True),
    (
        "scatter_add",
        lambda L, a, i, s: a.scatter_add(1, i, s),
        [R(3, 4), INT(3, 5, high=4), R(3, 5)],
        True,
    ),
    ("index_select", lambda L, a, i: a.index_select(1, i), [R(3, 4), INT(6, high=4)], True),
    ("masked_fill", lambda L, a: a.masked_fill(a > 0, 0.5), [R(3, 4)], True),
    ("masked_select", lambda L, a: a.masked_select(a > 0), [R(3, 4)], True),
    ("floor", lambda L, a: a.floor(), [R(5)], False),
    ("ceil", lambda L, a: a.ceil(), [R(5)], False),
    ("round", lambda L, a: a.round(), [R(5)], False),
    ("sign", lambda L, a: a.sign(), [R(5)], False),
    ("trunc", lambda L, a: a.trunc(), [R(5)], False),
    ("mod", lambda L, a, b: a % b, [R(5) * 5, AWAY(5)], False),
    ("non_contiguous_in", lambda L, a: (a.t() * 2).exp(), [R(3, 4)], True),
]


@pytest.mark.parametrize("name,fn,inputs,second", CASES, ids=[c[0] for c in CASES])
def test_op(name, fn, inputs, second):
    check(fn, *inputs, second_order=second)


ERROR_CASES = [
    ("add_shapes", lambda L, a, b: a + b, [R(3, 4), R(5)]),
    ("matmul_shapes", lambda L, a, b: a @ b, [R(3, 4), R(5, 2)]),
    ("view_size", lambda L, a: a.view(5), [R(3, 4)]),
    ("cat_shapes", lambda L, a, b: L.cat([a, b], 0), [R(2, 3), R(2, 4)]),
    ("dim_range", lambda L, a: a.sum(3), [R(2, 3)]),
    ("index_range", lambda L, a: a[5], [R(2, 3)]),
    ("float_index", lambda L, a, i: a[i], [R(3), R(2)]),
    ("backward_nonscalar", lambda L, a: a.exp().backward(), [R(3)]),
]


@pytest.mark.parametrize("name,fn,inputs", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_error(name, fn, inputs):
    check_error(fn, *inputs)


def test_floor_divide_matches_torch():
    a, b = R(6) * 5, AWAY(6)
    check(lambda L, x, y: x // y, a, b, grad=False)
    check(lambda L, x, y: x // y, INT(6, high=9) - 4, INT(6, high=3) + 1, grad=False)
    check(lambda L, x, y: x % y, INT(6, high=9) - 4, INT(6, high=3) + 1, grad=False)


def test_shape_error_names_op_and_shapes():
    import tinytorch

    with pytest.raises(RuntimeError, match=r"add.*\[3, 4\] and \[5\]"):
        tinytorch.ones(3, 4) + tinytorch.ones(5)
    with pytest.raises(RuntimeError, match="3x4 and 5x2"):
        tinytorch.ones(3, 4) @ tinytorch.ones(5, 2)
