"""``Parameter``: a tensor that a ``Module`` registers as learnable."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinytorch._repr import tensor_repr
from tinytorch.tensor import Tensor


class Parameter(Tensor):
    """A leaf tensor with ``requires_grad=True`` (by default) that Modules track.

    ``Parameter(t)`` shares ``t``'s memory, like torch's.
    """

    __slots__ = ()

    def __init__(self, data: Tensor | np.ndarray | None = None, requires_grad: bool = True
                 ) -> None:  # fmt: skip
        if data is None:
            arr = np.empty((0,), dtype=np.float32)
        elif isinstance(data, Tensor):
            arr = data.data
        else:
            arr = np.asarray(data)
        self.data = arr
        self.grad = self.grad_fn = self._hooks = self._base = None
        self._vc = [0]
        self._requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + tensor_repr(Tensor._make(self.data, self.requires_grad))

    def __deepcopy__(self, memo: dict[int, Any]) -> Parameter:
        if id(self) in memo:
            return memo[id(self)]
        out = Parameter(Tensor._make(self.data.copy()), self.requires_grad)
        if self.grad is not None:
            out.grad = Tensor._make(self.grad.data.copy())
        memo[id(self)] = out
        return out


class Buffer(Tensor):
    """Marks a tensor to be registered as a buffer when assigned to a Module attribute."""

    __slots__ = ("persistent",)

    def __init__(self, data: Tensor | np.ndarray, *, persistent: bool = True) -> None:
        arr = data.data if isinstance(data, Tensor) else np.asarray(data)
        self.data = arr
        self.grad = self.grad_fn = self._hooks = self._base = None
        self._vc = [0]
        self._requires_grad = False
        self.persistent = persistent
