"""tinytorch.utils.data: datasets, samplers, DataLoader, collate; checked against torch."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch

import tinytorch
from tinytorch.utils import data as D
from tinytorch.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    default_convert,
    random_split,
)


class Squares(Dataset):
    """A map-style dataset of (i, i*i as float) pairs."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __getitem__(self, i: int) -> tuple[int, float]:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return i, float(i * i)

    def __len__(self) -> int:
        return self.n


class Stream(IterableDataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self) -> int:
        return self.n


def _tensor_ds(n: int = 10) -> TensorDataset:
    x = tinytorch.arange(n * 3, dtype=tinytorch.float32).reshape(n, 3)
    return TensorDataset(x, tinytorch.arange(n))


def _order(loader: DataLoader) -> list[int]:
    return [int(v) for _, y in loader for v in y.tolist()]


# ----------------------------------------------------------------------------- datasets


def test_tensor_dataset_items_and_len():
    ds = _tensor_ds(5)
    assert len(ds) == 5
    x, y = ds[2]
    assert x.tolist() == [6.0, 7.0, 8.0] and int(y) == 2
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(tinytorch.zeros(3), tinytorch.zeros(4))


def test_concat_and_subset():
    cat = ConcatDataset([Squares(3), Squares(4)])
    assert len(cat) == 7 and cat.cumulative_sizes == [3, 7]
    assert cat[3] == (0, 0.0) and cat[-1] == (3, 9.0)
    with pytest.raises(ValueError, match="should not exceed"):
        cat[-8]
    with pytest.raises(ValueError, match="empty"):
        ConcatDataset([])
    assert len(Squares(2) + Squares(5)) == 7
    sub = Subset(Squares(10), [9, 0, 4])
    assert len(sub) == 3 and sub[0] == (9, 81.0) and sub[2] == (4, 16.0)


@pytest.mark.parametrize("lengths", [[3, 7], [0.3, 0.7], [0.33, 0.33, 0.34], [0.5, 0.5]])
def test_random_split_lengths_like_torch(lengths):
    ours = random_split(Squares(10), lengths, generator=tinytorch.Generator().manual_seed(1))
    theirs = torch.utils.data.random_split(range(10), lengths)
    assert [len(s) for s in ours] == [len(s) for s in theirs]
    indices = sorted(i for s in ours for i in s.indices)
    assert indices == list(range(10))  # a partition


def test_random_split_seeded_and_errors():
    a = random_split(Squares(20), [5, 15], generator=tinytorch.Generator().manual_seed(3))
    b = random_split(Squares(20), [5, 15], generator=tinytorch.Generator().manual_seed(3))
    c = random_split(Squares(20), [5, 15], generator=tinytorch.Generator().manual_seed(4))
    assert a[0].indices == b[0].indices != c[0].indices
    tinytorch.manual_seed(0)
    d = random_split(Squares(20), [5, 15])
    tinytorch.manual_seed(0)
    assert random_split(Squares(20), [5, 15])[0].indices == d[0].indices
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(Squares(10), [3, 3])
    with pytest.raises(ValueError, match="Fraction at index 1"):
        random_split(Squares(10), [0.5, 1.2, -0.7])


# ----------------------------------------------------------------------------- samplers


def test_sequential_and_batch_sampler():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    assert list(BatchSampler(range(7), 3, False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(BatchSampler(range(7), 3, True)) == [[0, 1, 2], [3, 4, 5]]
    assert len(BatchSampler(range(7), 3, False)) == 3
    assert len(BatchSampler(range(7), 3, True)) == 2
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        BatchSampler(range(3), 0, False)
    with pytest.raises(ValueError, match="drop_last should be a boolean"):
        BatchSampler(range(3), 2, 1)


def test_random_sampler_permutes_and_validates():
    g = tinytorch.Generator().manual_seed(0)
    s = RandomSampler(range(10), generator=g)
    first, second = list(s), list(s)
    assert sorted(first) == sorted(second) == list(range(10))
    assert first != second  # a new order every epoch
    again = RandomSampler(range(10), generator=tinytorch.Generator().manual_seed(0))
    assert list(again) == first
    many = list(RandomSampler(range(4), num_samples=10, generator=g))
    assert len(many) == 10 and sorted(many[:4]) == [0, 1, 2, 3]
    repl = list(RandomSampler(range(3), replacement=True, num_samples=50, generator=g))
    assert len(repl) == 50 and set(repl) <= {0, 1, 2}
    with pytest.raises(TypeError, match="replacement should be a boolean"):
        RandomSampler(range(3), replacement=1)
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        RandomSampler(range(3), num_samples=0)


def test_subset_random_and_weighted_samplers():
    g = tinytorch.Generator().manual_seed(0)
    s = SubsetRandomSampler([5, 7, 9], generator=g)
    assert sorted(s) == [5, 7, 9] and len(s) == 3
    w = WeightedRandomSampler([0.0, 1.0, 0.0], 20, generator=g)
    assert list(w) == [1] * 20
    with pytest.raises(ValueError, match="num_samples"):
        WeightedRandomSampler([1.0, 2.0], 0)


# ----------------------------------------------------------------------------- collate


def test_collate_numbers_follow_torch_dtypes():
    for batch in ([1.0, 2.0], [1, 2], [True, False], [np.float32(1), np.float32(2)],
                  [np.int32(1), np.int32(3)]):  # fmt: skip
        ours = default_collate(batch)
        theirs = torch.utils.data.default_collate(batch)
        assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
        assert ours.tolist() == theirs.tolist()


def test_collate_nested_structures():
    P = collections.namedtuple("P", "x y")
    batch = [
        {"img": np.ones((2, 2), np.float32) * i, "pt": P(i, float(i)), "tag": f"s{i}",
         "pair": (i, [i, i + 1])}
        for i in range(3)
    ]  # fmt: skip
    out = default_collate(batch)
    assert out["img"].shape == (3, 2, 2) and out["img"].dtype == tinytorch.float32
    assert isinstance(out["pt"], P) and out["pt"].x.tolist() == [0, 1, 2]
    assert out["pt"].y.dtype == tinytorch.float64
    assert list(out["tag"]) == ["s0", "s1", "s2"]
    assert isinstance(out["pair"], list)  # tuples collate to lists, as in torch
    assert out["pair"][1][1].tolist() == [1, 2, 3]
    od = default_collate([collections.OrderedDict(a=1), collections.OrderedDict(a=2)])
    assert isinstance(od, collections.OrderedDict) and od["a"].tolist() == [1, 2]


def test_collate_stacks_tensors_and_reports_errors():
    out = default_collate([tinytorch.ones(2), tinytorch.zeros(2)])
    assert out.tolist() == [[1.0, 1.0], [0.0, 0.0]]
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        default_collate([tinytorch.ones(2), tinytorch.ones(3)])
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [1]])
    with pytest.raises(TypeError, match="default_collate: batch must contain"):
        default_collate([object()])
    with pytest.raises(TypeError, match="default_collate: batch must contain"):
        default_collate([np.array(["a"])])


def test_collate_keeps_graph_of_tensors_requiring_grad():
    w = tinytorch.ones(2, requires_grad=True)
    default_collate([w * 2, w * 3]).sum().backward()
    assert w.grad.tolist() == [5.0, 5.0]


def test_default_convert():
    out = default_convert({"a": np.arange(3), "b": (np.float32(1), "x")})
    assert isinstance(out["a"], tinytorch.Tensor) and out["a"].dtype == tinytorch.int64
    assert isinstance(out["b"], list) and out["b"][1] == "x"


# ----------------------------------------------------------------------------- DataLoader


def test_batches_len_and_drop_last():
    ds = Squares(10)
    loader = DataLoader(ds, batch_size=4)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    idx, sq = batches[-1]
    assert idx.tolist() == [8, 9] and sq.dtype == tinytorch.float64
    assert len(DataLoader(ds, batch_size=4, drop_last=True)) == 2
    assert len(list(DataLoader(ds, batch_size=4, drop_last=True))) == 2
    assert list(DataLoader([1, 2, 3], batch_size=None)) == [1, 2, 3]


def test_shuffle_reproducible_with_seed_and_new_each_epoch():
    ds = _tensor_ds(20)
    a = DataLoader(ds, batch_size=6, shuffle=True, generator=tinytorch.Generator().manual_seed(7))
    b = DataLoader(ds, batch_size=6, shuffle=True, generator=tinytorch.Generator().manual_seed(7))
    epoch1, epoch2 = _order(a), _order(a)
    assert sorted(epoch1) == list(range(20)) and epoch1 != epoch2
    assert _order(b) == epoch1 and _order(b) == epoch2
    # without a generator: the global seed decides
    tinytorch.manual_seed(3)
    c = _order(DataLoader(ds, batch_size=6, shuffle=True))
    tinytorch.manual_seed(3)
    assert _order(DataLoader(ds, batch_size=6, shuffle=True)) == c


@pytest.mark.parametrize("shuffle", [False, True])
def test_tensor_fast_path_equals_per_sample_path(shuffle):
    ds = _tensor_ds(23)
    sub = Subset(ds, list(range(22, 2, -1)))
    for dataset in (ds, sub):
        kwargs = dict(batch_size=5, shuffle=shuffle, drop_last=False)
        fast = DataLoader(dataset, generator=tinytorch.Generator().manual_seed(1), **kwargs)
        slow = DataLoader(dataset, generator=tinytorch.Generator().manual_seed(1),
                          collate_fn=default_collate, **kwargs)  # fmt: skip
        for (xf, yf), (xs, ys) in zip(fast, slow, strict=True):
            assert xf.tolist() == xs.tolist() and yf.tolist() == ys.tolist()
            assert xf.dtype == xs.dtype and yf.dtype == ys.dtype


def test_fast_path_gathers_whole_batches(monkeypatch):
    """A TensorDataset batch is one fancy-index per tensor, never per-sample __getitem__
    (the speed itself is measured in bench/, not asserted here)."""
    n = 2_000
    x = np.random.default_rng(0).random((n, 64), dtype=np.float32)
    ds = TensorDataset(tinytorch.from_numpy(x), tinytorch.arange(n))

    def per_sample(self, index):
        raise AssertionError("per-sample __getitem__ on the fast path")

    monkeypatch.setattr(TensorDataset, "__getitem__", per_sample)
    loader = DataLoader(ds, batch_size=32, shuffle=True)
    seen = np.concatenate([yb.numpy() for _, yb in loader])
    assert np.array_equal(np.sort(seen), np.arange(n))


def test_custom_samplers_and_batch_sampler():
    ds = Squares(10)
    loader = DataLoader(ds, sampler=[9, 8, 7], batch_size=2)
    assert [b[0].tolist() for b in loader] == [[9, 8], [7]]
    loader = DataLoader(ds, batch_sampler=[[1, 2], [3]])
    assert [b[0].tolist() for b in loader] == [[1, 2], [3]] and len(loader) == 2
    tensors = _tensor_ds(10)
    loader = DataLoader(tensors, batch_sampler=[[4, 1], [0]])
    assert [b[1].tolist() for b in loader] == [[4, 1], [0]]


def test_iterable_dataset():
    loader = DataLoader(Stream(7), batch_size=3)
    assert [b.tolist() for b in loader] == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(loader) == 3
    assert len(list(DataLoader(Stream(7), batch_size=3, drop_last=True))) == 2
    with pytest.raises(ValueError, match="expected unspecified shuffle"):
        DataLoader(Stream(3), shuffle=True)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(batch_size=0),
        dict(batch_size=-1),
        dict(batch_size=1.5),
        dict(shuffle=True, sampler=[1, 2]),
        dict(batch_sampler=[[1]], batch_size=2),
        dict(batch_sampler=[[1]], drop_last=True),
        dict(batch_sampler=[[1]], shuffle=True),
        dict(num_workers=-1),
        dict(batch_size=None, drop_last=True),
        dict(timeout=-1),
        dict(prefetch_factor=2),
        dict(persistent_workers=True),
    ],
)
def test_invalid_options_raise_like_torch(kwargs):
    with pytest.raises(ValueError) as theirs:
        torch.utils.data.DataLoader(list(range(10)), **kwargs)
    with pytest.raises(ValueError) as ours:
        DataLoader(list(range(10)), **kwargs)
    assert str(ours.value) == str(theirs.value)


def test_num_workers_accepted_in_process():
    loader = DataLoader(Squares(4), batch_size=2, num_workers=2, pin_memory=True)
    assert [b[0].tolist() for b in loader] == [[0, 1], [2, 3]]
    assert D.get_worker_info() is None


def test_stack_and_chain_datasets():
    stacked = D.StackDataset(Squares(3), Squares(3))
    assert len(stacked) == 3 and stacked[2] == ((2, 4.0), (2, 4.0))
    named = D.StackDataset(a=Squares(2), b=Squares(2))
    assert named[1] == {"a": (1, 1.0), "b": (1, 1.0)}
    with pytest.raises(ValueError, match="Size mismatch"):
        D.StackDataset(Squares(2), Squares(3))
    chained = Stream(2) + Stream(3)
    assert list(chained) == [0, 1, 0, 1, 2] and len(chained) == 5
    assert [b.tolist() for b in DataLoader(chained, batch_size=2)] == [[0, 1], [0, 1], [2]]


def test_iterable_without_batching_and_len_error():
    assert list(DataLoader(Stream(3), batch_size=None)) == [0, 1, 2]

    class NoLen(IterableDataset):
        def __iter__(self):
            return iter(range(2))

    with pytest.raises(TypeError):
        len(DataLoader(NoLen()))
