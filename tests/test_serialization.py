"""tinytorch.save / tinytorch.load: pickle-free safetensors round trips and torch interop."""

from __future__ import annotations

import io
import json
import math
import os
import struct
from collections import Counter, OrderedDict

import numpy as np
import pytest
import safetensors.numpy
import safetensors.torch
import torch

import tinytorch
from tinytorch.serialization import load, save

DTYPES = ["float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool"]


def t(arr, requires_grad=False):
    return tinytorch.tensor(np.asarray(arr), requires_grad=requires_grad)


def assert_same(a, b):
    """Deep equality that also checks container and scalar types, and tensor dtypes."""
    assert type(a) is type(b) or (isinstance(a, dict) and type(b) is dict), (a, b)
    if isinstance(a, tinytorch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.requires_grad == b.requires_grad
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert list(a.keys()) == list(b.keys())
        for k1, k2 in zip(a, b, strict=True):
            assert type(k1) is type(k2)
            assert_same(a[k1], b[k2])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


def roundtrip(obj, path):
    save(obj, path)
    return load(path)


def test_nested_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    obj = {
        "model": OrderedDict(
            [("fc.weight", t(rng.standard_normal((3, 4)))), ("fc.bias", t(np.zeros(3)))]
        ),
        "optimizer": {
            "state": {0: {"step": 3.0, "exp_avg": t(rng.standard_normal(4))}, 1: {}},
            "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0, 1]}],
        },
        "epoch": 7,
        "history": [1.5, -2.25, math.inf, -math.inf, float("nan"), 1e-310, 2**70, -3],
        "flags": (True, False, None),
        "nested": [[], (), {}, [[[]]], {"x": ({"y": [None]},)}],
        "text": 'héllo ✓ \n "quoted" {not json}',
        (1, "a"): "tuple key",
        2.5: "float key",
        None: "none key",
        False: "bool key",
        "array": np.arange(6, dtype=np.int16).reshape(2, 3),
    }
    back = roundtrip(obj, tmp_path / "obj.safetensors")
    assert_same(obj, back)
    assert type(back["model"]) is dict  # OrderedDict comes back as a plain dict


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtypes_and_shapes(dtype, tmp_path):
    np_dtype = getattr(tinytorch, dtype if dtype != "bool" else "bool").np
    values = {
        "scalar": t(np.array(3, dtype=np_dtype)),
        "empty": t(np.zeros((0, 4), dtype=np_dtype)),
        "matrix": t((np.arange(12) % 5).astype(np_dtype).reshape(3, 4)),
        "transposed": t((np.arange(12) % 7).astype(np_dtype).reshape(3, 4)).detach(),
    }
    values["transposed"].data = values["transposed"].data.T  # non-contiguous view
    back = roundtrip({"v": values}, tmp_path / "d.safetensors")["v"]
    assert_same(values, back)
    assert back["matrix"].data.flags.writeable  # ordinary writable memory


def test_requires_grad_and_file_objects():
    obj = [t(np.ones(2), requires_grad=True), t(np.ones(2))]
    buf = io.BytesIO()
    save(obj, buf)
    buf.seek(0)
    back = load(buf, map_location="cpu", weights_only=True)
    assert back[0].requires_grad and not back[1].requires_grad
    assert_same(obj, back)


def test_parameters_keep_their_class(tmp_path):
    from tinytorch import nn

    p = nn.Parameter(t(np.ones(3)))
    back = roundtrip({"w": p, "l": [p]}, tmp_path / "p.safetensors")
    assert isinstance(back["w"], nn.Parameter) and back["w"].requires_grad
    assert isinstance(back["l"][0], nn.Parameter)


def test_state_dict_is_readable_by_torch(tmp_path):
    sd = OrderedDict(
        [
            ("layer.weight", t(np.arange(6.0).reshape(2, 3))),
            ("layer.bias", t(np.array([1, 2], dtype=np.int64))),
            ("mask", t(np.array([True, False]))),
            ("half", t(np.array([0.5], dtype=np.float16))),
        ]
    )
    path = tmp_path / "model.safetensors"
    save(sd, path)
    from_torch = safetensors.torch.load_file(path)
    assert set(from_torch) == set(sd)
    for name, tensor in sd.items():
        np.testing.assert_array_equal(from_torch[name].numpy(), tensor.numpy())
        assert str(from_torch[name].dtype).split(".")[1] == tensor.dtype.name
    back = load(path)
    assert list(back) == list(sd)  # original order, from our metadata
    assert_same(dict(sd), back)


def test_loads_torch_written_files(tmp_path):
    g = torch.Generator().manual_seed(0)
    sd = {
        "b.weight": torch.randn(4, 3, generator=g, dtype=torch.float64),
        "a.bias": torch.randn(3, generator=g),
        "steps": torch.tensor(5),
        "flags": torch.tensor([True, False]),
        "codes": torch.tensor([1, 2], dtype=torch.int32),
    }
    for metadata in (None, {"format": "pt"}, {"tinytorch_other": "x"}):
        path = tmp_path / "torch.safetensors"
        safetensors.torch.save_file(sd, path, metadata=metadata)
        back = load(path)
        assert list(back) == sorted(sd)
        for name, value in sd.items():
            assert isinstance(back[name], tinytorch.Tensor)
            np.testing.assert_array_equal(back[name].numpy(), value.numpy())
            assert back[name].dtype.name == str(value.dtype).split(".")[1]


def test_unsupported_dtype_in_foreign_file(tmp_path):
    path = tmp_path / "bf16.safetensors"
    safetensors.torch.save_file({"w": torch.ones(2, dtype=torch.bfloat16)}, path)
    with pytest.raises(ValueError, match=r"bf16\.safetensors.*BF16"):
        load(path)


def test_special_keys_and_name_collisions(tmp_path):
    obj = {
        "__metadata__": t(np.ones(1)),
        "a.b": t(np.zeros(1)),
        "a": {"b": t(np.ones(2))},
        "tensor": [t(np.ones(3))],
    }
    assert_same(obj, roundtrip(obj, tmp_path / "c.safetensors"))
    counter = Counter([3, 3, 5])
    back = roundtrip({"milestones": counter}, tmp_path / "k.safetensors")
    assert back["milestones"] == {3: 2, 5: 1}


@pytest.mark.parametrize("bad", [{1, 2}, object(), print, b"bytes", 1 + 2j])
def test_unsupported_values(bad, tmp_path):
    with pytest.raises(TypeError, match="cannot save"):
        save({"x": [bad]}, tmp_path / "bad.safetensors")
    assert not os.listdir(tmp_path)


def test_cycles_are_rejected(tmp_path):
    cyclic: list = []
    cyclic.append(cyclic)
    with pytest.raises(ValueError, match="reference cycle"):
        save(cyclic, tmp_path / "cycle.safetensors")
    deep: list = []
    for _ in range(150):
        deep = [deep]
    with pytest.raises(ValueError, match="nested more than 100 levels"):
        save(deep, tmp_path / "deep.safetensors")
    assert not os.listdir(tmp_path)


def test_atomic_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    save({"epoch": 1, "w": t(np.ones(3))}, path)
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        save({"epoch": 2, "w": t(np.zeros(3))}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]  # temporary file cleaned up
    assert load(path)["epoch"] == 1
    save({"epoch": 2}, path)  # overwriting works normally
    assert load(path) == {"epoch": 2}


def _file_with_metadata(path, meta, arrays=None):
    arrays = {"x": np.ones(2)} if arrays is None else arrays
    path.write_bytes(safetensors.numpy.save(arrays, metadata={"tinytorch": meta}))
    return path


def _valid(root):
    return json.dumps({"version": 1, "root": root})


def _nested(depth):
    return '{"version":1,"root":' + '{"t":"list","v":[' * depth + "null" + "]}" * depth + "}"


HOSTILE_METADATA = {
    "not-json": "{",
    "nan-constant": '{"version": 1, "root": NaN}',
    "wrong-version": json.dumps({"version": 99, "root": None}),
    "extra-top-key": json.dumps({"version": 1, "root": None, "code": "import os"}),
    "unknown-node": _valid({"t": "pickle", "v": "cos\nsystem"}),
    "extra-node-key": _valid({"t": "list", "v": [], "x": 1}),
    "raw-json-list": _valid([1, 2]),
    "missing-tensor": _valid({"t": "tensor", "name": "nope"}),
    "unreferenced-tensor": _valid(None),
    "tensor-twice": _valid({"t": "list", "v": [{"t": "tensor", "name": "x"}] * 2}),
    "bad-flag": _valid({"t": "tensor", "name": "x", "requires_grad": "yes"}),
    "bad-float": _valid(
        {"t": "list", "v": [{"t": "float", "v": "1"}, {"t": "ndarray", "name": "x"}]}
    ),
    "bad-dict-item": _valid({"t": "dict", "items": [[1]]}),
    "unhashable-key": _valid({"t": "dict", "items": [[{"t": "list", "v": []}, 1]]}),
    "too-deep": _nested(5000),
    "deeper-than-limit": _nested(150),
}  # fmt: skip


@pytest.mark.parametrize("case", list(HOSTILE_METADATA))
def test_hostile_metadata_raises_value_error(case, tmp_path):
    path = _file_with_metadata(tmp_path / f"{case}.safetensors", HOSTILE_METADATA[case])
    with pytest.raises(ValueError, match=f"{case}.safetensors"):
        load(path)


def test_corrupt_and_truncated_files(tmp_path):
    good = tmp_path / "good.safetensors"
    save({"w": t(np.arange(10.0)), "epoch": 3}, good)
    data = good.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    variants = {
        "empty": b"",
        "tiny": b"\x01\x02",
        "garbage": b"this is not a safetensors file at all",
        "truncated": data[:-5],
        "truncated-header": data[: 8 + n // 2],
        "huge-header": struct.pack("<Q", 2**62) + data[8:],
        "bad-header-json": data[:8] + b"{" * n + data[8 + n :],
        "extra-bytes": data + b"\x00" * 3,
    }
    for name, content in variants.items():
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(content)
        with pytest.raises(ValueError, match=f"{name}.safetensors"):
            load(path)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.safetensors")


def test_top_level_exports():
    assert tinytorch.save is save and tinytorch.load is load
