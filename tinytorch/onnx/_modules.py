"""ONNX forms of the layers that are exported whole ("leaf" modules).

A module is a leaf when it has a direct ONNX operator (``Linear`` -> ``Gemm``,
``Conv2d`` -> ``Conv``, ``LayerNorm`` -> ``LayerNormalization``) or when its
tinytorch forward computes something from the input's values in numpy that a
primitive trace can't see (max pooling's argmax, ``LeakyReLU``'s sign mask).
Everything else (containers, attention, a user's own modules) is traced
through its primitives. A subclass counts only if it keeps the layer's
``forward``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from tinytorch.onnx._graph import Builder
from tinytorch.onnx._trace import ExportError, Record

ModuleConverter = Callable[[Builder, Record], list[str]]


def _tuple(value: Any, n: int) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value) if len(value) == n else (int(value[0]),) * n
    return (int(value),) * n


def _nd(rec: Record) -> int:
    """The number of spatial dims from the class name (``MaxPool2d`` -> 2)."""
    name = _base(type(rec.module))[0]
    assert name is not None  # only leaf modules have records
    return int(name[-2])


def _batched(b: Builder, rec: Record, nd: int, body: Callable[[str], str]) -> list[str]:
    """Run ``body`` on an (N, C, *S) input; an unbatched (C, *S) one gets N = 1 around it."""
    x = rec.inputs[0]
    assert x is not None
    if x.ndim == nd + 2:
        return [body(b.name(x))]
    zero = b.ints([0], "axes")
    y = body(b.op("Unsqueeze", [b.name(x), zero]))
    return [b.op("Squeeze", [y, zero])]


# --- layers with parameters ------------------------------------------------------------------


def _linear(b: Builder, rec: Record) -> list[str]:
    m, x = rec.module, rec.inputs[0]
    assert x is not None
    w = b.name(m.weight.data)
    bias = [b.name(m.bias.data)] if m.bias is not None else []
    if x.ndim == 2:
        return [b.op("Gemm", [b.name(x), w, *bias], transB=1)]
    y = b.op("MatMul", [b.name(x), b.op("Transpose", [w], perm=[1, 0])])
    return [b.op("Add", [y, bias[0]]) if bias else y]


def _conv(b: Builder, rec: Record) -> list[str]:
    m, nd = rec.module, _nd(rec)
    k, s, d = _tuple(m.kernel_size, nd), _tuple(m.stride, nd), _tuple(m.dilation, nd)
    if m.padding == "valid":
        lo = hi = (0,) * nd
    elif m.padding == "same":  # torch puts the odd pixel on the right
        lo = tuple(dd * (kk - 1) // 2 for kk, dd in zip(k, d))
        hi = tuple(dd * (kk - 1) - low for kk, dd, low in zip(k, d, lo))
    else:
        lo = hi = _tuple(m.padding, nd)
    mode = {"zeros": None, "reflect": "reflect", "replicate": "edge", "circular": "wrap"}[
        m.padding_mode]  # fmt: skip
    if mode == "wrap" and b.opset < 19:
        raise ExportError(f"{rec.describe()}: padding_mode='circular' needs opset_version >= 19")
    inputs = [b.name(m.weight.data)] + ([b.name(m.bias.data)] if m.bias is not None else [])

    def body(x: str) -> str:
        pads = list(lo) + list(hi)
        if mode is not None:
            full = [0, 0, *lo, 0, 0, *hi]
            x = b.op("Pad", [x, b.ints(full, "pads")], mode=mode)
            pads = [0] * (2 * nd)
        return b.op("Conv", [x, *inputs], kernel_shape=list(k), strides=list(s), pads=pads,
                    dilations=list(d), group=int(m.groups))  # fmt: skip

    return _batched(b, rec, nd, body)


def _conv_transpose(b: Builder, rec: Record) -> list[str]:
    m, nd = rec.module, _nd(rec)
    x, out = rec.inputs[0], rec.outputs[0]
    assert x is not None
    k, s, d = _tuple(m.kernel_size, nd), _tuple(m.stride, nd), _tuple(m.dilation, nd)
    p = _tuple(m.padding, nd)
    size_in, size_out = x.shape[-nd:], out.shape[-nd:]
    # The output_padding this call used (forward's output_size can choose it).
    extra = [o - ((n - 1) * ss - 2 * pp + dd * (kk - 1) + 1)
             for n, o, ss, pp, dd, kk in zip(size_in, size_out, s, p, d, k)]  # fmt: skip
    inputs = [b.name(m.weight.data)] + ([b.name(m.bias.data)] if m.bias is not None else [])
    return _batched(b, rec, nd, lambda xx: b.op(
        "ConvTranspose", [xx, *inputs], kernel_shape=list(k), strides=list(s), pads=list(p) * 2,
        dilations=list(d), group=int(m.groups), output_padding=extra))  # fmt: skip


def _batch_norm(b: Builder, rec: Record) -> list[str]:
    m, x = rec.module, rec.inputs[0]
    assert x is not None
    c = m.running_mean.data.shape[0]
    dt = x.dtype
    scale = b.name(m.weight.data) if m.weight is not None else b.const(np.ones(c, dt), "ones")
    shift = b.name(m.bias.data) if m.bias is not None else b.const(np.zeros(c, dt), "zeros")
    mean, var = b.name(m.running_mean.data), b.name(m.running_var.data)
    return [b.op("BatchNormalization", [b.name(x), scale, shift, mean, var],
                 epsilon=float(m.eps))]  # fmt: skip


def _layer_norm(b: Builder, rec: Record) -> list[str]:
    m, x = rec.module, rec.inputs[0]
    assert x is not None
    shape = tuple(m.normalized_shape)
    w = getattr(m, "weight", None)
    bias = getattr(m, "bias", None)
    scale = b.name(w.data) if w is not None else b.const(np.ones(shape, x.dtype), "ones")
    ins = [b.name(x), scale] + ([b.name(bias.data)] if bias is not None else [])
    return [b.op("LayerNormalization", ins, axis=-len(shape), epsilon=float(m.eps))]


def _embedding(b: Builder, rec: Record) -> list[str]:
    m = rec.module
    if m.max_norm is not None:
        raise ExportError(f"{rec.describe()}: Embedding(max_norm=...) renormalizes its weight "
                          f"during forward, which ONNX can't express")  # fmt: skip
    return [b.op("Gather", [b.name(m.weight.data), b.name(rec.inputs[0])], axis=0)]


def _flatten(b: Builder, rec: Record) -> list[str]:
    return [b.op("Flatten", [b.name(rec.inputs[0])], axis=1)]


def _prelu(b: Builder, rec: Record) -> list[str]:
    m, x = rec.module, rec.inputs[0]
    assert x is not None
    slope = b.name(m.weight.data)
    if x.ndim >= 2 and m.weight.data.size > 1:  # one slope per channel (dim 1)
        shape = [m.weight.data.size] + [1] * (x.ndim - 2)
        slope = b.op("Reshape", [slope, b.ints(shape, "shape")])
    return [b.op("PRelu", [b.name(x), slope])]


# --- pooling ---------------------------------------------------------------------------


def _pool_geometry(rec: Record, nd: int) -> tuple[tuple[int, ...], ...]:
    """kernel, stride, padding, dilation, and the extra right padding that gives floor
    mode the output size torch's ``ceil_mode`` chose."""
    m, x, out = rec.module, rec.inputs[0], rec.outputs[0]
    assert x is not None
    k = _tuple(m.kernel_size, nd)
    s = _tuple(m.stride if m.stride is not None else m.kernel_size, nd)
    p = _tuple(m.padding, nd)
    d = _tuple(getattr(m, "dilation", 1), nd)
    extra = []
    for n, o, kk, ss, pp, dd in zip(x.shape[-nd:], out.shape[-nd:], k, s, p, d):
        floor_out = (n + 2 * pp - dd * (kk - 1) - 1) // ss + 1
        extra.append(max(0, (o - floor_out) * ss))
    return k, s, p, d, tuple(extra)


def _max_pool(b: Builder, rec: Record) -> list[str]:
    if rec.module.return_indices:
        raise ExportError(f"{rec.describe()}: return_indices=True is not supported")
    nd = _nd(rec)
    k, s, p, d, extra = _pool_geometry(rec, nd)
    pads = list(p) + [pp + e for pp, e in zip(p, extra)]  # pooling pads never win a max
    return _batched(b, rec, nd, lambda x: b.op("MaxPool", [x], kernel_shape=list(k),
                    strides=list(s), pads=pads, dilations=list(d)))  # fmt: skip


def _avg_pool(b: Builder, rec: Record) -> list[str]:
    m, nd = rec.module, _nd(rec)
    if getattr(m, "divisor_override", None) is not None:
        raise ExportError(f"{rec.describe()}: divisor_override is not supported")
    k, s, p, _, extra = _pool_geometry(rec, nd)
    ceil = int(any(extra))
    return _batched(b, rec, nd, lambda x: b.op(
        "AveragePool", [x], kernel_shape=list(k), strides=list(s), pads=list(p) * 2,
        count_include_pad=int(m.count_include_pad), ceil_mode=ceil))  # fmt: skip


def _adaptive(op_type: str) -> ModuleConverter:
    def convert(b: Builder, rec: Record) -> list[str]:
        if getattr(rec.module, "return_indices", False):
            raise ExportError(f"{rec.describe()}: return_indices=True is not supported")
        nd = _nd(rec)
        x, out = rec.inputs[0], rec.outputs[0]
        assert x is not None
        size_in, size_out = x.shape[-nd:], out.shape[-nd:]
        if all(o == 1 for o in size_out):
            return _batched(b, rec, nd, lambda xx: b.op(f"Global{op_type}", [xx]))
        if any(n % o for n, o in zip(size_in, size_out)):
            raise ExportError(f"{rec.describe()}: input size {list(size_in)} is not a multiple "
                              f"of the output size {list(size_out)}")  # fmt: skip
        k = [n // o for n, o in zip(size_in, size_out)]
        return _batched(b, rec, nd, lambda xx: b.op(op_type, [xx], kernel_shape=k, strides=k))

    return convert


# --- activations ---------------------------------------------------------------------------


def _act(body: Callable[[Builder, str, np.ndarray, Any], str]) -> ModuleConverter:
    def convert(b: Builder, rec: Record) -> list[str]:
        x = rec.inputs[0]
        assert x is not None
        return [body(b, b.name(x), x, rec.module)]

    return convert


def _gelu(b: Builder, x: str, arr: np.ndarray, m: Any) -> str:
    half_x = b.op("Mul", [x, b.scalar_like(0.5, arr)])
    if m.approximate == "tanh":
        cube = b.op("Mul", [b.op("Mul", [x, x]), x])
        inner = b.op("Add", [x, b.op("Mul", [cube, b.scalar_like(0.044715, arr)])])
        t = b.op("Tanh", [b.op("Mul", [inner, b.scalar_like(math.sqrt(2 / math.pi), arr)])])
    else:
        t = b.op("Erf", [b.op("Mul", [x, b.scalar_like(1 / math.sqrt(2), arr)])])
    return b.op("Mul", [half_x, b.op("Add", [t, b.scalar_like(1.0, arr)])])


def _softplus(b: Builder, x: str, arr: np.ndarray, m: Any) -> str:
    beta = float(getattr(m, "beta", 1.0))
    bx = x if beta == 1 else b.op("Mul", [x, b.scalar_like(beta, arr)])
    y = b.op("Softplus", [bx])
    if beta != 1:
        y = b.op("Div", [y, b.scalar_like(beta, arr)])
    # torch: x itself where beta * x > threshold (linear there, and no overflow)
    big = b.op("Greater", [bx, b.scalar_like(float(m.threshold), arr)])
    return b.op("Where", [big, x, y])


def _celu(b: Builder, x: str, arr: np.ndarray, m: Any) -> str:
    """max(0, x) + min(0, alpha (exp(x / alpha) - 1)) (ONNX's Celu is float32 only)."""
    alpha = b.scalar_like(float(m.alpha), arr)
    zero = b.scalar_like(0.0, arr)
    neg = b.op("Mul", [alpha, b.op("Sub", [b.op("Exp", [b.op("Div", [x, alpha])]),
                                          b.scalar_like(1.0, arr)])])  # fmt: skip
    return b.op("Add", [b.op("Max", [x, zero]), b.op("Min", [neg, zero])])


def _softmax_dim(m: Any, ndim: int) -> int:
    if m.dim is not None:
        return int(m.dim)
    return 0 if ndim in (0, 1, 3) else 1  # torch's legacy choice for dim=None


_SELU = {"alpha": 1.6732632423543772848170429916717, "gamma": 1.0507009873554804934193349852946}
_ACTIVATIONS: dict[str, Callable[[Builder, str, np.ndarray, Any], str]] = {
    "ReLU": lambda b, x, a, m: b.op("Relu", [x]),
    "Sigmoid": lambda b, x, a, m: b.op("Sigmoid", [x]),
    "Tanh": lambda b, x, a, m: b.op("Tanh", [x]),
    "Softsign": lambda b, x, a, m: b.op("Softsign", [x]),
    "Hardtanh": lambda b, x, a, m: b.op("Clip", [x, b.scalar_like(m.min_val, a),
                                                 b.scalar_like(m.max_val, a)]),
    "LeakyReLU": lambda b, x, a, m: b.op("LeakyRelu", [x], alpha=float(m.negative_slope)),
    "RReLU": lambda b, x, a, m: b.op("LeakyRelu", [x], alpha=(m.lower + m.upper) / 2),
    "ELU": lambda b, x, a, m: b.op("Elu", [x], alpha=float(m.alpha)),
    "CELU": _celu,
    "SELU": lambda b, x, a, m: b.op("Selu", [x], alpha=_SELU["alpha"], gamma=_SELU["gamma"]),
    "GELU": _gelu,
    "SiLU": lambda b, x, a, m: b.op("Mul", [x, b.op("Sigmoid", [x])]),
    "Mish": lambda b, x, a, m: b.op("Mul", [x, b.op("Tanh", [b.op("Softplus", [x])])]),
    "Softplus": _softplus,
    "Hardsigmoid": lambda b, x, a, m: b.op("HardSigmoid", [x], alpha=1 / 6, beta=0.5),
    "Hardswish": lambda b, x, a, m: b.op("Mul", [x, b.op("HardSigmoid", [x], alpha=1 / 6,
                                                         beta=0.5)]),
    "LogSigmoid": lambda b, x, a, m: b.op("Neg", [b.op("Softplus", [b.op("Neg", [x])])]),
    "Tanhshrink": lambda b, x, a, m: b.op("Sub", [x, b.op("Tanh", [x])]),
    "Threshold": lambda b, x, a, m: b.op("Where", [
        b.op("Greater", [x, b.scalar_like(m.threshold, a)]), x, b.scalar_like(m.value, a)]),
    "Hardshrink": lambda b, x, a, m: b.op("Shrink", [x], lambd=float(m.lambd), bias=0.0),
    "Softshrink": lambda b, x, a, m: b.op("Shrink", [x], lambd=float(m.lambd),
                                          bias=float(m.lambd)),
    "Softmax": lambda b, x, a, m: b.op("Softmax", [x], axis=_softmax_dim(m, a.ndim)),
    "LogSoftmax": lambda b, x, a, m: b.op("LogSoftmax", [x], axis=_softmax_dim(m, a.ndim)),
    "Softmin": lambda b, x, a, m: b.op("Softmax", [b.op("Neg", [x])],
                                       axis=_softmax_dim(m, a.ndim)),
    "Softmax2d": lambda b, x, a, m: b.op("Softmax", [x], axis=-3),
}  # fmt: skip

MODULES: dict[str, ModuleConverter] = {
    "Linear": _linear, "Conv1d": _conv, "Conv2d": _conv, "Conv3d": _conv,
    "ConvTranspose1d": _conv_transpose, "ConvTranspose2d": _conv_transpose,
    "ConvTranspose3d": _conv_transpose,
    "MaxPool1d": _max_pool, "MaxPool2d": _max_pool, "MaxPool3d": _max_pool,
    "AvgPool1d": _avg_pool, "AvgPool2d": _avg_pool, "AvgPool3d": _avg_pool,
    "AdaptiveAvgPool1d": _adaptive("AveragePool"), "AdaptiveAvgPool2d": _adaptive("AveragePool"),
    "AdaptiveAvgPool3d": _adaptive("AveragePool"), "AdaptiveMaxPool1d": _adaptive("MaxPool"),
    "AdaptiveMaxPool2d": _adaptive("MaxPool"),
    "BatchNorm1d": _batch_norm, "BatchNorm2d": _batch_norm, "BatchNorm3d": _batch_norm,
    "LayerNorm": _layer_norm, "Embedding": _embedding, "Flatten": _flatten, "PReLU": _prelu,
    **{name: _act(fn) for name, fn in _ACTIVATIONS.items()},
}  # fmt: skip


def _base(cls: type) -> tuple[str, type] | tuple[None, None]:
    """The tinytorch layer class in ``cls``'s MRO that has a converter."""
    for c in cls.__mro__:
        if c.__name__ in MODULES and c.__module__.startswith("tinytorch.nn"):
            return c.__name__, c
    return None, None


def module_converter(module: Any, opset: int) -> ModuleConverter | None:
    """The converter for ``module`` exported whole, or None to trace it."""
    name, base = _base(type(module))
    if name is None or type(module).forward is not base.forward:  # type: ignore[union-attr]
        return None
    if name == "LayerNorm" and opset < 17:  # LayerNormalization is opset 17
        return None
    if name.startswith("BatchNorm") and getattr(module, "running_mean", None) is None:
        return None  # no running stats: batch statistics, traced
    if name == "Flatten" and (module.start_dim, module.end_dim) != (1, -1):
        return None
    return MODULES[name]
