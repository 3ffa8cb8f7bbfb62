"""``DataLoader``: batches of a dataset, in sampler order, collated (torch's API).

Loading always runs in the calling process. ``num_workers``, ``pin_memory``,
``timeout``, ``worker_init_fn``, ``prefetch_factor``, ``persistent_workers``,
``multiprocessing_context``, ``pin_memory_device`` and ``in_order`` are
accepted and validated like torch's so scripts run unchanged, but there are no
worker processes (so ``worker_init_fn`` is never called and
:func:`get_worker_info` is always None) and nothing to pin.

The fast path: over a :class:`TensorDataset` (or Subsets of one) with the
default ``collate_fn``, a batch is one fancy index per tensor
(``t.data[rows]``) rather than ``batch_size`` ``__getitem__`` calls and a
stack, so an epoch costs about what the numpy gathers cost. The batches are
equal to the slow path's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sized
from typing import Any, cast

import numpy as np

from tinytorch import random as _random
from tinytorch.tensor import Tensor
from tinytorch.utils.data._collate import default_collate, default_convert
from tinytorch.utils.data.dataset import Dataset, IterableDataset, _tensor_source
from tinytorch.utils.data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    _check_positive_int,
)

__all__ = ["DataLoader", "get_worker_info"]


def get_worker_info() -> None:
    """Always None: tinytorch loads data in the main process (torch's value there)."""
    return None


def _gather(t: Tensor, rows: np.ndarray) -> Tensor:
    if t.requires_grad:
        return t[Tensor._make(rows)]  # through autograd, as stacking t[i] would be
    return Tensor._make(t.data[rows])


class DataLoader:
    """Iterate over a dataset in batches.

    Args:
        dataset: map-style (``__getitem__`` + ``__len__``) or an
            :class:`IterableDataset`.
        batch_size: samples per batch; None turns batching off (each sample
            goes through :func:`default_convert` only).
        shuffle: a new random order every epoch (a :class:`RandomSampler`).
        sampler: the index order instead (excludes ``shuffle``).
        batch_sampler: yields lists of indices, one per batch (excludes
            ``batch_size``, ``shuffle``, ``sampler`` and ``drop_last``).
        num_workers: accepted for compatibility; loading is in-process.
        collate_fn: list of samples -> batch (default :func:`default_collate`).
        drop_last: drop the last batch when it is smaller than ``batch_size``.
        generator: randomness for ``shuffle`` (default: a seed drawn from the
            global generator each epoch, so ``manual_seed`` fixes every epoch).

    ``len(loader)`` is the number of batches per epoch.

    Raises:
        ValueError: as torch for invalid or conflicting options.
    """

    def __init__(
        self,
        dataset: Dataset[Any] | Any,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler: Sampler[Any] | Iterable[Any] | None = None,
        batch_sampler: Sampler[list[Any]] | Iterable[list[Any]] | None = None,
        num_workers: int = 0,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable[[int], None] | None = None,
        multiprocessing_context: Any = None,
        generator: _random.Generator | None = None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
    ) -> None:
        if num_workers < 0:
            raise ValueError(
                "num_workers option should be non-negative; "
                "use num_workers=0 to disable multiprocessing."
            )
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError(
                "prefetch_factor option could only be specified in multiprocessing."
                "let num_workers > 0 to enable multiprocessing, otherwise set "
                "prefetch_factor to None."
            )
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")

        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            for name, value in (("shuffle", shuffle), ("sampler", sampler),
                                ("batch_sampler", batch_sampler)):  # fmt: skip
                if value not in (None, False):
                    raise ValueError(
                        f"DataLoader with IterableDataset: expected unspecified {name} "
                        f"option, but got {name}={value}"
                    )
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "batch_sampler option is mutually exclusive with batch_size, "
                    "shuffle, sampler, and drop_last"
                )
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError(
                "batch_size=None option disables auto-batching and is mutually "
                "exclusive with drop_last"
            )

        if sampler is None and not self._iterable:
            if shuffle:
                # a map-style dataset without __len__ fails here (TypeError), as torch
                sampler = RandomSampler(cast("Sized", dataset), generator=generator)
            else:
                sampler = SequentialSampler(cast("Sized", dataset))
        if batch_size is not None and batch_sampler is None and not self._iterable:
            assert sampler is not None  # set just above for map-style datasets
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)  # validates batch_size
        elif batch_size is not None:
            _check_positive_int("batch_size", batch_size)

        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = collate_fn
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.generator = generator
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers
        self.pin_memory_device = pin_memory_device
        self.in_order = in_order

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None or (self._iterable and self.batch_size is not None)

    def _collate(self, samples: Any) -> Any:
        if self.collate_fn is not None:
            return self.collate_fn(samples)
        return default_collate(samples) if self._auto_collation else default_convert(samples)

    def __iter__(self) -> Iterator[Any]:
        if self._iterable:
            return self._iter_stream()
        if self.batch_sampler is None:
            return (self._collate(self.dataset[i]) for i in self.sampler)  # type: ignore[union-attr]
        source = _tensor_source(self.dataset) if self.collate_fn is None else None
        if source is not None:
            return self._iter_tensor_batches(*source)
        return (self._collate([self.dataset[i] for i in batch]) for batch in self.batch_sampler)

    def _iter_tensor_batches(
        self, tensors: tuple[Tensor, ...], mapping: np.ndarray | None
    ) -> Iterator[list[Tensor]]:
        """The fast path: whole-batch gathers; a list like default_collate of tuples gives."""
        if type(self.batch_sampler) is BatchSampler:
            batches: Iterable[Any] = self.batch_sampler._index_batches()
        else:
            batches = self.batch_sampler  # type: ignore[assignment]
        for batch in batches:
            rows = np.asarray(batch, dtype=np.int64)
            if mapping is not None:
                rows = mapping[rows]
            yield [_gather(t, rows) for t in tensors]

    def _iter_stream(self) -> Iterator[Any]:
        stream = cast("Iterable[Any]", self.dataset)  # an IterableDataset (or any iterable)
        if self.batch_size is None:
            for sample in stream:
                yield self._collate(sample)
            return
        batch: list[Any] = []
        for sample in stream:
            batch.append(sample)
            if len(batch) == self.batch_size:
                yield self._collate(batch)
                batch = []
        if batch and not self.drop_last:
            yield self._collate(batch)

    def __len__(self) -> int:
        if self._iterable:
            n = len(cast("Sized", self.dataset))  # TypeError without __len__, as torch
            if self.batch_size is None:
                return n
            if self.drop_last:
                return n // self.batch_size
            return -(-n // self.batch_size)
        if self.batch_sampler is not None:
            return len(self.batch_sampler)  # type: ignore[arg-type]
        return len(self.sampler)  # type: ignore[arg-type]
