"""Reader and writer for the IDX file format (the format of the MNIST files).

Format (all integers big-endian), from http://yann.lecun.com/exdb/mnist/::

    byte 0, 1   0x00 0x00
    byte 2      element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                0x0D float32, 0x0E float64
    byte 3      ndim (number of dimensions, >= 1)
    4 * ndim    the size of each dimension, unsigned 32-bit
    ...         the elements, C order, big-endian

A file may be stored raw or gzip-compressed; gzip is recognised by its magic
bytes (``1f 8b``), never by the file name, so a renamed or un-gzipped copy still
loads.

Every size the header declares is checked against the real size of the file
*before* memory is allocated for it, so a corrupt or hostile header cannot make
the reader allocate gigabytes: a raw file's length is known from ``stat``; a
gzip stream can expand at most 1032:1 (the DEFLATE limit), so larger claims are
rejected at once and the payload is read in bounded chunks.
"""

from __future__ import annotations

import gzip as _gzip
import os
import tempfile
import zlib
from math import prod
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = ["IDX_DTYPES", "read_idx", "write_idx"]

#: IDX element-type code -> big-endian numpy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_DTYPE_NAMES = {
    0x08: "ubyte",
    0x09: "byte",
    0x0B: "short",
    0x0C: "int",
    0x0D: "float",
    0x0E: "double",
}
# numpy kind+itemsize (byte order ignored) -> IDX code, for the writer.
_CODE_FOR = {(dt.kind, dt.itemsize): code for code, dt in IDX_DTYPES.items()}

_GZIP_MAGIC = b"\x1f\x8b"
# DEFLATE cannot expand by more than ~1032:1; a gzip file of n bytes therefore
# decompresses to at most this many times n bytes (plus slack for tiny files).
_MAX_GZIP_RATIO = 1032
_GZIP_SLACK = 1 << 16
# Read gzip payloads in bounded chunks: BufferedReader.read(n) allocates n bytes
# up front, which must not be driven by an untrusted header.
_CHUNK = 1 << 24


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def _read_exact_header(f: BinaryIO | _gzip.GzipFile, n: int, path: Path, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ValueError(
            f"{path}: not a valid IDX file: {what} needs {n} bytes but the "
            f"{'decompressed ' if isinstance(f, _gzip.GzipFile) else ''}file ends after "
            f"{len(data)}"
        )
    return data


def _parse_header(
    f: BinaryIO | _gzip.GzipFile, path: Path
) -> tuple[np.dtype, tuple[int, ...], int]:
    """Read and validate the IDX header; return (dtype, dims, header byte count)."""
    magic = _read_exact_header(f, 4, path, "the 4-byte magic number")
    if magic[0] != 0 or magic[1] != 0:
        raise ValueError(
            f"{path}: not an IDX file: magic number {magic.hex()} does not start with two "
            "zero bytes"
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X} ({_DTYPE_NAMES[c]})" for c in IDX_DTYPES)
        raise ValueError(
            f"{path}: unknown IDX element type code 0x{code:02X}; expected one of {known}"
        )
    if ndim == 0:
        raise ValueError(f"{path}: invalid IDX header: number of dimensions is 0")
    raw_dims = _read_exact_header(f, 4 * ndim, path, f"the {ndim} dimension sizes")
    dims = tuple(int.from_bytes(raw_dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
    return IDX_DTYPES[code], dims, 4 + 4 * ndim


def _describe(dtype: np.dtype, dims: tuple[int, ...], header: int) -> str:
    code = _CODE_FOR[(dtype.kind, dtype.itemsize)]
    nbytes = prod(dims) * dtype.itemsize
    return (
        f"header declares shape {dims} of {_DTYPE_NAMES[code]} = {nbytes} data bytes "
        f"({header + nbytes} bytes with the {header}-byte header)"
    )


def _read_gzip_payload(path: Path) -> tuple[np.dtype, tuple[int, ...], bytearray]:
    compressed_size = path.stat().st_size
    try:
        with _gzip.open(path, "rb") as f:
            dtype, dims, header = _parse_header(f, path)
            expected = prod(dims) * dtype.itemsize
            limit = compressed_size * _MAX_GZIP_RATIO + _GZIP_SLACK
            if header + expected > limit:
                raise ValueError(
                    f"{path}: corrupt IDX file: {_describe(dtype, dims, header)}, but a gzip "
                    f"file of {compressed_size} bytes can hold at most {limit} bytes"
                )
            buf = bytearray()
            # One byte more than needed, to notice trailing data.
            remaining = expected + 1
            while remaining > 0:
                chunk = f.read(min(remaining, _CHUNK))
                if not chunk:
                    break
                buf += chunk
                remaining -= len(chunk)
            if len(buf) > expected:
                extra = len(buf) - expected
                while chunk := f.read(_CHUNK):
                    extra += len(chunk)
                raise ValueError(
                    f"{path}: corrupt IDX file: {_describe(dtype, dims, header)} but the "
                    f"decompressed file is {header + expected + extra} bytes ({extra} "
                    "unexpected trailing bytes)"
                )
    except (_gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: corrupt gzip stream: {exc}") from exc
    if len(buf) < expected:
        raise ValueError(
            f"{path}: truncated IDX file: {_describe(dtype, dims, header)} but the "
            f"decompressed file is only {header + len(buf)} bytes"
        )
    return dtype, dims, buf


def _read_raw_payload(path: Path) -> tuple[np.dtype, tuple[int, ...], bytearray]:
    size = path.stat().st_size
    with open(path, "rb") as f:
        dtype, dims, header = _parse_header(f, path)
        expected = prod(dims) * dtype.itemsize
        # Compare with the real file size before reading (and allocating) anything.
        if header + expected > size:
            raise ValueError(
                f"{path}: truncated IDX file: {_describe(dtype, dims, header)} but the "
                f"file is only {size} bytes"
            )
        if header + expected < size:
            raise ValueError(
                f"{path}: corrupt IDX file: {_describe(dtype, dims, header)} but the file "
                f"is {size} bytes ({size - header - expected} unexpected trailing bytes)"
            )
        # A bytearray keeps the result writable without another copy.
        data = bytearray(expected)
        got = f.readinto(data)
    if got != expected:  # the file changed while it was being read
        raise ValueError(f"{path}: file shrank while being read")
    return dtype, dims, data


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed, into a numpy array.

    Args:
        path: the file. Gzip compression is detected from the content (bytes
            ``1f 8b``), not from the name.

    Returns:
        A C-contiguous, writable array whose shape is the declared dimensions and
        whose dtype is the declared element type in *native* byte order
        (``uint8``, ``int8``, ``int16``, ``int32``, ``float32`` or ``float64``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a well-formed IDX file; the message names the
            file and the problem: a magic number not starting with two zero
            bytes, an unknown element type, zero dimensions, a header shorter than
            it declares, a payload smaller (truncated) or larger (trailing bytes)
            than the declared dimensions, or a corrupt gzip stream.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"IDX file not found: {path}")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not an IDX file")
    if _is_gzip(path):
        dtype, dims, payload = _read_gzip_payload(path)
    else:
        dtype, dims, payload = _read_raw_payload(path)
    arr = np.frombuffer(payload, dtype=dtype).reshape(dims)
    # Native byte order so callers can compute on the result directly; one-byte
    # types need no swap, so they stay a (writable) view of the payload buffer.
    native = arr.dtype.newbyteorder("=")
    if arr.dtype.itemsize == 1:
        return arr.view(native)
    return arr.astype(native)


def write_idx(path: str | os.PathLike[str], array: np.ndarray | object, gzip: bool = False) -> None:
    """Write ``array`` to ``path`` in IDX format.

    Args:
        path: destination; written atomically (temporary file in the same
            directory, then ``os.replace``), so readers never see a partial file.
        array: array-like with dtype uint8, int8, int16, int32, float32 or float64
            and at least one dimension; each dimension must be below 2**32.
        gzip: compress with gzip (a reproducible stream: no name, mtime 0).

    Raises:
        ValueError: unsupported dtype, zero dimensions, more than 255 dimensions,
            or a dimension too large for the format.
    """
    arr = np.asarray(array)
    code = _CODE_FOR.get((arr.dtype.kind, arr.dtype.itemsize))
    if code is None:
        supported = ", ".join(str(dt.newbyteorder("=")) for dt in IDX_DTYPES.values())
        raise ValueError(f"write_idx: dtype {arr.dtype} is not storable in IDX ({supported})")
    if not 1 <= arr.ndim <= 255:
        raise ValueError(f"write_idx: IDX needs 1 to 255 dimensions, got {arr.ndim}")
    if any(d >= 2**32 for d in arr.shape):
        raise ValueError(f"write_idx: dimension too large for IDX: {arr.shape}")
    header = bytes([0, 0, code, arr.ndim]) + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    body = np.ascontiguousarray(arr, dtype=IDX_DTYPES[code]).tobytes()

    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as raw:
            if gzip:
                with _gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                    gz.write(header)
                    gz.write(body)
            else:
                raw.write(header)
                raw.write(body)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
