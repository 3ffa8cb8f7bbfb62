"""Numerical stability: the functions where naive formulas overflow (exp of 1e4,
log of 0, squares of large numbers) stay finite and match torch for inputs of
magnitude 1e4, in float32 and float64 — values and gradients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import tinytorch as tt
from tinytorch.testing import assert_close

TARGET = [0, 1, 2, 3]

CASES: dict[str, Callable[[Any, Any], Any]] = {
    "softmax": lambda lib, x: lib.nn.functional.softmax(x, dim=-1),
    "log_softmax": lambda lib, x: lib.nn.functional.log_softmax(x, dim=-1),
    "softmax_dim0": lambda lib, x: x.softmax(0),
    "logsumexp": lambda lib, x: x.logsumexp(-1),
    "logsumexp_all": lambda lib, x: x.logsumexp((0, 1)),
    "cross_entropy": lambda lib, x: lib.nn.functional.cross_entropy(x, lib.tensor(TARGET)),
    "cross_entropy_smoothing": lambda lib, x: lib.nn.functional.cross_entropy(
        x, lib.tensor(TARGET), label_smoothing=0.1),
    "cross_entropy_probs": lambda lib, x: lib.nn.functional.cross_entropy(
        x, lib.softmax(lib.arange(20.0).reshape(4, 5), -1).to(x.dtype)),
    "nll_of_log_softmax": lambda lib, x: lib.nn.functional.nll_loss(
        lib.nn.functional.log_softmax(x, -1), lib.tensor(TARGET)),
    "bce_with_logits": lambda lib, x: lib.nn.functional.binary_cross_entropy_with_logits(
        x, (lib.arange(20.0).reshape(4, 5) / 20).to(x.dtype)),
    "bce_with_logits_pos_weight": lambda lib, x: lib.nn.functional.binary_cross_entropy_with_logits(
        x, (lib.arange(20.0).reshape(4, 5) / 20).to(x.dtype),
        pos_weight=lib.full((5,), 3.0, dtype=x.dtype)),
    "sigmoid": lambda lib, x: x.sigmoid(),
    "logsigmoid": lambda lib, x: lib.nn.functional.logsigmoid(x),
    "tanh": lambda lib, x: x.tanh(),
    "softplus": lambda lib, x: lib.nn.functional.softplus(x),
    "softplus_beta": lambda lib, x: lib.nn.functional.softplus(x, beta=2.0, threshold=10.0),
    "silu": lambda lib, x: lib.nn.functional.silu(x),
    "gelu": lambda lib, x: lib.nn.functional.gelu(x),
    "gelu_tanh": lambda lib, x: lib.nn.functional.gelu(x, approximate="tanh"),
    "elu": lambda lib, x: lib.nn.functional.elu(x),
    "norm_fro": lambda lib, x: x.norm(),
    "norm_dim": lambda lib, x: x.norm(dim=-1),
    "norm_p1": lambda lib, x: x.norm(p=1, dim=-1),
    "norm_p3": lambda lib, x: x.norm(p=3, dim=0),
    "normalize": lambda lib, x: lib.nn.functional.normalize(x, dim=-1),
    "layer_norm": lambda lib, x: lib.nn.functional.layer_norm(x, (5,)),
    "std": lambda lib, x: x.std(-1),
    "cosine_similarity": lambda lib, x: lib.nn.functional.cosine_similarity(x, x.flip(0), dim=-1),
    "mse": lambda lib, x: lib.nn.functional.mse_loss(x, x.flip(0)),
    "kl_div_log_target": lambda lib, x: lib.nn.functional.kl_div(
        lib.nn.functional.log_softmax(x, -1), lib.nn.functional.log_softmax(x.flip(0), -1),
        reduction="batchmean", log_target=True),
    "attention": lambda lib, x: lib.nn.functional.scaled_dot_product_attention(
        x[None], x[None], x[None]),
}  # fmt: skip


def _inputs(dtype: str, seed: int) -> np.ndarray:
    """Magnitudes up to ~3e4, both signs, plus exact +-1e4 entries and a zero."""
    x = np.random.default_rng(seed).standard_normal((4, 5)) * 1e4
    x[0, :3] = [1e4, -1e4, 0.0]
    return x.astype(dtype)


def _run(lib: Any, fn: Callable, a: np.ndarray, w: np.ndarray | None) -> tuple[Any, Any, Any]:
    x = lib.tensor(a.copy(), requires_grad=True)
    out = fn(lib, x)
    if w is None:
        w = np.random.default_rng(7).standard_normal(tuple(out.shape)).astype(a.dtype)
    (out * lib.tensor(w)).sum().backward()
    return out.detach(), x.grad, w


def _scaled_close(ours: Any, theirs: Any, rtol: float, what: str) -> None:
    """Elementwise close, with absolute slack relative to the largest magnitude
    (entries that cancel to ~0 in one library may be tiny-but-nonzero in the other)."""
    scale = float(np.abs(theirs.numpy()).max()) if theirs.numel() else 0.0
    assert_close(ours, theirs, rtol=rtol, atol=rtol * scale + 1e-30,
                 msg=lambda m: f"{what}: {m}")  # fmt: skip


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", CASES)
def test_large_inputs_stay_finite_and_match_torch(name, dtype):
    fn = CASES[name]
    for seed in (0, 1):
        a = _inputs(dtype, seed)
        out_tt, grad_tt, w = _run(tt, fn, a, None)
        out_th, grad_th, _ = _run(torch, fn, a, w)
        assert np.isfinite(out_tt.data).all(), f"{name}: non-finite output"
        assert np.isfinite(grad_tt.data).all(), f"{name}: non-finite gradient"
        rtol = 1e-5 if dtype == "float32" else 1e-12
        _scaled_close(out_tt, out_th, rtol, f"{name} output")
        _scaled_close(grad_tt, grad_th, rtol, f"{name} gradient")


@pytest.mark.parametrize("dtype", [tt.float32, tt.float64])
def test_masked_rows_and_infinities(dtype):
    """-inf logits (masks) give exact zeros, finite gradients and torch's -inf
    logsumexp for a fully masked row."""
    ninf = float("-inf")
    rows = [[0.0, ninf, 1e4], [ninf, ninf, ninf]]
    x = tt.tensor(rows, dtype=dtype, requires_grad=True)
    xt = torch.tensor(rows, dtype=getattr(torch, dtype.name), requires_grad=True)
    assert_close(x.logsumexp(-1), xt.logsumexp(-1).detach())
    p = x[:1].softmax(-1)
    assert p.data[0, 1] == 0 and np.isfinite(p.data).all()
    (p * tt.tensor([[1.0, 2.0, 3.0]], dtype=dtype)).sum().backward()
    assert np.isfinite(x.grad.data).all()


def test_cross_entropy_of_a_confident_wrong_prediction_is_large_not_inf():
    logits = tt.tensor([[1e4, -1e4]], requires_grad=True)
    loss = tt.nn.functional.cross_entropy(logits, tt.tensor([1]))
    assert loss.item() == pytest.approx(2e4, rel=1e-6)
    loss.backward()
    assert_close(logits.grad, tt.tensor([[1.0, -1.0]]))


def test_erf_float32_is_within_about_half_an_ulp_on_a_dense_grid():
    """The float32 rational erf against math.erf rounded to float32, tails included."""
    import math

    from tinytorch.ops.special import erf_array

    x = np.concatenate([np.linspace(0, 6, 400_001), np.logspace(-45, 0.7, 20_000)])
    x = np.concatenate([x, -x]).astype(np.float32)
    ref = np.array([math.erf(v) for v in x.astype(np.float64)])
    y = erf_array(x)
    assert y.dtype == np.float32
    ulp = np.spacing(np.abs(ref.astype(np.float32))).astype(np.float64)
    assert np.max(np.abs(y - ref) / ulp) < 0.6
    assert np.mean(y == ref.astype(np.float32)) > 0.97
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 3.95, 10.0], np.float32)
    got = erf_array(special)
    np.testing.assert_array_equal(got, [0.0, -0.0, 1.0, -1.0, np.nan, 1.0, 1.0])
    assert np.signbit(got[1]) and not np.signbit(got[0])
    assert erf_array(special.astype(np.float16)).dtype == np.float16
    assert erf_array(np.zeros((0, 3), np.float32)).shape == (0, 3)


FUSED = {
    "gelu": (lambda x: tt.nn.functional.gelu(x),
             lambda x: tt.nn.functional._activation._gelu_composite(x)),
    "gelu_tanh": (lambda x: tt.nn.functional.gelu(x, approximate="tanh"),
                  lambda x: tt.nn.functional._activation._gelu_composite(x, "tanh")),
    "softmax": (lambda x: tt.nn.functional.softmax(x, dim=1),
                lambda x: tt.ops.composite.softmax_reference(x, 1)),
}  # fmt: skip


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", FUSED)
def test_fused_ops_match_their_composites_to_second_order(name, dtype):
    """Value, gradient (numpy backward, and Tensor-op backward under create_graph) and
    second derivative of each fused primitive against the composite it replaces."""
    fused, composite = FUSED[name]
    rng = np.random.default_rng(3)
    a = (rng.standard_normal((3, 7, 5)) * 3).astype(dtype)
    a[0, 0, :] = [-12.0, -6.0, 0.0, 6.0, 12.0]
    w = rng.standard_normal(a.shape).astype(dtype)
    rtol = 2e-6 if dtype == "float32" else 1e-12
    results = []
    for fn in (fused, composite):
        x = tt.tensor(a.copy(), requires_grad=True)
        out = fn(x)
        (g,) = tt.autograd.grad((out * tt.tensor(w)).sum(), x, create_graph=True)
        (gg,) = tt.autograd.grad((g * g).sum(), x)
        x1 = tt.tensor(a.copy(), requires_grad=True)
        (fn(x1) * tt.tensor(w)).sum().backward()
        results.append((out.detach(), g.detach(), gg, x1.grad))
    for what, ours, ref in zip(("value", "grad", "second", "plain grad"), *results):
        _scaled_close(ours, ref, rtol, f"{name} {what}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_layer_norm_matches_the_composite_to_second_order(dtype):
    """Fused ``LayerNorm`` against ``_normalize`` * weight + bias: value, the gradients
    of input, weight and bias (numpy backward and create_graph), and second order."""
    from tinytorch.nn.functional._norm import _normalize

    rng = np.random.default_rng(4)
    a, w, b, gw = (rng.standard_normal(s).astype(dtype) for s in ((3, 4, 2, 5), (2, 5), (2, 5),
                                                                    (3, 4, 2, 5)))  # fmt: skip
    a[0, 0] *= 1e3
    rtol = 2e-5 if dtype == "float32" else 1e-11

    def fused(x, wt, bt):
        return tt.nn.functional.layer_norm(x, (2, 5), wt, bt)

    def composite(x, wt, bt):
        return _normalize(x, (2, 3), 1e-5) * wt + bt

    results = []
    for fn in (fused, composite):
        ts = [tt.tensor(v.copy(), requires_grad=True) for v in (a, w, b)]
        out = fn(*ts)
        grads = tt.autograd.grad((out * tt.tensor(gw)).sum(), ts, create_graph=True)
        second = tt.autograd.grad(sum((g * g).sum() for g in grads), ts[:2])
        plain = [tt.tensor(v.copy(), requires_grad=True) for v in (a, w, b)]
        (fn(*plain) * tt.tensor(gw)).sum().backward()
        results.append([out.detach(), *[g.detach() for g in grads], *second,
                        *[p.grad for p in plain]])  # fmt: skip
    for i, (ours, ref) in enumerate(zip(*results)):
        _scaled_close(ours, ref, rtol, f"layer_norm result {i}")
