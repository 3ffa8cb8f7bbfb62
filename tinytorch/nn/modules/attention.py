"""``MultiheadAttention`` (torch keeps it in ``torch.nn.modules.activation``).

Shape letters: B batch, L target (query) length, S source (key) length,
E ``embed_dim``, H ``num_heads``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinytorch import _dtype
from tinytorch.nn import init
from tinytorch.nn.functional._attention import _canonical_mask, multi_head_attention_forward
from tinytorch.nn.modules.linear import Linear
from tinytorch.nn.modules.module import Module
from tinytorch.nn.parameter import Parameter
from tinytorch.tensor import Tensor

__all__ = ["MultiheadAttention", "NonDynamicallyQuantizableLinear"]


class NonDynamicallyQuantizableLinear(Linear):
    """A ``Linear`` under torch's name for ``MultiheadAttention.out_proj`` (so it prints
    the same; torch uses the name to keep quantization tools off it)."""


def _empty(shape: tuple[int, ...], dtype: Any) -> Parameter:
    npd = _dtype.to_numpy_dtype(dtype) or _dtype.get_default_dtype().np
    return Parameter(Tensor._make(np.empty(shape, dtype=npd)))


class MultiheadAttention(Module):
    """``MultiHead(Q, K, V) = concat(head_1, ..., head_H) W_o^T + b_o`` with
    ``head_i = softmax(q_i k_i^T / sqrt(E / H) + M) v_i``, where ``q_i = Q W_qi^T + b_qi``,
    ``k_i = K W_ki^T + b_ki``, ``v_i = V W_vi^T + b_vi`` (head i's rows of the projections).

    ``M`` combines ``attn_mask`` and ``key_padding_mask`` (bool: True = *not* allowed to
    attend; float: added to the scores). The projections are one packed
    ``in_proj_weight`` (3E, E) with ``in_proj_bias`` (3E), or, when ``kdim``/``vdim``
    differ from E, ``q_proj_weight`` (E, E), ``k_proj_weight`` (E, kdim),
    ``v_proj_weight`` (E, vdim). Init: Xavier-uniform projection weights, zero biases,
    Xavier-normal ``bias_k``/``bias_v``; ``out_proj`` is a ``Linear``.

    Shape: query (L, B, E) (``batch_first``: (B, L, E); unbatched: (L, E)), key (S, B, kdim),
    value (S, B, vdim), key_padding_mask (B, S), attn_mask (L, S) or (B * H, L, S).
    Returns ``(attn_output (L, B, E), attn_weights)`` with the weights (B, L, S) averaged
    over heads, (B, H, L, S) with ``average_attn_weights=False``, or None with
    ``need_weights=False``.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device: Any = None,
                 dtype: Any = None) -> None:  # fmt: skip
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} "
                f"and num_heads={num_heads} instead"
            )
        super().__init__()
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != self.embed_dim:
            raise AssertionError("embed_dim must be divisible by num_heads")
        if not self._qkv_same_embed_dim:
            self.q_proj_weight = _empty((embed_dim, embed_dim), dtype)
            self.k_proj_weight = _empty((embed_dim, self.kdim), dtype)
            self.v_proj_weight = _empty((embed_dim, self.vdim), dtype)
            self.register_parameter("in_proj_weight", None)
        else:
            self.in_proj_weight = _empty((3 * embed_dim, embed_dim), dtype)
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        if bias:
            self.in_proj_bias = _empty((3 * embed_dim,), dtype)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias,
                                                        dtype=dtype)  # fmt: skip
        if add_bias_kv:
            self.bias_k: Parameter | None = _empty((1, 1, embed_dim), dtype)
            self.bias_v: Parameter | None = _empty((1, 1, embed_dim), dtype)
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None = None, need_weights: bool = True,
                attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:  # fmt: skip
        """Attend from ``query`` to ``key``/``value``; see the class docstring."""
        batched = query.ndim == 3
        dt = query.data.dtype
        key_padding_mask = _canonical_mask(key_padding_mask, "key_padding_mask", dt)
        attn_mask = _canonical_mask(attn_mask, "attn_mask", dt)
        if self.batch_first and batched:
            # (B, L, E) -> (L, B, E); keep q/k/v identity, which selects the packed
            # self-attention projection.
            if key is value:
                if query is key:
                    query = key = value = query.transpose(1, 0)
                else:
                    query, key = query.transpose(1, 0), key.transpose(1, 0)
                    value = key
            else:
                query, key, value = (x.transpose(1, 0) for x in (query, key, value))
        separate = not self._qkv_same_embed_dim
        out, weights = multi_head_attention_forward(
            query, key, value, self.embed_dim, self.num_heads, self.in_proj_weight,
            self.in_proj_bias, self.bias_k, self.bias_v, self.add_zero_attn, self.dropout,
            self.out_proj.weight, self.out_proj.bias, training=self.training,
            key_padding_mask=key_padding_mask, need_weights=need_weights, attn_mask=attn_mask,
            use_separate_proj_weight=separate, q_proj_weight=self.q_proj_weight,
            k_proj_weight=self.k_proj_weight, v_proj_weight=self.v_proj_weight,
            average_attn_weights=average_attn_weights, is_causal=is_causal,
        )  # fmt: skip
        if self.batch_first and batched:
            out = out.transpose(1, 0)  # (L, B, E) -> (B, L, E)
        return out, weights
