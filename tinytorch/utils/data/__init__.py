"""Datasets, samplers and the DataLoader, with ``torch.utils.data``'s API.

``DataLoader`` always loads in the calling process (``num_workers`` is accepted
and ignored); over a ``TensorDataset`` it gathers whole batches with one numpy
index per tensor.
"""

from tinytorch.utils.data._collate import default_collate, default_convert
from tinytorch.utils.data.dataloader import DataLoader, get_worker_info
from tinytorch.utils.data.dataset import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    StackDataset,
    Subset,
    TensorDataset,
    random_split,
)
from tinytorch.utils.data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = [
    "BatchSampler",
    "ChainDataset",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "StackDataset",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "WeightedRandomSampler",
    "default_collate",
    "default_convert",
    "get_worker_info",
    "random_split",
]
