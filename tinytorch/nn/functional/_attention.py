"""Attention: ``scaled_dot_product_attention`` and ``multi_head_attention_forward``.

Shape letters: B batch, H heads, L target (query) length, S source (key) length,
E embedding (``embed_dim``), D head size (``E // H``).
"""

from __future__ import annotations

import math
from typing import cast

import numpy as np

from tinytorch.nn.functional._linear import dropout, linear
from tinytorch.nn.functional._shape import pad
from tinytorch.tensor import Tensor

__all__ = ["multi_head_attention_forward", "scaled_dot_product_attention"]


def _safe_softmax(scores: Tensor) -> Tensor:
    """Softmax over the last dim, with rows that are all ``-inf`` giving zeros (as torch's
    SDPA does) instead of NaN.

    Such rows are set to 0 *before* the softmax, so that neither the forward nor the
    backward ever sees ``-inf - (-inf)``; their outputs are then zeroed.
    """
    dead = np.all(scores.data == -np.inf, axis=-1, keepdims=True)  # (..., L, 1)
    if not dead.any():
        return scores.softmax(-1)
    return scores.masked_fill(dead, 0.0).softmax(-1).masked_fill(dead, 0.0)


def _repeat_kv(x: Tensor, groups: int) -> Tensor:
    """Repeat each key/value head ``groups`` times in place (``repeat_interleave`` on dim -3)."""
    *lead, hk, s, d = x.shape
    x = x.unsqueeze(-3).expand(*lead, hk, groups, s, d)  # (..., Hk, S, D) -> (..., Hk, G, S, D)
    return x.reshape(*lead, hk * groups, s, d)  # -> (..., Hk * G, S, D)


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    """``softmax(Q K^T * scale + M) V`` over the last two dims.

    ``scale`` defaults to ``1 / sqrt(D)``. ``M`` is 0 where a query may attend to a key
    and ``-inf`` where not: a bool ``attn_mask`` is True where attention *takes part*,
    a float ``attn_mask`` is added as is, and ``is_causal`` lets query ``i`` see keys
    ``j <= i`` (a top-left aligned ``tril`` of shape (L, S)); given both, both apply.
    A query row that can see no key gives zeros (not NaN). ``dropout_p`` drops
    attention weights (always: this function has no training flag). ``enable_gqa``
    repeats each key/value head for a group of query heads.

    Shape: query (..., Hq, L, D), key (..., Hk, S, D), value (..., Hk, S, Dv),
    attn_mask broadcastable to (..., Hq, L, S); output (..., Hq, L, Dv).
    """
    if is_causal and attn_mask is not None:
        raise RuntimeError(
            "_scaled_dot_product_attention: Explicit attn_mask should not be set when "
            "is_causal=True"
        )
    L, S = query.shape[-2], key.shape[-2]
    scale_factor = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        hq, hk = query.shape[-3], key.shape[-3]
        if hq % hk or value.shape[-3] != hk:
            raise RuntimeError(
                f"scaled_dot_product_attention: with enable_gqa the number of query heads "
                f"({hq}) must be a multiple of the key/value heads ({hk}, {value.shape[-3]})"
            )
        key, value = _repeat_kv(key, hq // hk), _repeat_kv(value, hq // hk)
    scores = (query @ key.transpose(-2, -1)) * scale_factor  # (..., L, D) @ (..., D, S)
    keep = np.tri(L, S, dtype=bool) if is_causal else None  # (L, S), True = attend
    if attn_mask is not None:
        if attn_mask.data.dtype == np.bool_:
            keep = attn_mask.data
        else:
            scores = scores + attn_mask
    if keep is not None:
        scores = scores.masked_fill(~keep, -math.inf)
    weights = _safe_softmax(scores)  # (..., L, S)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p)
    return weights @ value  # (..., L, S) @ (..., S, Dv)


def _canonical_mask(mask: Tensor | None, mask_name: str, target_dtype: np.dtype
                    ) -> Tensor | None:  # fmt: skip
    """torch's ``F._canonical_mask``: a bool mask (True = masked *out*, the nn.Module
    convention) becomes an additive float mask of 0 / ``-inf``; a float mask is kept."""
    if mask is None:
        return None
    kind = mask.data.dtype.kind
    if kind not in "bf":
        raise AssertionError(f"only bool and floating types of {mask_name} are supported")
    if kind == "f":
        return mask
    return Tensor._make(np.where(mask.data, -np.inf, 0.0).astype(target_dtype))


def _check_shapes(query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Tensor | None,
                  attn_mask: Tensor | None, num_heads: int) -> bool:  # fmt: skip
    """torch's ``_mha_shape_check``: validate the ranks and return whether batched."""
    if query.ndim not in (2, 3):
        raise AssertionError(
            f"query should be unbatched 2D or batched 3D tensor but received {query.ndim}-D "
            f"query tensor"
        )
    batched = query.ndim == 3
    kind = "batched (3-D)" if batched else "unbatched (2-D)"
    if key.ndim != query.ndim or value.ndim != query.ndim:
        raise AssertionError(
            f"For {kind} `query`, expected `key` and `value` to be {query.ndim}-D but found "
            f"{key.ndim}-D and {value.ndim}-D tensors respectively"
        )
    if key_padding_mask is not None and key_padding_mask.ndim != query.ndim - 1:
        raise AssertionError(
            f"For {kind} `query`, expected `key_padding_mask` to be `None` or "
            f"{query.ndim - 1}-D but found {key_padding_mask.ndim}-D tensor instead"
        )
    if attn_mask is not None and attn_mask.ndim not in (2, 3):
        raise AssertionError(
            f"For {kind} `query`, expected `attn_mask` to be `None`, 2-D or 3-D but found "
            f"{attn_mask.ndim}-D tensor instead"
        )
    if not batched and attn_mask is not None and attn_mask.ndim == 3:
        expected = (num_heads, query.shape[0], key.shape[0])
        if tuple(attn_mask.shape) != expected:
            raise AssertionError(
                f"Expected `attn_mask` shape to be {expected} but got {tuple(attn_mask.shape)}"
            )
    return batched


def _in_projection(query: Tensor, key: Tensor, value: Tensor, weights: tuple[Tensor, ...],
                   bias: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """q, k, v = query W_q^T + b_q, key W_k^T + b_k, value W_v^T + b_v.

    ``weights`` is ``(in_proj_weight,)`` (packed q, k, v rows) or the three separate
    weights. For self-attention with packed weights it is one matmul.
    """
    e = weights[0].shape[0] if len(weights) == 3 else weights[0].shape[0] // 3
    b_q, b_k, b_v = bias.chunk(3) if bias is not None else (None, None, None)
    if len(weights) == 1 and query is key and key is value:
        qkv = linear(query, weights[0], bias)  # (L, B, 3E)
        return qkv[..., :e], qkv[..., e : 2 * e], qkv[..., 2 * e :]
    w_q, w_k, w_v = weights[0].chunk(3) if len(weights) == 1 else weights
    return linear(query, w_q, b_q), linear(key, w_k, b_k), linear(value, w_v, b_v)


def multi_head_attention_forward(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    embed_dim_to_check: int,
    num_heads: int,
    in_proj_weight: Tensor | None,
    in_proj_bias: Tensor | None,
    bias_k: Tensor | None,
    bias_v: Tensor | None,
    add_zero_attn: bool,
    dropout_p: float,
    out_proj_weight: Tensor,
    out_proj_bias: Tensor | None,
    training: bool = True,
    key_padding_mask: Tensor | None = None,
    need_weights: bool = True,
    attn_mask: Tensor | None = None,
    use_separate_proj_weight: bool = False,
    q_proj_weight: Tensor | None = None,
    k_proj_weight: Tensor | None = None,
    v_proj_weight: Tensor | None = None,
    static_k: Tensor | None = None,
    static_v: Tensor | None = None,
    average_attn_weights: bool = True,
    is_causal: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Multi-head attention as torch's ``F.multi_head_attention_forward``.

    ``head_i = softmax(Q_i K_i^T / sqrt(D) + M) V_i`` with ``Q_i, K_i, V_i`` the i-th
    D-column block of the projected query, key and value; the heads are concatenated
    and projected by ``out_proj``. ``M`` merges ``attn_mask`` and ``key_padding_mask``
    (bool: True = masked out; float: added). ``bias_k``/``bias_v`` append one learned
    key/value, ``add_zero_attn`` one zero key/value. The weights (B, H, L, S) are
    returned averaged over heads (``average_attn_weights``) or not at all
    (``need_weights=False``).

    Shape: query (L, B, E) or (L, E); key (S, B, Ek), value (S, B, Ev);
    key_padding_mask (B, S); attn_mask (L, S) or (B * H, L, S); output (L, B, E).
    """
    batched = _check_shapes(query, key, value, key_padding_mask, attn_mask, num_heads)
    if not batched:  # pretend there is a batch of one; squeezed again at the end
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    tgt_len, bsz, embed_dim = query.shape
    dt = query.data.dtype
    key_padding_mask = _canonical_mask(key_padding_mask, "key_padding_mask", dt)
    if is_causal and attn_mask is None:
        raise RuntimeError(
            "Need attn_mask if specifying the is_causal hint. You may use the Transformer "
            "module method `generate_square_subsequent_mask` to create this mask."
        )
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None  # SDPA applies the causal mask itself
    else:
        attn_mask = _canonical_mask(attn_mask, "attn_mask", dt)
        if key_padding_mask is not None:
            is_causal = False  # the merged mask is no longer purely causal
    if embed_dim != embed_dim_to_check:
        raise AssertionError(
            f"was expecting embedding dimension of {embed_dim_to_check}, but got {embed_dim}"
        )
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise AssertionError(f"embed_dim {embed_dim} not divisible by num_heads {num_heads}")
    if use_separate_proj_weight:
        if key.shape[:2] != value.shape[:2]:
            raise AssertionError(
                f"key's sequence and batch dims {tuple(key.shape[:2])} do not match value's "
                f"{tuple(value.shape[:2])}"
            )
        # A None weight fails in _in_projection, as it does in torch.
        weights = cast("tuple[Tensor, ...]", (q_proj_weight, k_proj_weight, v_proj_weight))
    else:
        if key.shape != value.shape:
            raise AssertionError(
                f"key shape {tuple(key.shape)} does not match value shape {tuple(value.shape)}"
            )
        weights = cast("tuple[Tensor, ...]", (in_proj_weight,))
    q, k, v = _in_projection(query, key, value, weights, in_proj_bias)  # (L|S, B, E)

    if attn_mask is not None:
        src_len = key.shape[0]
        if attn_mask.ndim == 2:
            if tuple(attn_mask.shape) != (tgt_len, src_len):
                raise RuntimeError(
                    f"The shape of the 2D attn_mask is {tuple(attn_mask.shape)}, but should "
                    f"be {(tgt_len, src_len)}."
                )
            attn_mask = attn_mask.unsqueeze(0)  # (L, S) -> (1, L, S)
        elif tuple(attn_mask.shape) != (bsz * num_heads, tgt_len, src_len):
            raise RuntimeError(
                f"The shape of the 3D attn_mask is {tuple(attn_mask.shape)}, but should be "
                f"{(bsz * num_heads, tgt_len, src_len)}."
            )
    if bias_k is not None and bias_v is not None:
        if static_k is not None or static_v is not None:
            raise AssertionError("bias cannot be added to static key.")
        from tinytorch import cat

        k = cat([k, bias_k.repeat(1, bsz, 1)])  # (S, B, E) -> (S + 1, B, E)
        v = cat([v, bias_v.repeat(1, bsz, 1)])
        attn_mask = pad(attn_mask, (0, 1)) if attn_mask is not None else None
        key_padding_mask = pad(key_padding_mask, (0, 1)) if key_padding_mask is not None else None
    elif bias_k is not None or bias_v is not None:
        raise AssertionError("bias_k and bias_v must both be set or both be None")

    q = q.reshape(tgt_len, bsz * num_heads, head_dim).transpose(0, 1)  # (B * H, L, D)
    if static_k is None:
        k = k.reshape(k.shape[0], bsz * num_heads, head_dim).transpose(0, 1)  # (B * H, S, D)
    else:
        k = static_k
    if static_v is None:
        v = v.reshape(v.shape[0], bsz * num_heads, head_dim).transpose(0, 1)  # (B * H, S, D)
    else:
        v = static_v
    if add_zero_attn:
        k = pad(k, (0, 0, 0, 1))  # (B * H, S, D) -> (B * H, S + 1, D), a zero key
        v = pad(v, (0, 0, 0, 1))
        attn_mask = pad(attn_mask, (0, 1)) if attn_mask is not None else None
        key_padding_mask = pad(key_padding_mask, (0, 1)) if key_padding_mask is not None else None
    src_len = k.shape[1]
    if key_padding_mask is not None:
        if tuple(key_padding_mask.shape) != (bsz, src_len):
            raise AssertionError(
                f"Expected key_padding_mask of shape {(bsz, src_len)}, but got "
                f"{tuple(key_padding_mask.shape)}"
            )
        kpm = key_padding_mask.reshape(bsz, 1, 1, src_len).expand(bsz, num_heads, 1, src_len)
        kpm = kpm.reshape(bsz * num_heads, 1, src_len)  # (B, H, 1, S) -> (B * H, 1, S)
        attn_mask = kpm if attn_mask is None else attn_mask + kpm
    if not training:
        dropout_p = 0.0

    if need_weights:
        scores = (q * math.sqrt(1.0 / head_dim)) @ k.transpose(-2, -1)  # (B * H, L, S)
        if attn_mask is not None:
            scores = attn_mask + scores
        weights_ = scores.softmax(-1)  # a fully masked row gives NaN, as in torch
        if dropout_p > 0.0:
            weights_ = dropout(weights_, dropout_p)
        out = weights_ @ v  # (B * H, L, D)
        out = out.transpose(0, 1).reshape(tgt_len * bsz, embed_dim)  # (L * B, E)
        out = linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, -1)
        attn = weights_.reshape(bsz, num_heads, tgt_len, src_len)  # (B, H, L, S)
        if average_attn_weights:
            attn = attn.mean(1)  # (B, L, S)
        if not batched:
            out, attn = out.squeeze(1), attn.squeeze(0)
        return out, attn

    if attn_mask is not None:
        if attn_mask.shape[0] == 1 and attn_mask.ndim == 3:
            attn_mask = attn_mask.unsqueeze(0)  # (1, L, S) -> (1, 1, L, S)
        else:
            attn_mask = attn_mask.reshape(bsz, num_heads, -1, src_len)  # (B, H, L|1, S)
    q = q.reshape(bsz, num_heads, tgt_len, head_dim)  # (B * H, L, D) -> (B, H, L, D)
    k = k.reshape(bsz, num_heads, src_len, head_dim)
    v = v.reshape(bsz, num_heads, src_len, head_dim)
    out = scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal)
    out = out.permute(2, 0, 1, 3).reshape(bsz * tgt_len, embed_dim)  # (L, B, H, D) -> (L*B, E)
    out = linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, -1)  # (L, B, E)
    if not batched:
        out = out.squeeze(1)
    return out, None
