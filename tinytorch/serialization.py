"""``save`` / ``load`` of tensors and nested Python containers without pickle.

File format: a standard `safetensors <https://github.com/huggingface/safetensors>`_ file.
Every tensor is one safetensors entry; everything else (containers, dict keys, numbers,
strings, ...) is a JSON tree stored in the header's ``__metadata__`` under the key
``"tinytorch"``. Nothing in a file is ever executed, so ``load`` is safe on untrusted input.

Supported values: :class:`tinytorch.Tensor` (dtype, shape, ``requires_grad`` and
``nn.Parameter``-ness kept), ``numpy.ndarray``, ``None``, ``bool``, ``int``, ``float``
(including inf/nan), ``str``, and ``list`` / ``tuple`` / ``dict`` of these. Dict keys may be
``str``, ``int``, ``float``, ``bool``, ``None`` or tuples of those, and keep their type (an
optimizer's ``state_dict`` uses int keys). Round-trip caveats: every dict subclass
(``OrderedDict``, ``defaultdict``, ``Counter``) comes back as a plain ``dict`` with the same
order; numpy scalars come back as Python numbers; tensors that were shared (the same object
twice) come back as independent copies.

Interoperability with torch: a flat ``dict[str, Tensor]`` (a model's ``state_dict``) is
stored under exactly its keys, so ``safetensors.torch.load_file(path)`` returns the same
names and values; conversely ``load`` reads any safetensors file (e.g. one written by
``safetensors.torch.save_file``) without tinytorch metadata as a ``dict[str, Tensor]``
sorted by name.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import stat
import struct
from collections.abc import Callable
from typing import IO, Any

import numpy as np

import tinytorch

__all__ = ["load", "save"]

_META_KEY = "tinytorch"
_FORMAT_VERSION = 1
_MAX_DEPTH = 100  # nesting bound so hostile metadata cannot exhaust the stack

# safetensors dtype codes that tinytorch can represent (little-endian on disk).
_ST_DTYPES: dict[str, str] = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}

_SAVABLE = {"f8", "f4", "f2", "i8", "i4", "i2", "i1", "u1", "b1"}

FileLike = str | os.PathLike[str] | IO[bytes]


# --------------------------------------------------------------------------- encoding
class _Encoder:
    """Turn an object tree into JSON-able data, collecting tensors under unique names."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self._used = {"__metadata__"}  # reserved by the safetensors header
        self._open: set[int] = set()  # ids of the containers being encoded (cycle check)

    def _name(self, path: list[str]) -> str:
        base = ".".join(path) or "tensor"
        name, n = base, 0
        while name in self._used:
            n += 1
            name = f"{base}~{n}"
        self._used.add(name)
        return name

    def add_array(self, arr: np.ndarray, name: str) -> None:
        if f"{arr.dtype.kind}{arr.dtype.itemsize}" not in _SAVABLE:
            raise TypeError(f"cannot save an array of dtype {arr.dtype}")
        # safetensors copies raw memory, so the array must be C-contiguous (and
        # np.ascontiguousarray would turn 0-d arrays into 1-d ones)
        self.arrays[name] = arr if arr.flags.c_contiguous else arr.copy(order="C")

    def encode(self, obj: Any, path: list[str], depth: int = 0) -> Any:
        if depth > _MAX_DEPTH:
            raise ValueError(f"object is nested more than {_MAX_DEPTH} levels deep")
        if isinstance(obj, tinytorch.Tensor):
            name = self._name(path)
            self.add_array(obj.data, name)
            node: dict[str, Any] = {"t": "tensor", "name": name}
            if obj.requires_grad:
                node["requires_grad"] = True
            if type(obj).__name__ == "Parameter":
                node["parameter"] = True
            return node
        if isinstance(obj, np.ndarray):
            name = self._name(path)
            self.add_array(obj, name)
            return {"t": "ndarray", "name": name}
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, np.bool_):
            return bool(obj)
        if isinstance(obj, (int, np.integer)):
            return int(obj)
        if isinstance(obj, (float, np.floating)):
            value = float(obj)
            if math.isfinite(value):
                return value
            return {"t": "float", "v": "nan" if math.isnan(value) else str(value)}
        if isinstance(obj, (list, tuple, dict)):
            if id(obj) in self._open:
                raise ValueError("cannot save an object that contains a reference cycle")
            self._open.add(id(obj))
            try:
                return self._encode_container(obj, path, depth)
            finally:
                self._open.discard(id(obj))
        raise TypeError(
            f"cannot save object of type {type(obj).__name__}: only tensors, numpy arrays, "
            "None, bool, int, float, str and list/tuple/dict of them are supported"
        )

    def _encode_container(self, obj: Any, path: list[str], depth: int) -> Any:
        if isinstance(obj, dict):
            items = []
            for k, v in obj.items():
                key = self._encode_key(k)
                items.append([key, self.encode(v, [*path, str(k)], depth + 1)])
            return {"t": "dict", "items": items}
        values = [self.encode(v, [*path, str(i)], depth + 1) for i, v in enumerate(obj)]
        return {"t": "list" if isinstance(obj, list) else "tuple", "v": values}

    def _encode_key(self, key: Any) -> Any:
        if isinstance(key, (tinytorch.Tensor, np.ndarray)):
            raise TypeError("cannot save a dict keyed by tensors")
        if isinstance(key, tuple):
            return {"t": "tuple", "v": [self._encode_key(k) for k in key]}
        if key is None or isinstance(key, (bool, str, int, float, np.generic)):
            return self.encode(key, [])
        raise TypeError(f"cannot save a dict key of type {type(key).__name__}")


def _is_flat_state_dict(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and len(obj) > 0
        and "__metadata__" not in obj
        and all(isinstance(k, str) for k in obj)
        and all(isinstance(v, tinytorch.Tensor) for v in obj.values())
    )


def _serialize(obj: Any) -> bytes:
    import safetensors.numpy

    encoder = _Encoder()
    if _is_flat_state_dict(obj):
        # Store each tensor under its own key so torch users see the same names.
        items = []
        for key, tensor in obj.items():
            encoder.add_array(tensor.data, key)
            node: dict[str, Any] = {"t": "tensor", "name": key}
            if tensor.requires_grad:
                node["requires_grad"] = True
            if type(tensor).__name__ == "Parameter":
                node["parameter"] = True
            items.append([key, node])
        root: Any = {"t": "dict", "items": items}
    else:
        root = encoder.encode(obj, [])
    meta = json.dumps(
        {"version": _FORMAT_VERSION, "root": root}, allow_nan=False, separators=(",", ":")
    )
    return safetensors.numpy.save(encoder.arrays, metadata={_META_KEY: meta})


def _write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so a crash leaves either the old or the new file."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(8)}.tmp")
    # O_EXCL: never clobber a foreign file; mode 0o666 lets the umask apply as for open().
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    try:  # persist the rename itself (best effort: not possible on every platform)
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def save(obj: Any, f: FileLike) -> None:
    """Save ``obj`` (tensors in nested containers) to a safetensors file, without pickle.

    Args:
        obj: the object to save (see the module docstring for what is supported).
        f: a path (written atomically: temporary file in the same directory, flushed and
            fsynced, then ``os.replace``) or a writable binary file object.

    Raises:
        TypeError: if ``obj`` contains an unsupported value.
    """
    data = _serialize(obj)
    if isinstance(f, (str, os.PathLike)):
        _write_atomic(os.fspath(f), data)
    else:
        f.write(data)


# --------------------------------------------------------------------------- decoding
class _Decoder:
    """Rebuild the object tree from validated JSON, failing with ``ValueError`` on anything
    that :class:`_Encoder` could not have produced."""

    def __init__(self, arrays: dict[str, np.ndarray], fail: Callable[[str], Exception]) -> None:
        self.arrays = arrays
        self.fail = fail
        self.used: set[str] = set()

    def _node(self, obj: Any, keys: set[str]) -> None:
        if set(obj) - keys or "t" not in obj:
            raise self.fail(f"unexpected metadata node {sorted(obj)!r}")

    def _take(self, name: Any) -> np.ndarray:
        if not isinstance(name, str) or name not in self.arrays:
            raise self.fail(f"metadata refers to a missing tensor {name!r}")
        if name in self.used:
            raise self.fail(f"tensor {name!r} is referenced twice")
        self.used.add(name)
        return self.arrays[name]

    def decode(self, obj: Any, depth: int = 0) -> Any:
        if depth > _MAX_DEPTH:
            raise self.fail("metadata is nested too deeply")
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        if not isinstance(obj, dict):
            raise self.fail(f"unexpected metadata value of type {type(obj).__name__}")
        kind = obj.get("t")
        if kind == "tensor":
            self._node(obj, {"t", "name", "requires_grad", "parameter"})
            return self._tensor(obj)
        if kind == "ndarray":
            self._node(obj, {"t", "name"})
            return self._take(obj.get("name"))
        if kind == "float":
            self._node(obj, {"t", "v"})
            if obj.get("v") not in ("inf", "-inf", "nan"):
                raise self.fail(f"bad float value {obj.get('v')!r}")
            return float(obj["v"])
        if kind in ("list", "tuple"):
            self._node(obj, {"t", "v"})
            if not isinstance(obj.get("v"), list):
                raise self.fail(f"{kind} node without a list of values")
            values = [self.decode(v, depth + 1) for v in obj["v"]]
            return values if kind == "list" else tuple(values)
        if kind == "dict":
            self._node(obj, {"t", "items"})
            result = {}
            items = obj.get("items")
            if not isinstance(items, list):
                raise self.fail("dict node without a list of items")
            for item in items:
                if not isinstance(item, list) or len(item) != 2:
                    raise self.fail("dict item is not a [key, value] pair")
                key = self.decode(item[0], depth + 1)
                try:
                    hash(key)
                except TypeError:
                    raise self.fail(f"unhashable dict key {key!r}") from None
                if isinstance(key, (tinytorch.Tensor, np.ndarray)):
                    raise self.fail("dict keyed by a tensor")
                result[key] = self.decode(item[1], depth + 1)
            return result
        raise self.fail(f"unknown metadata node type {kind!r}")

    def _tensor(self, obj: dict[str, Any]) -> Any:
        arr = self._take(obj.get("name"))
        requires_grad = obj.get("requires_grad", False)
        parameter = obj.get("parameter", False)
        if not isinstance(requires_grad, bool) or not isinstance(parameter, bool):
            raise self.fail("tensor flags must be booleans")
        tensor = tinytorch.from_numpy(arr)
        if parameter:
            from tinytorch.nn import Parameter

            return Parameter(tensor, requires_grad=requires_grad)
        if requires_grad:
            if arr.dtype.kind != "f":
                raise self.fail("only floating point tensors can require gradients")
            tensor.requires_grad_(True)
        return tensor


def _read_arrays(data: bytes, fail: Callable[[str], Exception]) -> dict[str, np.ndarray]:
    """Validate with safetensors' own parser, then view each tensor's bytes as numpy."""
    import safetensors

    try:
        entries = safetensors.deserialize(data)
    except Exception as e:  # SafetensorError and friends: truncated, corrupt, hostile
        raise fail(f"not a valid safetensors file ({e})") from e
    arrays = {}
    for name, info in entries:
        code = info["dtype"]
        if code not in _ST_DTYPES:
            raise fail(f"tensor {name!r} has dtype {code}, which tinytorch does not support")
        # bytearray buffer -> writable array without another copy
        arr = np.frombuffer(info["data"], dtype=np.dtype(_ST_DTYPES[code]))
        arr = arr.reshape(tuple(info["shape"]))  # () must stay 0-d
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        arrays[name] = arr
    return arrays


def _read_metadata(data: bytes) -> dict[str, str]:
    # The header was already validated by safetensors.deserialize.
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    return header.get("__metadata__") or {}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


def load(
    f: FileLike,
    map_location: Any = None,
    *,
    weights_only: bool | None = None,
    mmap: bool | None = None,
) -> Any:
    """Load an object saved by :func:`save`, or any safetensors file, without pickle.

    Args:
        f: a path or a readable binary file object.
        map_location: accepted for torch compatibility and ignored (tinytorch is CPU-only).
        weights_only: accepted for torch compatibility and ignored: loading is always
            "weights only" (no code is ever executed).
        mmap: accepted for torch compatibility and ignored (the file is read into memory).

    Returns:
        The saved object; a plain safetensors file yields ``dict[str, Tensor]``.

    Raises:
        ValueError: naming the file, if it is truncated, corrupt, not safetensors, holds an
            unsupported dtype, or carries malformed tinytorch metadata.
    """
    del map_location, weights_only, mmap  # documented as ignored
    if isinstance(f, (str, os.PathLike)):
        label = os.fspath(f)
        with open(label, "rb") as fh:
            # A device or pipe (/dev/zero, a FIFO) would be read without end.
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise ValueError(f"cannot load {label!r}: not a regular file")
            data = fh.read()
    else:
        label = str(getattr(f, "name", repr(f)))
        data = f.read()

    def fail(msg: str) -> ValueError:
        return ValueError(f"cannot load {label!r}: {msg}")

    arrays = _read_arrays(bytes(data), fail)
    meta_text = _read_metadata(data).get(_META_KEY)
    if meta_text is None:  # a foreign (e.g. torch-written) file: a flat state dict
        return {name: tinytorch.from_numpy(arrays[name]) for name in sorted(arrays)}
    try:
        meta = json.loads(meta_text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        raise fail(f"malformed tinytorch metadata ({e})") from None
    if not isinstance(meta, dict) or set(meta) != {"version", "root"}:
        raise fail("malformed tinytorch metadata")
    if meta["version"] != _FORMAT_VERSION:
        raise fail(f"unsupported tinytorch format version {meta['version']!r}")
    decoder = _Decoder(arrays, fail)
    result = decoder.decode(meta["root"])
    unused = set(arrays) - decoder.used
    if unused:
        raise fail(f"tensors not described by the metadata: {sorted(unused)!r}")
    return result
