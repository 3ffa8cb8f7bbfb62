"""numpy and torch interop: ``__array__``, ``from_numpy`` and DLPack share memory both ways."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tinytorch


def test_torch_from_dlpack_shares_memory() -> None:
    t = tinytorch.arange(6.0).reshape(2, 3)
    th = torch.from_dlpack(t)
    assert th.shape == (2, 3) and th.dtype == torch.float32
    th[0, 0] = 42.0  # torch writes, tinytorch sees it
    assert t[0, 0].item() == 42.0
    t.data[1, 2] = -1.0  # and the other way
    assert th[1, 2].item() == -1.0
    assert t.__dlpack_device__() == (1, 0)


def test_tinytorch_from_dlpack_shares_memory() -> None:
    th = torch.arange(4, dtype=torch.float64)
    t = tinytorch.from_dlpack(th)
    assert t.dtype == tinytorch.float64 and not t.requires_grad
    t.data[0] = 7.0
    assert th[0].item() == 7.0
    th[3] = -2.0
    assert t[3].item() == -2.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.int32,
                                   torch.bool, torch.float16, torch.uint8])  # fmt: skip
def test_dtypes_round_trip(dtype: torch.dtype) -> None:
    th = (torch.arange(6) % 3).to(dtype).reshape(3, 2)
    t = tinytorch.from_dlpack(th)
    np.testing.assert_array_equal(t.data, th.numpy())
    back = torch.from_dlpack(t)
    assert back.dtype == dtype and torch.equal(back, th)


def test_views_and_numpy() -> None:
    t = tinytorch.arange(12.0).reshape(3, 4)
    th = torch.from_dlpack(t.t())  # a strided (transposed) view keeps its strides
    assert torch.equal(th, torch.arange(12.0).reshape(3, 4).t())
    arr = np.from_dlpack(t)
    arr[0, 1] = 100.0
    assert t[0, 1].item() == 100.0
    assert np.asarray(t) is t.data  # __array__ hands out the array itself
    n = np.zeros(3, dtype=np.float32)
    assert np.shares_memory(tinytorch.from_dlpack(n).data, n)


def test_refusals() -> None:
    w = tinytorch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="require gradient"):
        torch.from_dlpack(w)
    assert torch.from_dlpack(w.detach()).shape == (2,)
    with pytest.raises(TypeError, match="__dlpack__"):
        tinytorch.from_dlpack([1, 2, 3])
    t = tinytorch.ones(2)
    assert tinytorch.from_dlpack(t) is t
