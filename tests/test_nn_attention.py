"""Attention against torch: ``scaled_dot_product_attention``, ``multi_head_attention_forward``,
``MultiheadAttention``, ``TransformerEncoderLayer`` and ``TransformerEncoder``.

Every case runs the same float64 inputs (and torch's weights, copied through
``state_dict``) in both libraries, backpropagates ``sum(out * w)`` over every
output, and compares outputs, input gradients and parameter gradients.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from test_nn_rnn import assert_close, both, compare, twins

import tinytorch
import tinytorch.nn as nn
import tinytorch.nn.functional as F

rng = np.random.default_rng(1)
B, L, S, E, NH = 2, 4, 5, 8, 2


def lib_of(t: Any) -> Any:
    return torch if isinstance(t, torch.Tensor) else tinytorch


def functional_compare(fn: Any, arrays: list[np.ndarray], rtol: float = 1e-10) -> None:
    """``fn(lib, *tensors)`` in both libraries: outputs and input gradients."""
    pairs = [both(a) for a in arrays]
    out_ours = fn(tinytorch, *[a for a, _ in pairs])
    out_theirs = fn(torch, *[b for _, b in pairs])
    out_ours = out_ours if isinstance(out_ours, tuple) else (out_ours,)
    out_theirs = out_theirs if isinstance(out_theirs, tuple) else (out_theirs,)
    loss_ours, loss_theirs = 0.0, 0.0
    for k, (a, b) in enumerate(zip(out_ours, out_theirs)):
        if b is None:
            assert a is None
            continue
        assert_close(a, b, rtol, f"output {k}")
        w = rng.standard_normal(tuple(b.shape))
        loss_ours = loss_ours + (a * tinytorch.tensor(w)).sum()
        loss_theirs = loss_theirs + (b * torch.tensor(w)).sum()
    loss_ours.backward()
    loss_theirs.backward()
    for k, (a, b) in enumerate(pairs):
        assert_close(a.grad, b.grad, rtol, f"grad of input {k}")


# --- scaled_dot_product_attention -------------------------------------------------------

BOOL_MASK = rng.random((L, S)) > 0.4
BOOL_MASK[1] = False  # a query that sees no key gives zeros, as torch
FLOAT_MASK = rng.standard_normal((B, 1, L, S))
FLOAT_MASK[0, 0, 2] = -np.inf
SDPA_CASES = {
    "plain": {},
    "causal": dict(is_causal=True),
    "bool_mask": dict(attn_mask=BOOL_MASK),
    "float_mask": dict(attn_mask=FLOAT_MASK),
    "scale": dict(scale=0.3),
}


@pytest.mark.parametrize("case", SDPA_CASES, ids=str)
def test_sdpa_matches_torch(case: str) -> None:
    kwargs = SDPA_CASES[case]

    def fn(lib: Any, q: Any, k: Any, v: Any) -> Any:
        kw = dict(kwargs)
        if "attn_mask" in kw:
            kw["attn_mask"] = lib.tensor(kw["attn_mask"])
        return lib.nn.functional.scaled_dot_product_attention(q, k, v, **kw)

    q, k, v = (rng.standard_normal(s) for s in [(B, NH, L, 3), (B, NH, S, 3), (B, NH, S, 6)])
    functional_compare(fn, [q, k, v])


def test_sdpa_causal_with_more_queries_than_keys_and_gqa() -> None:
    def causal(lib: Any, q: Any, k: Any, v: Any) -> Any:
        return lib.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)

    q, k, v = (rng.standard_normal(s) for s in [(1, 2, 6, 3), (1, 2, 4, 3), (1, 2, 4, 3)])
    functional_compare(causal, [q, k, v])

    def gqa(lib: Any, q: Any, k: Any, v: Any) -> Any:
        return lib.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True)

    q, k, v = (rng.standard_normal(s) for s in [(2, 4, L, 3), (2, 2, S, 3), (2, 2, S, 3)])
    functional_compare(gqa, [q, k, v])


def test_sdpa_float32_and_errors() -> None:
    q = rng.standard_normal((B, NH, L, 4)).astype(np.float32)
    ours = F.scaled_dot_product_attention(*(tinytorch.tensor(q),) * 3, is_causal=True)
    theirs = torch.nn.functional.scaled_dot_product_attention(*(torch.tensor(q),) * 3,
                                                              is_causal=True)  # fmt: skip
    assert_close(ours, theirs, 1e-5, "float32 output")
    t = tinytorch.tensor(q)
    with pytest.raises(RuntimeError, match="is_causal"):
        F.scaled_dot_product_attention(t, t, t, attn_mask=tinytorch.ones(L, L), is_causal=True)


def test_sdpa_dropout_drops_weights() -> None:
    tinytorch.manual_seed(0)
    q = tinytorch.tensor(rng.standard_normal((1, 1, 6, 4)))
    v = tinytorch.ones(1, 1, 6, 4, dtype=tinytorch.float64)
    out = F.scaled_dot_product_attention(q, q, v, dropout_p=0.5)
    # rows of softmax weights sum to 1; with dropout they sum to (kept mass) / 0.5
    assert not np.allclose(out.data, 1.0)
    assert np.allclose(F.scaled_dot_product_attention(q, q, v, dropout_p=0.0).data, 1.0)


# --- multi_head_attention_forward ---------------------------------------------------------

MHA_CASES = {
    "plain": {},
    "self": dict(self_attn=True),
    "unbatched": dict(unbatched=True),
    "bias_kv": dict(bias_kv=True),
    "zero_attn": dict(add_zero_attn=True),
    "separate": dict(separate=True),
    "bool_mask": dict(attn_mask=rng.random((L, S)) > 0.7),
    "float_mask_3d": dict(attn_mask=rng.standard_normal((B * NH, L, S))),
    "key_padding": dict(key_padding_mask=rng.random((B, S)) > 0.7),
    "no_weights": dict(need_weights=False),
    "per_head_weights": dict(average_attn_weights=False),
    "kpm_mask_no_weights": dict(key_padding_mask=rng.random((B, S)) > 0.7,
                                attn_mask=rng.random((L, S)) > 0.7, need_weights=False),
    "causal_hint": dict(self_attn=True, attn_mask=np.triu(np.full((L, L), -np.inf), 1),
                        is_causal=True, need_weights=False),
    "everything": dict(bias_kv=True, add_zero_attn=True, key_padding_mask=rng.random((B, S)) > 0.7,
                       attn_mask=rng.random((L, S)) > 0.7, need_weights=False),
}  # fmt: skip


@pytest.mark.parametrize("case", MHA_CASES, ids=str)
def test_multi_head_attention_forward_matches_torch(case: str) -> None:
    opts = dict(MHA_CASES[case])
    self_attn = opts.pop("self_attn", False)
    unbatched = opts.pop("unbatched", False)
    bias_kv = opts.pop("bias_kv", False)
    separate = opts.pop("separate", False)
    zero_attn = opts.pop("add_zero_attn", False)
    arrays = [rng.standard_normal(s) for s in [(L, B, E), (S, B, E), (S, B, E), (3 * E, E),
              (3 * E,), (E, E), (E,), (1, 1, E), (1, 1, E), (E, E), (E, E), (E, E)]]  # fmt: skip

    def fn(lib: Any, q: Any, k: Any, v: Any, w: Any, b: Any, ow: Any, ob: Any, bk: Any,
           bv: Any, wq: Any, wk: Any, wv: Any) -> Any:  # fmt: skip
        # every input stays in the graph, so that unused ones get a zero gradient in both
        zero = sum((x * 0).sum() for x in (q, k, v, w, b, ow, ob, bk, bv, wq, wk, wv))
        if self_attn:
            k = v = q
        if unbatched:
            q, k, v = q[:, 0], k[:, 0], v[:, 0]
        kw = {n: lib.tensor(opts[n]) for n in ("attn_mask", "key_padding_mask") if n in opts}
        kw.update({n: opts[n] for n in ("need_weights", "average_attn_weights", "is_causal")
                   if n in opts})  # fmt: skip
        out = lib.nn.functional.multi_head_attention_forward(
            q, k, v, E, NH, None if separate else w, b, bk if bias_kv else None,
            bv if bias_kv else None, zero_attn, 0.0, ow, ob, use_separate_proj_weight=separate,
            q_proj_weight=wq, k_proj_weight=wk, v_proj_weight=wv, **kw,
        )  # fmt: skip
        return (*out, zero)

    functional_compare(fn, arrays)


# --- MultiheadAttention -------------------------------------------------------------------

MODULE_CASES = {
    "default": ({}, {}),
    "self": ({}, dict(self_attn=True)),
    "batch_first": (dict(batch_first=True), {}),
    "batch_first_self": (dict(batch_first=True), dict(self_attn=True)),
    "unbatched": ({}, dict(unbatched=True)),
    "kdim_vdim": (dict(kdim=3, vdim=5), {}),
    "bias_kv_zero_attn": (dict(add_bias_kv=True, add_zero_attn=True), {}),
    "no_bias": (dict(bias=False), {}),
    "eval_dropout": (dict(dropout=0.5, eval=True), {}),
    "bool_mask": ({}, dict(attn_mask=np.arange(S) > np.arange(L)[:, None] + 1)),
    "float_mask": ({}, dict(attn_mask=rng.standard_normal((B * NH, L, S)))),
    "key_padding": ({}, dict(key_padding_mask=rng.random((B, S)) > 0.6)),
    "no_weights": ({}, dict(need_weights=False, key_padding_mask=rng.random((B, S)) > 0.6)),
    "per_head": ({}, dict(average_attn_weights=False)),
    "causal": (dict(batch_first=True), dict(self_attn=True, is_causal=True, need_weights=False,
                                            attn_mask=np.triu(np.ones((L, L), bool), 1))),
}  # fmt: skip


def mha_call(opts: dict) -> Any:
    opts = dict(opts)
    self_attn = opts.pop("self_attn", False)
    unbatched = opts.pop("unbatched", False)

    def call(m: Any, q: Any, k: Any = None, v: Any = None) -> Any:
        lib = lib_of(q)
        kw = {n: (lib.tensor(a) if isinstance(a, np.ndarray) else a) for n, a in opts.items()}
        if self_attn:
            k = v = q  # the same tensor: the packed self-attention projection
        if unbatched:
            q, k, v = q[0], k[0], v[0]
        return m(q, k, v, **kw)

    return call


@pytest.mark.parametrize("case", MODULE_CASES, ids=str)
def test_multihead_attention_matches_torch(case: str) -> None:
    kwargs, opts = MODULE_CASES[case]
    kwargs = dict(kwargs)
    eval_mode = kwargs.pop("eval", False)
    ours, theirs = twins("MultiheadAttention", E, NH, **kwargs)
    if eval_mode:
        ours.eval()
        theirs.eval()
    first = (B, L) if kwargs.get("batch_first") else (L, B)
    src = (B, S) if kwargs.get("batch_first") else (S, B)
    inputs = [both(rng.standard_normal(first + (E,))),
              both(rng.standard_normal(src + (kwargs.get("kdim", E),))),
              both(rng.standard_normal(src + (kwargs.get("vdim", E),)))]  # fmt: skip
    if opts.get("self_attn"):
        inputs = inputs[:1]
    compare(ours, theirs, inputs, 1e-10, mha_call(opts))
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)


def test_multihead_attention_float32_and_init() -> None:
    ours, theirs = twins("MultiheadAttention", E, NH, dtype="float32", add_bias_kv=True)
    inputs = [both(rng.standard_normal((L, B, E)).astype(np.float32)) for _ in range(3)]
    compare(ours, theirs, inputs, 1e-5, mha_call({}))
    tinytorch.manual_seed(0)
    m = nn.MultiheadAttention(64, 4)
    assert np.all(m.in_proj_bias.data == 0) and np.all(m.out_proj.bias.data == 0)
    bound = np.sqrt(6 / (64 + 3 * 64))  # xavier_uniform_ on the packed (3E, E) weight
    assert np.abs(m.in_proj_weight.data).max() <= bound
    assert np.abs(m.in_proj_weight.data).max() > 0.9 * bound
    with pytest.raises(AssertionError, match="divisible"):
        nn.MultiheadAttention(10, 3)


# --- TransformerEncoderLayer / TransformerEncoder ---------------------------------------

CAUSAL = np.triu(np.full((L, L), -np.inf), 1)
LAYER_CASES = {
    "post_norm_relu": ({}, {}),
    "pre_norm_gelu": (dict(norm_first=True, activation="gelu"), {}),
    "batch_first": (dict(batch_first=True), {}),
    "no_bias": (dict(bias=False), {}),
    "unbatched": ({}, dict(unbatched=True)),
    "eval_dropout": (dict(dropout=0.3, eval=True), {}),
    "causal_mask": ({}, dict(src_mask=CAUSAL)),
    "causal_hint": (dict(batch_first=True), dict(src_mask=CAUSAL, is_causal=True)),
    "bool_mask_and_padding": ({}, dict(src_mask=np.triu(np.ones((L, L), bool), 1),
                                       src_key_padding_mask=rng.random((B, L)) > 0.7)),
}  # fmt: skip


def encoder_call(opts: dict) -> Any:
    opts = dict(opts)
    unbatched = opts.pop("unbatched", False)

    def call(m: Any, x: Any) -> Any:
        lib = lib_of(x)
        kw = {n: (lib.tensor(a) if isinstance(a, np.ndarray) else a) for n, a in opts.items()}
        if "src_key_padding_mask" in kw:
            kw["src_key_padding_mask"][:, 0] = False  # every sequence keeps a key
        return m(x[0] if unbatched else x, **kw)

    return call


def encoder_input(batch_first: bool) -> list[tuple[Any, Any]]:
    return [both(rng.standard_normal((B, L, E) if batch_first else (L, B, E)))]


@pytest.mark.parametrize("case", LAYER_CASES, ids=str)
def test_transformer_encoder_layer_matches_torch(case: str) -> None:
    kwargs, opts = LAYER_CASES[case]
    kwargs = {"dim_feedforward": 16, "dropout": 0.0, **kwargs}
    eval_mode = kwargs.pop("eval", False)
    ours, theirs = twins("TransformerEncoderLayer", E, NH, **kwargs)
    if eval_mode:
        ours.eval()
        theirs.eval()
    compare(ours, theirs, encoder_input(kwargs.get("batch_first", False)), 1e-10,
            encoder_call(opts))  # fmt: skip
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)


def test_transformer_encoder_layer_callable_activation() -> None:
    torch.manual_seed(0)
    theirs = torch.nn.TransformerEncoderLayer(E, NH, 16, 0.0, torch.nn.GELU("tanh")).double()
    ours = nn.TransformerEncoderLayer(E, NH, 16, 0.0, nn.GELU("tanh")).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert repr(ours) == repr(theirs)  # a module activation is a child
    compare(ours, theirs, encoder_input(False), 1e-10, encoder_call({}))
    lam = nn.TransformerEncoderLayer(E, NH, 16, 0.0, lambda x: x.tanh())
    assert lam.activation_relu_or_gelu == 0 and "activation" not in dict(lam.named_children())


@pytest.mark.parametrize("with_mask", [False, True], ids=["no_mask", "causal_mask"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_transformer_encoder_matches_torch(batch_first: bool, with_mask: bool) -> None:
    def make(lib: Any) -> Any:
        layer = lib.nn.TransformerEncoderLayer(E, NH, 16, 0.0, batch_first=batch_first)
        norm = lib.nn.LayerNorm(E)
        return lib.nn.TransformerEncoder(layer, 2, norm=norm, enable_nested_tensor=False)

    torch.manual_seed(0)
    theirs = make(torch).double()
    ours = make(tinytorch).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    opts = dict(mask=CAUSAL) if with_mask else {}
    compare(ours, theirs, encoder_input(batch_first), 1e-10, encoder_call(opts))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    # the layers are independent copies
    assert ours.layers[0].linear1.weight is not ours.layers[1].linear1.weight


def test_transformer_encoder_float32() -> None:
    ours, theirs = twins("TransformerEncoderLayer", E, NH, 16, 0.0, dtype="float32",
                         norm_first=True)  # fmt: skip
    compare(ours, theirs, [both(rng.standard_normal((L, B, E)).astype(np.float32))], 1e-5,
            encoder_call({}))  # fmt: skip


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
def test_transformer_encoder_inference_zeroes_padding_like_torch() -> None:
    # torch's eval/no-grad fast path runs padded batches as nested tensors: padded
    # positions come out as zeros (then go through the final norm).
    def make(lib: Any) -> Any:
        layer = lib.nn.TransformerEncoderLayer(E, NH, 16, 0.0, batch_first=True)
        return lib.nn.TransformerEncoder(layer, 2, norm=lib.nn.LayerNorm(E))

    torch.manual_seed(0)
    theirs = make(torch).double().eval()
    ours = make(tinytorch).double().eval()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = rng.standard_normal((B, L, E))
    for pad in (np.arange(L) >= np.array([[2], [L]]), np.tile(np.arange(L) % 2 == 1, (B, 1))):
        with torch.no_grad():
            expected = theirs(torch.tensor(x), src_key_padding_mask=torch.tensor(pad))
        with tinytorch.no_grad():
            got = ours(tinytorch.tensor(x), src_key_padding_mask=tinytorch.tensor(pad))
        assert_close(got, expected, 1e-10, "eval output")


def test_sdpa_and_mha_second_order() -> None:
    # torch has no double backward for its CPU SDPA kernel; check ours against finite
    # differences of the first derivative instead.
    xs = [tinytorch.tensor(rng.standard_normal((1, 2, 3, 2)), requires_grad=True)
          for _ in range(3)]  # fmt: skip

    def sdpa(q: Any, k: Any, v: Any) -> Any:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    assert tinytorch.autograd.gradgradcheck(sdpa, xs)
    m = nn.MultiheadAttention(4, 2).double()
    x = tinytorch.tensor(rng.standard_normal((3, 1, 4)), requires_grad=True)
    assert tinytorch.autograd.gradgradcheck(lambda x: m(x, x, x)[0], [x])
