"""Layers and activations against torch: same weights in, same outputs and gradients
out (input and every parameter), names, state_dict keys and printed repr; dropout
behaviour; default initialization."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from parity import assert_same, check, check_error, to_torch, to_tt

import tinytorch

rng = np.random.default_rng(1)
TOL = {"rtol": 1e-10, "atol": 1e-12}


def R(*shape: int, scale: float = 1.0) -> np.ndarray:
    return rng.standard_normal(shape) * scale


def AWAY(*shape: int, kinks: tuple[float, ...] = (0.0,), gap: float = 0.05) -> np.ndarray:
    """Normal draws pushed at least ``gap`` away from every kink."""
    x = rng.uniform(-4, 4, size=shape)
    for k in kinks:
        near = np.abs(x - k) < gap
        x[near] = k + np.where(x[near] >= k, gap, -gap) * 2
    return x


def copy_weights(ours: tinytorch.nn.Module, theirs: torch.nn.Module) -> None:
    ours.load_state_dict(
        {k: tinytorch.tensor(v.detach().numpy().copy()) for k, v in theirs.state_dict().items()}
    )


def module_parity(make, *inputs: np.ndarray, dtype=np.float64, rtol=1e-10, atol=1e-12):
    """Build ``make(lib)`` in both libraries, copy torch's weights into ours, compare
    names, state_dict keys, repr, forward, input gradients and parameter gradients."""
    theirs = make(torch).to(getattr(torch, np.dtype(dtype).name))
    ours = make(tinytorch).to(getattr(tinytorch, np.dtype(dtype).name))
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs).replace("torch", "tinytorch")
    copy_weights(ours, theirs)
    arrays = [a.astype(dtype) if a.dtype.kind == "f" else a for a in inputs]
    tt_in = [to_tt(a, True) for a in arrays]
    th_in = [to_torch(a, True) for a in arrays]
    out_tt, out_th = ours(*tt_in), theirs(*th_in)
    assert_same(out_tt, out_th, rtol, atol, "forward")
    w = rng.standard_normal(tuple(out_th.shape)).astype(dtype)
    (out_tt * tinytorch.tensor(w)).sum().backward()
    (out_th * torch.tensor(w)).sum().backward()
    for i, (a, b) in enumerate(zip(tt_in, th_in)):
        if b.requires_grad:
            assert_same(a.grad, b.grad, rtol, atol, f"grad of input {i}")
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        q = theirs_params[name]
        if q.grad is None:
            assert p.grad is None or not p.grad.data.any(), name
        else:
            assert_same(p.grad, q.grad, rtol, atol, f"grad of {name}")
    return ours, theirs


def nn(name: str, *args, **kwargs):
    """``make(lib)`` building ``lib.nn.<name>(*args, **kwargs)``."""
    return lambda lib: getattr(lib.nn, name)(*args, **kwargs)


# fmt: off
LAYERS = [
    ("linear", nn("Linear", 4, 3), [R(5, 4)]),
    ("linear_nobias_3d", nn("Linear", 4, 3, bias=False), [R(2, 5, 4)]),
    ("linear_1d", nn("Linear", 4, 2), [R(4)]),
    ("bilinear", nn("Bilinear", 3, 4, 2), [R(5, 3), R(5, 4)]),
    ("bilinear_nobias_3d", nn("Bilinear", 2, 3, 4, bias=False), [R(2, 3, 2), R(2, 3, 3)]),
    ("identity", nn("Identity", 3, unused=True), [R(2, 3)]),
    ("flatten", nn("Flatten"), [R(2, 3, 4)]),
    ("flatten_dims", nn("Flatten", 0, 1), [R(2, 3, 4)]),
    ("unflatten", nn("Unflatten", 1, (2, 3)), [R(4, 6)]),
    ("embedding", nn("Embedding", 10, 3), [rng.integers(0, 10, (4, 5))]),
    ("embedding_padding", nn("Embedding", 10, 3, padding_idx=2),
     [np.array([[2, 1, 2], [3, 2, 9]])]),
    ("embedding_neg_padding", nn("Embedding", 6, 2, padding_idx=-1), [np.array([5, 1, 5, 0])]),
    ("embedding_freq", nn("Embedding", 5, 3, scale_grad_by_freq=True),
     [np.array([[1, 1, 2], [1, 4, 2]])]),
    ("embedding_max_norm", nn("Embedding", 5, 3, max_norm=0.5), [np.array([0, 3, 3, 1])]),
    ("embedding_max_norm_p1", nn("Embedding", 5, 3, max_norm=1.0, norm_type=1.0),
     [np.array([0, 3, 4])]),
    ("prelu", nn("PReLU"), [AWAY(3, 4)]),
    ("prelu_channels", nn("PReLU", 3), [AWAY(2, 3, 4)]),
    ("mlp", lambda lib: lib.nn.Sequential(lib.nn.Linear(4, 8), lib.nn.GELU(), lib.nn.Linear(8, 8),
                                          lib.nn.Tanh(), lib.nn.Linear(8, 2),
                                          lib.nn.LogSoftmax(-1)), [R(6, 4)]),
]
# fmt: on


@pytest.mark.parametrize("name,make,inputs", LAYERS, ids=[c[0] for c in LAYERS])
def test_layer_parity(name, make, inputs):
    module_parity(make, *inputs)


@pytest.mark.parametrize(
    "name", ["linear", "bilinear", "embedding_padding", "prelu_channels", "mlp"]
)
def test_layer_parity_float32(name):
    _, make, inputs = next(c for c in LAYERS if c[0] == name)
    module_parity(make, *inputs, dtype=np.float32, rtol=1e-5, atol=1e-6)


def test_embedding_padding_row_gets_no_gradient_and_from_pretrained():
    weights = R(4, 3)
    for freeze in (True, False):
        for lib in (tinytorch, torch):
            emb = lib.nn.Embedding.from_pretrained(
                lib.tensor(weights), freeze=freeze, padding_idx=1
            )
            assert emb.weight.requires_grad is (not freeze)
            assert repr(emb).startswith("Embedding(4, 3, padding_idx=1")
    emb = tinytorch.nn.Embedding(4, 3, padding_idx=1)
    assert not emb.weight.data[1].any()
    emb(tinytorch.tensor([1, 1, 2])).sum().backward()
    assert not emb.weight.grad.data[1].any() and emb.weight.grad.data[2].all()


def test_embedding_errors():
    emb = tinytorch.nn.Embedding(4, 2)
    with pytest.raises(IndexError, match=r"index out of range.*index 4 for a table of 4 rows"):
        emb(tinytorch.tensor([0, 4]))
    with pytest.raises(RuntimeError, match="Long, Int"):
        emb(tinytorch.tensor([0.0, 1.0]))
    with pytest.raises(AssertionError, match="Padding_idx"):
        tinytorch.nn.Embedding(4, 2, padding_idx=4)


# --- activations -----------------------------------------------------------------------


def fn(name: str, *args, **kwargs):
    """``fn(lib, x)`` calling ``lib.nn.functional.<name>(x, *args, **kwargs)``."""
    return lambda lib, x: getattr(lib.nn.functional, name)(x, *args, **kwargs)


# (id, fn(lib, x), x, second_order)
# fmt: off
F_CASES = [
    ("relu", fn("relu"), AWAY(3, 4), False),
    ("relu6", fn("relu6"), AWAY(3, 4, kinks=(0.0, 6.0)) * 2, False),
    ("leaky_relu", fn("leaky_relu", 0.2), AWAY(3, 4), False),
    ("elu", fn("elu", 0.7), AWAY(3, 4), True),
    ("selu", fn("selu"), AWAY(3, 4), True),
    ("celu", fn("celu", 1.5), AWAY(3, 4), True),
    ("gelu", fn("gelu"), R(3, 4, scale=2), True),
    ("gelu_tanh", fn("gelu", approximate="tanh"), R(3, 4, scale=2), True),
    ("gelu_wide", fn("gelu"), np.linspace(-7, 7, 57), False),
    ("silu", fn("silu"), R(3, 4, scale=3), True),
    ("mish", fn("mish"), R(3, 4, scale=3), True),
    ("softplus", fn("softplus"), R(3, 4, scale=3), True),
    ("softplus_beta", fn("softplus", beta=2.0, threshold=3.0), AWAY(3, 4, kinks=(1.5,)), True),
    ("sigmoid", fn("sigmoid"), R(3, 4, scale=3), True),
    ("tanh", fn("tanh"), R(3, 4, scale=2), True),
    ("softmax", fn("softmax", dim=1), R(3, 4), True),
    ("log_softmax", fn("log_softmax", dim=-1), R(3, 4), True),
    ("softmin", fn("softmin", dim=0), R(3, 4), True),
    ("hardtanh", fn("hardtanh", -2.0, 1.5), AWAY(3, 4, kinks=(-2.0, 1.5)), False),
    ("hardsigmoid", fn("hardsigmoid"), AWAY(3, 4, kinks=(-3.0, 3.0)), False),
    ("hardswish", fn("hardswish"), AWAY(3, 4, kinks=(-3.0, 3.0)), False),
    ("softsign", fn("softsign"), AWAY(3, 4), True),
    ("tanhshrink", fn("tanhshrink"), R(3, 4), True),
    ("threshold", fn("threshold", 0.5, -3.0), AWAY(3, 4, kinks=(0.5,)), False),
    ("logsigmoid", fn("logsigmoid"), R(3, 4, scale=3), True),
    ("hardshrink", fn("hardshrink", 0.7), AWAY(3, 4, kinks=(-0.7, 0.7)), False),
    ("softshrink", fn("softshrink", 0.7), AWAY(3, 4, kinks=(-0.7, 0.7)), False),
    ("glu", fn("glu", 0), R(4, 3), True),
    ("prelu_f", lambda lib, x, w: lib.nn.functional.prelu(x, w), AWAY(2, 3, 2), False),
    ("rrelu_eval", fn("rrelu", 0.1, 0.3), AWAY(3, 4), False),
    ("normalize", fn("normalize", dim=0), R(3, 4), True),
    ("normalize_p1", fn("normalize", p=1.0), AWAY(3, 4), False),
    ("cosine_similarity", lambda lib, x: lib.nn.functional.cosine_similarity(x[0], x[1], dim=0),
     R(2, 5, 3), True),
    ("pairwise_distance", lambda lib, x: lib.nn.functional.pairwise_distance(x[0], x[1]),
     R(2, 4, 3), True),
    ("linear_f", lambda lib, x: lib.nn.functional.linear(x[..., :3], x[:2, 0, :3], x[0, 0, :2]),
     R(3, 2, 4), True),
]
# fmt: on


# torch's hardsigmoid backward multiplies by float32(1/6) even in float64 (3e-8 off exact)
LOOSE = {"hardsigmoid": {"rtol": 1e-7, "atol": 1e-12}}


@pytest.mark.parametrize("name,fn,x,second", F_CASES, ids=[c[0] for c in F_CASES])
def test_functional_parity(name, fn, x, second):
    if name == "prelu_f":
        check(fn, x, np.array([0.1, -0.4, 0.3]), **TOL)
        return
    check(fn, x, second_order=second, **LOOSE.get(name, TOL))


def test_softmax_dtype_argument():
    check(
        lambda lib, x: lib.nn.functional.softmax(x, 0, dtype=lib.float32),
        R(3, 4),
        gradcheck=False,
        rtol=1e-6,
        atol=1e-7,
    )
    check(
        lambda lib, x: lib.nn.functional.log_softmax(x, 1, dtype=lib.float64),
        R(3, 4).astype(np.float32),
        gradcheck=False,
        rtol=1e-6,
        atol=1e-7,
    )


def test_gelu_float32_and_large_inputs():
    x = np.linspace(-10, 10, 101).astype(np.float32)
    check(lambda lib, a: lib.nn.functional.gelu(a), x, gradcheck=False, rtol=1e-5, atol=1e-6)
    x = np.array([-1e4, -50.0, 50.0, 1e4])
    check(lambda lib, a: lib.nn.functional.gelu(a), x, gradcheck=False, **TOL)
    for f in ("softplus", "mish", "silu", "logsigmoid", "elu", "selu"):
        check(lambda lib, a, f=f: getattr(lib.nn.functional, f)(a), x, gradcheck=False, **TOL)


def test_erf_against_torch():
    from tinytorch import erf

    x = np.concatenate([np.linspace(-7, 7, 2001), [0.0, 1.0, 2.5, 6.0, np.inf, -np.inf]])
    check(lambda lib, a: erf(a) if lib is tinytorch else torch.erf(a), x, gradcheck=False, **TOL)


# fmt: off
ACT_MODULES = [
    ("ReLU", {}), ("ReLU", {"inplace": True}), ("ReLU6", {}), ("LeakyReLU", {}),
    ("LeakyReLU", {"negative_slope": 0.2, "inplace": True}), ("ELU", {"alpha": 0.5}),
    ("CELU", {}), ("SELU", {"inplace": True}), ("GELU", {}), ("GELU", {"approximate": "tanh"}),
    ("SiLU", {}), ("Mish", {}), ("Softplus", {"beta": 2.0}), ("Sigmoid", {}), ("Tanh", {}),
    ("Softmax", {"dim": 1}), ("LogSoftmax", {"dim": 0}), ("Softmin", {"dim": -1}),
    ("Hardtanh", {"min_val": -0.5, "max_val": 2.0}), ("Hardsigmoid", {"inplace": True}),
    ("Hardswish", {}), ("Softsign", {}), ("Tanhshrink", {}),
    ("Threshold", {"threshold": 0.1, "value": 20.0}), ("LogSigmoid", {}), ("Hardshrink", {}),
    ("Softshrink", {"lambd": 0.3}), ("GLU", {}), ("PReLU", {"num_parameters": 3, "init": 0.1}),
    ("RReLU", {}), ("Softmax2d", {}),
]
# fmt: on


@pytest.mark.parametrize("cls,kwargs", ACT_MODULES, ids=[a[0] for a in ACT_MODULES])
def test_activation_modules(cls, kwargs):
    kinks = (-3.0, -0.5, 0.0, 0.1, 0.3, 0.5, 2.0, 3.0, 6.0)
    x = AWAY(2, 3, 4, 2, kinks=kinks, gap=0.02)

    def make(lib):
        m = getattr(lib.nn, cls)(**kwargs)
        if kwargs.get("inplace"):  # torch refuses in-place ops on a leaf: feed a non-leaf
            return lib.nn.Sequential(lib.nn.Hardtanh(-100.0, 100.0), m)
        return m.eval() if cls == "RReLU" else m

    module_parity(make, x, **LOOSE.get(cls.lower(), TOL))


# --- dropout ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls", ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"]
)
def test_dropout_eval_is_identity_and_repr(cls):
    ours, theirs = getattr(tinytorch.nn, cls)(0.3), getattr(torch.nn, cls)(0.3)
    assert repr(ours) == repr(theirs) == f"{cls}(p=0.3, inplace=False)"
    x = tinytorch.randn(
        *{"Dropout1d": (2, 3, 4), "Dropout2d": (2, 3, 4, 5)}.get(cls, (2, 3, 4, 5, 6))
    )
    assert ours.eval()(x) is x


def test_dropout_train_scale_and_rate():
    tinytorch.manual_seed(0)
    p = 0.3
    x = tinytorch.ones(200, 500, dtype=tinytorch.float64, requires_grad=True)
    y = tinytorch.nn.Dropout(p)(x)
    kept = y.data != 0
    assert np.allclose(y.data[kept], 1 / (1 - p))
    assert abs(kept.mean() - (1 - p)) < 0.005
    y.sum().backward()
    assert np.array_equal(x.grad.data, y.data)  # gradient uses the same mask and scale
    assert tinytorch.nn.functional.dropout(x, 1.0).data.sum() == 0
    assert tinytorch.nn.functional.dropout(x, 0.5, training=False) is x
    with pytest.raises(ValueError, match="between 0 and 1"):
        tinytorch.nn.Dropout(1.5)


def test_dropout_is_seeded():
    x = tinytorch.ones(50, 50)
    tinytorch.manual_seed(3)
    a = tinytorch.nn.functional.dropout(x).data
    tinytorch.manual_seed(3)
    b = tinytorch.nn.functional.dropout(x).data
    assert np.array_equal(a, b)


@pytest.mark.parametrize(
    "cls,shape,lead",
    [
        ("Dropout1d", (8, 16, 5), 2),
        ("Dropout1d", (16, 5), 1),
        ("Dropout2d", (8, 16, 3, 3), 2),
        ("Dropout3d", (8, 16, 2, 2, 2), 2),
        ("Dropout3d", (16, 2, 2, 2), 1),
    ],
)
def test_channel_dropout_zeroes_whole_channels(cls, shape, lead):
    y = getattr(tinytorch.nn, cls)(0.5)(tinytorch.ones(*shape)).data
    per_channel = y.reshape(shape[:lead] + (-1,))
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2.0).all(-1))
    assert 0 < (per_channel == 0).all(-1).mean() < 1


def test_dropout1d_rejects_bad_rank():
    with pytest.raises(RuntimeError, match="Expected 2D or 3D input"):
        tinytorch.nn.Dropout1d()(tinytorch.ones(2, 3, 4, 5))


def test_alpha_dropout_keeps_moments():
    tinytorch.manual_seed(0)
    x = tinytorch.randn(400, 500, dtype=tinytorch.float64)
    y = tinytorch.nn.AlphaDropout(0.2)(x).data
    assert abs(y.mean()) < 0.02 and abs(y.std() - 1) < 0.02


# --- default initialization ------------------------------------------------------------


def test_default_init_distributions():
    tinytorch.manual_seed(0)
    lin = tinytorch.nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    for p in (lin.weight, lin.bias):
        assert np.abs(p.data).max() <= bound
    assert abs(lin.weight.data.std() - bound / math.sqrt(3)) < 0.01 * bound
    bil = tinytorch.nn.Bilinear(50, 60, 70)
    assert np.abs(bil.weight.data).max() <= 1 / math.sqrt(50)
    emb = tinytorch.nn.Embedding(300, 400, padding_idx=0)
    assert abs(emb.weight.data[1:].std() - 1) < 0.01 and abs(emb.weight.data.mean()) < 0.01
    assert not emb.weight.data[0].any()
    assert np.all(tinytorch.nn.PReLU(3).weight.data == 0.25)
    assert lin.weight.dtype == tinytorch.float32
    assert tinytorch.nn.Linear(2, 3, dtype=tinytorch.float64).weight.dtype == tinytorch.float64


def test_reset_parameters_is_seeded():
    tinytorch.manual_seed(5)
    a = tinytorch.nn.Linear(3, 4)
    tinytorch.manual_seed(5)
    b = tinytorch.nn.Linear(3, 4)
    assert np.array_equal(a.weight.data, b.weight.data)
    assert np.array_equal(a.bias.data, b.bias.data)


def test_one_hot_matches_torch():
    t = np.array([[0, 2], [1, 3]])
    for n in (-1, 5):
        a = tinytorch.nn.functional.one_hot(tinytorch.tensor(t), n)
        b = torch.nn.functional.one_hot(torch.tensor(t), n)
        assert a.dtype == tinytorch.int64 and np.array_equal(a.data, b.numpy())
    check_error(lambda lib, x: lib.nn.functional.one_hot(x, 3), np.array([0, 3]))
    check_error(lambda lib, x: lib.nn.functional.one_hot(x), np.array([-1, 0]))
    check_error(lambda lib, x: lib.nn.functional.one_hot(x), np.array([0.0, 1.0]))


def test_embedding_max_norm_renormalizes_weight_in_place_like_torch():
    make = lambda lib: lib.nn.Embedding(6, 4, max_norm=1.2)
    ours, theirs = module_parity(make, np.array([[0, 5, 5], [2, 0, 1]]))
    assert_same(ours.weight, theirs.weight, **TOL)
    check(
        lambda lib, w: lib.nn.functional.embedding(lib.tensor([[1, 0], [2, 2]]), w, padding_idx=0),
        R(3, 2),
        gradcheck=False,
        **TOL,
    )  # padding row: zero grad by design


def test_bilinear_functional_and_errors():
    check(
        lambda lib, a, b, w: lib.nn.functional.bilinear(a, b, w),
        R(4, 2),
        R(4, 3),
        R(5, 2, 3),
        **TOL,
    )
    check_error(
        lambda lib, a, b, w: lib.nn.functional.bilinear(a, b, w),
        R(4, 2),
        R(3, 3),
        R(5, 2, 3),
        match="batch dimensions",
    )


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("lead", [(5,), (2, 3)])
def test_fused_linear_matches_the_composite(bias: bool, lead: tuple[int, ...]) -> None:
    """``F.linear`` (the fused ``Linear`` node for 2-D input) against ``linear_reference``
    (MatMul of a Permute plus an Expanded bias): value, gradients, second derivatives."""
    from tinytorch.nn.functional._linear import linear_reference

    g = np.random.default_rng(1)
    x = tinytorch.tensor(g.standard_normal(lead + (4,)), requires_grad=True)
    w = tinytorch.tensor(g.standard_normal((3, 4)), requires_grad=True)
    b = tinytorch.tensor(g.standard_normal(3), requires_grad=True) if bias else None
    ins = [x, w] + ([b] if bias else [])
    weight = tinytorch.tensor(g.standard_normal(lead + (3,)))
    results = []
    for fn in (tinytorch.nn.functional.linear, linear_reference):
        out = fn(x, w, b)
        first = tinytorch.autograd.grad((out * weight).sum(), ins, create_graph=True)
        second = tinytorch.autograd.grad(sum((f * f).sum() for f in first), ins,
                                         materialize_grads=True)  # fmt: skip
        results.append([out.detach().numpy()] + [t.detach().numpy() for t in first + second])
    for ours, ref in zip(*results):
        np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
    assert tinytorch.autograd.gradgradcheck(lambda *a: tinytorch.nn.functional.linear(*a), ins)
