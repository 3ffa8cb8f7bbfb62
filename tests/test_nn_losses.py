"""Losses against torch: functional and module forms, every reduction, weights,
ignore_index, label smoothing, probability targets, K-dim inputs, float32,
huge logits, and the errors for bad targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from parity import assert_same, check, check_error

import tinytorch

rng = np.random.default_rng(0)
TOL = {"rtol": 1e-10, "atol": 1e-12}


def R(*shape: int, scale: float = 1.0) -> np.ndarray:
    return rng.standard_normal(shape) * scale


def PROB(*shape: int) -> np.ndarray:  # probabilities away from 0 and 1
    return rng.uniform(0.05, 0.95, size=shape)


def SOFT(*shape: int, dim: int = 1) -> np.ndarray:  # rows of class probabilities
    e = np.exp(rng.standard_normal(shape))
    return e / e.sum(axis=dim, keepdims=True)


def IDX(high: int, *shape: int) -> np.ndarray:
    return rng.integers(0, high, size=shape)


def with_ignored(t: np.ndarray, value: int = -100) -> np.ndarray:
    t = t.copy()
    t.flat[:: max(t.size // 3, 1)] = value
    return t


WC = rng.uniform(0.5, 2.0, size=4)  # class weights for C = 4
W5 = rng.uniform(0.5, 2.0, size=(5, 4))  # elementwise weights
W3 = rng.uniform(0.5, 2.0, size=3)  # per-column weights for (5, 3) inputs
W53 = rng.uniform(0.5, 2.0, size=(5, 3))


_W_DTYPE = [np.float64]  # dtype of the weight constants (torch wants the input's dtype)


def T(lib, a):  # a constant tensor in either library
    return lib.tensor(a.astype(_W_DTYPE[0]))


def loss(name: str, pre=None, **kwargs):
    """``fn(lib, *tensors)`` calling ``lib.nn.functional.<name>``; ndarray keyword arguments
    become constant tensors, ``pre`` maps the first input (e.g. to log-probabilities)."""

    def fn(lib, x, *rest):
        kw = {k: T(lib, v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        return getattr(lib.nn.functional, name)(pre(x) if pre else x, *rest, **kw)

    return fn


def logp(x):
    return x.log_softmax(1)


IGN = with_ignored(IDX(4, 6))
IGN3 = with_ignored(IDX(4, 2, 3))

# (id, fn(lib, *tensors), inputs, second_order)
# fmt: off
CASES = [
    *[(f"ce_{r}", loss("cross_entropy", reduction=r), [R(5, 4), IDX(4, 5)], r == "mean")
      for r in ("mean", "sum", "none")],
    ("ce_weight", loss("cross_entropy", weight=WC), [R(6, 4), IDX(4, 6)], True),
    ("ce_weight_sum", loss("cross_entropy", weight=WC, reduction="sum"), [R(6, 4), IDX(4, 6)],
     False),
    ("ce_ignore", loss("cross_entropy"), [R(6, 4), IGN], False),
    ("ce_ignore_custom_weight", loss("cross_entropy", weight=WC, ignore_index=2),
     [R(7, 4), IDX(4, 7)], False),
    ("ce_ignore_none", loss("cross_entropy", reduction="none"), [R(6, 4), IGN], False),
    *[(f"ce_smooth_{r}", loss("cross_entropy", label_smoothing=0.1, reduction=r), [R(6, 4), IGN],
       r == "mean") for r in ("mean", "sum", "none")],
    ("ce_smooth_weight", loss("cross_entropy", weight=WC, label_smoothing=0.2), [R(6, 4), IGN],
     False),
    *[(f"ce_probs_{r}", loss("cross_entropy", reduction=r), [R(5, 4), SOFT(5, 4)], r == "mean")
      for r in ("mean", "sum", "none")],
    ("ce_probs_weight_smooth", loss("cross_entropy", weight=WC, label_smoothing=0.3),
     [R(5, 4), SOFT(5, 4)], False),
    ("ce_unbatched", loss("cross_entropy"), [R(4), np.array(2)], True),
    ("ce_unbatched_probs", loss("cross_entropy"), [R(4), SOFT(4, dim=0)], False),
    ("ce_kdim", loss("cross_entropy"), [R(2, 4, 3, 2), IDX(4, 2, 3, 2)], True),
    ("ce_kdim_all_options", loss("cross_entropy", weight=WC, ignore_index=1,
                                 label_smoothing=0.15), [R(2, 4, 3), IDX(4, 2, 3)], False),
    ("ce_kdim_none", loss("cross_entropy", reduction="none", label_smoothing=0.1),
     [R(2, 4, 3), IGN3], False),
    ("ce_kdim_probs", loss("cross_entropy", weight=WC), [R(2, 4, 3), SOFT(2, 4, 3)], False),
    ("ce_prob_target_grad", lambda lib, x, t: lib.nn.functional.cross_entropy(x, t.softmax(1)),
     [R(3, 4), R(3, 4)], False),
    ("nll", loss("nll_loss", pre=logp), [R(5, 4), IDX(4, 5)], True),
    ("nll_weight_ignore", loss("nll_loss", weight=WC), [R(6, 4), IGN], False),
    ("nll_sum_kdim", loss("nll_loss", reduction="sum"), [R(2, 4, 3), IDX(4, 2, 3)], False),
    ("nll_none", loss("nll_loss", reduction="none", ignore_index=0), [R(6, 4), IDX(4, 6)], False),
    *[(f"mse_{r}", loss("mse_loss", reduction=r), [R(5, 4), R(5, 4)], True)
      for r in ("mean", "sum", "none")],
    ("mse_weight", loss("mse_loss", weight=W5), [R(5, 4), R(5, 4)], False),
    *[(f"l1_{r}", loss("l1_loss", reduction=r), [R(5, 4), R(5, 4)], False)
      for r in ("mean", "sum", "none")],
    ("l1_weight_sum", loss("l1_loss", weight=W5, reduction="sum"), [R(5, 4), R(5, 4)], False),
    *[(f"smooth_l1_beta{b}", loss("smooth_l1_loss", beta=b), [R(5, 4, scale=2), R(5, 4, scale=2)],
       False) for b in (1.0, 0.5, 0.0)],
    ("smooth_l1_none", loss("smooth_l1_loss", reduction="none", beta=2.0),
     [R(5, 4, scale=2), R(5, 4, scale=2)], False),
    *[(f"huber_delta{d}", loss("huber_loss", delta=d), [R(5, 4, scale=2), R(5, 4, scale=2)],
       False) for d in (1.0, 0.3, 2.5)],
    ("huber_weight_sum", loss("huber_loss", delta=0.7, reduction="sum", weight=W5),
     [R(5, 4), R(5, 4)], False),
    ("huber_weight_mean", loss("huber_loss", weight=W5), [R(5, 4), R(5, 4)], False),
    *[(f"bce_{r}", loss("binary_cross_entropy", reduction=r), [PROB(5, 3), PROB(5, 3)],
       r == "mean") for r in ("mean", "sum", "none")],
    ("bce_weight", loss("binary_cross_entropy", weight=W3), [PROB(5, 3), PROB(5, 3)], False),
    *[(f"bce_logits_{r}", loss("binary_cross_entropy_with_logits", reduction=r),
       [R(5, 3, scale=3), PROB(5, 3)], r == "mean") for r in ("mean", "sum", "none")],
    ("bce_logits_pos_weight", loss("binary_cross_entropy_with_logits", pos_weight=W3 * 3),
     [R(5, 3, scale=3), PROB(5, 3)], True),
    ("bce_logits_both_weights", loss("binary_cross_entropy_with_logits", weight=W53,
                                     pos_weight=W3 * 2, reduction="sum"),
     [R(5, 3, scale=3), PROB(5, 3)], False),
    *[(f"kl_{r}", loss("kl_div", pre=logp, reduction=r), [R(4, 5), SOFT(4, 5)],
       r == "batchmean") for r in ("batchmean", "sum", "none")],
    ("kl_log_target", lambda lib, x, y: lib.nn.functional.kl_div(
        x.log_softmax(1), y.log_softmax(1), reduction="batchmean", log_target=True),
     [R(4, 5), R(4, 5)], True),
]
# fmt: on


@pytest.mark.parametrize("name,fn,inputs,second", CASES, ids=[c[0] for c in CASES])
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_loss_parity(name, fn, inputs, second):
    check(fn, *inputs, second_order=second, **TOL)


def test_kl_mean_warns_and_matches():
    x, y = R(3, 4), SOFT(3, 4)
    with pytest.warns(UserWarning, match="batchmean"):
        check(lambda lib, a, b: lib.nn.functional.kl_div(a, b), x, y, gradcheck=False, **TOL)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("fused", [True, False])
def test_all_ignored_is_nan_with_zero_gradient_like_torch(smoothing, fused):
    from tinytorch.nn.functional._loss import _cross_entropy

    x, t = R(3, 4), np.full(3, -100)
    xt, xh = tinytorch.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours = _cross_entropy(xt, tinytorch.tensor(t), None, -100, "mean", smoothing, fused)
    theirs = torch.nn.functional.cross_entropy(xh, torch.tensor(t), label_smoothing=smoothing)
    ours.backward()
    theirs.backward()
    assert np.isnan(ours.item()) and np.isnan(theirs.item())
    assert_same(xt.grad, xh.grad, **TOL)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_huge_logits_are_finite_and_match(dtype, scale):
    x = (R(6, 5) * scale).astype(dtype)
    t = IDX(5, 6)
    tol = {"rtol": 1e-5, "atol": 1e-3} if dtype == np.float32 else TOL

    def ce(lib, a, b):
        return lib.nn.functional.cross_entropy(a, b, label_smoothing=0.1)

    check(ce, x, t, gradcheck=False, **tol)
    xt = tinytorch.tensor(x, requires_grad=True)
    ce(tinytorch, xt, tinytorch.tensor(t)).backward()
    assert np.isfinite(xt.grad.data).all()
    y = PROB(6, 5).astype(dtype)
    check(
        lambda lib, a, b: lib.nn.functional.binary_cross_entropy_with_logits(a, b),
        x,
        y,
        gradcheck=False,
        **tol,
    )
    check(lambda lib, a: lib.nn.functional.log_softmax(a, 1), x, gradcheck=False, **tol)


FLOAT32_CASES = [
    "ce_mean",
    "ce_smooth_weight",
    "ce_probs_mean",
    "ce_kdim_all_options",
    "mse_mean",
    "l1_sum",
    "huber_delta0.3",
    "bce_mean",
    "bce_logits_pos_weight",
    "kl_batchmean",
    "nll_weight_ignore",
]


@pytest.mark.parametrize("name", FLOAT32_CASES)
def test_loss_parity_float32(name):
    _, fn, inputs, _ = next(c for c in CASES if c[0] == name)
    inputs32 = [a.astype(np.float32) if a.dtype.kind == "f" else a for a in inputs]

    _W_DTYPE[0] = np.float32
    try:
        check(fn, *inputs32, gradcheck=False, rtol=1e-5, atol=1e-6)
    finally:
        _W_DTYPE[0] = np.float64


def test_bce_clamps_log_at_minus_100():
    x = np.array([0.0, 1.0, 0.5, 1e-50])
    y = np.array([1.0, 0.0, 0.3, 1.0])
    check(
        lambda lib, a, b: lib.nn.functional.binary_cross_entropy(a, b, reduction="none"),
        x,
        y,
        grad=False,
        **TOL,
    )
    xt = tinytorch.tensor(x, requires_grad=True)
    tinytorch.nn.functional.binary_cross_entropy(xt, tinytorch.tensor(y)).backward()
    assert np.isfinite(xt.grad.data).all()


def test_mse_broadcast_warns_like_torch():
    x, y = R(3, 4), R(4)
    with pytest.warns(UserWarning, match="different to the input size"):
        check(lambda lib, a, b: lib.nn.functional.mse_loss(a, b), x, y, gradcheck=False, **TOL)


# --- module forms ----------------------------------------------------------------------

MODULES = [
    ("CrossEntropyLoss", {}, [R(5, 4), IDX(4, 5)]),
    (
        "CrossEntropyLoss",
        {"weight": WC, "ignore_index": 1, "label_smoothing": 0.1, "reduction": "sum"},
        [R(5, 4), IDX(4, 5)],
    ),
    ("NLLLoss", {"weight": WC}, [R(5, 4), IDX(4, 5)]),
    ("MSELoss", {"reduction": "none"}, [R(3, 2), R(3, 2)]),
    ("L1Loss", {}, [R(3, 2), R(3, 2)]),
    ("SmoothL1Loss", {"beta": 0.5}, [R(3, 2), R(3, 2)]),
    ("HuberLoss", {"delta": 0.5, "reduction": "sum"}, [R(3, 2), R(3, 2)]),
    ("BCELoss", {"weight": PROB(2)}, [PROB(3, 2), PROB(3, 2)]),
    ("BCEWithLogitsLoss", {"pos_weight": PROB(2) * 2, "weight": PROB(2)}, [R(3, 2), PROB(3, 2)]),
    ("KLDivLoss", {"reduction": "batchmean", "log_target": True}, [R(3, 2), R(3, 2)]),
    ("MSELoss", {"size_average": False}, [R(3, 2), R(3, 2)]),
]


@pytest.mark.parametrize("cls,kwargs,inputs", MODULES, ids=[m[0] for m in MODULES])
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_loss_modules(cls, kwargs, inputs):
    def make(lib):
        kw = {k: (lib.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in kwargs.items()}
        return getattr(lib.nn, cls)(**kw)

    ours, theirs = make(tinytorch), make(torch)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert ours.reduction == theirs.reduction
    check(
        lambda lib, *xs: (ours if lib is tinytorch else theirs)(*xs),
        *inputs,
        gradcheck=False,
        **TOL,
    )


def test_loss_module_to_dtype_casts_weight_buffer():
    m = tinytorch.nn.CrossEntropyLoss(weight=tinytorch.tensor(WC))
    m.float()
    assert m.weight.dtype == tinytorch.float32


# --- errors ----------------------------------------------------------------------------


def test_float_target_with_index_shape_is_rejected():
    check_error(
        lambda lib, x, t: lib.nn.functional.cross_entropy(x, t), R(3, 4), R(3), match="integer"
    )


def test_float_indices_in_nll_are_rejected():
    check_error(
        lambda lib, x, t: lib.nn.functional.nll_loss(x, t),
        R(3, 4),
        np.array([0.0, 1, 2]),
        match="int64",
    )


@pytest.mark.parametrize("bad", [4, 7, -1])
def test_out_of_range_class_is_rejected_with_value_and_count(bad):
    t = np.array([0, bad, 1])
    with pytest.raises(IndexError, match=rf"Target {bad} is out of bounds.*C=4"):
        tinytorch.nn.functional.cross_entropy(tinytorch.tensor(R(3, 4)), tinytorch.tensor(t))
    with pytest.raises(IndexError):
        torch.nn.functional.cross_entropy(torch.tensor(R(3, 4)), torch.tensor(t))


def test_batch_mismatch_names_both_shapes():
    check_error(
        lambda lib, x, t: lib.nn.functional.cross_entropy(x, t),
        R(3, 4),
        IDX(4, 5),
        match=r"batch_size \(3\).*\(5\).*\[3, 4\].*\[5\]",
    )


def test_probability_target_must_be_float():
    check_error(
        lambda lib, x, t: lib.nn.functional.cross_entropy(x, t),
        R(3, 4),
        IDX(4, 3, 4),
        match="floating",
    )


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_shape_errors_name_the_loss_and_shapes():
    check_error(
        lambda lib, x, y: lib.nn.functional.mse_loss(x, y),
        R(3, 4),
        R(5),
        match=r"mse_loss.*\[3, 4\].*\[5\]",
    )
    check_error(
        lambda lib, x, y: lib.nn.functional.binary_cross_entropy(x, y),
        PROB(3, 1),
        PROB(3),
        match="target size",
    )
    check_error(
        lambda lib, x, y: lib.nn.functional.binary_cross_entropy_with_logits(x, y),
        R(3),
        R(3, 1),
        match="must be the same",
    )


def test_bad_reduction_and_probabilities():
    check_error(
        lambda lib, x, t: lib.nn.functional.cross_entropy(x, t, reduction="avg"),
        R(3, 4),
        IDX(4, 3),
        match="not a valid value",
    )
    check_error(
        lambda lib, x, y: lib.nn.functional.binary_cross_entropy(x, y),
        R(3) + 2,
        PROB(3),
        match="between 0 and 1",
    )


def test_cross_entropy_matches_log_softmax_reference():
    """The loss equals the plain composite -mean(log_softmax(x)[i, y_i])."""
    x, t = R(8, 6), IDX(6, 8)
    xt = tinytorch.tensor(x)
    ref = -xt.log_softmax(1)[np.arange(8), t].mean()
    assert_same(tinytorch.nn.functional.cross_entropy(xt, tinytorch.tensor(t)), ref.data, **TOL)


CE_CONFIGS = [
    ({}, (5, 4)),
    ({"reduction": "sum", "weight": WC}, (5, 4)),
    ({"reduction": "none", "label_smoothing": 0.2}, (5, 4)),
    ({"weight": WC, "label_smoothing": 0.1, "ignore_index": 3}, (6, 4)),
    ({"reduction": "none", "weight": WC, "label_smoothing": 0.3}, (2, 4, 3)),
    ({"label_smoothing": 0.25}, (4,)),
]


@pytest.mark.parametrize("kwargs,shape", CE_CONFIGS)
def test_fused_cross_entropy_matches_composite_to_second_order(kwargs, shape):
    from tinytorch.nn.functional._loss import _cross_entropy

    x = R(*shape)
    t = IDX(4, *((shape[0],) + shape[2:] if len(shape) > 1 else ()))
    if len(shape) > 1:
        t = with_ignored(t, kwargs.get("ignore_index", -100))
    kw = {"weight": None, "ignore_index": -100, "reduction": "mean", "label_smoothing": 0.0}
    kw.update(
        {k: (tinytorch.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in kwargs.items()}
    )
    results = []
    for fused in (True, False):
        xt = tinytorch.tensor(x, requires_grad=True)
        out = _cross_entropy(xt, tinytorch.tensor(t), fused=fused, **kw)
        w = tinytorch.tensor(np.linspace(0.5, 1.5, out.numel()).reshape(out.shape))
        (g,) = tinytorch.autograd.grad((out * w).sum(), [xt], create_graph=True)
        v = tinytorch.tensor(np.cos(np.arange(g.numel())).reshape(g.shape))
        (gg,) = tinytorch.autograd.grad((g * v).sum(), [xt])
        results.append((out, g, gg))
    for a, b in zip(*results):
        assert_same(a, b.data, **TOL)


SIGNS = rng.choice([-1.0, 1.0], size=5)
COUNTS = rng.poisson(2.0, size=(5, 3)).astype(np.float64)

# fmt: off
EXTRA_CASES = [
    ("poisson", loss("poisson_nll_loss"), [R(5, 3), COUNTS]),
    ("poisson_full_prob", loss("poisson_nll_loss", log_input=False, full=True, reduction="sum"),
     [PROB(5, 3) * 3, COUNTS + 1.5]),  # y away from 1, where the Stirling term jumps
    ("gaussian", loss("gaussian_nll_loss", full=True), [R(5, 3), R(5, 3), PROB(5, 3)]),
    ("gaussian_homoscedastic", loss("gaussian_nll_loss", reduction="none"),
     [R(5, 3), R(5, 3), PROB(5)]),
    ("soft_margin", lambda lib, x: lib.nn.functional.soft_margin_loss(x, T(lib, SIGNS)), [R(5)]),
    ("margin_ranking", loss("margin_ranking_loss", margin=0.3), [R(5), R(5), SIGNS]),
    ("hinge_embedding", loss("hinge_embedding_loss", margin=0.5), [R(5) + 0.05, SIGNS]),
    ("cosine_embedding", loss("cosine_embedding_loss", margin=-0.5), [R(5, 4), R(5, 4), SIGNS]),
    ("triplet", loss("triplet_margin_loss", margin=2.0), [R(5, 4), R(5, 4), R(5, 4)]),
    ("triplet_swap_p1", loss("triplet_margin_loss", p=1, swap=True), [R(5, 4), R(5, 4), R(5, 4)]),
    ("multilabel_soft_margin", loss("multilabel_soft_margin_loss", weight=W3),
     [R(5, 3), PROB(5, 3)]),
]
# fmt: on


@pytest.mark.parametrize("name,fn,inputs", EXTRA_CASES, ids=[c[0] for c in EXTRA_CASES])
def test_extra_loss_parity(name, fn, inputs):
    check(fn, *inputs, **TOL)


@pytest.mark.parametrize(
    "cls,kwargs",
    [
        ("PoissonNLLLoss", {"full": True}),
        ("GaussianNLLLoss", {"eps": 1e-3}),
        ("SoftMarginLoss", {}),
        ("MarginRankingLoss", {"margin": 0.1}),
        ("CosineEmbeddingLoss", {}),
        ("HingeEmbeddingLoss", {"margin": 2.0}),
        ("TripletMarginLoss", {"swap": True}),
        ("MultiLabelSoftMarginLoss", {"reduction": "sum"}),
    ],
)
def test_extra_loss_modules_repr_and_reduction(cls, kwargs):
    ours, theirs = getattr(tinytorch.nn, cls)(**kwargs), getattr(torch.nn, cls)(**kwargs)
    assert repr(ours) == repr(theirs)
    assert ours.reduction == theirs.reduction
    assert list(ours.state_dict()) == list(theirs.state_dict())


@pytest.mark.parametrize("kwargs", [{}, {"weight": WC, "ignore_index": 3}])
def test_cross_entropy_of_transposed_logits(kwargs):
    """Logits that are a transposed view (not C-ordered) give torch's loss and gradient."""
    x, t = R(4, 6), with_ignored(IDX(4, 6), kwargs.get("ignore_index", -100))
    grads = []
    for lib in (tinytorch, torch):
        xt = lib.tensor(x, requires_grad=True)
        kw = {k: lib.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        loss = lib.nn.functional.cross_entropy(xt.t(), lib.tensor(t), **kw)
        loss.backward()
        grads.append((loss, xt.grad))
    assert_same(grads[0][0], grads[1][0], **TOL)
    assert_same(grads[0][1], grads[1][1], **TOL)
