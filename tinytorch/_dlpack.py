"""DLPack: hand a tensor's memory to another library and take theirs, with no copy.

tinytorch tensors live in numpy arrays on the CPU, so both directions delegate
to numpy's DLPack support (numpy >= 1.23; the versioned protocol from 2.1):

    torch.from_dlpack(t)            # t a tinytorch Tensor: torch sees t's memory
    tinytorch.from_dlpack(tt)       # tt a torch (or jax, cupy-on-CPU, ...) CPU tensor

Writes through either side show in the other. tinytorch's version counter does
not see writes made by another library, so don't change in place, from outside,
a tensor that a recorded graph saved for backward.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from tinytorch import _dtype

if TYPE_CHECKING:
    from tinytorch.tensor import Tensor

#: ``__dlpack_device__`` of a CPU buffer: (kDLCPU, device id 0).
CPU_DEVICE = (1, 0)


def to_dlpack(tensor: Tensor, **kwargs: Any) -> Any:
    """The DLPack capsule of ``tensor``'s array (``Tensor.__dlpack__``).

    ``kwargs`` are the protocol's keywords (``stream``, ``max_version``,
    ``dl_device``, ``copy``), passed to numpy as given. As torch, a tensor that
    requires grad is refused: the consumer would get values without the graph.
    """
    if tensor.requires_grad:
        raise RuntimeError(
            "Can't export tensors that require gradient, use tensor.detach() "
            "(tinytorch follows torch here: the other library would see the values but "
            "not the graph)"
        )
    # numpy only accepts the keywords its version knows; drop the ones left at None so
    # that a consumer passing e.g. ``stream=None`` works on any numpy >= 1.23.
    given = {k: v for k, v in kwargs.items() if v is not None}
    return tensor.data.__dlpack__(**given)


def from_dlpack(ext_tensor: Any) -> Tensor:
    """A tinytorch tensor sharing memory with ``ext_tensor``, any object with
    ``__dlpack__`` (a torch tensor, a numpy array, ...) on the CPU.

    The result does not require grad (as torch's ``from_dlpack`` of a numpy array);
    a torch tensor that requires grad must be ``detach()``\\ ed first (torch refuses).
    """
    from tinytorch.tensor import Tensor

    if isinstance(ext_tensor, Tensor):
        return ext_tensor
    if not hasattr(ext_tensor, "__dlpack__"):
        raise TypeError(
            f"from_dlpack: expected an object with __dlpack__ (a torch tensor, a numpy "
            f"array, ...), got {type(ext_tensor).__name__}"
        )
    arr = np.from_dlpack(ext_tensor)
    _dtype.from_numpy_dtype(arr.dtype)  # refuse dtypes tinytorch has no name for
    return Tensor._make(arr)
