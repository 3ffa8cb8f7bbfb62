"""Less common losses (``torch.nn.functional`` names and defaults): Poisson and Gaussian
NLL, margin and embedding losses. Reductions as in ``_loss.py``."""

from __future__ import annotations

import math

import numpy as np

from tinytorch.nn.functional._activation import logsigmoid
from tinytorch.nn.functional._cross_entropy import _check_reduction, _legacy, _reduce
from tinytorch.nn.functional._linear import pairwise_distance
from tinytorch.tensor import Tensor

__all__ = [
    "poisson_nll_loss", "gaussian_nll_loss", "soft_margin_loss", "margin_ranking_loss",
    "hinge_embedding_loss", "cosine_embedding_loss", "triplet_margin_loss",
    "multilabel_soft_margin_loss",
]  # fmt: skip


def poisson_nll_loss(
    input: Tensor,
    target: Tensor,
    log_input: bool = True,
    full: bool = False,
    size_average: bool | None = None,
    eps: float = 1e-8,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Poisson NLL: ``e^x - y x`` (``log_input``) or ``x - y log(x + eps)``; ``full`` adds
    Stirling's ``y log y - y + 0.5 log(2 pi y)`` where y > 1."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    loss = input.exp() - target * input if log_input else input - target * (input + eps).log()
    if full:
        big = target.data > 1
        t = target.where(big, 2.0)  # any value > 1 keeps the unused branch finite
        stirling = t * t.log() - t + (t * (2 * math.pi)).log() * 0.5
        loss = loss + stirling.where(big, 0.0)
    return _reduce(loss, reduction)


def gaussian_nll_loss(
    input: Tensor,
    target: Tensor,
    var: Tensor | float,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> Tensor:
    """``0.5 (log v + (x - y)^2 / v)`` (+ ``0.5 log(2 pi)`` if ``full``) with the variance
    clamped below at ``eps`` (the clamp passes the gradient through, as torch)."""
    if isinstance(var, (int, float)):
        if var < 0:
            raise ValueError("var has negative entry/entries")
        var = input.new_full(tuple(input.shape), float(var))
    elif np.any(var.data < 0):
        raise ValueError("var has negative entry/entries")
    if var.shape != input.shape:
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif not (
            input.ndim == var.ndim and sum(b for a, b in zip(input.shape, var.shape) if a != b) == 1
        ):
            raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    var = var + Tensor._make(np.maximum(var.data, eps) - var.data)  # clamp, identity gradient
    diff = input - target
    loss = (var.log() + diff * diff / var) * 0.5
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def soft_margin_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``log(1 + e^{-y x})`` for labels y in {-1, 1}."""
    reduction = _legacy(size_average, reduce, reduction)
    return _reduce((-(input * target)).exp().log1p(), reduction)


def margin_ranking_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``max(0, -y (x1 - x2) + margin)``."""
    reduction = _legacy(size_average, reduce, reduction)
    return _reduce((-target * (input1 - input2) + margin).clamp(min=0.0), reduction)


def hinge_embedding_loss(
    input: Tensor,
    target: Tensor,
    margin: float = 1.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``x`` where y = 1, ``max(0, margin - x)`` where y = -1."""
    reduction = _legacy(size_average, reduce, reduction)
    t = target.data
    loss = (margin - input).clamp(min=0.0).where(t != 1, 0.0) + input.where(t != -1, 0.0)
    return _reduce(loss, reduction)


def cosine_embedding_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``1 - cos(x1, x2)`` where y = 1, ``max(0, cos(x1, x2) - margin)`` where y = -1."""
    reduction = _legacy(size_average, reduce, reduction)
    dim = 1 if input1.ndim == 2 else 0
    eps = 1e-12
    denom = (((input1 * input1).sum(dim) + eps) * ((input2 * input2).sum(dim) + eps)).sqrt()
    cos = (input1 * input2).sum(dim) / denom
    t = target.data
    loss = (1.0 - cos).where(t == 1, 0.0) + (cos - margin).clamp(min=0.0).where(t == -1, 0.0)
    return _reduce(loss, reduction)


def triplet_margin_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-6,
    swap: bool = False,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``max(0, margin + d(a, p) - d(a, n))`` with ``d = pairwise_distance`` (``swap``: use
    ``min(d(a, n), d(p, n))``)."""
    reduction = _legacy(size_average, reduce, reduction)
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = d_neg.minimum(pairwise_distance(positive, negative, p, eps))
    return _reduce((d_pos - d_neg + margin).clamp(min=0.0), reduction)


def multilabel_soft_margin_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``-mean_c w_c (y_c log sigmoid(x_c) + (1 - y_c) log sigmoid(-x_c))`` per sample."""
    reduction = _legacy(size_average, reduce, reduction)
    loss = -(target * logsigmoid(input) + (1.0 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss.sum(input.ndim - 1) / input.shape[-1], reduction)
