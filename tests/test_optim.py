"""tinytorch.optim against torch.optim, parameter by parameter (float64, 1e-10 relative).

Every run optimizes a 2-layer MLP (``x @ W1 + b1``, tanh, ``@ W2``, mean squared error) plus
an independent Rosenbrock valley in one loss, with the two parts in separate param groups
(different learning rates). The same loss code runs on both libraries.
"""

from __future__ import annotations

import itertools
import re
import warnings

import numpy as np
import pytest
import torch

import tinytorch
import tinytorch.optim as optim
from tinytorch.serialization import load, save

RTOL = 1e-10
ATOL = 1e-12

_rng = np.random.default_rng(1234)
MLP_INIT = [
    _rng.standard_normal((3, 6)) * 0.5,
    _rng.standard_normal(6) * 0.1,
    _rng.standard_normal((6, 2)) * 0.5,
]
X = _rng.standard_normal((16, 3))
Y = _rng.standard_normal((16, 2))
ROSEN_INIT = [np.array([-1.2, 0.3, 1.5]), np.array([1.0, -0.2, 2.0])]


def leaf(lib, arr, requires_grad=True, dtype="float64"):
    return lib.tensor(arr.copy(), dtype=getattr(lib, dtype), requires_grad=requires_grad)


def loss_fn(p, x, y):
    """MLP regression loss + Rosenbrock; written once for both libraries."""
    w1, b1, w2, a, b = p
    mlp = (((x @ w1 + b1).tanh() @ w2 - y) ** 2).mean()
    rosen = ((1 - a) ** 2 + 100 * (b - a * a) ** 2).sum()
    return mlp + rosen


def make_params(lib, dtype="float64"):
    return [leaf(lib, a, dtype=dtype) for a in MLP_INIT + ROSEN_INIT]


def train(lib, opt, params, steps, sign=1.0, dtype="float64"):
    x, y = leaf(lib, X, False, dtype), leaf(lib, Y, False, dtype)
    for _ in range(steps):
        opt.zero_grad()
        (sign * loss_fn(params, x, y)).backward()
        opt.step()


def groups(params, lrs, **extra):
    return [{"params": params[:3], "lr": lrs[0], **extra}, {"params": params[3:], "lr": lrs[1]}]


def run(lib, name, kwargs, lrs, steps=50):
    params = make_params(lib)
    cls = getattr(optim if lib is tinytorch else torch.optim, name)
    opt = cls(groups(params, lrs), **kwargs)
    # maximize the negated loss, so both settings follow the same (convergent) path
    train(lib, opt, params, steps, sign=-1.0 if kwargs.get("maximize") else 1.0)
    return [p.detach().numpy().copy() for p in params], opt


def assert_params_close(ours, theirs, rtol=RTOL, atol=ATOL):
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


# name -> (option grid, (mlp lr, rosenbrock lr)); every combination torch accepts is run
B = [False, True]
GRID = {
    "SGD": ({"momentum": [0, 0.9], "dampening": [0, 0.3], "nesterov": B,
             "weight_decay": [0, 0.05], "maximize": B}, (0.05, 5e-4)),
    "Adam": ({"amsgrad": B, "weight_decay": [0, 0.1], "decoupled_weight_decay": B,
              "maximize": B}, (0.01, 0.01)),
    "AdamW": ({"amsgrad": B, "weight_decay": [0, 0.1], "maximize": B}, (0.01, 0.01)),
    "RMSprop": ({"centered": B, "momentum": [0, 0.5], "weight_decay": [0, 0.1],
                 "maximize": B}, (0.002, 0.002)),
    "Adagrad": ({"lr_decay": [0, 0.01], "weight_decay": [0, 0.1],
                 "initial_accumulator_value": [0, 0.1], "maximize": B}, (0.05, 0.05)),
    "Adadelta": ({"rho": [0.9, 0.5], "weight_decay": [0, 0.1], "maximize": B}, (1.0, 1.0)),
    "Adamax": ({"weight_decay": [0, 0.1], "maximize": B}, (0.01, 0.01)),
    "NAdam": ({"momentum_decay": [4e-3, 1e-2], "weight_decay": [0, 0.1],
               "decoupled_weight_decay": B, "maximize": B}, (0.01, 0.01)),
    "RAdam": ({"weight_decay": [0, 0.1], "decoupled_weight_decay": B, "maximize": B},
              (0.01, 2e-4)),
}  # fmt: skip


def _grid_cases():
    for name, (opts, lrs) in GRID.items():
        for combo in itertools.product(*opts.values()):
            kwargs = dict(zip(opts, combo, strict=True))
            nesterov_ok = kwargs.get("momentum") != 0 and kwargs.get("dampening") == 0
            if name == "SGD" and kwargs["nesterov"] and not nesterov_ok:
                continue  # rejected by torch (tested in test_validation_errors)
            ident = name + "-" + "-".join(f"{k}={v}" for k, v in kwargs.items())
            yield pytest.param(name, kwargs, lrs, id=ident)


@pytest.mark.parametrize(("name", "kwargs", "lrs"), list(_grid_cases()))
def test_matches_torch(name, kwargs, lrs):
    ours, opt = run(tinytorch, name, kwargs, lrs)
    theirs, topt = run(torch, name, kwargs, lrs)
    assert all(np.isfinite(t).all() and np.abs(t).max() < 10 for t in theirs)  # no divergence
    assert_params_close(ours, theirs)
    # same state keys and values (torch's "step" is a tensor, ours a float)
    for p, tp in zip(
        [q for g in opt.param_groups for q in g["params"]],
        [q for g in topt.param_groups for q in g["params"]],
        strict=True,
    ):
        ours_state, torch_state = opt.state[p], topt.state[tp]
        assert set(ours_state) == set(torch_state)
        for key, value in torch_state.items():
            mine = ours_state[key]
            if isinstance(mine, tinytorch.Tensor):
                np.testing.assert_allclose(mine.numpy(), value.numpy(), rtol=1e-9, atol=1e-12)
            else:
                assert mine == pytest.approx(float(value), rel=1e-12)


@pytest.mark.parametrize("maximize", [False, True])
def test_gd_is_sgd_without_momentum(maximize):
    sign = -1.0 if maximize else 1.0
    params = make_params(tinytorch)
    opt = optim.GD(groups(params, (0.05, 5e-4)), maximize=maximize)
    train(tinytorch, opt, params, 30, sign)
    tparams = make_params(torch)
    topt = torch.optim.SGD(groups(tparams, (0.05, 5e-4)), maximize=maximize)
    train(torch, topt, tparams, 30, sign)
    assert_params_close([p.detach().numpy() for p in params], [p.detach().numpy() for p in tparams])
    assert optim.GD(make_params(tinytorch)).defaults == {"lr": 1e-3, "maximize": False}


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "Adagrad", "NAdam"])
def test_groups_with_different_weight_decay(name):
    kwargs = {"momentum": 0.9} if name == "SGD" else {}
    lrs = GRID[name][1]
    results = []
    for lib in (tinytorch, torch):
        params = make_params(lib)
        cls = getattr(optim if lib is tinytorch else torch.optim, name)
        opt = cls(groups(params, lrs, weight_decay=0.2), weight_decay=0.01, **kwargs)
        train(lib, opt, params, 30)
        assert [g["weight_decay"] for g in opt.param_groups] == [0.2, 0.01]
        results.append([p.detach().numpy().copy() for p in params])
    assert_params_close(*results)


@pytest.mark.parametrize("name", ["SGD", "Adam", "Adagrad", "RAdam"])
def test_none_grads_are_skipped(name):
    out = []
    for lib in (tinytorch, torch):
        params = make_params(lib)
        unused = leaf(lib, np.ones(4))
        cls = getattr(optim if lib is tinytorch else torch.optim, name)
        opt = cls([*params, unused], lr=0.001, **({"momentum": 0.5} if name == "SGD" else {}))
        train(lib, opt, params, 10)
        assert unused.grad is None
        np.testing.assert_array_equal(unused.detach().numpy(), np.ones(4))
        # Adagrad creates its state eagerly; the others only for parameters with grads
        assert (unused in opt.state) == (name == "Adagrad")
        out.append([p.detach().numpy().copy() for p in params])
    assert_params_close(*out)


def test_zero_grad():
    p = leaf(tinytorch, np.ones(3))
    opt = optim.SGD([p], lr=0.1)
    (p * p).sum().backward()
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.numpy(), np.zeros(3))
    opt.zero_grad()
    assert p.grad is None
    opt.step()  # no grads: nothing happens
    np.testing.assert_array_equal(p.detach().numpy(), np.ones(3))


def test_step_closure_runs_with_grad_enabled():
    p = leaf(tinytorch, np.array([1.0, -2.0]))
    opt = optim.Adam([p], lr=0.1)

    def closure():
        assert tinytorch.is_grad_enabled()
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with tinytorch.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 5.0
    assert opt.step() is None


OPTIMIZERS_FOR_STATE = [
    ("SGD", {"momentum": 0.9, "nesterov": True}),
    ("Adam", {"amsgrad": True}),
    ("AdamW", {}),
    ("RMSprop", {"momentum": 0.5, "centered": True}),
    ("Adagrad", {"lr_decay": 0.01}),
    ("Adadelta", {}),
    ("Adamax", {}),
    ("NAdam", {}),
    ("RAdam", {"decoupled_weight_decay": True, "weight_decay": 0.1}),
]


@pytest.mark.parametrize(("name", "kwargs"), OPTIMIZERS_FOR_STATE)
def test_state_dict_round_trip_through_save(name, kwargs, tmp_path):
    lrs = GRID[name][1]
    full, _ = run(tinytorch, name, kwargs, lrs, steps=40)

    params = make_params(tinytorch)
    opt = getattr(optim, name)(groups(params, lrs), **kwargs)
    train(tinytorch, opt, params, 20)
    save({"optimizer": opt.state_dict(), "epoch": 20}, tmp_path / "ckpt.safetensors")
    snapshot = [p.detach().numpy().copy() for p in params]

    # a fresh optimizer on fresh tensors continues the identical trajectory
    params2 = [leaf(tinytorch, a) for a in snapshot]
    opt2 = getattr(optim, name)(groups(params2, (1.0, 1.0)), **kwargs)
    ckpt = load(tmp_path / "ckpt.safetensors")
    assert ckpt["epoch"] == 20
    opt2.load_state_dict(ckpt["optimizer"])
    assert [g["lr"] for g in opt2.param_groups] == list(lrs)
    train(tinytorch, opt2, params2, 20)
    for a, b in zip(full, params2, strict=True):
        np.testing.assert_array_equal(a, b.detach().numpy())

    # the layout is torch's: int ids, same keys (minus torch-only flags)
    tparams = make_params(torch)
    topt = getattr(torch.optim, name)(groups(tparams, lrs), **kwargs)
    train(torch, topt, tparams, 1)
    ours, theirs = opt.state_dict(), topt.state_dict()
    assert list(ours["state"]) == list(theirs["state"]) == [0, 1, 2, 3, 4]
    torch_only = {"foreach", "fused", "capturable", "differentiable"}
    for g, tg in zip(ours["param_groups"], theirs["param_groups"], strict=True):
        assert set(g) == set(tg) - torch_only
        assert g["params"] == tg["params"]
    assert set(ours["state"][0]) == set(theirs["state"][0])


def test_load_state_dict_casts_and_copies():
    p64 = make_params(tinytorch)
    opt = optim.Adam(groups(p64, (0.01, 0.01)))
    train(tinytorch, opt, p64, 3)
    sd = opt.state_dict()
    p32 = make_params(tinytorch, dtype="float32")
    opt32 = optim.Adam(groups(p32, (0.01, 0.01)))
    opt32.load_state_dict(sd)
    state = opt32.state[p32[0]]
    assert state["exp_avg"].dtype == tinytorch.float32
    assert state["step"] == 3.0
    train(tinytorch, opt32, p32, 3, dtype="float32")
    assert all(p.data.dtype == np.float32 for p in p32)
    assert opt32.state[p32[0]]["exp_avg_sq"].data.dtype == np.float32
    # the source state dict was deep-copied, never aliased
    assert sd["state"][0]["step"] == 3.0
    assert sd["state"][0]["exp_avg"].data is not state["exp_avg"].data


def test_load_state_dict_errors():
    params = make_params(tinytorch)
    opt = optim.SGD(groups(params, (0.1, 0.1)))
    with pytest.raises(ValueError, match="different number of parameter groups"):
        opt.load_state_dict(optim.SGD(params).state_dict())
    other = optim.SGD([{"params": params[:2]}, {"params": params[2:]}], lr=0.1)
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        opt.load_state_dict(other.state_dict())


def test_float32_stays_float32():
    ours = make_params(tinytorch, dtype="float32")
    theirs = make_params(torch, dtype="float32")
    opt = optim.NAdam(groups(ours, (0.01, 0.01)), weight_decay=0.1)
    topt = torch.optim.NAdam(groups(theirs, (0.01, 0.01)), weight_decay=0.1)
    train(tinytorch, opt, ours, 20, dtype="float32")
    train(torch, topt, theirs, 20, dtype="float32")
    for p in ours:
        assert p.data.dtype == np.float32
        assert all(v.data.dtype == np.float32 for v in opt.state[p].values() if hasattr(v, "data"))
    assert_params_close(
        [p.detach().numpy() for p in ours], [p.detach().numpy() for p in theirs], 1e-4, 1e-5
    )


def _torch_error(fn):
    try:
        fn()
    except (ValueError, TypeError) as e:
        return type(e), str(e)
    raise AssertionError("torch accepted it")


BAD_HYPERPARAMETERS = [
    ("SGD", {"lr": -1}),
    ("SGD", {"momentum": -0.5}),
    ("SGD", {"weight_decay": -1e-3}),
    ("SGD", {"nesterov": True}),
    ("SGD", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}),
    ("Adam", {"lr": -0.5}),
    ("Adam", {"eps": -1.0}),
    ("Adam", {"betas": (1.0, 0.9)}),
    ("Adam", {"betas": (0.9, -0.1)}),
    ("Adam", {"weight_decay": -1}),
    ("Adam", {"betas": (0, 0.9)}),
    ("AdamW", {"betas": (0.9, 1.5)}),
    ("RMSprop", {"alpha": -1.0}),
    ("RMSprop", {"momentum": -1.0}),
    ("RMSprop", {"eps": -1.0}),
    ("Adagrad", {"lr_decay": -1.0}),
    ("Adagrad", {"initial_accumulator_value": -1.0}),
    ("Adagrad", {"eps": -1.0}),
    ("Adadelta", {"rho": 1.5}),
    ("Adadelta", {"weight_decay": -1}),
    ("Adamax", {"betas": (-0.1, 0.9)}),
    ("NAdam", {"momentum_decay": -1.0}),
    ("RAdam", {"eps": -1.0}),
    ("LBFGS", {"lr": -1.0}),
]


@pytest.mark.parametrize(("name", "kwargs"), BAD_HYPERPARAMETERS)
def test_validation_errors(name, kwargs):
    etype, msg = _torch_error(lambda: getattr(torch.optim, name)(make_params(torch), **kwargs))
    with pytest.raises(etype, match=re.escape(msg)):
        getattr(optim, name)(make_params(tinytorch), **kwargs)


def test_param_list_errors():
    tp, p = make_params(torch), make_params(tinytorch)
    cases = [
        (lambda lib, ps: lib.SGD([], lr=0.1)),
        (lambda lib, ps: lib.SGD([{"params": set(ps[:2])}], lr=0.1)),
        (lambda lib, ps: lib.SGD([{"params": ps[:2]}, {"params": ps[1:]}], lr=0.1)),
        (lambda lib, ps: lib.SGD([ps[0], 3], lr=0.1)),
        (lambda lib, ps: lib.SGD([ps[0] * 2], lr=0.1)),
        (lambda lib, ps: lib.SGD(["not a dict"], lr=0.1).add_param_group(ps[0])),
        (lambda lib, ps: lib.SGD([("a", ps[0]), ps[1]], lr=0.1)),
    ]
    for case in cases:
        etype, _ = _torch_error(lambda case=case: case(torch.optim, tp))
        with pytest.raises(etype):
            case(optim, p)
    with pytest.raises(TypeError, match="should be an iterable of Tensors or dicts"):
        optim.SGD(p[0], lr=0.1)
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        optim.Adam([])
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter"):
        optim.Adam([{"params": p[:2]}, {"params": p[1:]}])
    # like torch, a bare set is accepted; only a group's "params" set is rejected
    optim.SGD(set(p[:1]), lr=0.1)
    with pytest.raises(TypeError, match="ordered collections"):
        optim.SGD([{"params": set(p)}], lr=0.1)
    with pytest.warns(UserWarning, match="duplicate parameters"):
        optim.SGD([p[0], p[0]], lr=0.1)


def test_named_params_and_add_param_group():
    p = make_params(tinytorch)
    opt = optim.Adam([("w1", p[0]), ("b1", p[1])], lr=0.1)
    opt.add_param_group({"params": [("w2", p[2])], "lr": 0.5})
    assert opt.param_groups[0]["param_names"] == ["w1", "b1"]
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["betas"] == (0.9, 0.999)
    assert opt.state_dict()["param_groups"][1]["params"] == [2]
    with pytest.raises(ValueError, match="with/without names"):
        opt.add_param_group({"params": [p[3]]})
    # Adagrad initialises the state of groups added later lazily, on their first step
    ada = optim.Adagrad(p[:3], lr=0.1, initial_accumulator_value=0.5)
    ada.add_param_group({"params": p[3:]})
    train(tinytorch, ada, p, 1)
    assert ada.state[p[4]]["sum"].data.min() > 0.5


def test_repr_matches_torch():
    torch_only = ("foreach", "fused", "capturable", "differentiable")
    for name, kwargs in OPTIMIZERS_FOR_STATE + [("LBFGS", {})]:
        ours = repr(getattr(optim, name)(make_params(tinytorch), **kwargs))
        theirs = repr(getattr(torch.optim, name)(make_params(torch), **kwargs))
        theirs = "\n".join(
            line for line in theirs.splitlines() if line.split(":")[0].strip() not in torch_only
        )
        assert ours == theirs


def test_step_bumps_version_counter():
    p = leaf(tinytorch, np.array([1.0, 2.0]))
    loss = (p * p).sum()
    opt = optim.SGD([p], lr=0.1)
    p.grad = tinytorch.ones(2, dtype=tinytorch.float64)
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


# ---------------------------------------------------------------------------- LBFGS
def _rosen_closure(lib, opt, params):
    def closure():
        opt.zero_grad()
        a, b = params
        loss = ((1 - a) ** 2 + 100 * (b - a * a) ** 2).sum()
        loss.backward()
        return loss

    return closure


LBFGS_CASES = [
    {},
    {"line_search_fn": "strong_wolfe"},
    {"history_size": 3, "max_iter": 7},
    {"lr": 0.5, "line_search_fn": "strong_wolfe", "history_size": 2},
    {"max_iter": 5, "max_eval": 6, "line_search_fn": "strong_wolfe", "tolerance_change": 1e-5},
]


@pytest.mark.parametrize("kwargs", LBFGS_CASES)
def test_lbfgs_matches_torch(kwargs):
    runs = []
    for lib in (tinytorch, torch):
        params = [leaf(lib, a) for a in ROSEN_INIT]
        cls = optim.LBFGS if lib is tinytorch else torch.optim.LBFGS
        opt = cls(params, **kwargs)
        closure = _rosen_closure(lib, opt, params)
        losses = [opt.step(closure).item() for _ in range(2)]
        state = opt.state[params[0]]
        runs.append(([p.detach().numpy().copy() for p in params], losses, state))
    (ours, our_losses, our_state), (theirs, their_losses, their_state) = runs
    # Rosenbrock amplifies rounding differences (autograd's, FMA) along the valley, so
    # exact agreement is checked over the first two steps (up to 40 iterations).
    assert_params_close(ours, theirs, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(our_losses, their_losses, rtol=1e-9)
    assert our_state["func_evals"] == their_state["func_evals"]
    assert our_state["n_iter"] == their_state["n_iter"]
    assert set(our_state) == set(their_state)


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_converges_like_torch(line_search_fn):
    finals = []
    for lib in (tinytorch, torch):
        params = [leaf(lib, a) for a in ROSEN_INIT]
        cls = optim.LBFGS if lib is tinytorch else torch.optim.LBFGS
        opt = cls(params, lr=1, max_iter=200, history_size=10, line_search_fn=line_search_fn)
        closure = _rosen_closure(lib, opt, params)
        for _ in range(5):
            opt.step(closure)
        finals.append((np.concatenate([p.detach().numpy() for p in params]), closure().item()))
    (ours, our_loss), (theirs, their_loss) = finals
    np.testing.assert_allclose(theirs, 1.0, atol=1e-4)
    np.testing.assert_allclose(ours, 1.0, atol=1e-4)
    assert our_loss < 1e-8 and their_loss < 1e-8


def test_lbfgs_state_dict_round_trip(tmp_path):
    def fresh(init):
        params = [leaf(tinytorch, a) for a in init]
        opt = optim.LBFGS(params, max_iter=4, history_size=3, line_search_fn="strong_wolfe")
        return params, opt

    params, opt = fresh(ROSEN_INIT)
    closure = _rosen_closure(tinytorch, opt, params)
    opt.step(closure)
    save(opt.state_dict(), tmp_path / "lbfgs.safetensors")
    params2, opt2 = fresh([p.detach().numpy().copy() for p in params])
    opt2.load_state_dict(load(tmp_path / "lbfgs.safetensors"))
    opt.step(closure)
    opt2.step(_rosen_closure(tinytorch, opt2, params2))
    for a, b in zip(params, params2, strict=True):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_lbfgs_errors():
    params = make_params(tinytorch)
    with pytest.raises(ValueError, match="doesn't support per-parameter options"):
        optim.LBFGS([{"params": params[:2]}, {"params": params[2:]}])
    opt = optim.LBFGS(params[3:], line_search_fn="bogus")
    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
        opt.step(_rosen_closure(tinytorch, opt, params[3:]))


def test_public_api():
    expected = {
        "GD", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam",
        "RAdam", "LBFGS", "Optimizer", "lr_scheduler",
    }  # fmt: skip
    assert expected <= set(optim.__all__)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert optim.lr_scheduler.Scheduler is optim.lr_scheduler.LRScheduler
    for unsupported in ("foreach", "fused", "capturable", "differentiable"):
        with pytest.raises(TypeError):
            optim.Adam(make_params(tinytorch), **{unsupported: False})


def test_blocked_update_equals_the_plain_one():
    """Large parameters are updated block by block (no parameter-sized temporary)."""
    from tinytorch.optim._functional import _BLOCK, add_

    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        p = rng.standard_normal(3 * _BLOCK + 17).astype(dtype).reshape(-1, 1)
        g = rng.standard_normal(p.shape).astype(dtype)
        expected = p + g * dtype(-0.1)
        add_(p, g, -0.1)
        np.testing.assert_array_equal(p, expected)


def test_sgd_momentum_on_a_large_parameter_matches_torch():
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal((300, 300))
    ours = tinytorch.nn.Parameter(tinytorch.tensor(w0.copy()))
    theirs = torch.nn.Parameter(torch.tensor(w0.copy()))
    opt_a = tinytorch.optim.SGD([ours], lr=0.1, momentum=0.9, dampening=0.1)
    opt_b = torch.optim.SGD([theirs], lr=0.1, momentum=0.9, dampening=0.1)
    for _ in range(3):
        for p, opt in ((ours, opt_a), (theirs, opt_b)):
            opt.zero_grad()
            (p.sin() * p).sum().backward()
            opt.step()
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-10)
