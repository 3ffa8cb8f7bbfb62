"""``Tensor``: an ndarray plus the graph bookkeeping autograd needs.

The class holds no math: methods are one-line wrappers over the primitives
in ``tinytorch.ops`` and the composites in ``tinytorch.ops.composite``. Two
helpers live here because every op uses them: ``_binary`` (dtype promotion,
scalar wrapping and broadcasting, done once for all binary ops) and
``_inplace`` (torch's in-place semantics with a version counter).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from tinytorch import _dtype
from tinytorch._dtype import dtype as DType
from tinytorch.autograd import node as _node
from tinytorch.autograd.grad_mode import STATE
from tinytorch.ops import composite as C
from tinytorch.ops import elementwise as E
from tinytorch.ops import reduce as R
from tinytorch.ops import shape as S
from tinytorch.ops import special as SP

Scalar = int | float | bool
# The builtins under other names, for annotations inside ``Tensor``, where its
# ``bool``/``int``/``float`` methods shadow them (torch's stubs do the same).
_bool = bool
_int = int
_float = float


class Tensor:
    """A multi-dimensional array that can record the operations applied to it.

    ``data`` is the numpy array (tinytorch's ``.data`` is the ndarray itself,
    not a detached tensor as in torch). ``grad_fn`` is the ``Node`` that made
    the tensor (None for leaves); ``grad`` receives gradients of leaves.
    """

    __slots__ = (
        "__weakref__",
        "_base",
        "_hooks",
        "_requires_grad",
        "_vc",
        "data",
        "grad",
        "grad_fn",
    )  # fmt: skip
    # The slots' types (annotations only).
    data: np.ndarray
    grad: Tensor | None
    grad_fn: _node.Node | None
    _requires_grad: _bool
    _vc: list[_int]
    _base: Tensor | None
    _hooks: list[Any] | None
    __array_priority__ = 1000  # numpy defers `ndarray op Tensor` to our reflected ops

    def __init__(self, *args: Any, requires_grad: bool = False) -> None:
        if len(args) == 1 and not isinstance(args[0], (int, np.integer)):
            data = np.array(_unwrap(args[0]), dtype=_dtype.get_default_dtype().np)
        else:
            shape = _shape_arg(args)
            data = np.empty(shape, dtype=_dtype.get_default_dtype().np)
        self.data = data
        self.grad = self.grad_fn = self._hooks = self._base = None
        self._requires_grad = requires_grad
        self._vc = [0]

    @classmethod
    def _make(
        cls,
        data: np.ndarray,
        requires_grad: bool = False,
        grad_fn: _node.Node | None = None,
        vc: list[int] | None = None,
    ) -> Tensor:
        """Wrap an array without copying (internal fast constructor)."""
        t = object.__new__(cls)
        t.data = data
        t.grad = t._hooks = t._base = None
        t._requires_grad = requires_grad
        t.grad_fn = grad_fn
        t._vc = [0] if vc is None else vc
        return t

    # --- autograd attributes ---------------------------------------------------------

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if self.grad_fn is not None and not requires_grad:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to "
                "use a computed variable in a subgraph that doesn't require differentiation "
                "use var_no_grad = var.detach()."
            )
        if requires_grad and self.data.dtype.kind not in "fc":
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        if self.grad_fn is None:
            self._requires_grad = bool(requires_grad)
        return self

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward (no-op for leaves)."""
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is not None:
            import weakref

            self.grad_fn._retained = weakref.ref(self)

    @property
    def retains_grad(self) -> bool:
        return self.grad_fn is not None and self.grad_fn._retained is not None

    @property
    def retain_grads(self) -> bool:
        """Our extension from the seed (torch lacks it): settable alias of ``retain_grad()``."""
        return self.retains_grad

    @retain_grads.setter
    def retain_grads(self, value: bool) -> None:
        if value:
            self.retain_grad()
        elif self.grad_fn is not None:
            self.grad_fn._retained = None

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> _HookHandle:
        """Call ``hook(grad)`` when the gradient w.r.t. this tensor is computed.

        The hook may return a tensor that replaces the gradient.
        """
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        owner: Any = self if self.grad_fn is None else self.grad_fn
        if owner._hooks is None:
            owner._hooks = []
        owner._hooks.append(hook)
        return _HookHandle(owner._hooks, hook)

    def backward(
        self,
        gradient: Tensor | None = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
        inputs: Sequence[Tensor] | None = None,
    ) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (see ``autograd.backward``)."""
        from tinytorch.autograd import backward

        backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    def detach(self) -> Tensor:
        """A tensor sharing data (and version counter) with no history."""
        return Tensor._make(self.data, vc=self._vc)

    def detach_(self) -> Tensor:
        self.grad_fn = None
        self._requires_grad = False
        return self

    @property
    def _version(self) -> int:
        return self._vc[0]

    # --- attributes and conversion ---------------------------------------------------

    @property
    def shape(self) -> Size:
        return Size(self.data.shape)

    def size(self, dim: int | None = None) -> Any:
        return Size(self.data.shape) if dim is None else self.data.shape[dim]

    def dim(self) -> int:
        return self.data.ndim

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def ndimension(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> DType:
        return _dtype.from_numpy_dtype(self.data.dtype)

    def is_floating_point(self) -> bool:
        return self.data.dtype.kind == "f"

    @property
    def device(self) -> str:
        return "cpu"

    def numel(self) -> int:
        return self.data.size

    def nelement(self) -> int:
        return self.data.size

    def element_size(self) -> int:
        return self.data.itemsize

    def item(self) -> Scalar:
        if self.data.size != 1:
            raise RuntimeError(
                f"a Tensor with {self.data.size} elements cannot be converted to Scalar"
            )
        return self.data.item()

    def numpy(self, *, force: bool = False) -> np.ndarray:
        if self._requires_grad and not force:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                "instead."
            )
        return self.data

    def tolist(self) -> Any:
        return self.data.tolist()

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def __dlpack__(self, *, stream: Any = None, max_version: Any = None, dl_device: Any = None,
                   copy: bool | None = None) -> Any:  # fmt: skip
        """DLPack export (``torch.from_dlpack(t)`` shares this memory); see ``_dlpack``."""
        from tinytorch._dlpack import to_dlpack

        return to_dlpack(self, stream=stream, max_version=max_version, dl_device=dl_device,
                         copy=copy)  # fmt: skip

    def __dlpack_device__(self) -> tuple[int, int]:
        from tinytorch._dlpack import CPU_DEVICE

        return CPU_DEVICE

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """``to(dtype)``, ``to(other)``, ``to("cpu")``; returns self if nothing changes."""
        target = kwargs.get("dtype")
        for a in args:
            if isinstance(a, Tensor):
                target = a.data.dtype
            elif isinstance(a, (DType, np.dtype, type)):
                target = a
            elif isinstance(a, str) and a != "cpu":
                raise RuntimeError(f"tinytorch only has the cpu device, got {a!r}")
        if target is None:
            return self
        npd = _dtype.to_numpy_dtype(target)
        if npd is None or npd == self.data.dtype:
            return self
        if self._requires_grad and STATE.enabled and npd.kind == "f":
            return E.Cast.apply(self, dtype=npd)
        return Tensor._make(self.data.astype(npd))

    def type_as(self, other: Tensor) -> Tensor:
        return self.to(other.data.dtype)

    def float(self) -> Tensor:
        return self.to(np.float32)

    def double(self) -> Tensor:
        return self.to(np.float64)

    def half(self) -> Tensor:
        return self.to(np.float16)

    def long(self) -> Tensor:
        return self.to(np.int64)

    def int(self) -> Tensor:
        return self.to(np.int32)

    def bool(self) -> Tensor:
        return self.to(np.bool_)

    def cpu(self) -> Tensor:
        return self

    def clone(self) -> Tensor:
        return C.clone(self)

    def contiguous(self) -> Tensor:
        return self if self.data.flags.c_contiguous else C.clone(self)

    def is_contiguous(self) -> _bool:
        return self.data.flags.c_contiguous

    def new_zeros(self, *size: Any, dtype: Any = None) -> Tensor:
        npd = _dtype.to_numpy_dtype(dtype) or self.data.dtype
        return Tensor._make(np.zeros(_shape_arg(size), dtype=npd))

    def new_ones(self, *size: Any, dtype: Any = None) -> Tensor:
        npd = _dtype.to_numpy_dtype(dtype) or self.data.dtype
        return Tensor._make(np.ones(_shape_arg(size), dtype=npd))

    def new_full(self, size: Sequence[_int], fill_value: Scalar, dtype: Any = None) -> Tensor:
        npd = _dtype.to_numpy_dtype(dtype) or self.data.dtype
        return Tensor._make(np.full(tuple(size), fill_value, dtype=npd))

    def new_tensor(self, data: Any, dtype: Any = None) -> Tensor:
        npd = _dtype.to_numpy_dtype(dtype) or self.data.dtype
        return Tensor._make(np.array(_unwrap(data), dtype=npd))

    def __len__(self) -> _int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))

    def __bool__(self) -> _bool:
        if self.data.size != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with more than one value is ambiguous "
                f"(shape {list(self.data.shape)})"
            )
        return bool(self.data)

    def __float__(self) -> _float:
        return float(self.item())

    def __int__(self) -> _int:
        return int(self.item())

    def __index__(self) -> _int:
        if self.data.dtype.kind not in "iub" or self.data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.data)

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        from tinytorch._repr import tensor_repr

        return tensor_repr(self)

    def __format__(self, spec: str) -> str:
        if self.data.ndim == 0:
            return self.item().__format__(spec)
        return object.__format__(self, spec)

    # --- arithmetic -----------------------------------------------------------------

    def __add__(self, other: Any) -> Tensor:
        return _binary(E.Add, self, other)

    def __radd__(self, other: Any) -> Tensor:
        return _binary(E.Add, other, self)

    def __sub__(self, other: Any) -> Tensor:
        return _binary(E.Sub, self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return _binary(E.Sub, other, self)

    def __mul__(self, other: Any) -> Tensor:
        return _binary(E.Mul, self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return _binary(E.Mul, other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return _binary(E.Div, self, other, true_div=True)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _binary(E.Div, other, self, true_div=True)

    def __floordiv__(self, other: Any) -> Tensor:
        return C.floor_divide(self, other)

    def __rfloordiv__(self, other: Any) -> Tensor:
        return C.floor_divide(other, self)

    def __mod__(self, other: Any) -> Tensor:
        return C.remainder(self, other)

    def __rmod__(self, other: Any) -> Tensor:
        return C.remainder(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return C.pow(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return C.pow(other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return C.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return C.matmul(other, self)

    def __neg__(self) -> Tensor:
        return E.Neg.apply(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return self.abs()

    def __invert__(self) -> Tensor:
        return C.logical_not(self) if self.data.dtype == np.bool_ else C.no_grad_op(np.invert, self)

    def __and__(self, other: Any) -> Tensor:
        return C.compare(np.bitwise_and, self, other)

    def __or__(self, other: Any) -> Tensor:
        return C.compare(np.bitwise_or, self, other)

    def __xor__(self, other: Any) -> Tensor:
        return C.compare(np.bitwise_xor, self, other)

    __rand__ = __and__
    __ror__ = __or__
    __rxor__ = __xor__

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return C.compare(np.equal, self, other)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return C.compare(np.not_equal, self, other)

    def __lt__(self, other: Any) -> Tensor:
        return C.compare(np.less, self, other)

    def __le__(self, other: Any) -> Tensor:
        return C.compare(np.less_equal, self, other)

    def __gt__(self, other: Any) -> Tensor:
        return C.compare(np.greater, self, other)

    def __ge__(self, other: Any) -> Tensor:
        return C.compare(np.greater_equal, self, other)

    def __getitem__(self, key: Any) -> Tensor:
        return C.getitem(self, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        C.setitem(self, key, value)

    # --- in-place ---------------------------------------------------------------------

    def __iadd__(self, other: Any) -> Tensor:
        return self.add_(other)

    def __isub__(self, other: Any) -> Tensor:
        return self.sub_(other)

    def __imul__(self, other: Any) -> Tensor:
        return self.mul_(other)

    def __itruediv__(self, other: Any) -> Tensor:
        return self.div_(other)

    def add_(self, other: Any, *, alpha: Scalar = 1) -> Tensor:
        return C.inplace(self, lambda s: s.add(other, alpha=alpha))

    def sub_(self, other: Any, *, alpha: Scalar = 1) -> Tensor:
        return C.inplace(self, lambda s: s.sub(other, alpha=alpha))

    def mul_(self, other: Any) -> Tensor:
        return C.inplace(self, lambda s: s * other)

    def div_(self, other: Any) -> Tensor:
        return C.inplace(self, lambda s: s / other)

    def pow_(self, exponent: Any) -> Tensor:
        return C.inplace(self, lambda s: s**exponent)

    def clamp_(self, min: Any = None, max: Any = None) -> Tensor:
        return C.inplace(self, lambda s: s.clamp(min, max))

    clip_ = clamp_

    def neg_(self) -> Tensor:
        return C.inplace(self, lambda s: -s)

    def exp_(self) -> Tensor:
        return C.inplace(self, lambda s: s.exp())

    def sqrt_(self) -> Tensor:
        return C.inplace(self, lambda s: s.sqrt())

    def relu_(self) -> Tensor:
        return C.inplace(self, lambda s: s.relu())

    def zero_(self) -> Tensor:
        return C.fill(self, 0)

    def fill_(self, value: Any) -> Tensor:
        return C.fill(self, value)

    def copy_(self, src: Any) -> Tensor:
        return C.copy_(self, src)

    def masked_fill_(self, mask: Any, value: Any) -> Tensor:
        return C.inplace(self, lambda s: s.masked_fill(mask, value))

    def uniform_(self, a: _float = 0.0, b: _float = 1.0) -> Tensor:
        from tinytorch.random import uniform_

        return uniform_(self, a, b)

    def normal_(self, mean: _float = 0.0, std: _float = 1.0) -> Tensor:
        from tinytorch.random import normal_

        return normal_(self, mean, std)

    # --- math (one line each; the formulas live in ops/) ------------------------------

    def add(self, other: Any, *, alpha: Scalar = 1) -> Tensor:
        return _binary(E.Add, self, other if alpha == 1 else other * alpha)

    def sub(self, other: Any, *, alpha: Scalar = 1) -> Tensor:
        return _binary(E.Sub, self, other if alpha == 1 else other * alpha)

    def mul(self, other: Any) -> Tensor:
        return _binary(E.Mul, self, other)

    def div(self, other: Any, *, rounding_mode: str | None = None) -> Tensor:
        return C.div(self, other, rounding_mode)

    multiply, divide, subtract, true_divide = mul, div, sub, __truediv__

    def pow(self, exponent: Any) -> Tensor:
        return C.pow(self, exponent)

    def matmul(self, other: Tensor) -> Tensor:
        return C.matmul(self, other)

    def mm(self, other: Tensor) -> Tensor:
        return C.mm(self, other)

    def bmm(self, other: Tensor) -> Tensor:
        return C.bmm(self, other)

    def dot(self, other: Tensor) -> Tensor:
        return C.dot(self, other)

    def outer(self, other: Tensor) -> Tensor:
        return C.outer(self, other)

    def exp(self) -> Tensor:
        return C.unary(E.Exp, self)

    def expm1(self) -> Tensor:
        return C.unary(E.Expm1, self)

    def log(self) -> Tensor:
        return C.unary(E.Log, self)

    def log1p(self) -> Tensor:
        return C.unary(E.Log1p, self)

    def log2(self) -> Tensor:
        return C.log2(self)

    def log10(self) -> Tensor:
        return C.log10(self)

    def sqrt(self) -> Tensor:
        return C.unary(E.Sqrt, self)

    def rsqrt(self) -> Tensor:
        return C.rsqrt(self)

    def square(self) -> Tensor:
        return self * self

    def abs(self) -> Tensor:
        return E.Abs.apply(self)

    def sign(self) -> Tensor:
        return C.piecewise(np.sign, self)

    def erf(self) -> Tensor:
        return C.unary(SP.Erf, self)

    def sin(self) -> Tensor:
        return C.unary(E.Sin, self)

    def cos(self) -> Tensor:
        return C.unary(E.Cos, self)

    def tanh(self) -> Tensor:
        return C.unary(E.Tanh, self)

    def sigmoid(self) -> Tensor:
        return C.unary(E.Sigmoid, self)

    def relu(self) -> Tensor:
        return E.Relu.apply(self)

    def reciprocal(self) -> Tensor:
        return C.reciprocal(self)

    def clamp(self, min: Any = None, max: Any = None) -> Tensor:
        return C.clamp(self, min, max)

    clip = clamp

    def maximum(self, other: Tensor) -> Tensor:
        return _binary(E.Maximum, self, other)

    def minimum(self, other: Tensor) -> Tensor:
        return _binary(E.Minimum, self, other)

    def where(self, condition: Any, other: Any) -> Tensor:
        return C.where(condition, self, other)

    def where_mask(self, mask: np.ndarray, other: Any) -> Tensor:
        """``where(mask, self, other)`` for a constant numpy bool mask (internal helper)."""
        return C.where(mask, self, other)

    def floor(self) -> Tensor:
        return C.piecewise(np.floor, self)

    def ceil(self) -> Tensor:
        return C.piecewise(np.ceil, self)

    def round(self, decimals: _int = 0) -> Tensor:
        return C.piecewise(lambda a: np.round(a, decimals), self)

    def trunc(self) -> Tensor:
        return C.piecewise(np.trunc, self)

    def lerp(self, end: Any, weight: Any) -> Tensor:
        return C.lerp(self, end, weight)

    def isnan(self) -> Tensor:
        return C.no_grad_op(np.isnan, self)

    def isinf(self) -> Tensor:
        return C.no_grad_op(np.isinf, self)

    def isfinite(self) -> Tensor:
        return C.no_grad_op(np.isfinite, self)

    def eq(self, other: Any) -> Tensor:
        return self == other

    def ne(self, other: Any) -> Tensor:
        return self != other

    def lt(self, other: Any) -> Tensor:
        return self < other

    def le(self, other: Any) -> Tensor:
        return self <= other

    def gt(self, other: Any) -> Tensor:
        return self > other

    def ge(self, other: Any) -> Tensor:
        return self >= other

    def equal(self, other: Tensor) -> _bool:
        return self.shape == other.shape and bool(np.array_equal(self.data, other.data))

    def allclose(self, other: Tensor, rtol: _float = 1e-5, atol: _float = 1e-8) -> _bool:
        return bool(np.allclose(self.data, other.data, rtol=rtol, atol=atol))

    def logical_and(self, other: Any) -> Tensor:
        return C.compare(np.logical_and, self, other)

    def logical_or(self, other: Any) -> Tensor:
        return C.compare(np.logical_or, self, other)

    def logical_xor(self, other: Any) -> Tensor:
        return C.compare(np.logical_xor, self, other)

    def logical_not(self) -> Tensor:
        return C.logical_not(self)

    # --- reductions -------------------------------------------------------------------

    def sum(self, dim: Any = None, keepdim: _bool = False, *, dtype: Any = None) -> Tensor:
        return C.sum(self, dim, keepdim, dtype)

    def mean(self, dim: Any = None, keepdim: _bool = False, *, dtype: Any = None) -> Tensor:
        return C.mean(self, dim, keepdim, dtype)

    def prod(self, dim: _int | None = None, keepdim: _bool = False) -> Tensor:
        return C.prod(self, dim, keepdim)

    def max(self, dim: Any = None, keepdim: _bool = False) -> Any:
        return C.max_min(self, dim, keepdim, is_max=True)

    def min(self, dim: Any = None, keepdim: _bool = False) -> Any:
        return C.max_min(self, dim, keepdim, is_max=False)

    def amax(self, dim: Any = (), keepdim: _bool = False) -> Tensor:
        return C.amax_amin(self, dim, keepdim, R.Amax)

    def amin(self, dim: Any = (), keepdim: _bool = False) -> Tensor:
        return C.amax_amin(self, dim, keepdim, R.Amin)

    def argmax(self, dim: _int | None = None, keepdim: _bool = False) -> Tensor:
        return C.arg_extreme(np.argmax, self, dim, keepdim)

    def argmin(self, dim: _int | None = None, keepdim: _bool = False) -> Tensor:
        return C.arg_extreme(np.argmin, self, dim, keepdim)

    def var(self, dim: Any = None, unbiased: _bool | None = None, keepdim: _bool = False, *,
            correction: Scalar | None = None) -> Tensor:  # fmt: skip
        return C.var(self, dim, unbiased, keepdim, correction)

    def std(self, dim: Any = None, unbiased: _bool | None = None, keepdim: _bool = False, *,
            correction: Scalar | None = None) -> Tensor:  # fmt: skip
        return C.var(self, dim, unbiased, keepdim, correction).sqrt()

    def logsumexp(self, dim: Any, keepdim: _bool = False) -> Tensor:
        return C.logsumexp(self, dim, keepdim)

    def norm(self, p: Any = "fro", dim: Any = None, keepdim: _bool = False) -> Tensor:
        return C.norm(self, p, dim, keepdim)

    def all(self, dim: Any = None, keepdim: _bool = False) -> Tensor:
        axes = C.norm_dims(self, dim)
        return C.no_grad_op(lambda a: np.all(a, axis=axes, keepdims=keepdim), self)

    def any(self, dim: Any = None, keepdim: _bool = False) -> Tensor:
        axes = C.norm_dims(self, dim)
        return C.no_grad_op(lambda a: np.any(a, axis=axes, keepdims=keepdim), self)

    def cumsum(self, dim: _int, *, dtype: Any = None) -> Tensor:
        return C.cumsum(self, dim, dtype)

    def softmax(self, dim: _int) -> Tensor:
        return C.softmax(self, dim)

    def log_softmax(self, dim: _int) -> Tensor:
        return C.log_softmax(self, dim)

    # --- shape ------------------------------------------------------------------------

    def view(self, *shape: Any) -> Tensor:
        return C.view(self, _shape_arg(shape))

    def reshape(self, *shape: Any) -> Tensor:
        return C.reshape(self, _shape_arg(shape))

    def view_as(self, other: Tensor) -> Tensor:
        return C.view(self, other.data.shape)

    def reshape_as(self, other: Tensor) -> Tensor:
        return C.reshape(self, other.data.shape)

    def permute(self, *dims: Any) -> Tensor:
        return C.permute(self, _shape_arg(dims))

    def transpose(self, dim0: _int, dim1: _int) -> Tensor:
        return C.transpose(self, dim0, dim1)

    swapaxes = swapdims = transpose

    def t(self) -> Tensor:
        return C.t(self)

    @property
    def T(self) -> Tensor:  # noqa: N802 - torch's name
        return C.permute(self, tuple(range(self.data.ndim - 1, -1, -1)))

    @property
    def mT(self) -> Tensor:  # noqa: N802 - torch's name
        return C.transpose(self, -2, -1)

    def squeeze(self, dim: Any = None) -> Tensor:
        return C.squeeze(self, dim)

    def unsqueeze(self, dim: _int) -> Tensor:
        return C.unsqueeze(self, dim)

    def flatten(self, start_dim: _int = 0, end_dim: _int = -1) -> Tensor:
        return C.flatten(self, start_dim, end_dim)

    def unflatten(self, dim: _int, sizes: Sequence[_int]) -> Tensor:
        return C.unflatten(self, dim, sizes)

    def expand(self, *sizes: Any) -> Tensor:
        return C.expand(self, _shape_arg(sizes))

    def expand_as(self, other: Tensor) -> Tensor:
        return C.expand(self, other.data.shape)

    def broadcast_to(self, shape: Sequence[_int]) -> Tensor:
        return C.expand(self, tuple(shape))

    def repeat(self, *sizes: Any) -> Tensor:
        return C.repeat(self, _shape_arg(sizes))

    def flip(self, dims: Any) -> Tensor:
        return C.flip(self, dims)

    def roll(self, shifts: Any, dims: Any = None) -> Tensor:
        return C.roll(self, shifts, dims)

    def split(self, split_size_or_sections: Any, dim: _int = 0) -> tuple[Tensor, ...]:
        return C.split(self, split_size_or_sections, dim)

    def chunk(self, chunks: _int, dim: _int = 0) -> tuple[Tensor, ...]:
        return C.chunk(self, chunks, dim)

    def unbind(self, dim: _int = 0) -> tuple[Tensor, ...]:
        return C.unbind(self, dim)

    def narrow(self, dim: _int, start: _int, length: _int) -> Tensor:
        return C.narrow(self, dim, start, length)

    def tril(self, diagonal: _int = 0) -> Tensor:
        return C.tri(self, diagonal, lower=True)

    def triu(self, diagonal: _int = 0) -> Tensor:
        return C.tri(self, diagonal, lower=False)

    def gather(self, dim: _int, index: Tensor) -> Tensor:
        return C.gather(self, dim, index)

    def scatter_add(self, dim: _int, index: Tensor, src: Tensor) -> Tensor:
        return C.scatter_add(self, dim, index, src)

    def index_select(self, dim: _int, index: Tensor) -> Tensor:
        return C.index_select(self, dim, index)

    def masked_fill(self, mask: Any, value: Any) -> Tensor:
        return C.masked_fill(self, mask, value)

    def masked_select(self, mask: Any) -> Tensor:
        return C.masked_select(self, mask)


class Size(tuple):
    """A tensor's shape: a tuple that prints like torch's ``torch.Size([2, 3])``."""

    def __repr__(self) -> str:
        return f"tinytorch.Size({list(self)})"

    def numel(self) -> int:
        return int(np.prod(self))


class _HookHandle:
    """Returned by ``register_hook``; ``remove()`` unregisters the hook."""

    def __init__(self, hooks: list, hook: Callable) -> None:
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def _shape_arg(args: Sequence[Any]) -> tuple[int, ...]:
    """Accept ``f(2, 3)``, ``f((2, 3))``, ``f([2, 3])`` and ``f(Size)``."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = args[0]
    return tuple(int(a) for a in args)


def _unwrap(data: Any) -> Any:
    """Turn tensors (also nested in lists) into arrays for ``np.array``."""
    if isinstance(data, Tensor):
        return data.data
    if isinstance(data, (list, tuple)) and data and any(isinstance(d, (Tensor, list, tuple))
                                                        for d in data):  # fmt: skip
        return [_unwrap(d) for d in data]
    return data


def _broadcast_error(op: str, a: tuple, b: tuple) -> RuntimeError:
    ra, rb = a[::-1], b[::-1]
    for i in range(min(len(a), len(b))):
        if ra[i] != rb[i] and ra[i] != 1 and rb[i] != 1:
            dim = max(len(a), len(b)) - 1 - i
            return RuntimeError(
                f"{op}: The size of tensor a ({ra[i]}) must match the size of tensor b "
                f"({rb[i]}) at non-singleton dimension {dim} (shapes {list(a)} and {list(b)})"
            )
    return RuntimeError(f"{op}: shapes {list(a)} and {list(b)} are not broadcastable")


def broadcast_shape(op: str, a: tuple, b: tuple) -> tuple:
    """The broadcast of two shapes, or an error naming the op and both shapes."""
    if not b:
        return a
    if not a:
        return b
    try:
        return np.broadcast_shapes(a, b)
    except ValueError:
        raise _broadcast_error(op, a, b) from None


def _binary(cls: type[_node.Node], a: Any, b: Any, true_div: bool = False) -> Tensor:
    """Promote dtypes, wrap scalars and broadcast, then apply a binary primitive.

    Operands that require grad are expanded to the output shape with
    ``Expand`` (a free view whose backward is the only unbroadcasting sum);
    the others are left for numpy to broadcast.
    """
    # Fast paths (the common cases in training and in every backward): two
    # tensors of one float dtype, or a float tensor and a Python number. When
    # nothing is recorded, the primitive's ufunc runs on the arrays directly
    # (numpy broadcasts, and casts a Python number to the array's dtype as torch does).
    ad: Any
    bd: Any  # an array, or a Python number until _operand wraps it
    if isinstance(a, Tensor):
        ad = a.data
        if isinstance(b, Tensor):
            bd = b.data
            if ad.dtype is bd.dtype and ad.dtype.kind == "f":
                if not (STATE.enabled and (a._requires_grad or b._requires_grad)):
                    return _direct(cls, a, b, ad, bd)
                if ad.shape == bd.shape:
                    return cls.apply(a, b)
                return _broadcast_apply(cls, a, b)
        elif type(b) is float or type(b) is int:
            if ad.dtype.kind == "f":
                if not (STATE.enabled and a._requires_grad):
                    return _direct(cls, a, b, ad, b)
                return _broadcast_apply(cls, a, _wrap(np.array(b, ad.dtype)))
            bd = b
        else:
            bd = b
    else:
        ad = a
        bd = b.data if isinstance(b, Tensor) else b
        if (type(a) is float or type(a) is int) and bd.dtype.kind == "f":
            if not (STATE.enabled and b._requires_grad):
                return _direct(cls, a, b, a, bd)
            return _broadcast_apply(cls, _wrap(np.array(a, bd.dtype)), b)
    dt = _dtype.result_type(ad, bd)
    if cls is E.Sub and (dt == np.bool_ or _is_bool(ad) or _is_bool(bd)):
        raise RuntimeError(
            "Subtraction, the `-` operator, with a bool tensor is not supported. If you are "
            "trying to invert a mask, use the `~` or `logical_not()` operator instead."
        )
    if true_div and dt.kind != "f":
        dt = _dtype.get_default_dtype().np
    a = _operand(a, dt)
    b = _operand(b, dt)
    if a.data.shape != b.data.shape:
        return _broadcast_apply(cls, a, b)
    return cls.apply(a, b)


def _direct(cls: type[_node.Node], a: Any, b: Any, ad: Any, bd: Any) -> Tensor:
    """A binary primitive that records nothing: ``a``, ``b`` are float tensors of one
    dtype, or one of them a Python number (``ad``, ``bd``: their arrays or the number).
    Its ufunc runs on the arrays directly; ops without one go through ``apply``."""
    ufunc = cls.ufunc
    if ufunc is None or _node.trace_hook is not None:
        dt = ad.dtype if isinstance(ad, np.ndarray) else bd.dtype
        a = a if isinstance(a, Tensor) else _wrap(np.array(a, dt))
        b = b if isinstance(b, Tensor) else _wrap(np.array(b, dt))
        return _broadcast_apply(cls, a, b)
    try:
        out = ufunc(ad, bd)
    except ValueError:
        raise _broadcast_error(cls.__name__.lower(), np.shape(ad), np.shape(bd)) from None
    return _wrap(out if type(out) is np.ndarray else np.asarray(out))


def expand_for_grad(t: Tensor, shape: tuple[int, ...]) -> Tensor:
    """``t`` broadcast to ``shape`` by an ``Expand`` node if autograd needs it.

    Every op that broadcasts (binary ops, ``where``, ``matmul``'s batch dims)
    calls this, so that ``Expand``'s backward is the one place where
    gradients are summed back to an operand's shape. Operands that need no
    gradient are left for numpy to broadcast.
    """
    if STATE.enabled and t._requires_grad and t.data.shape != shape:
        return S.Expand.apply(t, shape=shape)
    return t


def _broadcast_apply(cls: type[_node.Node], a: Tensor, b: Tensor) -> Tensor:
    """Apply a binary primitive to same-dtype operands of different shapes.

    Operands that require grad are expanded to the output shape with
    ``Expand`` (a free view whose backward is the only unbroadcasting sum);
    the others are left for numpy to broadcast.
    """
    sa, sb = a.data.shape, b.data.shape
    if STATE.enabled and (a._requires_grad or b._requires_grad):
        shape = broadcast_shape(cls.__name__.lower(), sa, sb)
        return cls.apply(expand_for_grad(a, shape), expand_for_grad(b, shape))
    try:
        return cls.apply(a, b)
    except ValueError:
        raise _broadcast_error(cls.__name__.lower(), sa, sb) from None


def _is_bool(x: Any) -> bool:
    return isinstance(x, (bool, np.bool_)) or getattr(x, "dtype", None) == np.bool_


def _operand(x: Any, dt: np.dtype) -> Tensor:
    if isinstance(x, Tensor):
        return x if x.data.dtype == dt else x.to(dt)
    if isinstance(x, np.ndarray):
        return Tensor._make(x.astype(dt, copy=False))
    if isinstance(x, (int, float, bool, np.number, np.bool_)):
        return Tensor._make(np.array(x, dtype=dt))
    raise TypeError(f"unsupported operand type for a tensor op: {type(x).__name__}")


def _wrap(data: np.ndarray) -> Tensor:
    """``Tensor._make(data)`` as a plain function: the hot path of every op's result."""
    t = _new_object(Tensor)
    t.data = data
    t.grad = t.grad_fn = t._hooks = t._base = None
    t._requires_grad = False
    t._vc = [0]
    return t


def _wrap_recorded(data: np.ndarray, node: _node.Node) -> Tensor:
    """``Tensor._make(data, True, node)``: the output of a recorded primitive."""
    t = _new_object(Tensor)
    t.data = data
    t.grad = t._hooks = t._base = None
    t.grad_fn = node
    t._requires_grad = True
    t._vc = [0]
    return t


_new_object = object.__new__
_node._tensor_cls = Tensor
_node._wrap = _wrap
_node._wrap_recorded = _wrap_recorded
