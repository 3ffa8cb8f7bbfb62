"""Normalization: ``batch_norm``, ``instance_norm``, ``layer_norm``, ``group_norm``, ``rms_norm``.

Each normalizes ``x`` over some axes, ``y = (x - mean) / sqrt(var + eps)`` with the
biased variance, then applies an optional per-feature affine ``y * weight + bias``.
They are composites of tinytorch ops, so gradients of every order hold.
Running statistics (batch/instance norm) are updated in place and never recorded.

Shape letters: N batch, C channels, G groups, * any further dims.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tinytorch.autograd import node as _node
from tinytorch.autograd.grad_mode import STATE
from tinytorch.autograd.node import Node
from tinytorch.tensor import Tensor

__all__ = ["batch_norm", "group_norm", "instance_norm", "layer_norm", "rms_norm"]


def _normalize(x: Tensor, axes: tuple[int, ...], eps: float) -> Tensor:
    """(x - mean) / sqrt(var + eps) over ``axes`` (biased variance)."""
    centered = x - x.mean(axes, keepdim=True)
    var = (centered * centered).mean(axes, keepdim=True)
    return centered * (var + eps).rsqrt()


def _channel_shape(x: Tensor) -> tuple[int, ...]:
    """(C, 1, ..., 1): a per-channel vector broadcast against (N, C, *)."""
    return (x.shape[1],) + (1,) * (x.ndim - 2)


def _affine(y: Tensor, weight: Tensor | None, bias: Tensor | None, shape: tuple[int, ...]
            ) -> Tensor:  # fmt: skip
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def _check_vector(what: str, t: Tensor | None, n: int) -> None:
    if t is not None and t.numel() != n:
        raise RuntimeError(f"{what} should contain {n} elements not {t.numel()}")


def _update_running(stat: Tensor | None, batch_value: np.ndarray, momentum: float) -> None:
    """stat = (1 - momentum) stat + momentum batch_value, in place (not recorded)."""
    if stat is None:
        return
    data = stat.data
    np.multiply(data, 1.0 - momentum, out=data, casting="unsafe")
    np.add(data, momentum * batch_value.astype(data.dtype, copy=False), out=data)
    stat._vc[0] += 1


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:  # fmt: skip
    """y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias, per channel over (N, *).

    Training: batch statistics (biased variance) normalize, and the running stats
    become ``(1 - momentum) running + momentum batch`` with the *unbiased*
    variance. Eval: the running statistics normalize.
    Shape: input (N, C, *); running stats, weight, bias (C,).
    """
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected at least 2D input (got {input.ndim}D input)")
    c = input.shape[1]
    for what, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):  # fmt: skip
        _check_vector(what, t, c)
    shape = _channel_shape(input)
    axes = (0,) + tuple(range(2, input.ndim))
    if training:
        count = input.numel() // c
        if count <= 1:
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size "
                f"{input.shape}"
            )
        mean = input.mean(axes, keepdim=True)
        centered = input - mean
        var = (centered * centered).mean(axes, keepdim=True)
        y = centered * (var + eps).rsqrt()
        _update_running(running_mean, mean.data.reshape(c), momentum)
        _update_running(running_var, var.data.reshape(c) * (count / (count - 1)), momentum)
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError("batch_norm: running_mean and running_var must be defined in eval")
        mean = running_mean.detach().to(input.dtype).reshape(shape)
        var = running_var.detach().to(input.dtype).reshape(shape)
        y = (input - mean) * (var + eps).rsqrt()
    return _affine(y, weight, bias, shape)


def instance_norm(input: Tensor, running_mean: Tensor | None = None,
                  running_var: Tensor | None = None, weight: Tensor | None = None,
                  bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:  # fmt: skip
    """``batch_norm`` of every (n, c) plane on its own: normalize over the spatial dims.

    With running stats, they move towards the batch average of the per-instance
    mean and unbiased variance. Shape: input (N, C, *) with at least one spatial dim.
    """
    if input.ndim < 3:
        raise ValueError(f"instance_norm: expected an input with spatial dims, got {input.ndim}D")
    c = input.shape[1]
    shape = _channel_shape(input)
    axes = tuple(range(2, input.ndim))
    if not use_input_stats:
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    count = input.numel() // (input.shape[0] * c)
    if count <= 1:
        raise ValueError(
            f"Expected more than 1 spatial element when training, got input size {input.shape}"
        )
    y = _normalize(input, axes, eps)
    if running_mean is not None or running_var is not None:
        data = input.data
        _update_running(running_mean, data.mean(axis=axes).mean(0), momentum)
        var = data.var(axis=axes, ddof=1).mean(0)
        _update_running(running_var, var, momentum)
    return _affine(y, weight, bias, shape)


def _normalized_axes(op: str, input: Tensor, normalized_shape: int | Sequence[int],
                     sep: str = ", ") -> tuple[tuple[int, ...], tuple[int, ...]]:  # fmt: skip
    shape = (int(normalized_shape),) if isinstance(normalized_shape, int) else tuple(
        int(s) for s in normalized_shape)  # fmt: skip
    k = len(shape)
    if k == 0 or input.ndim < k or tuple(input.shape[input.ndim - k :]) != shape:
        raise RuntimeError(
            f"Given normalized_shape={list(shape)}, expected input with shape "
            f"[*{sep}{', '.join(map(str, shape))}], but got input of size{list(input.shape)}"
        )
    return shape, tuple(range(input.ndim - k, input.ndim))


def _check_affine_shape(what: str, t: Tensor | None, shape: tuple[int, ...]) -> None:
    if t is not None and tuple(t.shape) != shape:
        raise RuntimeError(
            f"Expected {what} to be of same shape as normalized_shape, but got {what} of shape "
            f"{list(t.shape)} and normalized_shape = {list(shape)}"
        )


class LayerNorm(Node):
    """Fused affine layer norm over the trailing ``k`` dims (D = their product):

        xhat = (x - mean) * rstd,  rstd = 1 / sqrt(var + eps),  y = xhat * w + b;
        dx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat)),  gh = g * w,
        dw = sum over the leading dims of g * xhat,  db = the same sum of g.

    Forward saves the input and, per row, ``mean`` and ``rstd`` (as torch: no
    activation-sized array of its own); backward recomputes ``xhat`` from them and
    runs in numpy unless ``create_graph``, where it is written with Tensor ops on the
    inputs (the composite ``_normalize`` is the reference it is tested against).
    Shapes: x (*, *S), w and b S, with ``len(S) == k``.
    """

    __slots__ = ("eps", "k", "mean", "rstd")
    save_inputs = True

    def forward(self, x, w, b, k, eps):
        self.k, self.eps = k, eps
        axes = tuple(range(x.ndim - k, x.ndim))
        mean = np.mean(x, axis=axes, keepdims=True)
        xhat = x - mean
        y = np.multiply(xhat, xhat)
        var = np.mean(y, axis=axes, keepdims=True)
        var += eps
        rstd = np.sqrt(var, out=var)
        np.divide(1.0, rstd, out=rstd)
        xhat *= rstd
        self.mean, self.rstd = mean, rstd
        np.multiply(xhat, w, out=y)
        y += b
        return y

    def backward(self, g):
        x, w, _ = self.inputs
        nx, nw, nb = self.next_nodes
        axes = tuple(range(x.ndim - self.k, x.ndim))
        if STATE.enabled:
            return self._backward_tensor(g, x, w, axes)
        gd = g.data
        xhat = np.subtract(x.data, self.mean)
        xhat *= self.rstd
        flat = gd.reshape(-1, w.data.size)  # (N, D): leading dims first, as numpy sums best
        db = flat.sum(0).reshape(w.shape) if nb is not None else None
        tmp = gd * xhat
        dw = tmp.reshape(flat.shape).sum(0).reshape(w.shape) if nw is not None else None
        dx = None
        if nx is not None:
            gh = gd * w.data
            np.multiply(gh, xhat, out=tmp)
            m2 = np.mean(tmp, axis=axes, keepdims=True)
            m1 = np.mean(gh, axis=axes, keepdims=True)
            np.multiply(xhat, m2, out=tmp)
            gh -= tmp
            gh -= m1
            gh *= self.rstd
            dx = Tensor._make(gh)
        return dx, (Tensor._make(dw) if dw is not None else None), (
            Tensor._make(db) if db is not None else None)  # fmt: skip

    def _backward_tensor(self, g: Tensor, x: Tensor, w: Tensor, axes: tuple[int, ...]
                         ) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
        """The same formulas with recorded Tensor ops (create_graph)."""
        centered = x - x.mean(axes, keepdim=True)
        rstd = ((centered * centered).mean(axes, keepdim=True) + self.eps).rsqrt()
        xhat = centered * rstd
        gh = g * w
        dx = gh - gh.mean(axes, keepdim=True) - xhat * (gh * xhat).mean(axes, keepdim=True)
        lead = tuple(range(x.ndim - self.k))
        gx = g * xhat
        return dx * rstd, (gx.sum(lead) if lead else gx), (g.sum(lead) if lead else g)

    def release(self):
        super().release()
        self.mean = self.rstd = None


def layer_norm(input: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:  # fmt: skip
    """y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias over the last
    ``len(normalized_shape)`` dims (biased variance).

    Shape: input (*, *normalized_shape); weight, bias ``normalized_shape``.
    With both weight and bias of the input's float dtype this is one fused
    primitive (``LayerNorm``); otherwise, and while ONNX traces, the composite.
    """
    shape, axes = _normalized_axes("layer_norm", input, normalized_shape)
    _check_affine_shape("weight", weight, shape)
    _check_affine_shape("bias", bias, shape)
    dt = input.data.dtype
    if (
        weight is not None
        and bias is not None
        and weight.data.dtype == bias.data.dtype == dt
        and dt.kind == "f"
        and input.data.size
        and _node.trace_hook is None
    ):
        return LayerNorm.apply(input, weight, bias, k=len(shape), eps=eps)
    return _affine(_normalize(input, axes, eps), weight, bias, shape)


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:  # fmt: skip
    """Split the C channels into ``num_groups`` groups and normalize each (n, group)
    over its channels and spatial dims, then a per-channel affine.

    Shape: input (N, C, *); weight, bias (C,).
    """
    if input.ndim < 2:
        raise RuntimeError(
            f"Expected at least 2 dimensions for input tensor but received {input.ndim}"
        )
    n, c = input.shape[:2]
    if num_groups <= 0 or c % num_groups:
        raise RuntimeError(
            f"Expected number of channels in input to be divisible by num_groups, but got "
            f"input of shape {list(input.shape)} and num_groups={num_groups}"
        )
    for what, t in (("weight", weight), ("bias", bias)):
        if t is not None and (t.ndim != 1 or t.numel() != c):
            raise RuntimeError(
                f"Expected {what} to be a vector of size equal to the number of channels in "
                f"input, but got {what} of shape {list(t.shape)} and input of shape "
                f"{list(input.shape)}"
            )
    grouped = input.reshape(n, num_groups, -1)  # (N, G, C/G * prod(*))
    y = _normalize(grouped, (2,), eps).reshape(input.shape)  # (N, C, *)
    return _affine(y, weight, bias, _channel_shape(input))


def rms_norm(input: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:  # fmt: skip
    """y = x / sqrt(mean(x^2) + eps) * weight over the last ``len(normalized_shape)`` dims;
    ``eps=None`` means the machine epsilon of the input's dtype, as torch.

    Shape: input (*, *normalized_shape); weight ``normalized_shape``.
    """
    shape, axes = _normalized_axes("rms_norm", input, normalized_shape, sep="")
    _check_affine_shape("weight", weight, shape)
    if eps is None:
        eps = float(np.finfo(input.data.dtype).eps)
    y = input * ((input * input).mean(axes, keepdim=True) + eps).rsqrt()
    return y * weight if weight is not None else y
