"""Normalization against torch: batch norm (train/eval, running statistics over several
steps, momentum=None, no running stats), instance, layer, group and RMS norm; the
functional forms with finite differences and double backward, the layers, repr,
float32 and the errors."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest
import torch
from parity import assert_same, check_error
from parity import check as parity_check
from test_nn_conv import F32, TOL, compare_layers, twin

import tinytorch

rng = np.random.default_rng(2)

# Forward and gradients to 1e-10 relative (the helper's default is looser).
check = functools.partial(parity_check, rtol=1e-10, atol=1e-12)


def R(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape)


def fn(lib: Any) -> Any:
    return lib.nn.functional


X4 = R(4, 3, 5, 2)


def test_batch_norm_functional() -> None:
    w, b = R(3), R(3)
    mean, var = R(3), rng.uniform(0.5, 2.0, 3)

    def train(lib: Any, x: Any, w: Any, b: Any) -> Any:
        rm, rv = lib.tensor(mean.copy()), lib.tensor(var.copy())
        y = fn(lib).batch_norm(x, rm, rv, w, b, training=True, momentum=0.3, eps=1e-3)
        return y, rm, rv  # the running stats are compared as outputs too

    check(train, X4, w, b, gradcheck=False)  # the stats are outputs outside the graph
    check(lambda lib, x, w, b: train(lib, x, w, b)[0], X4, w, b, second_order=True)

    def evaluate(lib: Any, x: Any, w: Any, b: Any) -> Any:
        return fn(lib).batch_norm(x, lib.tensor(mean), lib.tensor(var), w, b)

    check(evaluate, X4, w, b, second_order=True)
    check(lambda lib, x: fn(lib).batch_norm(x, None, None, training=True), R(5, 3))


def test_other_norms_functional() -> None:
    check(lambda lib, x, w, b: fn(lib).layer_norm(x, (5, 2), w, b), X4, R(5, 2), R(5, 2),
          second_order=True)  # fmt: skip
    check(lambda lib, x: fn(lib).layer_norm(x, (2,), eps=1e-3), X4)
    check(lambda lib, x, w, b: fn(lib).group_norm(x, 2, w, b), R(2, 6, 3, 2), R(6), R(6),
          second_order=True)  # fmt: skip
    check(lambda lib, x: fn(lib).group_norm(x, 3), R(2, 6, 4))
    check(lambda lib, x, w: fn(lib).rms_norm(x, (5, 2), w), X4, R(5, 2), second_order=True)
    check(lambda lib, x: fn(lib).rms_norm(x, (2,), eps=1e-3), X4)
    check(lambda lib, x, w, b: fn(lib).instance_norm(x, weight=w, bias=b), X4, R(3), R(3))


def test_rms_norm_default_eps_is_dtype_eps() -> None:
    """eps=None means finfo(dtype).eps; visible on an input of tiny magnitude."""
    for dtype in (np.float32, np.float64):
        x = (R(3, 4) * 1e-4).astype(dtype)
        ya = tinytorch.nn.functional.rms_norm(tinytorch.tensor(x), (4,))
        yb = torch.nn.functional.rms_norm(torch.tensor(x), (4,))
        assert_same(ya, yb, **(F32 if dtype == np.float32 else TOL))


def test_non_contiguous_and_float32() -> None:
    check(lambda lib, x: fn(lib).layer_norm(x.transpose(1, 3), (3,)), X4)
    check(lambda lib, x: fn(lib).group_norm(x.transpose(2, 3), 3), X4)
    x = R(4, 3, 5).astype(np.float32)
    w = R(5).astype(np.float32)
    xa, wa = tinytorch.tensor(x, requires_grad=True), tinytorch.tensor(w, requires_grad=True)
    xb, wb = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ya = tinytorch.nn.functional.layer_norm(xa, (5,), wa)
    yb = torch.nn.functional.layer_norm(xb, (5,), wb)
    assert ya.dtype == tinytorch.float32
    assert_same(ya, yb, **F32)
    (ya * ya * ya).sum().backward()
    (yb * yb * yb).sum().backward()
    for a, b in ((xa.grad, xb.grad), (wa.grad, wb.grad)):
        # The input grad is a difference of O(10) terms: float32 rounding is relative to that.
        assert_same(a, b, rtol=1e-5, atol=1e-5 * float(b.abs().max()))


BATCHNORM = [
    ("BatchNorm1d(3)", (6, 3)),
    ("BatchNorm1d(3, momentum=0.3, eps=1e-3)", (4, 3, 5)),
    ("BatchNorm2d(3)", (4, 3, 5, 2)),
    ("BatchNorm2d(3, momentum=None)", (2, 3, 4, 4)),
    ("BatchNorm2d(3, affine=False)", (2, 3, 4, 4)),
    ("BatchNorm2d(3, bias=False)", (2, 3, 4, 4)),
    ("BatchNorm2d(3, track_running_stats=False)", (2, 3, 4, 4)),
    ("BatchNorm3d(2)", (2, 2, 3, 2, 2)),
]


@pytest.mark.parametrize("spec,shape", BATCHNORM, ids=[s for s, _ in BATCHNORM])
def test_batch_norm_layer_train_then_eval(spec: str, shape: tuple[int, ...]) -> None:
    """Three training steps (running stats and num_batches_tracked compared after each),
    then eval mode, which normalizes with the running statistics."""
    ours, theirs = twin(spec)
    for _ in range(3):
        compare_layers(ours, theirs, R(*shape) * 2 + 1)
    if ours.num_batches_tracked is not None:
        assert int(ours.num_batches_tracked.item()) == 3
        assert ours.num_batches_tracked.dtype == tinytorch.int64
    ours.eval()
    theirs.eval()
    compare_layers(ours, theirs, R(*shape))
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_batch_norm_float32_and_noncontiguous() -> None:
    ours, theirs = twin("BatchNorm2d(3)", dtype="float")
    for _ in range(2):
        compare_layers(ours, theirs, R(4, 3, 5, 2).astype(np.float32), tol=F32)
    assert ours.running_var.dtype == tinytorch.float32
    ours, theirs = twin("BatchNorm2d(3)")
    compare_layers(ours, theirs, R(4, 3, 5, 6), transpose=(2, 3))


LAYERS = [
    ("LayerNorm(6)", (2, 3, 6)),
    ("LayerNorm([3, 6], eps=1e-3)", (2, 3, 6)),
    ("LayerNorm(6, elementwise_affine=False)", (4, 6)),
    ("LayerNorm(6, bias=False)", (4, 6)),
    ("GroupNorm(2, 6)", (2, 6, 3, 2)),
    ("GroupNorm(3, 6, affine=False)", (2, 6, 5)),
    ("GroupNorm(1, 4, eps=1e-3, bias=False)", (3, 4)),
    ("RMSNorm(6)", (2, 3, 6)),
    ("RMSNorm([3, 6], eps=1e-5)", (2, 3, 6)),
    ("RMSNorm(6, elementwise_affine=False)", (4, 6)),
    ("InstanceNorm1d(3)", (2, 3, 5)),
    ("InstanceNorm2d(3, affine=True)", (2, 3, 4, 5)),
    ("InstanceNorm2d(3, track_running_stats=True)", (2, 3, 4, 5)),
]


@pytest.mark.parametrize("spec,shape", LAYERS, ids=[s for s, _ in LAYERS])
def test_layer_matches_torch(spec: str, shape: tuple[int, ...]) -> None:
    ours, theirs = twin(spec)
    compare_layers(ours, theirs, R(*shape))
    compare_layers(ours, theirs, R(*shape))  # running stats (instance norm) move twice
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_instance_norm_eval_and_unbatched() -> None:
    ours, theirs = twin("InstanceNorm2d(3, track_running_stats=True)")
    compare_layers(ours, theirs, R(2, 3, 4, 5))
    ours.eval()
    theirs.eval()
    compare_layers(ours, theirs, R(2, 3, 4, 5))
    compare_layers(*twin("InstanceNorm1d(3, affine=True)"), R(3, 7))


ERRORS = [
    ("bn_one_value", lambda lib, x: fn(lib).batch_norm(x, lib.zeros(3), lib.ones(3), None,
     None, True), (R(1, 3),), "Expected more than 1 value per channel when training"),
    ("bn_stats_size", lambda lib, x: fn(lib).batch_norm(x, lib.zeros(4), lib.ones(4), None,
     None, True), (R(4, 3),), "running_mean should contain 3 elements not 4"),
    ("ln_shape", lambda lib, x: fn(lib).layer_norm(x, (4,)), (R(4, 3),),
     r"Given normalized_shape=\[4\], expected input with shape \[\*, 4\], but got input of "
     r"size\[4, 3\]"),
    ("ln_weight", lambda lib, x: fn(lib).layer_norm(x, (3,), weight=lib.ones(4)), (R(4, 3),),
     "Expected weight to be of same shape as normalized_shape"),
    ("gn_groups", lambda lib, x: fn(lib).group_norm(x, 4), (R(4, 6, 2),),
     "Expected number of channels in input to be divisible by num_groups"),
    ("gn_weight", lambda lib, x: fn(lib).group_norm(x, 3, weight=lib.ones(3)), (R(4, 6, 2),),
     "Expected weight to be a vector of size equal to the number of channels"),
    ("rms_shape", lambda lib, x: fn(lib).rms_norm(x, (4,)), (R(4, 3),),
     r"expected input with shape \[\*4\]"),
    ("bn2d_rank", lambda lib, x: lib.nn.BatchNorm2d(3)(x), (R(2, 3, 4),),
     r"expected 4D input \(got 3D input\)"),
    ("bn1d_rank", lambda lib, x: lib.nn.BatchNorm1d(3)(x), (R(2, 3, 4, 4),),
     r"expected 2D or 3D input \(got 4D input\)"),
]  # fmt: skip


@pytest.mark.parametrize("name,f,arrays,match", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors(name: str, f: Any, arrays: tuple, match: str) -> None:
    check_error(f, *arrays, match=match)


def test_group_norm_layer_arguments() -> None:
    with pytest.raises(ValueError, match="must be divisible by num_groups"):
        tinytorch.nn.GroupNorm(4, 6)
