"""Tensor creation, dtypes and promotion, conversion, repr, in-place ops — against torch."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from parity import assert_same

import tinytorch as tt

DTYPES = ["float32", "float64", "int64", "int32", "bool"]


def make(lib, dtype: str, shape=(2, 3)):
    data = np.arange(1, int(np.prod(shape)) + 1).reshape(shape) % 3
    return lib.tensor(data.astype(dtype))


@pytest.mark.parametrize("da,db", list(itertools.product(DTYPES, repeat=2)))
def test_promotion_tensor_tensor(da, db):
    for shape_b in [(2, 3), ()]:
        ours = make(tt, da) + make(tt, db, shape_b) if da != "bool" or db != "bool" else None
        if ours is None:
            continue
        theirs = make(torch, da) + make(torch, db, shape_b)
        assert ours.dtype.name == str(theirs.dtype).split(".")[1], (da, db, shape_b)


@pytest.mark.parametrize("da", DTYPES)
@pytest.mark.parametrize("scalar", [2, 2.5, True])
def test_promotion_with_python_scalars(da, scalar):
    for op in (lambda a: a * scalar, lambda a: scalar * a, lambda a: a / 2, lambda a: a - scalar):
        if da == "bool" and scalar is True:
            continue
        try:
            theirs = op(make(torch, da))
        except RuntimeError:
            with pytest.raises(Exception):  # noqa: B017
                op(make(tt, da))
            continue
        ours = op(make(tt, da))
        assert ours.dtype.name == str(theirs.dtype).split(".")[1], (da, scalar)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


def test_int_division_gives_float():
    a, b = tt.tensor([3, 4]), tt.tensor([2, 2])
    assert (a / b).dtype == tt.float32 and (a / b).tolist() == [1.5, 2.0]
    assert (a // b).dtype == tt.int64


@pytest.mark.parametrize(
    "fn",
    [
        lambda L: L.tensor([1.0, 2.0]),
        lambda L: L.tensor([[1, 2], [3, 4]]),
        lambda L: L.tensor(True),
        lambda L: L.tensor(np.array([1.0, 2.0])),
        lambda L: L.zeros(2, 3),
        lambda L: L.zeros((2, 3), dtype=L.int64),
        lambda L: L.ones(4),
        lambda L: L.full((2, 2), 7),
        lambda L: L.full((2, 2), 7.0),
        lambda L: L.full((2,), True),
        lambda L: L.zeros_like(L.tensor([1, 2])),
        lambda L: L.ones_like(L.tensor([1.0, 2.0], dtype=L.float64)),
        lambda L: L.full_like(L.tensor([1.0, 2.0]), 3),
        lambda L: L.arange(5),
        lambda L: L.arange(1, 4, 0.5),
        lambda L: L.arange(0.0, 1.0, 0.1),
        lambda L: L.arange(10, 0, -3),
        lambda L: L.linspace(0, 1, 5),
        lambda L: L.eye(3),
        lambda L: L.eye(2, 3, dtype=L.float64),
        lambda L: L.empty(2, 3).shape,
        lambda L: L.tensor([]),
    ],
)
def test_creation_matches_torch(fn):
    ours, theirs = fn(tt), fn(torch)
    if isinstance(theirs, torch.Size):
        assert tuple(ours) == tuple(theirs)
        return
    assert_same(ours, theirs, rtol=1e-6)


def test_random_creation_shapes_dtypes_and_seed():
    tt.manual_seed(3)
    a = tt.rand(2, 3)
    b = tt.randn(4, dtype=tt.float64)
    c = tt.randint(0, 5, (10,))
    assert a.dtype == tt.float32 and a.shape == (2, 3) and (a.numpy() < 1).all()
    assert b.dtype == tt.float64
    assert c.dtype == tt.int64 and c.numpy().min() >= 0 and c.numpy().max() < 5
    tt.manual_seed(3)
    assert np.array_equal(tt.rand(2, 3).numpy(), a.numpy())
    assert tt.rand_like(a).shape == a.shape and tt.randn_like(b).dtype == tt.float64
    x = tt.empty(10000).uniform_(-1, 2)
    assert x.numpy().min() >= -1 and x.numpy().max() < 2
    y = tt.empty(20000).normal_(3.0, 0.5)
    assert abs(y.numpy().mean() - 3.0) < 0.02 and abs(y.numpy().std() - 0.5) < 0.02


def test_from_numpy_shares_memory():
    arr = np.zeros(3, dtype=np.float32)
    t = tt.from_numpy(arr)
    arr[0] = 5
    assert t[0].item() == 5
    t.add_(1)
    assert arr.tolist() == [6, 1, 1]
    assert np.asarray(t) is arr


def test_attributes_and_conversion():
    x = tt.tensor([[1.5, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert x.shape == (2, 3) and x.size() == (2, 3) and x.size(1) == 3
    assert x.dim() == 2 and x.ndim == 2 and x.numel() == 6 and len(x) == 2
    assert x.dtype == tt.float32
    assert x.tolist() == [[1.5, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert x.double().dtype == tt.float64 and x.long().tolist() == [[1, 2, 3], [4, 5, 6]]
    assert x.int().dtype == tt.int32 and x.bool().dtype == tt.bool
    assert x.to(tt.float64).dtype == tt.float64 and x.type_as(tt.tensor([1])).dtype == tt.int64
    assert x.float() is x
    assert x[0, 0].item() == 1.5 and isinstance(x[0, 0].item(), float)
    assert [r.tolist() for r in x] == x.tolist()
    with pytest.raises(RuntimeError, match="cannot be converted to Scalar"):
        x.item()
    with pytest.raises(RuntimeError, match="requires grad"):
        tt.ones(2, requires_grad=True).numpy()
    assert repr(x.shape) == "tinytorch.Size([2, 3])"


@pytest.mark.parametrize(
    "fn",
    [
        lambda L: L.tensor([1.0, 2.0, 3.0]),
        lambda L: L.tensor([1.5, 2.25]),
        lambda L: L.tensor([[1.0, -2.5], [3.0, 4.0]]),
        lambda L: L.tensor(3.5),
        lambda L: L.tensor([1, 2, 3]),
        lambda L: L.tensor([True, False]),
        lambda L: L.tensor([1.0, 1e5]),
        lambda L: L.tensor([1e-6, 1.0]),
        lambda L: L.tensor([1.0, 2.0], dtype=L.float64),
        lambda L: L.tensor([1, 2], dtype=L.int32),
        lambda L: L.tensor([1.0, 2.0], requires_grad=True),
        lambda L: L.tensor([1.0, 2.0], requires_grad=True) * 2,
        lambda L: L.tensor([1.0, 2.0], requires_grad=True).sum(),
        lambda L: L.zeros(2, 2, 2),
        lambda L: L.tensor([]),
    ],
)
def test_repr_matches_torch(fn):
    assert repr(fn(tt)) == repr(fn(torch)).replace("torch.", "tinytorch.")


@pytest.mark.parametrize(
    "op",
    [
        lambda t: t.add_(2),
        lambda t: t.add_(t, alpha=2),
        lambda t: t.sub_(1.5),
        lambda t: t.mul_(3),
        lambda t: t.div_(4),
        lambda t: t.zero_(),
        lambda t: t.fill_(7),
        lambda t: t.clamp_(0.5, 1.5),
        lambda t: t.copy_(t * 0 + 9),
        lambda t: t.masked_fill_(t > 1, -1.0),
    ],
)
def test_inplace_ops_match_torch(op):
    a = tt.tensor([[0.0, 1.0, 2.0], [3.0, -1.0, 0.25]])
    b = torch.tensor([[0.0, 1.0, 2.0], [3.0, -1.0, 0.25]])
    assert op(a) is a
    op(b)
    assert_same(a, b)


def test_inplace_dtype_rules():
    x = tt.tensor([1, 2])
    with pytest.raises(RuntimeError, match="can't be cast"):
        x.add_(1.5)
    y = tt.tensor([1.0, 2.0])
    y.add_(tt.tensor([1, 1]))
    assert y.dtype == tt.float32 and y.tolist() == [2.0, 3.0]


def test_comparisons_and_logical_ops():
    a = tt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for op in ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"):
        r = getattr(a, op)(2.0)
        e = getattr(torch.tensor([1.0, 2.0, 3.0]), op)(2.0)
        assert r.dtype == tt.bool and not r.requires_grad
        assert r.tolist() == e.tolist()
    m = a > 1
    assert (m & (a < 3)).tolist() == [False, True, False]
    assert (m | (a < 2)).tolist() == [True, True, True]
    assert (~m).tolist() == [True, False, False]
    assert tt.logical_xor(m, a < 3).tolist() == [True, False, True]
    assert tt.eq(a, a).all().item() and a.equal(a)


# --- property-based -------------------------------------------------------------------

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_broadcasting_binary_ops_property(data):
    shape = data.draw(shapes)
    other = data.draw(hnp.broadcastable_shapes(shape, min_dims=0, max_dims=3, max_side=3))
    op = data.draw(st.sampled_from(["add", "sub", "mul", "div", "maximum"]))
    a = np.random.default_rng(0).uniform(0.5, 2, shape)
    b = np.random.default_rng(1).uniform(0.5, 2, other)
    ta, tb = tt.tensor(a, requires_grad=True), tt.tensor(b, requires_grad=True)
    xa, xb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    getattr(tt, op)(ta, tb).sum().backward()
    getattr(torch, op)(xa, xb).sum().backward()
    assert_same(ta.grad, xa.grad)
    assert_same(tb.grad, xb.grad)


@st.composite
def index_exprs(draw, shape):
    idx = []
    for n in shape:
        kind = draw(st.sampled_from(["int", "slice", "full", "list"]))
        if kind == "int":
            idx.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            start = draw(st.integers(-n, n))
            stop = draw(st.integers(-n, n))
            step = draw(st.integers(1, 2))
            idx.append(slice(start, stop, step))
        elif kind == "list":
            idx.append(draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=4)))
        else:
            idx.append(slice(None))
    # torch and numpy order dims differently when advanced indices are split by slices
    lists = [i for i, k in enumerate(idx) if isinstance(k, list)]
    if len(lists) > 1:
        for i in lists[1:]:
            idx[i] = slice(None)
    return tuple(idx)


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_indexing_property(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    idx = data.draw(index_exprs(shape))
    a = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    ta, xa = tt.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    out, ref = ta[idx], xa[idx]
    assert_same(out, ref)
    w = np.random.default_rng(0).standard_normal(ref.shape)
    (out * tt.tensor(w)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    assert_same(ta.grad, xa.grad)  # repeated list indices must accumulate
