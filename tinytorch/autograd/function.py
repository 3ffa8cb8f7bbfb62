"""``autograd.Function``: user-defined ops with a hand-written backward, as in torch.

    class Cube(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * x ** 2

    y = Cube.apply(x)

``forward`` runs under ``no_grad`` on tensors; ``backward`` runs with
tinytorch ops, so it is differentiable again when it is written that way.
"""

from __future__ import annotations

from typing import Any

from tinytorch.autograd.grad_mode import STATE
from tinytorch.autograd.node import Node


class FunctionCtx(Node):
    """The node recorded for one ``Function.apply``; also the ``ctx`` of both methods."""

    __slots__ = (
        "__dict__",
        "extra",
        "fn",
        "needs_input_grad_",
        "saved_versions",
        "tensor_pos",
        "to_save",
    )  # fmt: skip
    # The slots' types (annotations only: set in ``Function.apply``).
    fn: type[Function]
    tensor_pos: tuple[int, ...]
    needs_input_grad_: tuple[bool, ...]
    to_save: tuple[Any, ...] | None
    saved_versions: tuple[int | None, ...]

    def save_for_backward(self, *tensors: Any) -> None:
        self.to_save = tensors
        self.saved_versions = tuple(t._vc[0] if t is not None else None for t in tensors)

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        if self.to_save is None:
            self._raise_freed()
        for t, v in zip(self.to_save, self.saved_versions):
            if t is not None and t._vc[0] != v:
                raise RuntimeError(
                    f"one of the variables needed for gradient computation has been modified "
                    f"by an inplace operation (saved by {self.name()})"
                )
        return self.to_save

    @property
    def needs_input_grad(self) -> tuple[bool, ...]:
        return self.needs_input_grad_

    def backward(self, grad_out: Any) -> Any:
        grads = self.fn.backward(self, grad_out)
        if not isinstance(grads, tuple):
            grads = (grads,)
        return tuple(grads[i] if i < len(grads) else None for i in self.tensor_pos)

    def release(self) -> None:
        self.to_save = None

    def name(self) -> str:  # type: ignore[override]
        return self.fn.__name__ + "Backward"


class Function:
    """Base class for custom differentiable ops (``forward``/``backward`` staticmethods)."""

    @staticmethod
    def forward(ctx: FunctionCtx, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: FunctionCtx, *grad_outputs: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        from tinytorch.tensor import Tensor

        ctx = FunctionCtx.__new__(FunctionCtx)
        ctx.fn = cls
        ctx.to_save = ()
        ctx.saved_versions = ()
        ctx.tensor_pos = tuple(i for i, a in enumerate(args) if isinstance(a, Tensor))
        tensors = [args[i] for i in ctx.tensor_pos]
        ctx.needs_input_grad_ = tuple(isinstance(a, Tensor) and a._requires_grad for a in args)
        prev = STATE.enabled
        STATE.enabled = False
        try:
            out = cls.forward(ctx, *args, **kwargs)
        finally:
            STATE.enabled = prev
        if isinstance(out, tuple):
            raise NotImplementedError("tinytorch Functions return a single tensor")
        if not isinstance(out, Tensor):
            raise TypeError(f"{cls.__name__}.forward must return a Tensor, got {type(out)}")
        if prev and any(t._requires_grad for t in tensors):
            ctx.next_nodes = tuple(
                t.grad_fn if t.grad_fn is not None else (t if t._requires_grad else None)
                for t in tensors
            )
            ctx.out_shape, ctx.out_dtype = out.data.shape, out.data.dtype
            ctx._hooks = ctx._retained = ctx._trace = None
            ctx._saved = ctx._out = None
            if STATE.anomaly:
                from tinytorch.autograd.anomaly import record_forward

                record_forward(ctx, out.data, tensors)
            return Tensor._make(out.data, True, ctx)
        return Tensor._make(out.data)
