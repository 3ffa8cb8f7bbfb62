"""Cross entropy's machinery: target checks (shared with ``nll_loss``), the composite
reference, and ``CrossEntropyIndices``, the fused primitive used for class-index targets.

Cross entropy is the hot path of every classification training step. The composite
(``log_softmax``, gather, weight, reduce: about a dozen recorded ops; see
``_cross_entropy(..., fused=False)`` below) is the reference the fused node is tested
against; fused, one forward/backward pair runs about twice as fast (ten times on small
batches; measured on N=4096, C=65 float32 fwd+bwd: 2.1 ms -> 1.2 ms).

Forward, with p = softmax(x) over the class dim, eps = label smoothing,
w_i = weight[y_i] (0 where ignored), v_i = [y_i not ignored], W = sum_c weight_c:

    l_i = (1 - eps) * (-w_i log p[i, y_i]) + eps/C * v_i * (-sum_c weight_c log p[i, c])

then ``'none'``: l;  ``'sum'``: sum_i l_i;  ``'mean'``: sum_i l_i / sum_i w_i.

Backward (g_i: the incoming gradient per entry, divided by the mean's denominator):

    dl/dx[i, c] = g_i * (a_i p[i, c] - (1 - eps) w_i [c == y_i] - eps/C v_i weight_c)
    with a_i = (1 - eps) w_i + eps/C v_i W.

Without ``create_graph`` this runs in numpy on the softmax saved by forward;
with it, the same formula is written with Tensor ops on the input, so higher
derivatives stay exact.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinytorch.autograd.grad_mode import STATE
from tinytorch.autograd.node import Node
from tinytorch.tensor import Tensor


def _class_index(t: np.ndarray, cd: int, shape: tuple[int, ...]) -> np.ndarray:
    """The flat index that picks x[..., t, ...] along the class dim ``cd`` of a
    C-contiguous x of ``shape``: ``x.reshape(-1)[index]`` has t's shape. (One integer
    index: numpy takes it ~5x faster than a tuple of index arrays.)"""
    if t.ndim == 1 and cd == 1:  # (N, C) logits: the common case
        return np.arange(t.shape[0]) * shape[1] + t
    grid = np.indices(t.shape, sparse=True)
    return np.ravel_multi_index(tuple(grid[:cd]) + (t,) + tuple(grid[cd:]), shape)


def _expand(a: np.ndarray, cd: int) -> np.ndarray:
    """``a`` with a length-1 class dim inserted at ``cd`` (a view)."""
    return a.reshape(a.shape[:cd] + (1,) + a.shape[cd:])


class CrossEntropyIndices(Node):
    """See the module docstring. Inputs: logits ``x`` (differentiable); parameters:
    ``t`` (indices, ignored entries replaced by 0), ``w_t`` (weight per entry, 0 where
    ignored), ``valid``, ``class_w`` (None or the class weights shaped to broadcast over
    x), ``eps``, ``reduction``, ``cd`` (class dim). ``w_t`` and ``valid`` are None when
    every entry is a class and there are no class weights (all ones: the usual case,
    which then skips their arithmetic)."""

    __slots__ = (
        "cd", "class_w", "coef_p", "eps", "p", "pick", "reduction", "scale", "valid", "w_t",
    )  # fmt: skip
    save_inputs = True

    def forward(self, x, t, w_t, valid, class_w, eps, reduction, cd):
        self.pick = _class_index(t, cd, x.shape)  # into the C-ordered z, p and gradient
        self.w_t, self.valid, self.class_w = w_t, valid, class_w
        self.eps, self.reduction, self.cd = eps, reduction, cd
        n_classes = x.shape[cd]
        # ufunc.reduce skips np.max/np.sum's Python wrappers (~1.5 us each on small arrays)
        z = np.subtract(x, np.maximum.reduce(x, axis=cd, keepdims=True), order="C")
        e = np.exp(z)
        s = np.add.reduce(e, axis=cd, keepdims=True)
        e /= s
        self.p = e
        log_s = np.log(s)
        logp_t = z.reshape(-1)[self.pick] - log_s.reshape(t.shape)  # log p[i, y_i]
        loss = -logp_t if w_t is None else -(w_t * logp_t)
        total_w = float(class_w.sum()) if class_w is not None else float(n_classes)
        self.coef_p = (1.0 - eps) * (1.0 if w_t is None else w_t)
        if eps:
            zw = z * class_w if class_w is not None else z
            smooth = -(np.sum(zw, axis=cd) - np.squeeze(log_s, cd) * total_w)
            v = 1.0 if valid is None else valid
            loss = (1.0 - eps) * loss + (eps / n_classes) * (smooth * v)
            self.coef_p = self.coef_p + (eps / n_classes) * total_w * v
        self.scale = 1.0
        if reduction == "mean":
            denom = float(t.size if w_t is None else w_t.sum())
            # all entries ignored: the loss is 0/0 = nan, its gradient 0 (as torch)
            self.scale = 1.0 / denom if denom else 0.0
            return np.asarray(loss.sum() / denom if denom else np.nan, dtype=x.dtype)
        if reduction == "sum":
            return np.asarray(loss.sum(), dtype=x.dtype)
        return loss.astype(x.dtype, copy=False)

    def _onehot_coef(self, dtype: np.dtype) -> np.ndarray:
        """(1 - eps) w_i at [i, y_i] (a dense array, used by the Tensor-op path)."""
        oh = np.zeros(self.p.shape, dtype=dtype)
        oh.reshape(-1)[self.pick] = (1.0 - self.eps) * (1.0 if self.w_t is None else self.w_t)
        return oh

    def _per_entry(self, a: Any) -> Any:
        """A per-entry array (or a number) made to broadcast over the class dim."""
        return _expand(a, self.cd) if isinstance(a, np.ndarray) and a.ndim else a

    def backward(self, g):
        if self.p is None:
            self._raise_freed()
        cd, eps = self.cd, self.eps
        dtype = self.p.dtype
        n_classes = self.p.shape[cd]
        if STATE.enabled:  # create_graph: Tensor ops on the input, differentiable again
            (x,) = self.inputs
            gi = (g * self.scale).unsqueeze(cd) if g.ndim else g * self.scale
            coef = np.asarray(self._per_entry(self.coef_p), dtype=dtype)
            lin = x.softmax(cd) * Tensor._make(coef)
            lin = lin - Tensor._make(self._onehot_coef(dtype))
            if eps:
                cw = self.class_w if self.class_w is not None else 1.0
                v = 1.0 if self.valid is None else _expand(self.valid, cd)
                sub = np.asarray((eps / n_classes) * v * cw)
                lin = lin - Tensor._make(np.broadcast_to(sub, self.p.shape).astype(dtype))
            return gi * lin
        gd = g.data * self.scale
        gi = _expand(gd, cd) if gd.ndim else gd
        gx = np.multiply(self.p, np.asarray(self._per_entry(self.coef_p) * gi, dtype=dtype),
                         order="C")  # fmt: skip
        w_g = gd if self.w_t is None else self.w_t * gd
        gx.reshape(-1)[self.pick] -= np.asarray((1.0 - eps) * w_g, dtype=dtype)  # a view
        if eps:
            cw = self.class_w if self.class_w is not None else 1.0
            v = 1.0 if self.valid is None else _expand(self.valid, cd)
            gx -= np.asarray((eps / n_classes) * v * gi * cw, dtype=dtype)
        return Tensor._make(gx)

    def release(self):
        super().release()
        self.p = None


# --- the composite reference and the checks shared with nll_loss -----------------------


def _legacy(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """torch's mapping of the deprecated flags onto ``reduction``."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if size_average and reduce:
        return "mean"
    return "sum" if reduce else "none"


def _nan_like(loss: Tensor) -> Tensor:
    """The mean over zero entries: value nan, gradient 0 (as torch)."""
    return loss.sum() * 0.0 + math.nan


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _check_reduction(reduction: str) -> None:
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")


def _class_dim(name: str, input: Tensor) -> int:
    if input.ndim == 0:
        raise ValueError(
            f"{name}: input must have at least one dimension (the classes), got a 0-d tensor"
        )
    return 0 if input.ndim == 1 else 1


def _class_targets(
    name: str, input: Tensor, target: Tensor, ignore_index: int
) -> tuple[np.ndarray, bool]:
    """Check a class-index target against an input of shape (C,), (N, C) or
    (N, C, d1, ...); return the index array, and whether every entry is a class
    (none is ``ignore_index``)."""
    t = target.data
    cd = _class_dim(name, input)
    n_classes = input.shape[cd]
    if t.dtype.kind not in "iu":
        raise RuntimeError(
            f"{name}: expected a target of class indices with integer dtype (int64) for an "
            f"input of shape {list(input.shape)}, but got {target.dtype} of shape "
            f"{list(target.shape)} (a floating-point target must hold class probabilities "
            f"and have the input's shape)"
        )
    expected = () if input.ndim == 1 else (input.shape[0],) + tuple(input.shape[2:])
    if t.shape != expected:
        if input.ndim >= 2 and (t.ndim == 0 or t.shape[0] != input.shape[0]):
            raise ValueError(
                f"{name}: Expected input batch_size ({input.shape[0]}) to match "
                f"target batch_size ({t.shape[0] if t.ndim else 0}); input shape "
                f"{list(input.shape)}, target shape {list(t.shape)}."
            )
        raise RuntimeError(
            f"{name}: expected target of shape {list(expected)} for input of "
            f"shape {list(input.shape)}, got {list(t.shape)}"
        )
    if t.size:  # the usual case in two reductions: every entry a class, none ignored
        lo, hi = int(np.minimum.reduce(t, None)), int(np.maximum.reduce(t, None))
        if lo >= 0 and hi < n_classes and not lo <= ignore_index <= hi:
            return t, True
    valid = t != ignore_index
    bad = valid & ((t < 0) | (t >= n_classes))
    if bad.any():
        raise IndexError(
            f"Target {int(t[bad].flat[0])} is out of bounds: {name} expects class "
            f"indices in [0, {n_classes - 1}] for C={n_classes} classes "
            f"(or ignore_index={ignore_index})."
        )
    return t, False


def _class_weights(
    weight: Tensor | None, t: np.ndarray, valid: np.ndarray, dtype: np.dtype, n_classes: int
) -> np.ndarray:
    """``w[y_i]`` per target entry (0 where ignored), as a constant array."""
    if weight is None:
        return valid.astype(dtype)
    w = weight.data
    if w.shape != (n_classes,):
        raise RuntimeError(
            f"weight tensor should be defined either for all {n_classes} classes "
            f"or no classes but got weight tensor of shape: {list(w.shape)}"
        )
    return np.where(valid, w.astype(dtype)[np.where(valid, t, 0)], 0).astype(dtype)


def _nll_from_logp(
    logp: Tensor, t: np.ndarray, w_t: np.ndarray, valid: np.ndarray, reduction: str
) -> Tensor:
    """``l_i = -w_{y_i} logp[i, y_i]``; mean divides by ``sum_i w_{y_i}``."""
    cd = 0 if logp.ndim == 1 else 1
    index = np.expand_dims(np.where(valid, t, 0), cd)
    picked = logp.gather(cd, Tensor._make(index)).squeeze(cd)  # (N, d1, ...)
    loss = -(picked * Tensor._make(w_t))
    if reduction == "mean":
        total = float(w_t.sum())
        return loss.sum() / total if total else _nan_like(loss)
    return _reduce(loss, reduction)


def _cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
    fused: bool,
) -> Tensor:
    """``cross_entropy``; ``fused=False`` is the composite reference (log_softmax + gather)."""
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if not input.is_floating_point():
        raise RuntimeError(f"cross_entropy: expected floating point logits, got {input.dtype}")
    cd = _class_dim("cross_entropy", input)
    n_classes = input.shape[cd]
    wshape = (n_classes,) + (1,) * (input.ndim - cd - 1)  # weight broadcast over the class dim
    if target.shape == input.shape:
        return _cross_entropy_probs(input, target, weight, reduction, label_smoothing, cd, wshape)
    t, plain = _class_targets("cross_entropy", input, target, ignore_index)
    dtype = input.data.dtype
    if fused and plain and weight is None:  # no weights, nothing ignored: all ones
        return CrossEntropyIndices.apply(
            input, t=t, w_t=None, valid=None, class_w=None, eps=float(label_smoothing),
            reduction=reduction, cd=cd,
        )  # fmt: skip
    valid = t != ignore_index
    w_t = _class_weights(weight, t, valid, dtype, n_classes)
    if fused:
        class_w = None if weight is None else weight.data.astype(dtype).reshape(wshape)
        return CrossEntropyIndices.apply(
            input,
            t=np.where(valid, t, 0),
            w_t=w_t,
            valid=valid,
            class_w=class_w,
            eps=float(label_smoothing),
            reduction=reduction,
            cd=cd,
        )
    logp = input.log_softmax(cd)
    nll = _nll_from_logp(logp, t, w_t, valid, reduction)
    if label_smoothing == 0.0:
        return nll
    smooth = -((logp * weight.reshape(wshape)) if weight is not None else logp).sum(cd)
    smooth = smooth * Tensor._make(valid.astype(dtype))  # ignored entries: 0
    if reduction == "mean":
        total = float(w_t.sum())
        smooth = smooth.sum() / total if total else _nan_like(smooth)
    else:
        smooth = _reduce(smooth, reduction)
    return nll * (1.0 - label_smoothing) + smooth * (label_smoothing / n_classes)


def _cross_entropy_probs(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None,
    reduction: str,
    label_smoothing: float,
    cd: int,
    wshape: tuple[int, ...],
) -> Tensor:
    if not target.is_floating_point():
        raise RuntimeError(
            f"cross_entropy: expected a floating point target of class "
            f"probabilities for a target with the input's shape "
            f"{list(input.shape)}, got {target.dtype}"
        )
    n_classes = input.shape[cd]
    if label_smoothing > 0.0:
        target = target * (1.0 - label_smoothing) + label_smoothing / n_classes
    prod = input.log_softmax(cd) * target
    if weight is not None:
        prod = prod * weight.reshape(wshape)
    if reduction == "none":
        return -prod.sum(cd)
    if reduction == "sum":
        return -prod.sum()
    count = input.numel() // n_classes if n_classes else 0
    return -prod.sum() / count if count else _nan_like(prod)
