"""Convolutions against torch: functional forms (forward, grads, finite differences,
double backward), the fused ``Conv`` primitive against its Im2Col + matmul composite,
the layers (weights copied into torch's twin: output, input grad and every parameter
grad), init, repr, float32, non-contiguous input and the error messages.

``twin``/``compare_layers`` are shared with the pooling and normalization tests.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pytest
import torch
from parity import assert_same, check_error
from parity import check as parity_check

import tinytorch
from tinytorch.nn.functional._conv import conv_reference
from tinytorch.ops.conv import Conv, Geometry

rng = np.random.default_rng(0)
TOL = {"rtol": 1e-10, "atol": 1e-12}
F32 = {"rtol": 1e-5, "atol": 1e-6}

# Forward and gradients to 1e-10 relative (the helper's default is looser).
check = functools.partial(parity_check, rtol=1e-10, atol=1e-12)


def R(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape)


def fn(lib: Any) -> Any:
    """``torch.nn.functional`` or ``tinytorch.nn.functional``."""
    return lib.nn.functional


def twin(spec: str, dtype: str = "double") -> tuple[Any, Any]:
    """``spec`` (e.g. ``"Conv2d(3, 4, 3)"``) built in both libraries, torch's weights and
    buffers overwritten with ours (so tinytorch's init is the one used)."""
    ours = eval("tinytorch.nn." + spec)
    theirs = eval("torch.nn." + spec)
    ours, theirs = getattr(ours, dtype)(), getattr(theirs, dtype)()
    with torch.no_grad():
        for name, t in theirs.state_dict().items():
            t.copy_(torch.from_numpy(np.array(ours.state_dict()[name].data)))
    return ours, theirs


def compare_layers(ours: Any, theirs: Any, x: np.ndarray, tol: dict | None = None,
                   transpose: tuple[int, int] | None = None) -> None:  # fmt: skip
    """Forward, input grad, parameter grads and buffers of the two layers on input ``x``
    (given as ``x.transpose(*transpose)`` when set: a non-contiguous input)."""
    tol = tol or TOL
    xa = tinytorch.tensor(x, requires_grad=True)
    xb = torch.tensor(x, requires_grad=True)
    ina, inb = xa, xb
    if transpose is not None:
        ina, inb = xa.transpose(*transpose), xb.transpose(*transpose)
    ya, yb = ours(ina), theirs(inb)
    assert_same(ya, yb, what="forward", **tol)
    w = rng.standard_normal(tuple(yb.shape)).astype(x.dtype)
    (ya * tinytorch.tensor(w)).sum().backward()
    (yb * torch.tensor(w)).sum().backward()
    assert_same(xa.grad, xb.grad, what="input grad", **tol)
    theirs_params = dict(theirs.named_parameters())
    ours_params = dict(ours.named_parameters())
    assert list(ours_params) == list(theirs_params)
    for name, p in ours_params.items():
        assert_same(p.grad, theirs_params[name].grad, what=f"grad of {name}", **tol)
    theirs_bufs = dict(theirs.named_buffers())
    for name, b in ours.named_buffers():
        assert_same(b, theirs_bufs[name], what=f"buffer {name}", **tol)


# --- functional: forward, grads, finite differences, double backward --------------------

X2 = R(2, 4, 6, 5)
CONV2D = [
    ("plain", R(3, 4, 3, 3), {}),
    ("stride_pad", R(3, 4, 3, 2), {"stride": 2, "padding": 1}),
    ("same_even_kernel", R(3, 4, 2, 4), {"padding": "same"}),
    ("same_dilated", R(3, 4, 3, 3), {"padding": "same", "dilation": 2}),
    ("valid", R(3, 4, 3, 3), {"padding": "valid"}),
    ("groups", R(6, 2, 3, 3), {"groups": 2, "padding": (1, 0)}),
    ("depthwise", R(4, 1, 3, 3), {"groups": 4, "stride": (2, 1)}),
    (
        "mixed",
        R(4, 2, 2, 3),
        {"groups": 2, "stride": (1, 2), "padding": (1, 2), "dilation": (2, 1)},
    ),
    ("1x1", R(5, 4, 1, 1), {}),
]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's
@pytest.mark.parametrize("name,w,kw", CONV2D, ids=[c[0] for c in CONV2D])
def test_conv2d(name: str, w: np.ndarray, kw: dict) -> None:
    b = R(w.shape[0])
    check(lambda lib, x, w, b: lib.nn.functional.conv2d(x, w, b, **kw), X2, w, b)
    check(lambda lib, x, w: lib.nn.functional.conv2d(x, w, **kw), X2, w)  # no bias


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's
@pytest.mark.parametrize("name,w,kw", CONV2D, ids=[c[0] for c in CONV2D])
def test_conv2d_with_columns_made_in_chunks(name: str, w: np.ndarray, kw: dict,
                                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Convs whose columns exceed the keep budget make them in chunks of images, in forward
    and again for the weight gradient: the same values, for every chunk size."""
    x, b = R(5, 4, 6, 5), R(w.shape[0])
    out = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), **kw)
    per_image = x.shape[1] * w.shape[2] * w.shape[3] * math.prod(out.shape[2:]) * x.itemsize
    monkeypatch.setattr("tinytorch.ops.conv._COLS_KEEP_BYTES", 0)
    for images in (1, 2, 5):  # 5 chunks, 3 (the last one shorter), 1
        monkeypatch.setattr("tinytorch.ops.conv._COLS_CHUNK_BYTES", images * per_image)
        check(lambda lib, x, w, b: lib.nn.functional.conv2d(x, w, b, **kw), x, w, b)


def test_conv2d_double_backward() -> None:
    """Second order through the fused conv, e.g. a gradient penalty."""
    x, w, b = R(2, 2, 5, 4), R(3, 2, 3, 2), R(3)
    check(lambda lib, x, w, b: fn(lib).conv2d(x, w, b, padding=1), x, w, b, second_order=True)
    x, w = R(1, 4, 5, 5), R(4, 2, 2, 3)
    check(lambda lib, x, w: fn(lib).conv2d(x, w, stride=2, groups=2), x, w, second_order=True)


def test_gradient_penalty_through_conv_layers() -> None:
    """loss + ||d loss / d x||^2 through Conv2d -> tanh -> MaxPool2d -> Conv2d: every
    parameter's gradient equals torch's (needs the create_graph backward of each layer)."""

    def model(lib: Any) -> Any:
        nn = lib.nn
        layers = (nn.Conv2d(2, 4, 3, padding=1), nn.Tanh(), nn.MaxPool2d(2), nn.Conv2d(4, 3, 2))
        return nn.Sequential(*layers).double()

    ours, theirs = model(tinytorch), model(torch)
    with torch.no_grad():
        for name, t in theirs.state_dict().items():
            t.copy_(torch.from_numpy(ours.state_dict()[name].data))
    x = R(2, 2, 6, 6)
    for lib, model in ((tinytorch, ours), (torch, theirs)):
        xt = lib.tensor(x, requires_grad=True)
        loss = (model(xt) ** 2).sum()
        (gx,) = lib.autograd.grad(loss, xt, create_graph=True)
        (loss + (gx * gx).sum()).backward()
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        assert_same(p.grad, q.grad, what=name, **TOL)


def test_conv1d() -> None:
    x = R(2, 4, 9)
    check(lambda lib, x, w, b: fn(lib).conv1d(x, w, b), x, R(3, 4, 3), R(3))
    kw = {"stride": 2, "padding": 2, "dilation": 2, "groups": 2}
    check(lambda lib, x, w: fn(lib).conv1d(x, w, **kw), x, R(4, 2, 3), second_order=True)
    check(lambda lib, x, w: fn(lib).conv1d(x, w, padding="same"), x, R(2, 4, 4))


def test_conv3d() -> None:
    x, w, b = R(1, 2, 3, 4, 3), R(2, 2, 2, 3, 2), R(2)
    check(lambda lib, x, w, b: fn(lib).conv3d(x, w, b, padding=1, stride=(1, 2, 1)), x, w, b)


TRANSPOSED = [
    ("plain", R(4, 3, 3, 3), {}),
    ("stride_outpad", R(4, 3, 3, 2), {"stride": 2, "padding": 1, "output_padding": 1}),
    (
        "groups_dilation",
        R(4, 2, 2, 3),
        {"groups": 2, "stride": (2, 3), "dilation": (1, 2), "output_padding": (1, 2)},
    ),
]


@pytest.mark.parametrize("name,w,kw", TRANSPOSED, ids=[c[0] for c in TRANSPOSED])
def test_conv_transpose2d(name: str, w: np.ndarray, kw: dict) -> None:
    x, b = R(2, 4, 3, 4), R(w.shape[1] * kw.get("groups", 1))
    check(lambda lib, x, w, b: fn(lib).conv_transpose2d(x, w, b, **kw), x, w, b,
          second_order=name == "plain")  # fmt: skip


def test_conv_transpose1d() -> None:
    kw = {"stride": 3, "padding": 1, "output_padding": 2}
    check(
        lambda lib, x, w, b: fn(lib).conv_transpose1d(x, w, b, **kw), R(2, 4, 5), R(4, 2, 3), R(2)
    )


def test_unfold_fold() -> None:
    kw = {"kernel_size": (2, 3), "dilation": (1, 2), "padding": 1, "stride": (2, 1)}
    check(lambda lib, x: lib.nn.functional.unfold(x, **kw), R(2, 3, 5, 6), second_order=True)
    cols = R(2, 3 * 6, 3 * 4)
    check(lambda lib, c: lib.nn.functional.fold(c, (5, 6), **kw), cols, second_order=True)
    check(lambda lib, x: lib.nn.functional.unfold(x, 2), R(3, 4, 5))  # unbatched
    check(lambda lib, c: lib.nn.functional.fold(c, (4, 5), 2), R(12, 12))


def test_unbatched_and_noncontiguous_input() -> None:
    w = R(3, 4, 3, 3)
    check(lambda lib, x, w: lib.nn.functional.conv2d(x, w, padding=1), R(4, 5, 6), w)
    check(lambda lib, x, w: lib.nn.functional.conv2d(x.transpose(2, 3), w), R(2, 4, 6, 5), w)


def test_fused_conv_matches_composite() -> None:
    """The fused ``Conv`` primitive against the Im2Col + matmul composite it replaces."""
    x, w, b = R(2, 4, 7, 6), R(6, 2, 3, 2), R(6)
    geom = Geometry((7, 6), (3, 2), (2, 1), ((1, 2), (0, 1)), (1, 2), (4, 5))

    def run(fn: Any) -> list[np.ndarray]:
        xs = [tinytorch.tensor(a, requires_grad=True) for a in (x, w, b)]
        out = fn(*xs)
        (gx,) = tinytorch.autograd.grad((out * out).sum(), xs[:1], create_graph=True)
        (gx * gx).sum().backward()
        return [out.data] + [t.grad.data for t in xs]

    fused = run(lambda x, w, b: Conv.apply(x, w, b, geom=geom, groups=2))
    composite = run(lambda x, w, b: conv_reference(x, w, b, geom, 2))
    for a, c in zip(fused, composite):
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-12)


def test_float32_keeps_dtype_and_matches() -> None:
    x, w, b = R(2, 4, 7, 6).astype(np.float32), R(3, 4, 3, 3).astype(np.float32), R(3)
    b = b.astype(np.float32)
    xa, wa, ba = (tinytorch.tensor(a, requires_grad=True) for a in (x, w, b))
    xb, wb, bb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ya = tinytorch.nn.functional.conv2d(xa, wa, ba, padding=1, stride=2)
    yb = torch.nn.functional.conv2d(xb, wb, bb, padding=1, stride=2)
    assert ya.dtype == tinytorch.float32
    assert_same(ya, yb, **F32)
    ya.sum().backward()
    yb.sum().backward()
    for a, b_ in ((xa, xb), (wa, wb), (ba, bb)):
        assert a.grad.dtype == tinytorch.float32
        assert_same(a.grad, b_.grad, **F32)


# --- layers ------------------------------------------------------------------------------

LAYERS = [
    ("Conv1d(4, 6, 3)", (2, 4, 9)),
    ("Conv1d(4, 6, 2, stride=2, padding=1, groups=2, bias=False)", (1, 4, 8)),
    ("Conv2d(4, 6, 3)", (2, 4, 7, 6)),
    ("Conv2d(4, 6, (3, 2), stride=2, padding=(1, 2), dilation=(1, 2), groups=2)", (2, 4, 7, 6)),
    ("Conv2d(4, 4, 3, padding='same', groups=4, bias=False)", (1, 4, 5, 5)),
    ("Conv2d(4, 6, 3, padding=1, padding_mode='reflect')", (2, 4, 5, 6)),
    ("Conv2d(4, 6, 3, padding=2, padding_mode='circular')", (2, 4, 5, 6)),
    ("Conv2d(4, 6, 2, padding='same', padding_mode='replicate')", (2, 4, 5, 6)),
    ("Conv3d(2, 3, 2, padding=1)", (1, 2, 3, 4, 3)),
    ("ConvTranspose1d(4, 6, 3, stride=2)", (2, 4, 5)),
    ("ConvTranspose2d(4, 6, 3)", (2, 4, 5, 4)),
    ("ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)", (2, 4, 5, 4)),
    ("ConvTranspose2d(4, 2, (2, 3), stride=(2, 1), dilation=2, bias=False)", (1, 4, 3, 3)),
]


@pytest.mark.parametrize("spec,shape", LAYERS, ids=[s for s, _ in LAYERS])
def test_layer_matches_torch(spec: str, shape: tuple[int, ...]) -> None:
    ours, theirs = twin(spec)
    compare_layers(ours, theirs, R(*shape))
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_layer_noncontiguous_float32_and_unbatched() -> None:
    ours, theirs = twin("Conv2d(4, 6, 3, padding=1)")
    compare_layers(ours, theirs, R(2, 4, 6, 5), transpose=(2, 3))
    ours, theirs = twin("Conv2d(4, 6, 3, stride=2)", dtype="float")
    compare_layers(ours, theirs, R(2, 4, 7, 6).astype(np.float32), tol=F32)
    ours, theirs = twin("Conv1d(4, 6, 3)")
    compare_layers(ours, theirs, R(4, 7))


def test_conv_transpose_output_size() -> None:
    ours, theirs = twin("ConvTranspose2d(4, 2, 3, stride=2, padding=1)")
    x = R(1, 4, 4, 5)
    ya = ours(tinytorch.tensor(x), output_size=[8, 10])
    yb = theirs(torch.tensor(x), output_size=[8, 10])
    assert_same(ya, yb, **TOL)
    with pytest.raises(ValueError, match="requested an output size"):
        ours(tinytorch.tensor(x), output_size=(12, 12))


@pytest.mark.parametrize("spec", ["Conv2d(6, 8, (3, 5), groups=2)", "Conv1d(3, 4, 2)",
                                  "ConvTranspose2d(4, 6, 3, groups=2)"])  # fmt: skip
def test_init_bounds(spec: str) -> None:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = weight.shape[1] * prod(kernel)."""
    tinytorch.manual_seed(0)
    layer = eval("tinytorch.nn." + spec)
    bound = 1 / math.sqrt(math.prod(layer.weight.shape[1:]))
    for p in (layer.weight, layer.bias):
        assert p.dtype == tinytorch.float32
        assert np.abs(p.data).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.8 * bound  # not a narrower distribution
    assert abs(float(layer.weight.data.mean())) < bound / 4


# --- errors ------------------------------------------------------------------------------

ERRORS = [
    ("channels", lambda lib, x, w: lib.nn.functional.conv2d(x, w), (R(64, 3, 8, 8), R(16, 8, 3, 3)),
     r"expected input\[64, 3, 8, 8\] to have 8 channels, but got 3 channels instead"),
    ("rank", lambda lib, x, w: lib.nn.functional.conv2d(x, w), (R(2, 3), R(16, 8, 3, 3)),
     r"Expected 3D \(unbatched\) or 4D \(batched\) input to conv2d, but got input of size: "
     r"\[2, 3\]"),
    ("kernel_too_big", lambda lib, x, w: lib.nn.functional.conv2d(x, w), (R(1, 8, 2, 2),
     R(16, 8, 3, 3)), r"padded input size per channel: \(2 x 2\). Kernel size: \(3 x 3\)"),
    ("groups_weight", lambda lib, x, w: lib.nn.functional.conv2d(x, w, groups=3),
     (R(1, 9, 5, 5), R(16, 3, 3, 3)), "expected weight to be divisible by 3 at dimension 0"),
    ("groups_channels", lambda lib, x, w: lib.nn.functional.conv2d(x, w, groups=2),
     (R(1, 8, 5, 5), R(16, 8, 3, 3)), "to have 16 channels, but got 8"),
    ("stride0", lambda lib, x, w: lib.nn.functional.conv2d(x, w, stride=0), (R(1, 8, 5, 5),
     R(4, 8, 3, 3)), "non-positive stride"),
    ("neg_pad", lambda lib, x, w: lib.nn.functional.conv2d(x, w, padding=-1), (R(1, 8, 5, 5),
     R(4, 8, 3, 3)), "negative padding"),
    ("same_strided", lambda lib, x, w: lib.nn.functional.conv2d(x, w, padding="same", stride=2),
     (R(1, 8, 5, 5), R(4, 8, 3, 3)), "padding='same' is not supported for strided"),
    ("bad_pad_string", lambda lib, x, w: lib.nn.functional.conv2d(x, w, padding="full"),
     (R(1, 8, 5, 5), R(4, 8, 3, 3)), "Invalid padding string"),
    ("bias_size", lambda lib, x, w, b: lib.nn.functional.conv2d(x, w, b), (R(1, 8, 5, 5),
     R(4, 8, 3, 3), R(5)), r"expected bias to be 1-dimensional with 4 elements"),
    ("stride_len", lambda lib, x, w: lib.nn.functional.conv1d(x, w, stride=(1, 1)), (R(1, 8, 5),
     R(4, 8, 3)), "expected stride to be a single integer value or a list of 1 values"),
    ("transposed_channels", lambda lib, x, w: lib.nn.functional.conv_transpose2d(x, w),
     (R(1, 8, 5, 5), R(4, 8, 3, 3)), "expected input\\[1, 8, 5, 5\\] to have 4 channels"),
    ("output_padding", lambda lib, x, w: lib.nn.functional.conv_transpose2d(x, w,
     output_padding=1), (R(1, 8, 5, 5), R(8, 4, 3, 3)), "output padding must be smaller"),
]  # fmt: skip


@pytest.mark.parametrize("name,fn,arrays,match", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors(name: str, fn: Any, arrays: tuple, match: str) -> None:
    check_error(fn, *arrays, match=match)


def test_dtype_mismatch_and_layer_arguments() -> None:
    x = tinytorch.tensor(R(1, 8, 5, 5)).float()
    with pytest.raises(RuntimeError, match="should be the same"):
        tinytorch.nn.functional.conv2d(x, tinytorch.tensor(R(4, 8, 3, 3)))
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        tinytorch.nn.Conv2d(5, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        tinytorch.nn.Conv2d(4, 4, 3, padding_mode="mirror")
