"""``tinytorch.save`` is atomic and ``tinytorch.load`` is safe on hostile input.

Hostile files are crafted by hand in the safetensors layout: an 8-byte
little-endian header length, a JSON header, then the raw tensor bytes.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import pickle
import random
import signal
import struct
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import tinytorch as tt


def _file(header: dict | bytes, data: bytes = b"", header_len: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if header_len is None else header_len) + raw + data


def _entry(dtype: str = "F32", shape: list | None = None, offsets: list | None = None) -> dict:
    return {"dtype": dtype, "shape": [1] if shape is None else shape,
            "data_offsets": [0, 4] if offsets is None else offsets}  # fmt: skip


def _meta(text: str, **tensors: dict) -> dict:
    return {"__metadata__": {"tinytorch": text}, **tensors}


def _root(root: object) -> str:
    return json.dumps({"version": 1, "root": root})


FOUR = b"\0" * 4
HOSTILE = {
    "empty": b"",
    "shorter than the length field": b"\x01\x02",
    "header length 2**63": struct.pack("<Q", 2**63) + b"{}",
    "header length past the end": _file({"a": _entry()}, FOUR, header_len=1000),
    "header not JSON": _file(b"{not json}"),
    "header not UTF-8": _file(b'{"\xff\xfe": 1}'),
    "header a JSON list": _file(b"[1, 2, 3]"),
    "unknown dtype name": _file({"a": _entry("F99")}, FOUR),
    "unsupported dtype": _file({"a": _entry("BF16", offsets=[0, 2])}, b"\0\0"),
    "offsets outside the file": _file({"a": _entry(offsets=[0, 4000])}, FOUR),
    "offsets not matching the shape": _file({"a": _entry(shape=[2])}, FOUR),
    "huge declared shape": _file({"a": _entry(shape=[2**40, 2**40])}, FOUR),
    "huge declared size, tiny file": _file({"a": _entry(shape=[2**28], offsets=[0, 2**30])}, FOUR),
    "negative shape": _file({"a": _entry(shape=[-1])}, FOUR),
    "overlapping tensors": _file({"a": _entry(), "b": _entry()}, FOUR),
    "entry without shape": _file({"a": {"dtype": "F32", "data_offsets": [0, 4]}}, FOUR),
    "entry with wrong types": _file({"a": {"dtype": 5, "shape": "x", "data_offsets": 1}}, FOUR),
    "bytes not covered by any tensor": _file({"a": _entry()}, b"\0" * 8),
    "a pickle": pickle.dumps({"a": 1}),
    "metadata not a string": _file({"__metadata__": {"tinytorch": 5}}),
    "metadata not JSON": _file(_meta("{bad")),
    "metadata a list": _file(_meta("[1]")),
    "metadata wrong keys": _file(_meta(json.dumps({"root": None}))),
    "metadata future version": _file(_meta(json.dumps({"version": 99, "root": None}))),
    "metadata names a missing tensor": _file(_meta(_root({"t": "tensor", "name": "nope"}))),
    "metadata names a tensor twice": _file(
        _meta(_root({"t": "list", "v": [{"t": "tensor", "name": "a"}] * 2}), a=_entry()), FOUR),
    "metadata skips a tensor": _file(_meta(_root(None), a=_entry()), FOUR),
    "metadata unknown node type": _file(_meta(_root({"t": "pickle", "v": "cos\nsystem\n"}))),
    "metadata extra node field": _file(_meta(_root({"t": "list", "v": [], "code": "x"}))),
    "metadata dict item not a pair": _file(_meta(_root({"t": "dict", "items": [[1]]}))),
    "metadata unhashable key": _file(_meta(_root({"t": "dict", "items": [[{"t": "list",
                                                                         "v": []}, 1]]}))),
    "metadata NaN constant": _file(_meta('{"version": 1, "root": NaN}')),
    "metadata 5000-digit integer": _file(_meta('{"version": 1, "root": 1' + "0" * 5000 + "}")),
    "metadata nested 5000 deep": _file(_meta('{"version": 1, "root": ' + '{"t": "list", "v": ['
                                             * 5000 + "]}" * 5000 + "}")),
    "metadata requires_grad on ints": _file(
        _meta(_root({"t": "tensor", "name": "a", "requires_grad": True}),
              a=_entry("I32")), FOUR),
    "metadata flag not a bool": _file(
        _meta(_root({"t": "tensor", "name": "a", "parameter": "yes"}), a=_entry()), FOUR),
}  # fmt: skip


@pytest.mark.parametrize("blob", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_file_raises_value_error_with_bounded_memory(tmp_path, blob):
    path = tmp_path / "hostile.safetensors"
    path.write_bytes(blob)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="cannot load"):
            tt.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, f"loading a {len(blob)}-byte file allocated {peak} bytes"


@pytest.mark.parametrize("cut", [0, 7, 8, 20, -1, -4])
def test_truncated_file_raises(tmp_path, cut):
    path = tmp_path / "m.safetensors"
    tt.save({"w": tt.randn(4, 4), "step": 3}, path)
    blob = path.read_bytes()
    path.write_bytes(blob[:cut])
    with pytest.raises(ValueError, match="cannot load"):
        tt.load(path)


def test_flipped_header_bytes_never_crash(tmp_path):
    """Random corruption of the header: a clean ValueError or a valid load, nothing else."""
    path = tmp_path / "m.safetensors"
    tt.save({"w": tt.randn(3, 5), "b": tt.zeros(5), "meta": {"lr": 0.1}}, path)
    good = path.read_bytes()
    (n,) = struct.unpack("<Q", good[:8])
    rng = random.Random(0)
    for _ in range(200):
        blob = bytearray(good)
        pos = rng.randrange(0, 8 + n)
        blob[pos] = rng.randrange(256)
        path.write_bytes(bytes(blob))
        with contextlib.suppress(ValueError):
            tt.load(path)


def test_load_rejects_devices_and_pipes():
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    with pytest.raises(ValueError, match="not a regular file"):
        tt.load("/dev/zero")


class _Exploit:
    """Unpickling this would create the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (Path(self.marker),))


def test_load_never_executes_code_from_a_file(tmp_path):
    marker = tmp_path / "pwned"
    for blob in (pickle.dumps(_Exploit(str(marker))),
                 _file(_meta(_root({"t": "pickle", "v": pickle.dumps(_Exploit(str(marker)))
                                    .hex()}))),
                 _file({"__metadata__": {"tinytorch": _root(None)},
                        "x": _entry()}, FOUR)):  # fmt: skip
        path = tmp_path / "evil.pt"
        path.write_bytes(blob)
        with pytest.raises(ValueError):
            tt.load(path)
        assert not marker.exists()
    import tinytorch.serialization as ser

    source = Path(ser.__file__).read_text()
    for forbidden in ("pickle", "eval(", "exec(", "__import__", "importlib"):
        assert forbidden not in source.replace("No pickle", "").replace("without pickle", "")


# --------------------------------------------------------------------------- atomic save
def _saver(path: str, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    """Save version 1, 2, 3, ... of a ~16 MB state dict forever (until killed)."""
    version = 0
    while True:
        version += 1
        state = {f"layer{i}.weight": tt.full((512, 1024), float(version)) for i in range(8)}
        state["version"] = tt.tensor(version)
        tt.save(state, path)
        ready.set()


def _check_intact(path: Path) -> int:
    state = tt.load(path)
    version = int(state["version"].item())
    for i in range(8):
        w = state[f"layer{i}.weight"].data
        assert w.shape == (512, 1024) and np.all(w == version)
    return version


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and fork are POSIX")
def test_killing_a_save_midway_leaves_the_previous_file_loadable(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    ctx = multiprocessing.get_context("fork")
    rng = random.Random(1234)
    seen = []
    for _ in range(5):
        ready = ctx.Event()
        proc = ctx.Process(target=_saver, args=(str(path), ready))
        proc.start()
        assert ready.wait(30), "the saver never finished a first save"
        time.sleep(rng.uniform(0.0, 0.25))  # land anywhere inside a later save
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        assert proc.exitcode == -signal.SIGKILL
        seen.append(_check_intact(path))
    assert all(v >= 1 for v in seen)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != path.name]
    assert all(n.startswith(".ckpt.safetensors.") and n.endswith(".tmp") for n in leftovers)
