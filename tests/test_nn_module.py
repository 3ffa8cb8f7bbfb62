"""``Module`` and the containers against torch: registration rules, traversal names and
order, state_dict / load_state_dict (errors included), modes, dtype moves, hooks,
printed repr, and a save/load round trip."""

from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import pytest
import torch

import tinytorch
from tinytorch.serialization import load, save


def same_text(ours: str, theirs: str) -> None:
    assert ours == theirs.replace("torch", "tinytorch")


def make_net(lib):
    """The same nested model in either library: shared submodule, tied weight, every
    container, persistent and non-persistent buffers."""

    class Block(lib.nn.Module):
        def __init__(self, n: int) -> None:
            super().__init__()
            self.fc = lib.nn.Linear(n, n)
            self.act = lib.nn.GELU()
            self.register_buffer("steps", lib.zeros(1, dtype=lib.int64))
            self.register_buffer("cache", lib.zeros(n), persistent=False)

        def forward(self, x):
            return self.act(self.fc(x))

    class Net(lib.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = lib.nn.Embedding(7, 4)
            self.blocks = lib.nn.ModuleList([Block(4) for _ in range(2)])
            self.shared = self.blocks[0]  # the same module twice
            self.heads = lib.nn.ModuleDict({"b": lib.nn.Linear(4, 3), "a": lib.nn.Linear(4, 3)})
            self.heads["b"].weight = self.heads["a"].weight  # tied weight
            self.scales = lib.nn.ParameterList([lib.nn.Parameter(lib.ones(3)), lib.zeros(2)])
            self.extra = lib.nn.ParameterDict(
                {"z": lib.nn.Parameter(lib.ones(1)), "y": lib.ones(2)}
            )
            self.seq = lib.nn.Sequential(
                OrderedDict(
                    [("drop", lib.nn.Dropout(0.1)), ("out", lib.nn.Linear(3, 2, bias=False))]
                )
            )
            self.register_parameter("unused", None)
            self.temperature = lib.nn.Parameter(lib.tensor(1.5))

        def forward(self, idx):
            h = self.embed(idx)
            for block in self.blocks:
                h = block(h)
            h = self.shared(h)
            h = self.heads["a"](h) + self.heads["b"](h)
            return self.seq(h * self.scales[0]) / self.temperature

    return Net()


@pytest.fixture
def nets():
    torch.manual_seed(0)
    return make_net(tinytorch), make_net(torch)


def test_traversal_names_and_order_match_torch(nets):
    ours, theirs = nets
    for method in ("named_parameters", "named_buffers", "named_modules", "named_children"):
        assert [n for n, _ in getattr(ours, method)()] == [n for n, _ in getattr(theirs, method)()]
    for kwargs in ({"prefix": "m"}, {"recurse": False}, {"remove_duplicate": False}):
        assert [n for n, _ in ours.named_parameters(**kwargs)] == [
            n for n, _ in theirs.named_parameters(**kwargs)
        ]
    assert [n for n, _ in ours.named_modules(remove_duplicate=False)] == [
        n for n, _ in theirs.named_modules(remove_duplicate=False)
    ]
    assert len(list(ours.parameters())) == len(list(theirs.parameters()))
    assert len(list(ours.modules())) == len(list(theirs.modules()))
    assert len(list(ours.children())) == len(list(theirs.children()))
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_repr_matches_torch(nets):
    ours, theirs = nets
    same_text(repr(ours), repr(theirs))
    for build in (
        lambda lib: lib.nn.ModuleList([lib.nn.Linear(2, 2)] * 3 + [lib.nn.ReLU()] * 2),
        lambda lib: lib.nn.ModuleList(),
        lambda lib: lib.nn.Sequential(),
        lambda lib: lib.nn.ModuleDict({"x": lib.nn.Sequential(lib.nn.Linear(1, 1))}),
        lambda lib: lib.nn.ParameterList([lib.nn.Parameter(lib.ones(2, 3)), lib.ones(1)]),
        lambda lib: lib.nn.ParameterDict({"b": lib.ones(2, dtype=lib.float64), "a": 3}),
    ):
        same_text(repr(build(tinytorch)), repr(build(torch)))


def test_state_dict_values_share_memory_and_are_detached(nets):
    ours, _ = nets
    sd = ours.state_dict()
    assert isinstance(sd, OrderedDict) and hasattr(sd, "_metadata")
    w = ours.heads["a"].weight
    assert not sd["heads.a.weight"].requires_grad
    assert type(sd["heads.a.weight"]) is tinytorch.Tensor
    w.data[0, 0] = 42.0
    assert sd["heads.a.weight"].data[0, 0] == 42.0
    assert ours.state_dict(keep_vars=True)["heads.a.weight"] is w
    assert "blocks.0.cache" not in sd and "blocks.0.steps" in sd


def test_load_state_dict_copies_in_place_from_torch(nets):
    ours, theirs = nets
    arrays = {n: p.data for n, p in ours.named_parameters()}
    result = ours.load_state_dict(theirs.state_dict())
    assert repr(result) == "<All keys matched successfully>"
    assert result.missing_keys == [] and result.unexpected_keys == []
    for name, p in ours.named_parameters():
        assert p.data is arrays[name]  # same arrays: optimizers keep their references
    idx = np.array([[1, 2, 3], [6, 0, 0]])
    ours.eval()
    theirs.eval()
    out = ours(tinytorch.tensor(idx))
    np.testing.assert_allclose(
        out.data, theirs(torch.tensor(idx)).detach().numpy(), rtol=1e-5, atol=1e-6
    )


def test_load_state_dict_reports_every_problem_like_torch():
    def bad(lib):
        sd = lib.nn.Linear(3, 2).state_dict()
        sd["weight"] = lib.zeros(4, 3)
        sd["extra"] = lib.zeros(1)
        del sd["bias"]
        return sd

    messages = []
    for lib in (tinytorch, torch):
        with pytest.raises(RuntimeError) as info:
            lib.nn.Linear(3, 2).load_state_dict(bad(lib))
        messages.append(str(info.value))
    same_text(*messages)
    assert messages[0].startswith(
        "Error(s) in loading state_dict for Linear:\n\tMissing key(s) "
        'in state_dict: "bias". \n\tUnexpected key(s) in state_dict: '
        '"extra". \n\tsize mismatch for weight: copying a param with '
        "shape tinytorch.Size([4, 3]) from checkpoint, the shape in "
        "current model is tinytorch.Size([2, 3])."
    )


def test_load_state_dict_non_strict_and_nested_errors(nets):
    ours, theirs = nets
    sd = {k: tinytorch.tensor(v.numpy()) for k, v in theirs.state_dict().items()}
    sd.pop("embed.weight")
    sd["blocks.5.fc.weight"] = tinytorch.zeros(1)
    sd["seq.out.weight"] = tinytorch.zeros(5)
    with pytest.raises(RuntimeError) as info:
        ours.load_state_dict(sd, strict=False)  # size mismatches raise even when not strict
    assert "size mismatch for seq.out.weight" in str(info.value)
    sd.pop("seq.out.weight")
    res = ours.load_state_dict(sd, strict=False)
    sd_torch = {k: torch.tensor(v.data) for k, v in sd.items()}
    assert res == theirs.load_state_dict(sd_torch, strict=False)
    assert res.missing_keys == ["embed.weight", "seq.out.weight"]
    assert res.unexpected_keys == ["blocks.5.fc.weight"]
    with pytest.raises(RuntimeError) as info:
        ours.load_state_dict(sd)
    msg = str(info.value)
    assert '"embed.weight"' in msg and '"seq.out.weight"' in msg and '"blocks.5.fc.weight"' in msg
    with pytest.raises(RuntimeError, match=r"expected tinytorch\.Tensor"):
        tinytorch.nn.Linear(1, 1).load_state_dict({"weight": [[1.0]], "bias": tinytorch.ones(1)})
    with pytest.raises(TypeError, match="dict-like"):
        tinytorch.nn.Linear(1, 1).load_state_dict([1, 2])


def test_load_state_dict_assign_and_scalar_shape():
    m = tinytorch.nn.PReLU()
    m.register_parameter("s", tinytorch.nn.Parameter(tinytorch.tensor(1.0)))
    m.load_state_dict({"weight": tinytorch.tensor([0.5]), "s": tinytorch.tensor([2.0])})
    assert m.s.item() == 2.0 and m.s.shape == ()
    new = tinytorch.tensor([0.7])
    m.load_state_dict({"weight": new, "s": tinytorch.tensor(3.0)}, assign=True)
    assert isinstance(m.weight, tinytorch.nn.Parameter) and m.weight.requires_grad
    assert m.weight.item() == pytest.approx(0.7)


# --- registration rules ----------------------------------------------------------------


def test_assignment_before_init_is_rejected():
    class Early(tinytorch.nn.Module):
        def __init__(self) -> None:
            self.lin = tinytorch.nn.Linear(1, 1)
            super().__init__()

    with pytest.raises(AttributeError, match=r"cannot assign module before Module.__init__\(\)"):
        Early()

    class EarlyParam(tinytorch.nn.Module):
        def __init__(self) -> None:
            self.w = tinytorch.nn.Parameter(tinytorch.ones(1))

    with pytest.raises(AttributeError, match="cannot assign parameters before"):
        EarlyParam()


def test_registration_rules():
    m = tinytorch.nn.Module()
    m.w = tinytorch.nn.Parameter(tinytorch.ones(2))
    m.sub = tinytorch.nn.Linear(2, 2)
    m.buf = tinytorch.nn.Buffer(tinytorch.zeros(2))
    m.tmp = tinytorch.nn.Buffer(tinytorch.zeros(1), persistent=False)
    m.plain = tinytorch.ones(1)  # a plain tensor stays a plain attribute
    assert list(m._parameters) == ["w"] and list(m._modules) == ["sub"]
    assert list(m._buffers) == ["buf", "tmp"] and "plain" in m.__dict__
    assert list(m.state_dict()) == ["w", "buf", "sub.weight", "sub.bias"]
    with pytest.raises(TypeError, match=r"cannot assign 'tinytorch\.FloatTensor' as parameter 'w'"):
        m.w = tinytorch.ones(2)
    with pytest.raises(TypeError, match="as child module 'sub'"):
        m.sub = 3
    m.w = None
    assert m.w is None and "w" in m._parameters and "w" not in m.state_dict()
    m.buf = tinytorch.ones(3)  # reassigning a buffer name keeps it a buffer
    assert m._buffers["buf"].shape == (3,)
    with pytest.raises(TypeError, match="as buffer 'buf'"):
        m.buf = [1.0]
    m.sub = tinytorch.nn.Parameter(tinytorch.ones(1))  # a name changes kind cleanly
    assert "sub" in m._parameters and "sub" not in m._modules
    del m.sub, m.buf, m.plain
    assert "sub" not in m._parameters and "buf" not in m._buffers
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'nope'"):
        m.nope  # noqa: B018
    with pytest.raises(KeyError, match="attribute 'training' already exists"):
        m.register_parameter("training", None)
    with pytest.raises(KeyError, match="contain"):
        m.register_buffer("a.b", None)
    with pytest.raises(KeyError, match="empty string"):
        m.add_module("", None)
    with pytest.raises(TypeError, match="is not a Module subclass"):
        m.add_module("x", 3)
    with pytest.raises(TypeError, match="Parameter or None required"):
        m.register_parameter("q", tinytorch.ones(1))


def test_get_submodule_parameter_buffer(nets):
    ours, _ = nets
    assert ours.get_submodule("blocks.1.fc") is ours.blocks[1].fc
    assert ours.get_submodule("") is ours
    assert ours.get_parameter("blocks.1.fc.bias") is ours.blocks[1].fc.bias
    assert ours.get_buffer("blocks.0.steps") is ours.blocks[0].steps
    with pytest.raises(AttributeError, match="has no attribute `nope`"):
        ours.get_submodule("blocks.nope")
    with pytest.raises(AttributeError, match=r"is not an nn\.Module"):
        ours.get_submodule("temperature")
    with pytest.raises(AttributeError, match=r"is not an nn\.Parameter"):
        ours.get_parameter("blocks.0.steps")
    with pytest.raises(AttributeError, match="is not a buffer"):
        ours.get_buffer("temperature")


def test_forward_must_be_defined_and_init_takes_no_args():
    with pytest.raises(
        NotImplementedError,
        match=r"Module \[Module\] is missing the required "
        '"forward" function',
    ):
        tinytorch.nn.Module()(1)
    with pytest.raises(TypeError):
        tinytorch.nn.Module(3)


# --- modes, gradients, dtypes ----------------------------------------------------------


def test_train_eval_zero_grad_requires_grad(nets):
    ours, _ = nets
    assert ours.training and ours.eval() is ours
    assert not any(m.training for m in ours.modules())
    ours.train()
    assert all(m.training for m in ours.modules())
    with pytest.raises(ValueError, match="boolean"):
        ours.train("yes")
    out = ours(tinytorch.tensor([[1, 2]]))
    out.sum().backward()
    grads = [p.grad for p in ours.parameters()]
    assert sum(g is not None for g in grads) == 11  # all but the unused list/dict entries
    ours.zero_grad(set_to_none=False)
    assert all(p.grad is g for p, g in zip(ours.parameters(), grads))
    assert not any(g.data.any() for g in grads if g is not None)
    ours.zero_grad()
    assert all(p.grad is None for p in ours.parameters())
    ours.requires_grad_(False)
    assert not any(p.requires_grad for p in ours.parameters())


def test_apply_visits_children_first_like_torch(nets):
    seen = [[], []]
    for i, net in enumerate(nets):
        net.apply(lambda m, i=i: seen[i].append(type(m).__name__))
    assert seen[0] == seen[1]


def test_to_dtype_keeps_parameter_objects(nets):
    ours, _ = nets
    params = list(ours.parameters())
    ours(tinytorch.tensor([[1]])).sum().backward()
    assert ours.double() is ours
    assert all(p is q and p.dtype == tinytorch.float64 for p, q in zip(ours.parameters(), params))
    assert all(p.grad.dtype == tinytorch.float64 for p in ours.parameters() if p.grad is not None)
    assert ours.blocks[0].steps.dtype == tinytorch.int64  # integer buffers untouched
    assert ours.to(tinytorch.float32).embed.weight.dtype == tinytorch.float32
    ours.to("cpu")
    ours.to(tinytorch.zeros(1, dtype=tinytorch.float64))
    assert ours.embed.weight.dtype == tinytorch.float64
    ours.float().half()
    assert ours.embed.weight.dtype == tinytorch.float16
    with pytest.raises(RuntimeError, match="cpu"):
        ours.to("cuda")
    with pytest.raises(TypeError, match="floating point"):
        ours.to(tinytorch.int64)
    assert (
        ours.cpu() is ours and ours.type(tinytorch.float64).embed.weight.dtype == tinytorch.float64
    )


def test_forward_hooks():
    lin = tinytorch.nn.Linear(2, 2)
    calls = []
    pre = lin.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    post = lin.register_forward_hook(lambda m, args, out: calls.append(out.shape) or out + 1)
    out = lin(tinytorch.ones(3, 2))
    assert np.allclose(out.data, lin.bias.data + 1) and calls == [(3, 2)]
    pre.remove()
    post.remove()
    assert np.allclose(lin(tinytorch.zeros(1, 2)).data, lin.bias.data)
    with lin.register_forward_pre_hook(lambda m, a, k: (a, {}), with_kwargs=True):
        lin(tinytorch.zeros(1, 2))
    assert not lin._forward_pre_hooks


def test_dir_deepcopy_and_repr_of_plain_module(nets):
    ours, _ = nets
    names = dir(ours)
    assert "blocks" in names and "temperature" in names and "forward" in names
    assert "0" not in dir(ours.blocks)
    twin = copy.deepcopy(ours)
    assert twin.embed.weight is not ours.embed.weight
    assert np.array_equal(twin.embed.weight.data, ours.embed.weight.data)
    assert twin.heads["a"].weight is twin.heads["b"].weight  # ties survive the copy
    assert repr(tinytorch.nn.Module()) == "Module()"


def test_save_load_round_trip(tmp_path, nets):
    ours, theirs = nets
    ours.load_state_dict(theirs.state_dict())
    path = tmp_path / "model.safetensors"
    save(ours.state_dict(), path)
    fresh = make_net(tinytorch)
    fresh.load_state_dict(load(path))
    for (n, p), (m, q) in zip(ours.state_dict().items(), fresh.state_dict().items()):
        assert n == m and np.array_equal(p.data, q.data)
    import safetensors.torch

    torch_twin = make_net(torch)
    torch_twin.load_state_dict(safetensors.torch.load_file(str(path)), strict=False)
    idx = np.array([[3, 1]])
    fresh.eval()
    torch_twin.eval()
    np.testing.assert_allclose(
        fresh(tinytorch.tensor(idx)).data,
        torch_twin(torch.tensor(idx)).detach().numpy(),
        rtol=1e-5,
        atol=1e-6,
    )


# --- containers ------------------------------------------------------------------------


def sequential_story(lib) -> list:
    s = lib.nn.Sequential(lib.nn.Linear(1, 2), lib.nn.ReLU(), lib.nn.Linear(2, 3))
    log = [len(s), repr(s[-1]), type(s[1:]).__name__, repr(s[::2])]
    s.append(lib.nn.Tanh())
    s.insert(1, lib.nn.Sigmoid())
    s.extend([lib.nn.Identity()])
    del s[2]
    log += [repr(s), [n for n, _ in s.named_children()]]
    del s[1:3]
    log += [repr(s), repr(s + lib.nn.Sequential(lib.nn.ReLU())), repr(s * 2)]
    named = lib.nn.Sequential(OrderedDict([("a", lib.nn.ReLU()), ("b", lib.nn.Tanh())]))
    log += [repr(named), repr(named[1:]), [type(m).__name__ for m in named]]
    s[0] = lib.nn.ELU()
    log += [repr(s.pop(0)), repr(s)]
    return log


def modulelist_story(lib) -> list:
    ml = lib.nn.ModuleList([lib.nn.Linear(2, 2) for _ in range(3)])
    ml.append(lib.nn.ReLU())
    ml.extend([lib.nn.ReLU(), lib.nn.Tanh()])
    ml.insert(0, lib.nn.Tanh())
    log = [repr(ml), len(ml), repr(ml[-1]), repr(ml[1:3])]
    del ml[0]
    del ml[::2]
    log += [
        repr(ml),
        [n for n, _ in ml.named_parameters()],
        repr(ml + lib.nn.ModuleList([lib.nn.ELU()])),
    ]
    md = lib.nn.ModuleDict({"z": lib.nn.ReLU(), "a": lib.nn.Tanh()})
    md.update([("m", lib.nn.ELU())])
    md["b"] = lib.nn.Identity()
    log += [repr(md), list(md.keys()), "a" in md, repr(md.pop("z")), len(md)]
    return log


def parameter_containers_story(lib) -> list:
    pl = lib.nn.ParameterList([lib.ones(2), lib.nn.Parameter(lib.zeros(3, dtype=lib.float64))])
    pl.append(lib.ones(1, 2))
    log = [
        repr(pl),
        len(pl),
        [n for n, _ in pl.named_parameters()],
        type(pl[0]).__name__,
        pl[0].requires_grad,
        len(pl[1:]),
    ]
    pd = lib.nn.ParameterDict({"w": lib.ones(2), "a": lib.zeros(1)})
    pd["c"] = lib.nn.Parameter(lib.ones(3))
    pd.update(OrderedDict([("b", lib.ones(1))]))
    log += [
        repr(pd),
        list(pd.keys()),
        [n for n, _ in pd.named_parameters()],
        "c" in pd,
        type(pd.pop("a")).__name__,
        len(pd),
        pd.get("nope", 5),
    ]
    return log


@pytest.mark.parametrize("story", [sequential_story, modulelist_story, parameter_containers_story])
def test_containers_behave_like_torch(story):
    ours, theirs = story(tinytorch), story(torch)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        if isinstance(a, str):
            same_text(a, b)
        else:
            assert a == b


def test_container_errors():
    s = tinytorch.nn.Sequential(tinytorch.nn.ReLU())
    with pytest.raises(IndexError, match="index 3 is out of range"):
        s[3]
    with pytest.raises(ValueError, match="supports only objects of Sequential"):
        s + [1]
    with pytest.raises(TypeError, match="iterable"):
        tinytorch.nn.ModuleList(3)
    with pytest.raises(RuntimeError, match="should not be called"):
        tinytorch.nn.ParameterList()(1)
    with pytest.raises(TypeError, match="not a string"):
        tinytorch.nn.ParameterDict()[1] = tinytorch.ones(1)


def test_sequential_forward_chains():
    s = tinytorch.nn.Sequential(tinytorch.nn.Linear(3, 4), tinytorch.nn.ReLU())
    x = tinytorch.randn(2, 3)
    assert np.allclose(s(x).data, s[1](s[0](x)).data)


# --- nn.utils --------------------------------------------------------------------------


def grads_pair(seed: int = 0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) * 3 for s in ((3, 4), (5,), (2, 2, 2))]
    ours = [tinytorch.nn.Parameter(tinytorch.tensor(a)) for a in arrays]
    theirs = [torch.nn.Parameter(torch.tensor(a)) for a in arrays]
    for a, p, q in zip(arrays, ours, theirs):
        p.grad = tinytorch.tensor(np.cos(a))
        q.grad = torch.tensor(np.cos(a))
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    ours, theirs = grads_pair()
    n1 = tinytorch.nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    n2 = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    np.testing.assert_allclose(n1.item(), n2.item(), rtol=1e-12)
    assert n1.dtype == tinytorch.float64
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=1e-12)


def test_clip_grad_norm_edge_cases():
    assert (
        tinytorch.nn.utils.clip_grad_norm_([tinytorch.nn.Parameter(tinytorch.ones(2))], 1.0).item()
        == 0.0
    )
    p = tinytorch.nn.Parameter(tinytorch.ones(2))
    p.grad = tinytorch.tensor([float("inf"), 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        tinytorch.nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    grad = p.grad
    tinytorch.nn.utils.clip_grad_value_(p, 0.5)
    assert p.grad is grad and np.array_equal(grad.data, [0.5, 0.5])


def test_clip_grad_value_matches_torch():
    ours, theirs = grads_pair(1)
    tinytorch.nn.utils.clip_grad_value_(ours, 0.3)
    torch.nn.utils.clip_grad_value_(theirs, 0.3)
    for p, q in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad.data, q.grad.numpy())


def test_parameters_vector_round_trip():
    ours, theirs = grads_pair(2)
    v1 = tinytorch.nn.utils.parameters_to_vector(ours)
    v2 = torch.nn.utils.parameters_to_vector(theirs)
    np.testing.assert_array_equal(v1.data, v2.detach().numpy())
    assert v1.requires_grad
    arrays = [p.data for p in ours]
    tinytorch.nn.utils.vector_to_parameters(
        tinytorch.arange(v1.numel(), dtype=tinytorch.float64), ours
    )
    assert all(p.data is a for p, a in zip(ours, arrays))
    assert ours[1].data.tolist() == [12.0, 13.0, 14.0, 15.0, 16.0]
