"""Pooling against torch: max (indices, ties, NaN, -inf padding), average
(count_include_pad, ceil_mode, divisor_override), adaptive average/max with uneven
windows; functional forms with finite differences and double backward, the layers,
repr, float32, non-contiguous input and the errors."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest
import torch
from parity import assert_same, check_error
from parity import check as parity_check
from test_nn_conv import F32, compare_layers, twin

import tinytorch
from tinytorch.nn.functional._pool import _pool_geometry, max_pool_reference
from tinytorch.ops.conv import MaxPool

rng = np.random.default_rng(1)

# Forward and gradients to 1e-10 relative (the helper's default is looser).
check = functools.partial(parity_check, rtol=1e-10, atol=1e-12)


def R(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape)


def fn(lib: Any) -> Any:
    return lib.nn.functional


X2 = R(2, 3, 7, 6)
MAX2D = [
    ("k2", {"kernel_size": 2}),
    ("k3s2p1", {"kernel_size": 3, "stride": 2, "padding": 1}),
    ("ceil", {"kernel_size": 3, "stride": 2, "ceil_mode": True}),
    (
        "rect_dilated",
        {
            "kernel_size": (2, 3),
            "stride": (1, 2),
            "padding": (1, 1),
            "dilation": (2, 1),
            "ceil_mode": True,
        },
    ),
    ("overlap", {"kernel_size": 3, "stride": 1}),
]


@pytest.mark.parametrize("name,kw", MAX2D, ids=[c[0] for c in MAX2D])
def test_max_pool2d(name: str, kw: dict) -> None:
    check(lambda lib, x: fn(lib).max_pool2d(x, **kw), X2, second_order=name == "k3s2p1")
    ours = tinytorch.nn.functional.max_pool2d(tinytorch.tensor(X2), return_indices=True, **kw)
    theirs = torch.nn.functional.max_pool2d(torch.tensor(X2), return_indices=True, **kw)
    assert_same(ours[0], theirs[0])
    np.testing.assert_array_equal(ours[1].data, theirs[1].numpy())
    assert ours[1].dtype == tinytorch.int64


def test_max_pool1d_and_3d() -> None:
    x = R(2, 3, 9)
    check(lambda lib, x: fn(lib).max_pool1d(x, 3, stride=2, padding=1), x, second_order=True)
    check(lambda lib, x: fn(lib).max_pool1d(x, 2, ceil_mode=True), x)
    check(lambda lib, x: fn(lib).max_pool3d(x, 2, stride=(1, 2, 1)), R(1, 2, 3, 4, 3))


def test_max_pool_ties_nan_and_all_padding() -> None:
    """First maximum wins on ties; NaN propagates; an all -inf window points inside."""
    cases = [
        (np.array([[[1.0, 3.0, 3.0, 0.0, 2.0, 2.0]]]), {"kernel_size": 3, "stride": 1}),
        (np.array([[[1.0, np.nan, 3.0, -np.inf]]]), {"kernel_size": 2}),
        (np.full((1, 1, 4), -np.inf), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ]
    for x, kw in cases:
        xa = tinytorch.tensor(x, requires_grad=True)
        xb = torch.tensor(x, requires_grad=True)
        ya, ia = tinytorch.nn.functional.max_pool1d(xa, return_indices=True, **kw)
        yb, ib = torch.nn.functional.max_pool1d(xb, return_indices=True, **kw)
        assert_same(ya, yb)
        np.testing.assert_array_equal(ia.data, ib.numpy())
        ya.sum().backward()
        yb.sum().backward()
        assert_same(xa.grad, xb.grad)


FUSED = [
    ("tiled", (2, 3, 6, 8), {"kernel_size": 2}),
    ("remainder", (2, 3, 7, 9), {"kernel_size": 2}),
    ("gaps", (2, 3, 9, 9), {"kernel_size": 2, "stride": 3}),
    ("dilated", (2, 3, 9, 8), {"kernel_size": 2, "stride": 3, "dilation": 2}),
    ("overlap_pad", (2, 3, 7, 6), {"kernel_size": 3, "stride": (2, 1), "padding": 1}),
    ("ceil", (2, 3, 7, 6), {"kernel_size": 3, "stride": 2, "ceil_mode": True}),
]


@pytest.mark.parametrize("name,shape,kw", FUSED, ids=[c[0] for c in FUSED])
def test_fused_max_pool_matches_reference(name: str, shape: tuple, kw: dict) -> None:
    """The ``MaxPool`` primitive against the ``Index`` gather it replaces: output, the
    first-order numpy backward, and create_graph (double backward). Rounded inputs make
    ties (the first maximum must win) and ReLU-like zeros common."""
    x = np.maximum(np.round(R(*shape) * 2) / 2, 0)
    geom = _pool_geometry("max_pool2d", shape, kw["kernel_size"], kw.get("stride"),
                          kw.get("padding", 0), kw.get("dilation", 1),
                          kw.get("ceil_mode", False))  # fmt: skip
    g = R(*(shape[:2] + geom.out))

    def run(fn: Any, create_graph: bool) -> list[np.ndarray]:
        xt = tinytorch.tensor(x, requires_grad=True)
        out = fn(xt)
        (gx,) = tinytorch.autograd.grad(out, xt, tinytorch.tensor(g), create_graph=create_graph)
        if not create_graph:
            return [out.data, gx.data]
        gt = tinytorch.tensor(g, requires_grad=True)
        (gx2,) = tinytorch.autograd.grad(out, xt, gt, create_graph=True)
        ((gx2 * gx2).sum() + (out * out).sum()).backward()
        return [out.data, gx.data, xt.grad.data, gt.grad.data]

    def fused(xt: Any) -> Any:
        return MaxPool.apply(xt, geom=geom, record=True)

    for create_graph in (False, True):
        for a, b in zip(run(fused, create_graph), run(lambda xt: max_pool_reference(xt, geom),
                                                      create_graph)):  # fmt: skip
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)  # sum order


def test_fused_max_pool_nonfinite() -> None:
    """NaN and -inf inputs, and an infinite output gradient (a 0 mask times inf must not
    leak NaN into the non-winners), as torch."""
    x = R(1, 2, 4, 6)
    x[0, 0, 0, 0] = np.nan
    x[0, 1, :2, :2] = -np.inf
    for gscale in (1.0, np.inf):
        xa = tinytorch.tensor(x, requires_grad=True)
        xb = torch.tensor(x, requires_grad=True)
        ya = tinytorch.nn.functional.max_pool2d(xa, 2)
        yb = torch.nn.functional.max_pool2d(xb, 2)
        assert_same(ya, yb)
        g = np.ones(ya.shape) * gscale
        ya.backward(tinytorch.tensor(g))
        yb.backward(torch.tensor(g))
        assert_same(xa.grad, xb.grad)
    xa = tinytorch.tensor(np.where(np.isnan(x), 0.0, x), requires_grad=True)
    xb = torch.tensor(xa.data.copy(), requires_grad=True)
    g = np.ones((1, 2, 2, 3))
    g[0, 0, 0, 1] = np.inf
    tinytorch.nn.functional.max_pool2d(xa, 2).backward(tinytorch.tensor(g))
    torch.nn.functional.max_pool2d(xb, 2).backward(torch.tensor(g))
    assert_same(xa.grad, xb.grad)


AVG2D = [
    ("k2", {"kernel_size": 2}),
    ("pad", {"kernel_size": 3, "stride": 2, "padding": 1}),
    ("pad_exclude", {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
    ("ceil", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
    (
        "ceil_exclude",
        {
            "kernel_size": (3, 2),
            "stride": 2,
            "padding": 1,
            "ceil_mode": True,
            "count_include_pad": False,
        },
    ),
    ("divisor", {"kernel_size": (2, 3), "stride": 1, "divisor_override": 5}),
]


@pytest.mark.parametrize("name,kw", AVG2D, ids=[c[0] for c in AVG2D])
def test_avg_pool2d(name: str, kw: dict) -> None:
    check(lambda lib, x: fn(lib).avg_pool2d(x, **kw), X2, second_order=name == "ceil_exclude")


def test_avg_pool1d_and_3d() -> None:
    x = R(2, 3, 9)
    check(lambda lib, x: fn(lib).avg_pool1d(x, 3, 2, 1, ceil_mode=True), x, second_order=True)
    check(lambda lib, x: fn(lib).avg_pool1d(x, 4, 3, 2, count_include_pad=False), x)
    check(lambda lib, x: fn(lib).avg_pool3d(x, 2, padding=1), R(1, 2, 3, 4, 3))


ADAPTIVE = [1, 3, (4, 5), (None, 2), (7, 6), (5, 4), (2, 3)]


@pytest.mark.parametrize("size", ADAPTIVE, ids=[str(s) for s in ADAPTIVE])
def test_adaptive_pool2d(size: Any) -> None:
    check(lambda lib, x: fn(lib).adaptive_avg_pool2d(x, size), X2, second_order=size == (5, 4))
    check(lambda lib, x: fn(lib).adaptive_max_pool2d(x, size), X2)
    ours = tinytorch.nn.functional.adaptive_max_pool2d(tinytorch.tensor(X2), size, True)
    theirs = torch.nn.functional.adaptive_max_pool2d(torch.tensor(X2), size, True)
    np.testing.assert_array_equal(ours[1].data, theirs[1].numpy())


def test_adaptive_pool1d_and_unbatched() -> None:
    x = R(2, 3, 9)
    for size in (1, 4, 5, 9):
        check(lambda lib, x, size=size: fn(lib).adaptive_avg_pool1d(x, size), x)
        check(lambda lib, x, size=size: fn(lib).adaptive_max_pool1d(x, size), x)
    check(lambda lib, x: fn(lib).adaptive_avg_pool2d(x, (2, 4)), R(3, 5, 7))
    check(lambda lib, x: fn(lib).max_pool2d(x, 2), R(3, 5, 7))
    check(lambda lib, x: fn(lib).avg_pool2d(x.transpose(2, 3), 2), X2)  # non-contiguous


def test_float32_keeps_dtype() -> None:
    x = R(2, 3, 8, 8).astype(np.float32)
    for name, args in (("max_pool2d", (2,)), ("avg_pool2d", (3, 2, 1)),
                       ("adaptive_avg_pool2d", ((3, 5),))):  # fmt: skip
        xa = tinytorch.tensor(x, requires_grad=True)
        xb = torch.tensor(x, requires_grad=True)
        ya = getattr(tinytorch.nn.functional, name)(xa, *args)
        yb = getattr(torch.nn.functional, name)(xb, *args)
        assert ya.dtype == tinytorch.float32
        assert_same(ya, yb, **F32)
        (ya * ya).sum().backward()
        (yb * yb).sum().backward()
        assert xa.grad.dtype == tinytorch.float32
        assert_same(xa.grad, xb.grad, **F32)


LAYERS = [
    ("MaxPool1d(3)", (2, 3, 10)),
    ("MaxPool1d(3, stride=2, padding=1, dilation=2, ceil_mode=True)", (2, 3, 10)),
    ("MaxPool2d(2)", (2, 3, 7, 6)),
    ("MaxPool2d((3, 2), stride=(2, 1), padding=1, ceil_mode=True)", (2, 3, 7, 6)),
    ("AvgPool1d(3, 2, 1)", (2, 3, 10)),
    ("AvgPool1d(2, ceil_mode=True, count_include_pad=False)", (2, 3, 9)),
    ("AvgPool2d(2)", (2, 3, 7, 6)),
    (
        "AvgPool2d((3, 2), stride=1, padding=1, count_include_pad=False, divisor_override=4)",
        (2, 3, 7, 6),
    ),
    ("AdaptiveAvgPool1d(4)", (2, 3, 10)),
    ("AdaptiveAvgPool2d((3, None))", (2, 3, 7, 6)),
    ("AdaptiveAvgPool2d(1)", (2, 3, 7, 6)),
    ("AdaptiveMaxPool1d(3)", (2, 3, 10)),
    ("AdaptiveMaxPool2d((2, 4))", (2, 3, 7, 6)),
]


@pytest.mark.parametrize("spec,shape", LAYERS, ids=[s for s, _ in LAYERS])
def test_layer_matches_torch(spec: str, shape: tuple[int, ...]) -> None:
    ours, theirs = twin(spec)
    compare_layers(ours, theirs, R(*shape))
    assert repr(ours) == repr(theirs)


def test_layer_return_indices_and_noncontiguous() -> None:
    ours, theirs = twin("MaxPool2d(2, return_indices=True)")
    x = R(2, 3, 6, 7)
    (ya, ia), (yb, ib) = ours(tinytorch.tensor(x)), theirs(torch.tensor(x))
    assert_same(ya, yb)
    np.testing.assert_array_equal(ia.data, ib.numpy())
    compare_layers(*twin("AvgPool2d(3, 2, 1)"), R(2, 3, 6, 7), transpose=(2, 3))
    compare_layers(*twin("MaxPool2d(3, 2, 1)"), R(2, 3, 6, 7), transpose=(2, 3))


ERRORS = [
    ("pad_too_big", lambda lib, x: fn(lib).max_pool2d(x, 3, padding=2), (R(1, 2, 5, 5),),
     "pad should be at most half of effective kernel size"),
    ("output_too_small", lambda lib, x: fn(lib).max_pool2d(x, 3), (R(1, 2, 2, 2),),
     r"Given input size: \(2x2x2\). Calculated output size: \(2x0x0\). Output size is too small"),
    ("avg_too_small", lambda lib, x: fn(lib).avg_pool2d(x, 3), (R(1, 2, 2, 2),),
     "Output size is too small"),
    ("rank", lambda lib, x: fn(lib).max_pool2d(x, 2), (R(8),), "3D or 4D"),
    ("stride0", lambda lib, x: fn(lib).max_pool2d(x, 2, stride=0), (R(1, 2, 5, 5),),
     "stride should not be zero"),
    ("adaptive_rank", lambda lib, x: fn(lib).adaptive_avg_pool2d(x, 2), (R(4, 3),), "3D or 4D"),
    ("adaptive_empty", lambda lib, x: fn(lib).adaptive_avg_pool2d(x, 2), (R(1, 4, 3, 0),),
     "non-zero size for non-batch dimensions"),
]  # fmt: skip


@pytest.mark.parametrize("name,f,arrays,match", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors(name: str, f: Any, arrays: tuple, match: str) -> None:
    check_error(f, *arrays, match=match)
