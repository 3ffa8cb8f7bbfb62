"""Linear maps, embeddings, dropout and vector helpers (``torch.nn.functional`` names).

Shape letters: N batch, C channels / classes, D feature width, V vocabulary size.
"""

from __future__ import annotations

import warnings

import numpy as np

from tinytorch.autograd.grad_mode import no_grad
from tinytorch.ops import linalg as L
from tinytorch.random import default_generator
from tinytorch.tensor import Tensor

__all__ = [
    "linear", "bilinear", "embedding", "one_hot", "normalize", "cosine_similarity",
    "pairwise_distance", "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
    "feature_alpha_dropout",
]  # fmt: skip


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y = x W^T + b``.  Shapes: x (*, in), W (out, in), b (out,) -> y (*, out).

    Leading dims are flattened into one matrix product, so the weight gradient
    is a single (out, in) GEMM rather than a batch of them summed afterwards.
    """
    if input.ndim > 2 and weight.ndim == 2:
        lead = input.shape[:-1]
        out = linear(input.reshape(-1, input.shape[-1]), weight, bias)  # (N*..., out)
        return out.reshape(lead + (weight.shape[0],))
    if _fusable(input, weight, bias):
        return (
            L.Linear.apply(input, weight) if bias is None else L.Linear.apply(input, weight, bias)
        )
    return linear_reference(input, weight, bias)


def linear_reference(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """The composite ``x @ W^T (+ b)`` that the fused ``Linear`` primitive is tested
    against; it also checks shapes and dtypes, and promotes, as matmul and + do."""
    out = input.matmul(weight.t())
    return out if bias is None else out + bias


def _fusable(x: Tensor, w: Tensor, b: Tensor | None) -> bool:
    """A 2-D float x and W of one dtype and matching width, and a bias (out,) of that
    dtype: the cases the fused primitive handles (the ONNX tracer maps it to Gemm)."""
    xd, wd = x.data, w.data
    return (
        xd.ndim == 2 and wd.ndim == 2 and xd.shape[1] == wd.shape[1]
        and xd.dtype is wd.dtype and xd.dtype.kind == "f"
        and (b is None or (b.data.shape == wd.shape[:1] and b.data.dtype is xd.dtype))
    )  # fmt: skip


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y_k = x1^T W_k x2 + b_k``.  Shapes: x1 (*, in1), x2 (*, in2), W (out, in1, in2),
    b (out,) -> y (*, out)."""
    if input1.shape[:-1] != input2.shape[:-1]:
        raise RuntimeError(
            f"bilinear(): input batch dimensions do not match: got "
            f"{list(input1.shape[:-1])} and {list(input2.shape[:-1])}"
        )
    out_f, in1, in2 = weight.shape
    if input1.shape[-1] != in1 or input2.shape[-1] != in2:
        raise RuntimeError(
            f"bilinear(): input sizes {input1.shape[-1]}, {input2.shape[-1]} do "
            f"not match weight of shape {list(weight.shape)}"
        )
    lead = input1.shape[:-1]
    x1 = input1.reshape(-1, in1)  # (N, in1)
    x2 = input2.reshape(-1, in2)  # (N, in2)
    w = weight.permute(1, 0, 2).reshape(in1, out_f * in2)  # (in1, out*in2)
    t = x1.matmul(w).reshape(-1, out_f, in2)  # (N, out, in2)
    out = (t * x2.unsqueeze(1)).sum(-1).reshape(lead + (out_f,))
    return out if bias is None else out + bias


def _check_indices(input: Tensor, n: int, what: str) -> np.ndarray:
    idx = input.data
    if idx.dtype.kind not in "iu":
        raise RuntimeError(
            f"Expected tensor for argument #1 'indices' to have one of the "
            f"following scalar types: Long, Int; but got {input.dtype} instead "
            f"(while checking arguments for {what})"
        )
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        bad = idx.min() if idx.min() < 0 else idx.max()
        raise IndexError(
            f"index out of range in self ({what}: index {int(bad)} for a table of {n} rows)"
        )
    return idx


def embedding(
    input: Tensor,
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Look up rows: ``out[...] = W[input[...]]``.  Shapes: input (*) integer, W (V, D)
    -> out (*, D).

    ``padding_idx`` rows get no gradient; ``scale_grad_by_freq`` divides each
    row's gradient by how often it occurs in ``input``; ``max_norm`` first
    renormalizes (in place, as torch) the looked-up rows whose ``norm_type``
    norm exceeds it. ``sparse=True`` is accepted and gives a dense gradient.
    """
    n = weight.shape[0]
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise AssertionError("Padding_idx must be within num_embeddings")
        padding_idx %= n
    idx = _check_indices(input, n, "embedding")
    if max_norm is not None:
        with no_grad():
            rows = np.unique(idx)
            norms = np.linalg.norm(weight.data[rows], ord=norm_type, axis=1)
            scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
            weight.data[rows] *= scale[:, None].astype(weight.data.dtype)
            weight._vc[0] += 1
    out = weight[idx]  # (*, D)
    if padding_idx is None and not scale_grad_by_freq:
        return out
    # Scale the gradient, not the value: out*s + (out*(1-s)).detach() equals out.
    s = np.ones(idx.shape, dtype=weight.data.dtype)
    if scale_grad_by_freq:
        s = s / np.bincount(idx.ravel(), minlength=n)[idx]
    if padding_idx is not None:
        s[idx == padding_idx] = 0.0
    s_t = Tensor._make(s[..., None])
    return out * s_t + (out * (1.0 - s_t)).detach()


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 tensor of shape (*, C) with a 1 at each index in ``tensor``."""
    idx = tensor.data
    if idx.dtype.kind not in "iu":
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    if idx.size and idx.min() < 0:
        raise RuntimeError("Class values must be non-negative.")
    if num_classes == -1:
        if not idx.size:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(idx.max()) + 1
    elif idx.size and idx.max() >= num_classes:
        raise RuntimeError(
            f"Class values must be smaller than num_classes (got {int(idx.max())}"
            f" with num_classes={num_classes})."
        )
    return Tensor._make((idx[..., None] == np.arange(num_classes)).astype(np.int64))


def normalize(
    input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out: Tensor | None = None
) -> Tensor:
    """``x / max(||x||_p, eps)`` along ``dim``."""
    return input / input.norm(p, dim, keepdim=True).clamp(min=eps)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """``sum(x1 x2) / (max(||x1||, eps) max(||x2||, eps))`` along ``dim`` (broadcasting)."""
    n1 = x1.norm(2, dim, keepdim=True).clamp(min=eps)
    n2 = x2.norm(2, dim, keepdim=True).clamp(min=eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(
    x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False
) -> Tensor:
    """``||x1 - x2 + eps||_p`` over the last dim."""
    return (x1 - x2 + eps).norm(p, -1, keepdim)


# --- dropout -----------------------------------------------------------------------------


def _check_p(p: float) -> None:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _keep_mask(input: Tensor, p: float, shape: tuple[int, ...]) -> np.ndarray:
    """Bernoulli(1 - p) draws of ``shape`` (broadcastable to the input) in its dtype."""
    keep = default_generator.np.random(shape, dtype=np.float32) >= p
    return keep.astype(input.data.dtype)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """When training: zero each element with probability p and scale the rest by
    1/(1-p) (so the expectation is unchanged); identity otherwise."""
    _check_p(p)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    return input * Tensor._make(_keep_mask(input, p, input.shape) / (1.0 - p))


def _feature_dropout(
    input: Tensor, p: float, training: bool, lead: int, alpha: bool = False
) -> Tensor:
    """Dropout of whole channels: one draw per entry of the first ``lead`` dims."""
    _check_p(p)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    shape = tuple(input.shape[:lead]) + (1,) * (input.ndim - lead)
    keep = _keep_mask(input, p, shape)
    if not alpha:
        return input * Tensor._make(keep / (1.0 - p))
    return _alpha_apply(input, keep, p)


def _alpha_apply(input: Tensor, keep: np.ndarray, p: float) -> Tensor:
    """Alpha dropout keeps SELU's mean and variance: dropped units go to the negative
    saturation value, then an affine map ``a x + b`` restores the moments."""
    alpha = 1.7580993408473766
    a = 1.0 / float(np.sqrt((alpha * alpha * p + 1.0) * (1.0 - p)))
    b = (keep - 1.0) * (alpha * a) + alpha * a * p
    return input * Tensor._make(keep * a) + Tensor._make(b.astype(input.data.dtype))


def dropout1d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    """Channel dropout for (N, C, L) or (C, L) inputs: whole channels are zeroed."""
    if input.ndim not in (2, 3):
        raise RuntimeError(
            f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D input. Note that "
            "dropout1d exists to provide channel-wise dropout on inputs with 1 spatial "
            "dimension, a channel dimension, and an optional batch dimension (i.e. 2D or 3D "
            "inputs)."
        )
    return _feature_dropout(input, p, training, input.ndim - 1)


def dropout2d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    """Channel dropout for (N, C, H, W) inputs (a 3-D input is taken as (N, C, L), as torch)."""
    if input.ndim not in (3, 4):
        warnings.warn(
            f"dropout2d: Received a {input.ndim}-D input to dropout2d, which is "
            "deprecated and will result in an error in a future release.",
            stacklevel=2,
        )
    return _feature_dropout(input, p, training, 2)


def dropout3d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    """Channel dropout for (N, C, D, H, W) or unbatched (C, D, H, W) inputs."""
    if input.ndim not in (4, 5):
        warnings.warn(
            f"dropout3d: Received a {input.ndim}-D input to dropout3d, which is "
            "deprecated and will result in an error in a future release.",
            stacklevel=2,
        )
    return _feature_dropout(input, p, training, 1 if input.ndim == 4 else 2)


def alpha_dropout(
    input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False
) -> Tensor:
    """Dropout for SELU networks (keeps zero mean and unit variance)."""
    _check_p(p)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    return _alpha_apply(input, _keep_mask(input, p, input.shape), p)


def feature_alpha_dropout(
    input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False
) -> Tensor:
    """Alpha dropout of whole channels."""
    return _feature_dropout(input, p, training, 2, alpha=True)
