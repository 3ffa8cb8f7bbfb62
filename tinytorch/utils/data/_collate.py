"""``default_collate`` and ``default_convert``: samples to batches, with torch's rules.

``default_collate`` turns a list of samples into one batch, recursing through
containers:

==========================  =================================================
sample element              batch element
==========================  =================================================
Tensor (all same shape)     Tensor with a new first dimension (stacked)
numpy array                 the same, after ``as_tensor`` (dtype kept)
numpy scalar                1-D Tensor of its dtype
Python float                1-D float64 Tensor (torch's rule, not float32)
Python int / bool           1-D int64 / bool Tensor
str / bytes                 the sequence of them, unchanged
Mapping                     the same mapping type, each key collated
namedtuple                  the same namedtuple, each field collated
tuple                       a *list* of collated fields (torch's behaviour)
other Sequence              the same type, each position collated
==========================  =================================================
"""

from __future__ import annotations

import collections.abc
import copy
import re
from typing import Any

import numpy as np

import tinytorch
from tinytorch.tensor import Tensor

__all__ = ["default_collate", "default_convert"]

# numpy dtype strings of strings and objects, which have no tensor equivalent
_NP_STR_OBJ = re.compile(r"[SaUO]")
_ERR = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"
)


def _stack(batch: list[Tensor]) -> Tensor:
    shape = batch[0].data.shape
    for i, t in enumerate(batch):
        if t.data.shape != shape:
            raise RuntimeError(
                f"stack expects each tensor to be equal size, but got {list(shape)} "
                f"at entry 0 and {list(t.data.shape)} at entry {i}"
            )
    if any(t.requires_grad for t in batch):
        return tinytorch.stack(batch, 0)  # keeps the graph
    return Tensor._make(np.stack([t.data for t in batch]))


def default_collate(batch: Any) -> Any:
    """Collate a sequence of samples into a batch (see the module docstring for the rules).

    Raises:
        TypeError: an element has a type with no rule (or is a string/object array).
        RuntimeError: tensors of different shapes, or sequences of different lengths.
    """
    elem = batch[0]
    if isinstance(elem, Tensor):
        return _stack(list(batch))
    if isinstance(elem, np.ndarray):
        if _NP_STR_OBJ.search(elem.dtype.str) is not None:
            raise TypeError(_ERR.format(elem.dtype))
        return default_collate([tinytorch.as_tensor(b) for b in batch])
    if isinstance(elem, (np.bool_, np.number)):
        return Tensor._make(np.asarray(batch))
    if isinstance(elem, float):
        return tinytorch.tensor(batch, dtype=tinytorch.float64)
    if isinstance(elem, int):  # bool included: torch.tensor([True, ...]) is a bool tensor
        return tinytorch.tensor(batch)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        return _like_mapping(elem, {key: default_collate([d[key] for d in batch]) for key in elem})
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(samples) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(sample) != size for sample in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        columns = [default_collate(samples) for samples in zip(*batch)]
        return columns if isinstance(elem, tuple) else _like_sequence(elem, columns)
    raise TypeError(_ERR.format(type(elem)))


def default_convert(data: Any) -> Any:
    """Turn numpy arrays/scalars into Tensors inside containers; leave the rest (no batching).

    Used by a DataLoader with ``batch_size=None``.
    """
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        if _NP_STR_OBJ.search(data.dtype.str) is not None:
            return data
        return tinytorch.as_tensor(data)
    if isinstance(data, (np.bool_, np.number)):
        return Tensor._make(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        return _like_mapping(data, {key: default_convert(data[key]) for key in data})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        return _like_sequence(data, [default_convert(d) for d in data])
    return data


def _like_mapping(like: Any, fields: dict[Any, Any]) -> Any:
    """``fields`` in a mapping of ``like``'s type (a copy of it, updated, for mutable
    mappings: keeps e.g. OrderedDict or a custom class); a dict if the type cannot be
    built from one."""
    try:
        if isinstance(like, collections.abc.MutableMapping):
            clone = copy.copy(like)
            clone.update(fields)
            return clone
        return type(like)(fields)
    except TypeError:
        return fields


def _like_sequence(like: Any, items: list[Any]) -> Any:
    """``items`` in a sequence of ``like``'s type, as :func:`_like_mapping`; a list if
    the type cannot be built from one."""
    try:
        if isinstance(like, collections.abc.MutableSequence):
            clone = copy.copy(like)
            clone[:] = items
            return clone
        return type(like)(items)
    except TypeError:
        return items
