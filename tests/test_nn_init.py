"""``nn.init``: fans and gains exactly as torch, distributions checked statistically on
large tensors, deterministic fills exactly, everything in place and off the graph."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import tinytorch
from tinytorch.nn import init

SHAPES = [(3, 4), (8, 2, 3), (16, 4, 3, 3), (5, 6, 2, 2, 2), (1, 7)]


@pytest.mark.parametrize("shape", SHAPES)
def test_fans_match_torch(shape):
    ours = init._calculate_fan_in_and_fan_out(tinytorch.empty(*shape))
    assert ours == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))
    for mode in ("fan_in", "fan_out", "FAN_IN"):
        assert init._calculate_correct_fan(tinytorch.empty(*shape), mode) == (
            torch.nn.init._calculate_correct_fan(torch.empty(*shape), mode)
        )


def test_fan_errors():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(tinytorch.empty(3))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(tinytorch.empty(2, 2), mode="fan_avg")


@pytest.mark.parametrize(
    "args",
    [
        ("linear",),
        ("conv2d",),
        ("conv_transpose3d",),
        ("sigmoid",),
        ("tanh",),
        ("relu",),
        ("leaky_relu",),
        ("leaky_relu", 0.2),
        ("leaky_relu", 0),
        ("leaky_relu", math.sqrt(5)),
        ("selu",),
    ],
)
def test_calculate_gain_matches_torch(args):
    assert init.calculate_gain(*args) == torch.nn.init.calculate_gain(*args)


def test_calculate_gain_errors():
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="not a valid number"):
        init.calculate_gain("leaky_relu", True)


def big(*shape: int, dtype=tinytorch.float64) -> tinytorch.Tensor:
    return tinytorch.nn.Parameter(tinytorch.empty(*shape, dtype=dtype))


def assert_uniform(t: tinytorch.Tensor, bound: float) -> None:
    x = t.data
    assert x.min() >= -bound and x.max() <= bound
    assert x.min() < -0.99 * bound and x.max() > 0.99 * bound
    assert abs(x.mean()) < 0.01 * bound
    assert abs(x.std() - bound / math.sqrt(3)) < 0.01 * bound


def assert_normal(t: tinytorch.Tensor, mean: float, std: float) -> None:
    x = t.data
    assert abs(x.mean() - mean) < 0.01 * std + 1e-12
    assert abs(x.std() - std) < 0.01 * std
    assert abs(np.mean(np.abs(x - mean) < std) - 0.6827) < 0.01  # the shape, not just moments


def test_uniform_and_normal():
    tinytorch.manual_seed(0)
    t = big(300, 400)
    assert init.uniform_(t, -2.0, 3.0) is t
    assert t.data.min() >= -2 and t.data.max() <= 3 and abs(t.data.mean() - 0.5) < 0.02
    assert_normal(init.normal_(t, 1.5, 0.3), 1.5, 0.3)


def test_xavier():
    tinytorch.manual_seed(0)
    t = big(200, 300, 2)
    fan_in, fan_out = 600, 400
    assert_uniform(init.xavier_uniform_(t, gain=2.0), 2.0 * math.sqrt(6 / (fan_in + fan_out)))
    assert_normal(init.xavier_normal_(t, gain=0.5), 0.0, 0.5 * math.sqrt(2 / (fan_in + fan_out)))


@pytest.mark.parametrize("mode,fan", [("fan_in", 300), ("fan_out", 200)])
def test_kaiming(mode, fan):
    tinytorch.manual_seed(0)
    t = big(200, 300, 2)
    fan *= 2
    assert_uniform(init.kaiming_uniform_(t, mode=mode), math.sqrt(2) * math.sqrt(3 / fan))
    assert_uniform(init.kaiming_uniform_(t, a=math.sqrt(5), mode=mode), 1 / math.sqrt(fan))
    gain = math.sqrt(2 / (1 + 0.2**2))
    assert_normal(init.kaiming_normal_(t, a=0.2, mode=mode), 0.0, gain / math.sqrt(fan))
    assert_normal(
        init.kaiming_normal_(t, mode=mode, nonlinearity="tanh"), 0.0, 5 / 3 / math.sqrt(fan)
    )


def test_kaiming_zero_element_warns():
    with pytest.warns(UserWarning, match="zero-element"):
        init.kaiming_uniform_(tinytorch.empty(0, 3))


@pytest.mark.parametrize(
    "mean,std,a,b", [(0.0, 1.0, -2.0, 2.0), (1.0, 2.0, 0.0, 1.5), (0.0, 1.0, 1.5, 4.0)]
)
def test_trunc_normal(mean, std, a, b):
    tinytorch.manual_seed(0)
    t = big(200, 300)
    init.trunc_normal_(t, mean, std, a, b)
    x = t.data
    assert x.min() >= a and x.max() <= b
    # the truncated normal's exact mean: mu + sigma (phi(alpha) - phi(beta)) / Z
    al, be = (a - mean) / std, (b - mean) / std
    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    cdf = lambda z: (1 + math.erf(z / math.sqrt(2))) / 2
    expected = mean + std * (phi(al) - phi(be)) / (cdf(be) - cdf(al))
    assert abs(x.mean() - expected) < 0.01 * std


def test_trunc_normal_far_mean_warns():
    with pytest.warns(UserWarning, match="more than 2 std"):
        init.trunc_normal_(big(10, 10), mean=10.0, a=-1.0, b=1.0)


@pytest.mark.parametrize("shape", [(30, 50), (50, 30), (6, 4, 3, 3)])
def test_orthogonal(shape):
    tinytorch.manual_seed(0)
    t = big(*shape)
    init.orthogonal_(t, gain=2.0)
    q = t.data.reshape(shape[0], -1) / 2.0
    small = min(q.shape)
    gram = q @ q.T if q.shape[0] == small else q.T @ q
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-10)


def test_deterministic_fills_match_torch():
    for fn, args, shape in [
        ("constant_", (0.7,), (3, 4)),
        ("ones_", (), (2, 3)),
        ("zeros_", (), (2, 3)),
        ("eye_", (), (3, 5)),
        ("dirac_", (), (4, 2, 3)),
        ("dirac_", (2,), (6, 3, 3, 3)),
        ("dirac_", (), (2, 2, 3, 3, 3)),
    ]:
        ours = getattr(init, fn)(big(*shape), *args)
        theirs = getattr(torch.nn.init, fn)(torch.empty(*shape, dtype=torch.float64), *args)
        np.testing.assert_array_equal(ours.data, theirs.numpy())
    with pytest.raises(ValueError, match="2 dimensions"):
        init.eye_(big(2, 2, 2))


def test_sparse():
    tinytorch.manual_seed(0)
    t = init.sparse_(big(100, 40), sparsity=0.3, std=0.5)
    assert np.all((t.data == 0).sum(0) >= 30)


def test_generator_kwarg_and_default_seed():
    g = tinytorch.Generator(7)
    a = init.normal_(big(5, 5), generator=g).data.copy()
    b = init.normal_(big(5, 5), generator=tinytorch.Generator(7)).data
    assert np.array_equal(a, b)
    tinytorch.manual_seed(11)
    c = init.xavier_uniform_(big(4, 4)).data.copy()
    tinytorch.manual_seed(11)
    assert np.array_equal(c, init.xavier_uniform_(big(4, 4)).data)
    for fn in (
        init.uniform_,
        init.kaiming_normal_,
        init.trunc_normal_,
        init.orthogonal_,
        init.xavier_normal_,
    ):
        x = fn(big(4, 4), generator=tinytorch.Generator(1)).data.copy()
        assert np.array_equal(x, fn(big(4, 4), generator=tinytorch.Generator(1)).data)


def test_init_is_in_place_and_off_the_graph():
    p = big(3, 3, dtype=tinytorch.float32)
    arr = p.data
    init.kaiming_uniform_(p)
    assert p.data is arr and p.dtype == tinytorch.float32
    assert p.is_leaf and p.requires_grad and p.grad_fn is None
