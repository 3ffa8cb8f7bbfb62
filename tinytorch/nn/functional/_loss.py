"""Loss functions (``torch.nn.functional`` names, arguments and defaults).

Every loss computes an elementwise ``l_i`` and then reduces it: ``'none'``
returns ``l``, ``'sum'`` returns ``sum_i l_i``, ``'mean'`` returns the mean
(for the class-weighted losses: ``sum_i l_i / sum_i w_{y_i}``). The legacy
``size_average`` / ``reduce`` flags map onto ``reduction`` as in torch.

Shape letters: N batch, C classes, d1.. extra dims of K-dimensional inputs.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from tinytorch.nn.functional._activation import logsigmoid
from tinytorch.nn.functional._cross_entropy import (
    _check_reduction,
    _class_dim,
    _class_targets,
    _class_weights,
    _cross_entropy,
    _legacy,
    _nll_from_logp,
    _reduce,
)
from tinytorch.nn.functional._loss_extra import (
    cosine_embedding_loss,
    gaussian_nll_loss,
    hinge_embedding_loss,
    margin_ranking_loss,
    multilabel_soft_margin_loss,
    poisson_nll_loss,
    soft_margin_loss,
    triplet_margin_loss,
)
from tinytorch.tensor import Tensor, broadcast_shape

__all__ = [
    "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "cross_entropy", "nll_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div", "poisson_nll_loss",
    "gaussian_nll_loss", "soft_margin_loss", "margin_ranking_loss", "hinge_embedding_loss",
    "cosine_embedding_loss", "triplet_margin_loss", "multilabel_soft_margin_loss",
]  # fmt: skip

_LOG_MIN = math.exp(-100.0)  # torch clamps BCE's logs at -100, i.e. at x = e^-100


def _pair(name: str, input: Tensor, target: Tensor) -> None:
    """Pointwise losses broadcast target against input, warning like torch."""
    if target.shape == input.shape:
        return
    try:
        broadcast_shape(name, tuple(input.shape), tuple(target.shape))
    except RuntimeError:
        raise ValueError(
            f"{name}: input of shape {list(input.shape)} and target of shape "
            f"{list(target.shape)} are not broadcastable"
        ) from None
    warnings.warn(
        f"Using a target size ({target.size()}) that is different to the input size "
        f"({input.size()}). This will likely lead to incorrect results due to broadcasting. "
        "Please ensure they have the same size.",
        stacklevel=3,
    )


def _weighted(loss: Tensor, weight: Tensor | None, reduction: str, sum_weights: bool) -> Tensor:
    """Elementwise-weighted reduction of mse/l1 (mean divides by sum(w)) and huber
    (mean divides by the count)."""
    if weight is None:
        return _reduce(loss, reduction)
    if weight.shape != loss.shape:
        raise ValueError("Weights and input must have the same size.")
    loss = loss * weight
    if reduction == "mean" and sum_weights:
        return loss.sum() / weight.sum()
    return _reduce(loss, reduction)


def mse_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """``l_i = (x_i - y_i)^2`` (times ``weight_i`` if given)."""
    _pair("mse_loss", input, target)
    reduction = _legacy(size_average, reduce, reduction)
    diff = input - target
    return _weighted(diff * diff, weight, reduction, True)


def l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """``l_i = |x_i - y_i|`` (gradient 0 where x_i = y_i)."""
    _pair("l1_loss", input, target)
    reduction = _legacy(size_average, reduce, reduction)
    return _weighted((input - target).abs(), weight, reduction, True)


def smooth_l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:
    """``l_i = 0.5 d^2 / beta`` if ``|d| < beta`` else ``|d| - 0.5 beta`` (d = x - y);
    ``beta = 0`` is the L1 loss."""
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    _pair("smooth_l1_loss", input, target)
    reduction = _legacy(size_average, reduce, reduction)
    d = input - target
    a = d.abs()
    if beta == 0.0:
        return _reduce(a, reduction)
    return _reduce((d * d * (0.5 / beta)).where(a.data < beta, a - 0.5 * beta), reduction)


def huber_loss(
    input: Tensor,
    target: Tensor,
    reduction: str = "mean",
    delta: float = 1.0,
    weight: Tensor | None = None,
) -> Tensor:
    """``l_i = 0.5 d^2`` if ``|d| < delta`` else ``delta (|d| - 0.5 delta)`` (d = x - y)."""
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    _pair("huber_loss", input, target)
    d = input - target
    a = d.abs()
    loss = (d * d * 0.5).where(a.data < delta, (a - 0.5 * delta) * delta)
    return _weighted(loss, weight, reduction, False)


# --- classification ------------------------------------------------------------------------


def nll_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Negative log likelihood of log-probabilities ``input`` (C,), (N, C) or
    (N, C, d1, ...): ``l_i = -weight[y_i] * input[i, y_i]``, 0 where ``y_i == ignore_index``;
    ``'mean'`` divides by ``sum_i weight[y_i]`` over the non-ignored entries."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    t, _ = _class_targets("nll_loss", input, target, ignore_index)
    valid = t != ignore_index
    w_t = _class_weights(
        weight, t, valid, input.data.dtype, input.shape[_class_dim("nll_loss", input)]
    )
    return _nll_from_logp(input, t, w_t, valid, reduction)


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross entropy of logits ``input`` (C,), (N, C) or (N, C, d1, ...) with ``p = log_softmax``
    over the class dim.

    Class-index target y (integer, shape without C):
    ``l_i = (1 - eps) * (-w_{y_i} p[i, y_i]) + eps/C * (-sum_c w_c p[i, c])``, with
    ``eps = label_smoothing``, 0 where ``y_i == ignore_index``; ``'mean'`` divides
    both terms by ``sum_i w_{y_i}``. (Computed by the fused ``CrossEntropyIndices``.)
    Probability target q (float, the input's shape):
    ``l_i = -sum_c w_c q'[i, c] p[i, c]`` with ``q' = (1 - eps) q + eps/C``; ``'mean'``
    divides by the number of entries N * d1 * ... .
    """
    return _cross_entropy(
        input,
        target,
        weight,
        ignore_index,
        _legacy(size_average, reduce, reduction),
        label_smoothing,
        True,
    )


def _clamped_log(x: Tensor, mask: np.ndarray, log: Any, safe: float) -> Tensor:
    """``max(log(...), -100)``; masked-out entries are fed ``safe`` (where the log is 0),
    so neither the value nor the gradient of the unused branch can be inf or NaN."""
    return log(x.where(mask, safe)).where(mask, -100.0)


def binary_cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``l_i = -w_i (y_i log x_i + (1 - y_i) log(1 - x_i))`` for probabilities x, with
    both logs clamped at -100 (so x = 0 or 1 gives a finite loss, and there a
    zero gradient from the clamped term, where torch's gradient is ~1e12)."""
    reduction = _legacy(size_average, reduce, reduction)
    if target.shape != input.shape:
        raise ValueError(
            f"binary_cross_entropy: Using a target size ({target.size()}) that is different "
            f"to the input size ({input.size()}) is deprecated. Please ensure they have the same "
            "size."
        )
    x = input.data
    if np.any((x < 0) | (x > 1)):
        raise RuntimeError("all elements of input should be between 0 and 1")
    log_x = _clamped_log(input, x > _LOG_MIN, lambda v: v.log(), 1.0)
    log_1mx = _clamped_log(input, (1.0 - x) > _LOG_MIN, lambda v: (-v).log1p(), 0.0)
    loss = -(target * log_x + (1.0 - target) * log_1mx)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """BCE of ``sigmoid(x)`` computed stably from logits x:
    ``l_i = w_i ((1 - y_i) x_i - (1 + (p - 1) y_i) log sigmoid(x_i))`` with ``p = pos_weight``
    (broadcast over the last dim, one per class); finite for |x| ~ 1e4."""
    reduction = _legacy(size_average, reduce, reduction)
    if target.shape != input.shape:
        raise ValueError(
            f"binary_cross_entropy_with_logits: Target size ({target.size()}) must be the "
            f"same as input size ({input.size()})"
        )
    log_sig = logsigmoid(input)
    if pos_weight is not None:
        log_sig = log_sig * ((pos_weight - 1.0) * target + 1.0)
    loss = (1.0 - target) * input - log_sig
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def kl_div(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    """KL divergence with ``input`` = log q:  ``l_i = y_i (log y_i - input_i)`` (0 where y_i = 0),
    or ``e^{y_i} (y_i - input_i)`` with ``log_target``. ``'batchmean'`` divides the sum by
    N = input.size(0) (the true KL per sample); ``'mean'`` by the element count."""
    if size_average is not None or reduce is not None:
        reduction = _legacy(size_average, reduce, reduction)
    elif reduction == "mean":
        warnings.warn(
            "reduction: 'mean' divides the total loss by both the batch size and the "
            "support size.'batchmean' divides only by the batch size, and aligns with "
            "the KL div math definition.'mean' will be changed to behave the same as "
            "'batchmean' in the next major release.",
            stacklevel=2,
        )
    broadcast_shape("kl_div", tuple(input.shape), tuple(target.shape))  # names both shapes
    if log_target:
        loss = target.exp() * (target - input)
    else:
        pos = target.data > 0
        loss = target * target.where(pos, 1.0).log() - target * input
    if reduction == "batchmean":
        total = loss.sum()
        return total / input.shape[0] if input.ndim else total
    return _reduce(loss, reduction)
