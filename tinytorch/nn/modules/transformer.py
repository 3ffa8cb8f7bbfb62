"""``TransformerEncoderLayer`` and ``TransformerEncoder``.

Shape letters: B batch, S sequence length, E ``d_model``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np

from tinytorch.autograd.grad_mode import is_grad_enabled
from tinytorch.nn import functional as F
from tinytorch.nn.functional._attention import _canonical_mask
from tinytorch.nn.modules.activation import GELU, ReLU
from tinytorch.nn.modules.attention import MultiheadAttention
from tinytorch.nn.modules.container import ModuleList
from tinytorch.nn.modules.dropout import Dropout
from tinytorch.nn.modules.linear import Linear
from tinytorch.nn.modules.module import Module
from tinytorch.nn.modules.normalization import LayerNorm
from tinytorch.tensor import Tensor

__all__ = ["TransformerEncoder", "TransformerEncoderLayer"]


def _generate_square_subsequent_mask(sz: int, dtype: Any = np.float64) -> Tensor:
    """The (sz, sz) causal float mask: 0 on and below the diagonal, ``-inf`` above."""
    return Tensor._make(np.triu(np.full((sz, sz), -np.inf, dtype=dtype), 1))


def _get_activation_fn(activation: str) -> Callable[[Tensor], Tensor]:
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    raise RuntimeError(f"activation should be relu/gelu, not {activation}")


def _detect_is_causal_mask(mask: Tensor | None, is_causal: bool | None, size: int | None
                           ) -> bool:  # fmt: skip
    """``is_causal`` if given; otherwise whether ``mask`` equals the causal mask."""
    if is_causal is not None or mask is None:
        return is_causal is True
    sz = size if size is not None else mask.shape[-2]
    causal = _generate_square_subsequent_mask(sz, mask.data.dtype)
    return tuple(mask.shape) == (sz, sz) and bool(np.array_equal(mask.data, causal.data))


class TransformerEncoderLayer(Module):
    """Self-attention and a feed-forward block, each with a residual and a LayerNorm.

    Post-norm (default): ``x = norm1(x + SA(x))``, ``x = norm2(x + FF(x))``.
    Pre-norm (``norm_first``): ``x = x + SA(norm1(x))``, ``x = x + FF(norm2(x))``.
    ``SA(x) = dropout1(self_attn(x, x, x))``;
    ``FF(x) = dropout2(linear2(dropout(activation(linear1(x)))))``.

    Shape: src (S, B, E) (``batch_first``: (B, S, E); unbatched: (S, E)); src_mask
    (S, S) or (B * nhead, S, S); src_key_padding_mask (B, S). Output: as src.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: str | Callable[[Tensor], Tensor] = F.relu,
                 layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device: Any = None,
                 dtype: Any = None) -> None:  # fmt: skip
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, dtype=dtype)  # fmt: skip
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        if isinstance(activation, str):
            activation = _get_activation_fn(activation)
        # torch's fast-path flag, kept so that code reading it works
        if activation is F.relu or isinstance(activation, ReLU):
            self.activation_relu_or_gelu = 1
        elif activation is F.gelu or isinstance(activation, GELU):
            self.activation_relu_or_gelu = 2
        else:
            self.activation_relu_or_gelu = 0
        self.activation = activation

    def forward(self, src: Tensor, src_mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None, is_causal: bool = False
                ) -> Tensor:  # fmt: skip
        """Apply the layer; ``is_causal`` is a hint that ``src_mask`` is the causal mask."""
        dt = src.data.dtype
        src_key_padding_mask = _canonical_mask(src_key_padding_mask, "src_key_padding_mask", dt)
        src_mask = _canonical_mask(src_mask, "src_mask", dt)
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(self, x: Tensor, attn_mask: Tensor | None, key_padding_mask: Tensor | None,
                  is_causal: bool = False) -> Tensor:  # fmt: skip
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]  # fmt: skip
        return self.dropout1(x)

    def _ff_block(self, x: Tensor) -> Tensor:
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout2(x)


class TransformerEncoder(Module):
    """``num_layers`` deep copies of ``encoder_layer`` applied in turn, then ``norm`` if given.

    ``is_causal=None`` detects whether ``mask`` is the causal mask (as torch does).
    Shape: as ``TransformerEncoderLayer``.
    """

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int,
                 norm: Module | None = None, enable_nested_tensor: bool = True,
                 mask_check: bool = True) -> None:  # fmt: skip
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor = enable_nested_tensor
        # Where torch would run padded batches as nested tensors (see _zeroes_padding).
        layer = encoder_layer
        self.use_nested_tensor = enable_nested_tensor and (
            isinstance(layer, TransformerEncoderLayer) and not layer.norm_first
            and layer.self_attn.batch_first and layer.self_attn._qkv_same_embed_dim
            and layer.self_attn.in_proj_bias is not None and layer.activation_relu_or_gelu != 0
            and layer.norm1.eps == layer.norm2.eps and layer.self_attn.num_heads % 2 == 0
        )  # fmt: skip
        self.mask_check = mask_check

    def forward(self, src: Tensor, mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None, is_causal: bool | None = None
                ) -> Tensor:  # fmt: skip
        """Pass ``src`` through every layer (and the final ``norm``)."""
        dt = src.data.dtype
        src_key_padding_mask = _canonical_mask(src_key_padding_mask, "src_key_padding_mask", dt)
        mask = _canonical_mask(mask, "mask", dt)
        batch_first = self.layers[0].self_attn.batch_first
        seq_len = src.shape[0] if src.ndim == 2 else src.shape[1 if batch_first else 0]
        is_causal = _detect_is_causal_mask(mask, is_causal, seq_len)
        output = src
        for mod in self.layers:
            output = mod(output, src_mask=mask, is_causal=is_causal,
                         src_key_padding_mask=src_key_padding_mask)  # fmt: skip
        if self._zeroes_padding(src, mask, src_key_padding_mask):
            assert src_key_padding_mask is not None  # _zeroes_padding checked it
            keep = src_key_padding_mask.data == 0  # (B, S)
            output = output * Tensor._make(keep[:, :, None].astype(output.data.dtype))
        if self.norm is not None:
            output = self.norm(output)
        return output

    def _zeroes_padding(self, src: Tensor, mask: Tensor | None, padding: Tensor | None) -> bool:
        """Whether torch's inference fast path applies, which runs the batch as a nested
        tensor and so returns zeros at padded positions (the other positions agree).

        It needs: eval mode, no gradient to record, a batched ``src``, a key padding mask
        that only pads at the end of each sequence, no ``mask``, and a layer that the
        fast path supports (``use_nested_tensor``).
        """
        first = self.layers[0]
        if not self.use_nested_tensor or first.training or src.ndim != 3:
            return False
        if padding is None or mask is not None:
            return False
        tracked = [src, *first.parameters()]
        if is_grad_enabled() and any(t.requires_grad for t in tracked):
            return False
        padded = padding.data != 0  # (B, S), True where padded
        return bool(np.all(padded[:, 1:] >= padded[:, :-1]))  # padding only at the end
