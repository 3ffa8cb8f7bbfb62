"""tinytorch.optim.lr_scheduler against torch.optim.lr_scheduler, step by step."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch

import tinytorch
import tinytorch.optim as optim
from tinytorch.serialization import load, save

LIBS = {"ours": (tinytorch, optim), "torch": (torch, torch.optim)}


def make_optimizer(which, kind="SGD"):
    lib, opt_mod = LIBS[which]
    p1 = lib.zeros(2, dtype=lib.float64, requires_grad=True)
    p2 = lib.zeros(3, dtype=lib.float64, requires_grad=True)
    groups = [{"params": [p1]}, {"params": [p2], "lr": 0.05}]
    if kind == "SGD":
        return opt_mod.SGD(groups, lr=0.1, momentum=0.9)
    return opt_mod.Adam(groups, lr=0.1)


def make_pair(factory, kind="SGD"):
    scheds = {}
    for which in LIBS:
        opt = make_optimizer(which, kind)
        scheds[which] = (opt, factory(LIBS[which][1].lr_scheduler, opt))
    return scheds


def assert_momenta_equal(opt, topt):
    """Cycling schedulers also drive ``momentum`` / ``betas[0]``."""
    for g, tg in zip(opt.param_groups, topt.param_groups, strict=True):
        for key in ("momentum", "betas"):
            assert (key in g) == (key in tg)
            if key in g:
                ours = np.atleast_1d(np.asarray(g[key], dtype=float))
                np.testing.assert_allclose(ours, np.atleast_1d(tg[key]), rtol=1e-12)


def assert_lrs_equal(ours, theirs):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15)


def twice(fn):
    """A per-group lr_lambda list."""
    return lambda: [fn, lambda e: 1.0 / (1 + e)]


SCHEDULERS = {
    "StepLR": lambda sm, o: sm.StepLR(o, step_size=7, gamma=0.5),
    "StepLR-default": lambda sm, o: sm.StepLR(o, step_size=30),
    "MultiStepLR": lambda sm, o: sm.MultiStepLR(o, milestones=[10, 50, 50, 120], gamma=0.3),
    "ConstantLR": lambda sm, o: sm.ConstantLR(o),
    "ConstantLR-40": lambda sm, o: sm.ConstantLR(o, factor=0.5, total_iters=40),
    "LinearLR": lambda sm, o: sm.LinearLR(o),
    "LinearLR-80": lambda sm, o: sm.LinearLR(o, start_factor=0.05, end_factor=0.9, total_iters=80),
    "ExponentialLR": lambda sm, o: sm.ExponentialLR(o, gamma=0.97),
    "LambdaLR": lambda sm, o: sm.LambdaLR(o, lambda e: 0.95**e),
    "LambdaLR-list": lambda sm, o: sm.LambdaLR(o, [lambda e: 0.9**e, lambda e: 1 / (1 + e)]),
    "MultiplicativeLR": lambda sm, o: sm.MultiplicativeLR(o, lambda e: 0.98),
    "CosineAnnealingLR": lambda sm, o: sm.CosineAnnealingLR(o, T_max=50, eta_min=1e-3),
    "CosineAnnealingLR-17": lambda sm, o: sm.CosineAnnealingLR(o, T_max=17),
    "WarmRestarts": lambda sm, o: sm.CosineAnnealingWarmRestarts(o, T_0=10),
    "WarmRestarts-mult": lambda sm, o: sm.CosineAnnealingWarmRestarts(
        o, T_0=7, T_mult=2, eta_min=1e-4
    ),
    "PolynomialLR": lambda sm, o: sm.PolynomialLR(o),
    "PolynomialLR-2": lambda sm, o: sm.PolynomialLR(o, total_iters=100, power=2.0),
    "OneCycleLR": lambda sm, o: sm.OneCycleLR(o, max_lr=1.0, total_steps=200),
    "OneCycleLR-3phase": lambda sm, o: sm.OneCycleLR(
        o,
        max_lr=[0.5, 1.0],
        epochs=4,
        steps_per_epoch=50,
        anneal_strategy="linear",
        three_phase=True,
        pct_start=0.25,
    ),
    "CyclicLR": lambda sm, o: sm.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=13),
    "CyclicLR-tri2": lambda sm, o: sm.CyclicLR(
        o, base_lr=[0.01, 0.02], max_lr=0.1, step_size_up=10, step_size_down=5, mode="triangular2"
    ),
    "CyclicLR-exp": lambda sm, o: sm.CyclicLR(
        o, 0.001, 0.1, step_size_up=9, mode="exp_range", gamma=0.99, cycle_momentum=False
    ),
    "CyclicLR-fn": lambda sm, o: sm.CyclicLR(
        o, 0.001, 0.1, step_size_up=6, scale_fn=lambda x: 0.5 ** (x / 40), scale_mode="iterations"
    ),
    "Chained": lambda sm, o: sm.ChainedScheduler(
        [sm.ConstantLR(o, factor=0.1, total_iters=2), sm.ExponentialLR(o, gamma=0.9)]
    ),
    "Chained-cos-step": lambda sm, o: sm.ChainedScheduler(
        [sm.CosineAnnealingLR(o, T_max=30), sm.StepLR(o, step_size=25, gamma=0.5)], optimizer=o
    ),
    "Sequential": lambda sm, o: sm.SequentialLR(
        o,
        [sm.LinearLR(o, start_factor=0.1, total_iters=10), sm.CosineAnnealingLR(o, T_max=50)],
        milestones=[10],
    ),
    "Sequential-3": lambda sm, o: sm.SequentialLR(
        o,
        [
            sm.ConstantLR(o, factor=0.5, total_iters=3),
            sm.ExponentialLR(o, gamma=0.95),
            sm.StepLR(o, step_size=20, gamma=0.5),
        ],
        milestones=[5, 60],
    ),
}


# the optimizer kind matters only for the schedulers that cycle momentum / betas[0]
CASES = [(name, "SGD") for name in SCHEDULERS] + [
    (name, "Adam") for name in SCHEDULERS if name.startswith(("OneCycle", "CyclicLR"))
]


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_200_steps_match_torch(name, kind):
    pair = make_pair(SCHEDULERS[name], kind)
    (opt, sched), (topt, tsched) = pair["ours"], pair["torch"]
    assert_lrs_equal(sched.get_last_lr(), tsched.get_last_lr())
    assert_momenta_equal(opt, topt)
    for _ in range(200):
        opt.step()
        topt.step()
        sched.step()
        tsched.step()
        assert_lrs_equal(sched.get_last_lr(), tsched.get_last_lr())
        assert_lrs_equal([g["lr"] for g in opt.param_groups], tsched.get_last_lr())
        assert_momenta_equal(opt, topt)
    assert getattr(sched, "last_epoch", None) == getattr(tsched, "last_epoch", None)
    if hasattr(tsched, "base_lrs"):
        assert_lrs_equal(sched.base_lrs, tsched.base_lrs)
    assert [g.get("initial_lr") for g in opt.param_groups] == pytest.approx(
        [g.get("initial_lr") for g in topt.param_groups]
    )


def test_two_independent_schedulers_chain():
    """Chainable forms compose when two schedulers drive one optimizer."""
    out = []
    for which in LIBS:
        opt = make_optimizer(which)
        sm = LIBS[which][1].lr_scheduler
        a, b = sm.StepLR(opt, step_size=9, gamma=0.7), sm.CosineAnnealingLR(opt, T_max=40)
        lrs = []
        for _ in range(200):
            opt.step()
            a.step()
            b.step()
            lrs.append(b.get_last_lr())
        out.append(lrs)
    for ours, theirs in zip(*out, strict=True):
        assert_lrs_equal(ours, theirs)


PLATEAU_METRICS = [
    10.0, 9.0, 8.5, 8.4, 8.4, 8.41, 8.39, 8.4, 8.4, 8.4, 8.4, 8.5, 7.0, 7.0, 7.0, 7.0,
    6.99999, 7.1, 7.2, 7.3, 7.4, 7.5, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0,
]  # fmt: skip

PLATEAU_CONFIGS = [
    {"patience": 2},
    {"mode": "max", "factor": 0.5, "patience": 1, "threshold": 0.01},
    {"threshold_mode": "abs", "threshold": 0.05, "patience": 1, "cooldown": 3},
    {"patience": 0, "factor": 0.5, "min_lr": [0.02, 0.04], "eps": 1e-3},
]


@pytest.mark.parametrize("config", PLATEAU_CONFIGS)
def test_reduce_lr_on_plateau(config):
    pair = make_pair(lambda sm, o: sm.ReduceLROnPlateau(o, **config))
    sched, tsched = pair["ours"][1], pair["torch"][1]
    for metric in PLATEAU_METRICS * 3:
        sched.step(metric)
        tsched.step(torch.tensor(metric, dtype=torch.float64))
        assert_lrs_equal(sched.get_last_lr(), tsched.get_last_lr())
        assert (sched.num_bad_epochs, sched.cooldown_counter, sched.best) == (
            tsched.num_bad_epochs,
            tsched.cooldown_counter,
            tsched.best,
        )
    assert sched.last_epoch == tsched.last_epoch


STATEFUL = [
    "StepLR",
    "MultiStepLR",
    "LinearLR-80",
    "CosineAnnealingLR",
    "WarmRestarts-mult",
    "OneCycleLR-3phase",
    "CyclicLR-tri2",
    "LambdaLR",
    "Chained",
    "Sequential-3",
]


@pytest.mark.parametrize("name", STATEFUL)
def test_state_dict_round_trip(name, tmp_path):
    factory = SCHEDULERS[name]
    opt, sched = make_pair(factory)["ours"]
    reference = []
    for step in range(120):
        opt.step()
        sched.step()
        if step == 59:
            save(
                {"optimizer": opt.state_dict(), "scheduler": sched.state_dict()},
                tmp_path / "ckpt.safetensors",
            )
        reference.append(sched.get_last_lr())

    opt2 = make_optimizer("ours")
    sched2 = factory(optim.lr_scheduler, opt2)
    ckpt = load(tmp_path / "ckpt.safetensors")
    opt2.load_state_dict(ckpt["optimizer"])
    sched2.load_state_dict(ckpt["scheduler"])
    for step in range(60, 120):
        opt2.step()
        sched2.step()
        assert sched2.get_last_lr() == reference[step]

    # same attributes as torch's state dict (our lambdas/scale fns are handled the same way)
    tstate = make_pair(factory)["torch"][1].state_dict()
    assert set(sched.state_dict()) == set(tstate)


def test_plateau_state_dict_round_trip(tmp_path):
    opt, sched = make_pair(lambda sm, o: sm.ReduceLROnPlateau(o, patience=1))["ours"]
    for m in PLATEAU_METRICS[:10]:
        sched.step(m)
    save(sched.state_dict(), tmp_path / "s.safetensors")
    opt2 = make_optimizer("ours")
    opt2.load_state_dict(opt.state_dict())
    sched2 = optim.lr_scheduler.ReduceLROnPlateau(opt2, patience=1)
    sched2.load_state_dict(load(tmp_path / "s.safetensors"))
    for m in PLATEAU_METRICS[10:]:
        sched.step(m)
        sched2.step(m)
        assert sched.get_last_lr() == sched2.get_last_lr()
    assert sched2.state_dict() == sched.state_dict()


def test_epoch_argument_uses_closed_form():
    pair = make_pair(lambda sm, o: sm.StepLR(o, step_size=3, gamma=0.5))
    (opt, sched), (topt, tsched) = pair["ours"], pair["torch"]
    for epoch in [1, 2, 7, 3, 10, 10, 0]:
        opt.step()
        topt.step()
        with pytest.warns(UserWarning, match="epoch parameter"):
            sched.step(epoch)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tsched.step(epoch)
        assert_lrs_equal(sched.get_last_lr(), tsched.get_last_lr())


def test_warns_when_stepped_before_optimizer():
    opt = make_optimizer("ours")
    sched = optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
    with pytest.warns(UserWarning, match=re.escape("before `optimizer.step()`")):
        sched.step()
    opt2 = make_optimizer("ours")
    sched2 = optim.lr_scheduler.ExponentialLR(opt2, gamma=0.9)
    opt2.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched2.step()


def test_resume_with_last_epoch():
    for which in LIBS:
        opt = make_optimizer(which)
        sm = LIBS[which][1].lr_scheduler
        with pytest.raises(KeyError, match="initial_lr"):
            sm.StepLR(opt, step_size=2, last_epoch=5)
    opt = make_optimizer("ours")
    for g in opt.param_groups:
        g["initial_lr"] = 1.0
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, last_epoch=5)
    assert sched.base_lrs == [1.0, 1.0] and sched.last_epoch == 6


BAD = [
    lambda sm, o: sm.ConstantLR(o, factor=1.5),
    lambda sm, o: sm.LinearLR(o, start_factor=0),
    lambda sm, o: sm.LinearLR(o, end_factor=2.0),
    lambda sm, o: sm.CosineAnnealingWarmRestarts(o, T_0=0),
    lambda sm, o: sm.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=0),
    lambda sm, o: sm.OneCycleLR(o, max_lr=1.0),
    lambda sm, o: sm.OneCycleLR(o, max_lr=1.0, total_steps=10, pct_start=2.0),
    lambda sm, o: sm.OneCycleLR(o, max_lr=1.0, total_steps=10, anneal_strategy="exp"),
    lambda sm, o: sm.OneCycleLR(o, max_lr=[1.0], total_steps=10),
    lambda sm, o: sm.CyclicLR(o, 0.1, 1.0, mode="bogus"),
    lambda sm, o: sm.ReduceLROnPlateau(o, factor=1.0),
    lambda sm, o: sm.ReduceLROnPlateau(o, mode="average"),
    lambda sm, o: sm.ReduceLROnPlateau(o, threshold_mode="log"),
    lambda sm, o: sm.ReduceLROnPlateau(o, min_lr=[0.1]),
    lambda sm, o: sm.LambdaLR(o, [lambda e: 1.0]),
    lambda sm, o: sm.MultiplicativeLR(o, 0.5),
    lambda sm, o: sm.SequentialLR(o, [sm.StepLR(o, 2), sm.StepLR(o, 3)], milestones=[1, 2]),
    lambda sm, o: sm.SequentialLR(o, [], milestones=[]),
    lambda sm, o: sm.SequentialLR(o, [sm.ReduceLROnPlateau(o)], milestones=[]),
    lambda sm, o: sm.ChainedScheduler([]),
    lambda sm, o: sm.StepLR("not an optimizer", 2),
]


@pytest.mark.parametrize("index", range(len(BAD)))
def test_errors_match_torch(index):
    factory = BAD[index]
    try:
        factory(torch.optim.lr_scheduler, make_optimizer("torch"))
    except (ValueError, TypeError, KeyError) as e:
        etype, msg = type(e), str(e)
    else:
        raise AssertionError("torch accepted it")
    with pytest.raises(etype) as info:
        factory(optim.lr_scheduler, make_optimizer("ours"))
    assert str(info.value).replace("tinytorch", "torch") == msg.replace("torch.optim.", "")


def test_public_api():
    sm = optim.lr_scheduler
    names = [
        "LRScheduler", "Scheduler", "ExponentialLR", "StepLR", "MultiStepLR", "ConstantLR",
        "LinearLR", "LambdaLR", "MultiplicativeLR", "CosineAnnealingLR",
        "CosineAnnealingWarmRestarts", "PolynomialLR", "OneCycleLR", "CyclicLR", "SequentialLR",
        "ChainedScheduler", "ReduceLROnPlateau",
    ]  # fmt: skip
    for name in names:
        assert name in sm.__all__ and hasattr(sm, name)
    assert issubclass(sm.ReduceLROnPlateau, sm.Scheduler)
    assert np.isclose(sm.StepLR(make_optimizer("ours"), 3).get_last_lr(), [0.1, 0.05]).all()
