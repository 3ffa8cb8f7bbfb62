"""``nn.utils``: gradient clipping and flattening parameters to / from one vector."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from tinytorch.ops import composite as C
from tinytorch.tensor import Tensor

__all__ = [
    "clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm",
    "clip_grads_with_norm_", "parameters_to_vector", "vector_to_parameters",
]  # fmt: skip

TensorOrTensors = Tensor | Iterable[Tensor]


def _as_list(tensors: TensorOrTensors) -> list[Tensor]:
    return [tensors] if isinstance(tensors, Tensor) else list(tensors)


def get_total_norm(
    tensors: TensorOrTensors,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """``||(||t_1||_p, ..., ||t_k||_p)||_p``: the p-norm of all tensors taken together
    (``inf``: the largest absolute entry)."""
    tensors = _as_list(tensors)
    norm_type = float(norm_type)
    if not tensors:
        return Tensor._make(np.array(0.0, dtype=np.float32))
    dtype = tensors[0].data.dtype
    if norm_type == math.inf:
        total = max(float(np.max(np.abs(t.data))) if t.data.size else 0.0 for t in tensors)
    else:
        norms = np.array(
            [np.linalg.norm(t.data.ravel().astype(np.float64), norm_type) for t in tensors]
        )
        total = float(np.linalg.norm(norms, norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is "
            "non-finite, so it cannot be clipped. To disable this error and scale the gradients "
            "by the non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    return Tensor._make(np.array(total, dtype=dtype))


def clip_grads_with_norm_(
    parameters: TensorOrTensors, max_norm: float, total_norm: Tensor, foreach: bool | None = None
) -> None:
    """Scale every ``.grad`` in place by ``min(1, max_norm / (total_norm + 1e-6))``."""
    coef = min(float(max_norm) / (float(total_norm) + 1e-6), 1.0)
    for p in _as_list(parameters):
        if p.grad is not None:
            p.grad.data *= p.grad.data.dtype.type(coef)
            p.grad._vc[0] += 1


def clip_grad_norm_(
    parameters: TensorOrTensors,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Rescale the gradients in place so that their total ``norm_type`` norm is at most
    ``max_norm`` (coefficient ``min(1, max_norm / (norm + 1e-6))``); returns the total
    norm before clipping."""
    params = _as_list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    clip_grads_with_norm_(params, max_norm, total)
    return total


def clip_grad_norm(
    parameters: TensorOrTensors,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Deprecated alias of ``clip_grad_norm_``."""
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite)


def clip_grad_value_(
    parameters: TensorOrTensors, clip_value: float, foreach: bool | None = None
) -> None:
    """Clamp every gradient entry in place to ``[-clip_value, clip_value]``."""
    clip_value = float(clip_value)
    for p in _as_list(parameters):
        if p.grad is not None:
            np.clip(p.grad.data, -clip_value, clip_value, out=p.grad.data)
            p.grad._vc[0] += 1


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and concatenated into one 1-D tensor (differentiable)."""
    return C.cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of ``vec`` into the parameters, in place (so optimizers
    holding the parameters' arrays see the new values)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    pointer = 0
    for p in parameters:
        n = p.numel()
        p.data[...] = vec.data[pointer : pointer + n].reshape(p.shape)
        p._vc[0] += 1
        pointer += n
