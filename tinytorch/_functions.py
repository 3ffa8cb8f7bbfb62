"""Module-level forms of the tensor ops (``tinytorch.exp(x)`` = ``x.exp()``, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tinytorch.ops import composite as C
from tinytorch.tensor import Tensor


def _t(x: Any) -> Tensor:
    return C.as_tensor(x)


# fmt: off
def add(input: Any, other: Any, *, alpha: Any = 1) -> Tensor: return _t(input).add(other, alpha=alpha)
def sub(input: Any, other: Any, *, alpha: Any = 1) -> Tensor: return _t(input).sub(other, alpha=alpha)
def mul(input: Any, other: Any) -> Tensor: return _t(input) * other
def div(input: Any, other: Any, *, rounding_mode: str | None = None) -> Tensor: return _t(input).div(other, rounding_mode=rounding_mode)
def true_divide(input: Any, other: Any) -> Tensor: return _t(input) / other
def floor_divide(input: Any, other: Any) -> Tensor: return C.floor_divide(input, other)
def remainder(input: Any, other: Any) -> Tensor: return C.remainder(input, other)
def pow(input: Any, exponent: Any) -> Tensor: return C.pow(input, exponent)
def neg(input: Tensor) -> Tensor: return -input
def exp(input: Tensor) -> Tensor: return input.exp()
def expm1(input: Tensor) -> Tensor: return input.expm1()
def log(input: Tensor) -> Tensor: return input.log()
def log1p(input: Tensor) -> Tensor: return input.log1p()
def log2(input: Tensor) -> Tensor: return input.log2()
def log10(input: Tensor) -> Tensor: return input.log10()
def sqrt(input: Tensor) -> Tensor: return input.sqrt()
def rsqrt(input: Tensor) -> Tensor: return input.rsqrt()
def square(input: Tensor) -> Tensor: return input.square()
def abs(input: Tensor) -> Tensor: return input.abs()
def sign(input: Tensor) -> Tensor: return input.sign()
def erf(input: Tensor) -> Tensor: return input.erf()
def sin(input: Tensor) -> Tensor: return input.sin()
def cos(input: Tensor) -> Tensor: return input.cos()
def tanh(input: Tensor) -> Tensor: return input.tanh()
def sigmoid(input: Tensor) -> Tensor: return input.sigmoid()
def relu(input: Tensor) -> Tensor: return input.relu()
def reciprocal(input: Tensor) -> Tensor: return input.reciprocal()
def floor(input: Tensor) -> Tensor: return input.floor()
def ceil(input: Tensor) -> Tensor: return input.ceil()
def round(input: Tensor, *, decimals: int = 0) -> Tensor: return input.round(decimals)
def trunc(input: Tensor) -> Tensor: return input.trunc()
def clamp(input: Tensor, min: Any = None, max: Any = None) -> Tensor: return input.clamp(min, max)
def maximum(input: Tensor, other: Tensor) -> Tensor: return input.maximum(other)
def minimum(input: Tensor, other: Tensor) -> Tensor: return input.minimum(other)
def lerp(input: Tensor, end: Any, weight: Any) -> Tensor: return input.lerp(end, weight)
def isnan(input: Tensor) -> Tensor: return input.isnan()
def isinf(input: Tensor) -> Tensor: return input.isinf()
def isfinite(input: Tensor) -> Tensor: return input.isfinite()
def eq(input: Tensor, other: Any) -> Tensor: return input == other
def ne(input: Tensor, other: Any) -> Tensor: return input != other
def lt(input: Tensor, other: Any) -> Tensor: return input < other
def le(input: Tensor, other: Any) -> Tensor: return input <= other
def gt(input: Tensor, other: Any) -> Tensor: return input > other
def ge(input: Tensor, other: Any) -> Tensor: return input >= other
def equal(input: Tensor, other: Tensor) -> bool: return input.equal(other)
def allclose(input: Tensor, other: Tensor, rtol: float = 1e-5, atol: float = 1e-8) -> bool: return input.allclose(other, rtol, atol)
def logical_and(input: Tensor, other: Any) -> Tensor: return input.logical_and(other)
def logical_or(input: Tensor, other: Any) -> Tensor: return input.logical_or(other)
def logical_xor(input: Tensor, other: Any) -> Tensor: return input.logical_xor(other)
def logical_not(input: Tensor) -> Tensor: return input.logical_not()
def sum(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor: return input.sum(dim, keepdim, dtype=dtype)
def mean(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor: return input.mean(dim, keepdim, dtype=dtype)
def prod(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor: return input.prod(dim, keepdim)
def max(input: Tensor, dim: Any = None, keepdim: bool = False) -> Any: return input.max(dim, keepdim)
def min(input: Tensor, dim: Any = None, keepdim: bool = False) -> Any: return input.min(dim, keepdim)
def amax(input: Tensor, dim: Any = (), keepdim: bool = False) -> Tensor: return input.amax(dim, keepdim)
def amin(input: Tensor, dim: Any = (), keepdim: bool = False) -> Tensor: return input.amin(dim, keepdim)
def argmax(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor: return input.argmax(dim, keepdim)
def argmin(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor: return input.argmin(dim, keepdim)
def var(input: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *, correction: Any = None) -> Tensor: return input.var(dim, unbiased, keepdim, correction=correction)
def std(input: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *, correction: Any = None) -> Tensor: return input.std(dim, unbiased, keepdim, correction=correction)
def logsumexp(input: Tensor, dim: Any, keepdim: bool = False) -> Tensor: return input.logsumexp(dim, keepdim)
def norm(input: Tensor, p: Any = "fro", dim: Any = None, keepdim: bool = False) -> Tensor: return input.norm(p, dim, keepdim)
def all(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor: return input.all(dim, keepdim)
def any(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor: return input.any(dim, keepdim)
def cumsum(input: Tensor, dim: int, *, dtype: Any = None) -> Tensor: return input.cumsum(dim, dtype=dtype)
def softmax(input: Tensor, dim: int) -> Tensor: return input.softmax(dim)
def log_softmax(input: Tensor, dim: int) -> Tensor: return input.log_softmax(dim)
def matmul(input: Tensor, other: Tensor) -> Tensor: return C.matmul(input, other)
def mm(input: Tensor, mat2: Tensor) -> Tensor: return C.mm(input, mat2)
def bmm(input: Tensor, mat2: Tensor) -> Tensor: return C.bmm(input, mat2)
def dot(input: Tensor, other: Tensor) -> Tensor: return C.dot(input, other)
def outer(input: Tensor, vec2: Tensor) -> Tensor: return C.outer(input, vec2)
def einsum(equation: str, *operands: Any) -> Tensor: return C.einsum(equation, *operands)
def reshape(input: Tensor, shape: Sequence[int]) -> Tensor: return input.reshape(shape)
def permute(input: Tensor, dims: Sequence[int]) -> Tensor: return input.permute(dims)
def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor: return input.transpose(dim0, dim1)
def t(input: Tensor) -> Tensor: return input.t()
def squeeze(input: Tensor, dim: Any = None) -> Tensor: return input.squeeze(dim)
def unsqueeze(input: Tensor, dim: int) -> Tensor: return input.unsqueeze(dim)
def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor: return input.flatten(start_dim, end_dim)
def unflatten(input: Tensor, dim: int, sizes: Sequence[int]) -> Tensor: return input.unflatten(dim, sizes)
def broadcast_to(input: Tensor, shape: Sequence[int]) -> Tensor: return input.broadcast_to(shape)
def flip(input: Tensor, dims: Any) -> Tensor: return input.flip(dims)
def roll(input: Tensor, shifts: Any, dims: Any = None) -> Tensor: return input.roll(shifts, dims)
def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor: return C.cat(tensors, dim)
concat = concatenate = cat
def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor: return C.stack(tensors, dim)
def split(tensor: Tensor, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]: return tensor.split(split_size_or_sections, dim)
def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]: return input.chunk(chunks, dim)
def unbind(input: Tensor, dim: int = 0) -> tuple[Tensor, ...]: return input.unbind(dim)
def narrow(input: Tensor, dim: int, start: int, length: int) -> Tensor: return input.narrow(dim, start, length)
def tril(input: Tensor, diagonal: int = 0) -> Tensor: return input.tril(diagonal)
def triu(input: Tensor, diagonal: int = 0) -> Tensor: return input.triu(diagonal)
def gather(input: Tensor, dim: int, index: Tensor) -> Tensor: return input.gather(dim, index)
def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor: return input.scatter_add(dim, index, src)
def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor: return input.index_select(dim, index)
def masked_fill(input: Tensor, mask: Any, value: Any) -> Tensor: return input.masked_fill(mask, value)
def masked_select(input: Tensor, mask: Any) -> Tensor: return input.masked_select(mask)
def where(condition: Any, input: Any = None, other: Any = None) -> Any: return C.where(condition, input, other)
def clone(input: Tensor) -> Tensor: return input.clone()
def numel(input: Tensor) -> int: return input.numel()
def is_tensor(obj: Any) -> bool: return isinstance(obj, Tensor)
def is_floating_point(input: Tensor) -> bool: return input.is_floating_point()
# fmt: on
clip = clamp
absolute = abs
multiply = mul
divide = div
subtract = sub
swapaxes = swapdims = transpose
