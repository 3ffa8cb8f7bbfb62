"""Tests for tinytorch.datasets: IDX I/O, MNIST/FashionMNIST loading and download, digits.

All MNIST files here are small synthetic IDX files written with ``write_idx`` into
``tmp_path``; downloads go through a fake ``urlopen``. Nothing touches the network
or /work/shared.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import sys
import time
import tracemalloc
import urllib.error
from pathlib import Path

import numpy as np
import pytest

import tinytorch
from tinytorch.datasets import MNIST, Digits, FashionMNIST, load_digits, read_idx, write_idx
from tinytorch.datasets import digits as digits_mod
from tinytorch.datasets import mnist as mnist_mod
from tinytorch.datasets.digits import DIGITS_SHA256, split_indices

# Sum of the default digits test-split indices (test_fraction=0.2, seed=0).
_PINNED_TEST_SUM = 324981
ALL_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]
SPLIT_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _header(code: int, dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


# ------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("use_gzip", [False, True])
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 5), (2, 1, 3, 2), (0, 4)])
def test_idx_round_trip(tmp_path, dtype, use_gzip, shape):
    rng = np.random.default_rng(0)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        arr = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    else:
        arr = rng.standard_normal(shape).astype(dtype)
    path = tmp_path / "a.idx"
    write_idx(path, arr, gzip=use_gzip)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == use_gzip
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype)  # native byte order
    assert out.dtype.isnative
    assert out.shape == shape
    np.testing.assert_array_equal(out, arr)
    assert out.flags.writeable
    assert out.flags.c_contiguous
    assert [p.name for p in tmp_path.iterdir()] == ["a.idx"]  # no temporary left


def test_idx_raw_layout_is_the_spec(tmp_path):
    write_idx(tmp_path / "x", np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int16))
    expected = _header(0x0B, (2, 3)) + np.arange(1, 7, dtype=">i2").tobytes()
    assert (tmp_path / "x").read_bytes() == expected


def test_idx_gzip_is_reproducible(tmp_path):
    arr = np.arange(100, dtype=np.uint8).reshape(10, 10)
    write_idx(tmp_path / "a", arr, gzip=True)
    time.sleep(0.01)
    write_idx(tmp_path / "b", arr, gzip=True)
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


def test_idx_gzip_detected_by_content_not_name(tmp_path):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_idx(tmp_path / "compressed.idx", arr, gzip=True)
    write_idx(tmp_path / "plain.gz", arr, gzip=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "compressed.idx"), arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "plain.gz"), arr)


def test_idx_accepts_str_paths(tmp_path):
    write_idx(str(tmp_path / "s"), np.ones(3, np.uint8))
    assert read_idx(str(tmp_path / "s")).tolist() == [1, 1, 1]


def _write_bytes(tmp_path: Path, data: bytes, use_gzip: bool, name: str = "bad-idx") -> Path:
    path = tmp_path / name
    path.write_bytes(gzip.compress(data, mtime=0) if use_gzip else data)
    return path


@pytest.mark.parametrize("use_gzip", [False, True])
def test_idx_bad_magic(tmp_path, use_gzip):
    path = _write_bytes(tmp_path, b"\x01\x00\x08\x01" + (3).to_bytes(4, "big") + b"abc", use_gzip)
    with pytest.raises(ValueError, match="magic number") as exc:
        read_idx(path)
    assert str(path) in str(exc.value)


@pytest.mark.parametrize("code", [0x00, 0x07, 0x0A, 0x0F, 0xFF])
@pytest.mark.parametrize("use_gzip", [False, True])
def test_idx_unknown_dtype_code(tmp_path, code, use_gzip):
    path = _write_bytes(tmp_path, _header(code, (2,)) + b"\x00" * 16, use_gzip)
    with pytest.raises(ValueError, match=f"0x{code:02X}") as exc:
        read_idx(path)
    assert str(path) in str(exc.value)
    assert "element type" in str(exc.value)


def test_idx_zero_dimensions(tmp_path):
    path = _write_bytes(tmp_path, b"\x00\x00\x08\x00", False)
    with pytest.raises(ValueError, match="number of dimensions is 0"):
        read_idx(path)


@pytest.mark.parametrize("use_gzip", [False, True])
@pytest.mark.parametrize("data", [b"", b"\x00\x00", b"\x00\x00\x08\x03" + b"\x00" * 7])
def test_idx_short_header(tmp_path, use_gzip, data):
    path = _write_bytes(tmp_path, data, use_gzip)
    with pytest.raises(ValueError, match="not a valid IDX file") as exc:
        read_idx(path)
    assert str(path) in str(exc.value)


@pytest.mark.parametrize("use_gzip", [False, True])
def test_idx_truncated(tmp_path, use_gzip):
    # Declares 4x5 int32 = 80 data bytes (+12 header = 92); holds 12 + 50.
    path = _write_bytes(tmp_path, _header(0x0C, (4, 5)) + b"\x01" * 50, use_gzip)
    with pytest.raises(ValueError, match="truncated") as exc:
        read_idx(path)
    msg = str(exc.value)
    assert str(path) in msg
    assert "(4, 5)" in msg
    assert "92 bytes" in msg
    assert "62 bytes" in msg


@pytest.mark.parametrize("use_gzip", [False, True])
def test_idx_trailing_bytes(tmp_path, use_gzip):
    path = _write_bytes(tmp_path, _header(0x08, (2, 3)) + bytes(6) + b"junk!", use_gzip)
    with pytest.raises(ValueError, match="5 unexpected trailing bytes") as exc:
        read_idx(path)
    assert str(path) in str(exc.value)


@pytest.mark.parametrize("use_gzip", [False, True])
def test_idx_absurd_declared_size_rejected_before_allocating(tmp_path, use_gzip):
    # (2**32 - 1)**3 float64 elements: ~6e29 bytes. Must fail fast with ValueError,
    # not MemoryError, and not after trying to read or allocate that much.
    big = 2**32 - 1
    path = _write_bytes(tmp_path, _header(0x0E, (big, big, big)) + bytes(64), use_gzip)
    tracemalloc.start()
    with pytest.raises(ValueError, match="declares shape") as exc:
        read_idx(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 * 2**20  # nothing near the declared size was allocated
    assert str(path) in str(exc.value)
    assert ("truncated" in str(exc.value)) != use_gzip
    assert ("can hold at most" in str(exc.value)) == use_gzip


def test_idx_gzip_claim_within_bound_but_missing_is_truncated(tmp_path):
    # 40,000 bytes claimed, plausible for the compressed size, but the stream holds 100.
    path = _write_bytes(tmp_path, _header(0x08, (200, 200)) + bytes(100), True)
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)


def test_idx_corrupt_gzip_stream(tmp_path):
    arr = np.random.default_rng(1).integers(0, 255, size=(50, 50), dtype=np.uint8)
    write_idx(tmp_path / "ok", arr, gzip=True)
    blob = (tmp_path / "ok").read_bytes()
    cut = tmp_path / "cut"
    cut.write_bytes(blob[: len(blob) // 2])  # gzip stream ends early
    with pytest.raises(ValueError, match="gzip") as exc:
        read_idx(cut)
    assert str(cut) in str(exc.value)
    flipped = bytearray(blob)
    flipped[-6] ^= 0xFF  # inside the CRC-32 / size trailer
    bad = tmp_path / "crc"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="gzip"):
        read_idx(bad)


def test_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.idx"):
        read_idx(tmp_path / "nope.idx")


def test_idx_directory(tmp_path):
    with pytest.raises(ValueError, match="directory"):
        read_idx(tmp_path)


@pytest.mark.parametrize(
    "arr", [np.zeros(3, np.int64), np.zeros(3, bool), np.zeros(3, np.uint16), np.float32(1.0)]
)
def test_write_idx_rejects_unsupported(tmp_path, arr):
    with pytest.raises(ValueError, match="write_idx"):
        write_idx(tmp_path / "x", arr)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------- MNIST


def _make_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = 255  # so every split spans the full [0, 1] range
    images[:, 0, 1] = 0
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    return images, labels


def _write_mnist(folder: Path, use_gzip: bool, n_train: int = 6, n_test: int = 4) -> dict:
    """Write the four files; return {train: (images, labels)}."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if use_gzip else ""
    out = {}
    for train, n in ((True, n_train), (False, n_test)):
        images, labels = _make_split(n, seed=int(train))
        img_name, lbl_name = SPLIT_FILES[train]
        write_idx(folder / (img_name + suffix), images, gzip=use_gzip)
        write_idx(folder / (lbl_name + suffix), labels, gzip=use_gzip)
        out[train] = (images, labels)
    return out


@pytest.mark.parametrize("layout", ["root", "torchvision"])
@pytest.mark.parametrize("use_gzip", [False, True])
@pytest.mark.parametrize("train", [True, False])
def test_mnist_loads_both_layouts(tmp_path, layout, use_gzip, train):
    folder = tmp_path if layout == "root" else tmp_path / "MNIST" / "raw"
    expected = _write_mnist(folder, use_gzip)[train]
    ds = MNIST(tmp_path, train=train)
    assert len(ds) == len(expected[0])
    assert ds.data.dtype == np.uint8
    assert ds.data.shape == expected[0].shape
    np.testing.assert_array_equal(ds.data, expected[0])
    assert ds.targets.dtype == np.int64
    np.testing.assert_array_equal(ds.targets, expected[1])
    assert ds.classes[0] == "0 - zero"
    assert len(ds.classes) == 10
    assert ds.class_to_idx["9 - nine"] == 9
    x, y = ds.as_arrays()
    assert x.dtype == np.float32
    assert x.shape == (len(ds), 1, 28, 28)
    assert x.min() == 0.0
    assert x.max() == 1.0
    np.testing.assert_array_equal(x[:, 0], expected[0].astype(np.float32) / np.float32(255))
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, expected[1])
    assert "Number of datapoints" in repr(ds)


def test_mnist_accepts_str_root_and_gz_named_raw_files(tmp_path):
    images, labels = _make_split(3, seed=5)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images, gzip=False)  # not really gzip
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels, gzip=True)
    ds = MNIST(str(tmp_path))
    np.testing.assert_array_equal(ds.data, images)


def test_mnist_root_folder_wins_over_raw_folder(tmp_path):
    _write_mnist(tmp_path, use_gzip=False, n_train=2)
    _write_mnist(tmp_path / "MNIST" / "raw", use_gzip=True, n_train=5)
    assert len(MNIST(tmp_path)) == 2


def test_fashion_mnist(tmp_path):
    expected = _write_mnist(tmp_path / "FashionMNIST" / "raw", use_gzip=True)[False]
    ds = FashionMNIST(tmp_path, train=False)
    np.testing.assert_array_equal(ds.targets, expected[1])
    assert ds.classes[9] == "Ankle boot"
    assert ds.classes[0] == "T-shirt/top"
    assert ds.raw_folder == tmp_path / "FashionMNIST" / "raw"
    # MNIST's own layout folder is not FashionMNIST's.
    with pytest.raises(FileNotFoundError):
        MNIST(tmp_path, train=False)


def test_mnist_getitem_returns_tensor_and_int(tmp_path):
    images, labels = _write_mnist(tmp_path, use_gzip=True)[True]
    ds = MNIST(tmp_path)
    image, label = ds[2]
    assert isinstance(image, tinytorch.Tensor)
    assert image.dtype == tinytorch.float32
    assert tuple(image.shape) == (1, 28, 28)
    pixels = np.asarray(image.data)
    assert pixels.shape == (1, 28, 28)
    assert pixels.dtype == np.float32
    np.testing.assert_array_equal(pixels[0], images[2].astype(np.float32) / np.float32(255))
    assert type(label) is int
    assert label == labels[2]
    x, _ = ds.as_arrays()
    np.testing.assert_array_equal(np.asarray(ds[-1][0].data), x[-1])  # negative index
    np.testing.assert_array_equal(np.asarray(ds[np.int64(1)][0].data), x[1])
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_mnist_transforms(tmp_path):
    _, labels = _write_mnist(tmp_path, use_gzip=False)[True]
    seen = []

    def transform(img):
        seen.append(np.asarray(img.data).shape)
        return "transformed"

    ds = MNIST(tmp_path, transform=transform, target_transform=lambda y: y + 100)
    assert ds[0] == ("transformed", int(labels[0]) + 100)
    assert seen == [(1, 28, 28)]


@pytest.mark.parametrize("train", [True, False])
def test_mnist_missing_everything(tmp_path, train):
    with pytest.raises(FileNotFoundError) as exc:
        MNIST(tmp_path, train=train)
    msg = str(exc.value)
    images, labels = SPLIT_FILES[train]
    assert images in msg
    assert labels in msg
    assert "download=True" in msg
    assert str(tmp_path / "MNIST" / "raw") in msg


def test_mnist_missing_one_file_names_it(tmp_path):
    _write_mnist(tmp_path, use_gzip=True)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError) as exc:
        MNIST(tmp_path)
    msg = str(exc.value)
    assert "missing train-labels-idx1-ubyte[.gz]" in msg
    assert "train-images" not in msg.split("(searched")[0]
    assert "download=True" in msg
    MNIST(tmp_path, train=False)  # the test split is complete


def test_mnist_split_files_in_different_folders(tmp_path):
    _write_mnist(tmp_path, use_gzip=False)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (tmp_path / "train-labels-idx1-ubyte").rename(raw / "train-labels-idx1-ubyte")
    with pytest.raises(FileNotFoundError, match="same folder"):
        MNIST(tmp_path)


def test_mnist_count_mismatch(tmp_path):
    images, _ = _make_split(5, seed=0)
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(4, np.uint8), gzip=True)
    with pytest.raises(ValueError, match="count mismatch") as exc:
        MNIST(tmp_path)
    msg = str(exc.value)
    assert "5 images" in msg
    assert "4 labels" in msg
    assert "train-labels-idx1-ubyte.gz" in msg


def test_mnist_label_out_of_range(tmp_path):
    images, labels = _make_split(5, seed=0)
    labels[3] = 12
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    with pytest.raises(ValueError, match=r"0\.\.9, found 12 at index 3"):
        MNIST(tmp_path)


@pytest.mark.parametrize(
    ("images", "labels", "match"),
    [
        (np.zeros((3, 27, 28), np.uint8), np.zeros(3, np.uint8), "images of shape"),
        (np.zeros((3, 784), np.uint8), np.zeros(3, np.uint8), "images of shape"),
        (np.zeros((3, 28, 28), np.float32), np.zeros(3, np.uint8), "uint8 images"),
        (np.zeros((3, 28, 28), np.uint8), np.zeros(3, np.int32), "uint8 labels"),
        (np.zeros((3, 28, 28), np.uint8), np.zeros((3, 1), np.uint8), "uint8 labels"),
    ],
)
def test_mnist_wrong_structure(tmp_path, images, labels, match):
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    with pytest.raises(ValueError, match=match):
        MNIST(tmp_path)


@pytest.mark.parametrize("which", [0, 1])
def test_mnist_corrupt_file_is_named(tmp_path, which):
    _write_mnist(tmp_path, use_gzip=False)
    victim = tmp_path / SPLIT_FILES[True][which]
    blob = bytearray(victim.read_bytes())
    blob[0] = 0x42
    victim.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="magic number") as exc:
        MNIST(tmp_path)
    assert str(victim) in str(exc.value)


def test_mnist_truncated_file(tmp_path):
    _write_mnist(tmp_path, use_gzip=False)
    victim = tmp_path / "train-images-idx3-ubyte"
    victim.write_bytes(victim.read_bytes()[:-100])
    with pytest.raises(ValueError, match="truncated") as exc:
        MNIST(tmp_path)
    assert str(victim) in str(exc.value)


def _official(files: dict[str, bytes], idx_sha: bool = False) -> dict:
    """A resources table that declares ``files`` (name -> .gz bytes) official."""
    return {
        name: (
            hashlib.sha256(blob).hexdigest(),
            hashlib.sha256(gzip.decompress(blob)).hexdigest() if idx_sha else None,
        )
        for name, blob in files.items()
    }


def _gz_files(tmp_path: Path) -> dict[str, bytes]:
    src = tmp_path / "src"
    _write_mnist(src, use_gzip=True)
    return {p.name: p.read_bytes() for p in sorted(src.iterdir())}


def test_mnist_verify(tmp_path, monkeypatch):
    files = _gz_files(tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    for name, blob in files.items():
        (root / name).write_bytes(blob)
    # Synthetic data is not the official MNIST: verify=True refuses it...
    with pytest.raises(ValueError, match="not the official MNIST"):
        MNIST(root, verify=True)
    MNIST(root)  # ...but it loads without verify (structure is valid).
    # Byte-identical .gz files pass.
    monkeypatch.setattr(MNIST, "resources", _official(files, idx_sha=True))
    MNIST(root, verify=True)
    # An un-gzipped copy passes through the decompressed-content checksum...
    for name, blob in files.items():
        (root / name).unlink()
        (root / name.removesuffix(".gz")).write_bytes(gzip.decompress(blob))
    MNIST(root, verify=True)
    # ...unless no decompressed checksum is pinned (as for Fashion-MNIST).
    monkeypatch.setattr(MNIST, "resources", _official(files, idx_sha=False))
    with pytest.raises(ValueError, match=r"published \.gz file\)"):
        MNIST(root, verify=True)


class _FakeResponse(io.BytesIO):
    def __init__(self, payload: bytes, on_read=None, fail_after: int | None = None):
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}
        self._on_read = on_read
        self._fail_after = fail_after

    def read(self, n=-1):
        if self._on_read is not None:
            self._on_read()
        if self._fail_after is not None and self.tell() >= self._fail_after:
            raise ConnectionResetError("connection reset by fake peer")
        return super().read(n if self._fail_after is None else min(n, 10))


class _FakeOpener:
    """Serves ``files`` (name -> bytes) for URLs under ``mirror``; records calls."""

    def __init__(self, mirror: str, files: dict[str, bytes], **response_kwargs):
        self.mirror = mirror
        self.files = files
        self.calls: list[str] = []
        self.response_kwargs = response_kwargs

    def __call__(self, request, timeout=None):
        url = getattr(request, "full_url", request)
        self.calls.append(url)
        assert timeout is not None  # never hang forever
        name = url.rsplit("/", 1)[-1]
        if not url.startswith(self.mirror) or name not in self.files:
            raise urllib.error.URLError("fake network: unreachable")
        return _FakeResponse(self.files[name], **self.response_kwargs)


MIRRORS = ("https://mirror-one.invalid/mnist/", "https://mirror-two.invalid/mnist/")


def test_download_good_checksum(tmp_path, monkeypatch):
    files = _gz_files(tmp_path)
    root = tmp_path / "data"
    raw = root / "MNIST" / "raw"
    monkeypatch.setattr(MNIST, "resources", _official(files))
    monkeypatch.setattr(MNIST, "mirrors", MIRRORS)

    opener = _FakeOpener(MIRRORS[0], files)
    monkeypatch.setattr(mnist_mod, "_urlopen", opener)
    ds = MNIST(root, train=True, download=True)
    assert sorted(p.name for p in raw.iterdir()) == sorted(files)  # no temporary left
    for name, blob in files.items():
        assert (raw / name).read_bytes() == blob
    assert sorted(opener.calls) == sorted(MIRRORS[0] + n for n in files)
    assert len(ds) == 6
    # Present files are not downloaded again.
    opener.calls.clear()
    assert len(MNIST(root, train=False, download=True)) == 4
    assert opener.calls == []


def test_download_streams_to_temp_then_renames(tmp_path, monkeypatch):
    files = _gz_files(tmp_path)
    root = tmp_path / "data"
    raw = root / "MNIST" / "raw"
    monkeypatch.setattr(MNIST, "resources", _official(files))
    monkeypatch.setattr(MNIST, "mirrors", MIRRORS)
    snapshots: list[tuple[str, set[str]]] = []  # (file being fetched, folder listing)

    def snapshot():
        snapshots.append((opener.calls[-1].rsplit("/", 1)[-1], os_listing(raw)))

    opener = _FakeOpener(MIRRORS[0], files, on_read=snapshot)
    monkeypatch.setattr(mnist_mod, "_urlopen", opener)
    MNIST(root, download=True)
    assert {name for name, _ in snapshots} == set(files)
    for name, listing in snapshots:
        # While a file streams, only its hidden temporary exists, never its final name.
        assert name not in listing
        temps = listing - set(files)
        assert len(temps) == 1
        (temp,) = temps
        assert temp.startswith(f".{name}.")
        assert temp.endswith(".part")
    assert os_listing(raw) == set(files)


def os_listing(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def test_download_falls_back_to_next_mirror(tmp_path, monkeypatch):
    files = _gz_files(tmp_path)
    monkeypatch.setattr(MNIST, "resources", _official(files))
    monkeypatch.setattr(MNIST, "mirrors", MIRRORS)
    opener = _FakeOpener(MIRRORS[1], files)  # the first mirror is "down"
    monkeypatch.setattr(mnist_mod, "_urlopen", opener)
    ds = MNIST(tmp_path / "d", train=False, download=True)
    assert len(ds) == 4
    assert len(opener.calls) == 8
    assert opener.calls[0].startswith(MIRRORS[0])


def test_download_bad_checksum_leaves_nothing(tmp_path, monkeypatch):
    files = _gz_files(tmp_path)
    monkeypatch.setattr(MNIST, "resources", _official(files))
    monkeypatch.setattr(MNIST, "mirrors", MIRRORS)
    tampered = {name: blob + b"\x00" for name, blob in files.items()}
    both = _FakeOpener("https://", tampered)  # every mirror serves bad bytes
    monkeypatch.setattr(mnist_mod, "_urlopen", both)
    root = tmp_path / "d"
    with pytest.raises(RuntimeError, match="SHA-256 mismatch") as exc:
        MNIST(root, download=True)
    msg = str(exc.value)
    assert MIRRORS[0] in msg
    assert MIRRORS[1] in msg
    assert os_listing(root / "MNIST" / "raw") == set()  # no file, no temporary


def test_download_interrupted_leaves_nothing(tmp_path, monkeypatch):
    files = _gz_files(tmp_path)
    monkeypatch.setattr(MNIST, "resources", _official(files))
    monkeypatch.setattr(MNIST, "mirrors", MIRRORS[:1])
    opener = _FakeOpener(MIRRORS[0], files, fail_after=20)
    monkeypatch.setattr(mnist_mod, "_urlopen", opener)
    root = tmp_path / "d"
    with pytest.raises(RuntimeError, match="connection reset"):
        MNIST(root, download=True)
    assert os_listing(root / "MNIST" / "raw") == set()


def test_download_accepts_recompressed_copy_by_content_checksum(tmp_path, monkeypatch):
    files = _gz_files(tmp_path)
    monkeypatch.setattr(MNIST, "resources", _official(files, idx_sha=True))
    monkeypatch.setattr(MNIST, "mirrors", MIRRORS)
    recompressed = {
        n: gzip.compress(gzip.decompress(b), compresslevel=1, mtime=1) for n, b in files.items()
    }
    assert all(recompressed[n] != files[n] for n in files)
    monkeypatch.setattr(mnist_mod, "_urlopen", _FakeOpener(MIRRORS[0], recompressed))
    assert len(MNIST(tmp_path / "d", download=True)) == 6


def test_download_without_tqdm(tmp_path, monkeypatch):
    files = _gz_files(tmp_path)
    monkeypatch.setattr(MNIST, "resources", _official(files))
    monkeypatch.setattr(MNIST, "mirrors", MIRRORS)
    monkeypatch.setattr(mnist_mod, "_urlopen", _FakeOpener(MIRRORS[0], files))
    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes `import tqdm...` fail
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    assert len(MNIST(tmp_path / "d", download=True)) == 6


def test_fashion_mnist_downloads_into_its_folder(tmp_path, monkeypatch):
    files = _gz_files(tmp_path)
    monkeypatch.setattr(FashionMNIST, "resources", _official(files))
    monkeypatch.setattr(FashionMNIST, "mirrors", MIRRORS)
    monkeypatch.setattr(mnist_mod, "_urlopen", _FakeOpener(MIRRORS[0], files))
    FashionMNIST(tmp_path / "d", download=True)
    assert os_listing(tmp_path / "d" / "FashionMNIST" / "raw") == set(files)


def test_published_checksum_tables_are_well_formed():
    for cls in (MNIST, FashionMNIST):
        assert set(cls.resources) == {
            f"{name}.gz" for pair in SPLIT_FILES.values() for name in pair
        }
        for gz_sha, idx_sha in cls.resources.values():
            assert len(gz_sha) == 64
            assert int(gz_sha, 16) >= 0
            assert idx_sha is None or (len(idx_sha) == 64 and int(idx_sha, 16) >= 0)
        assert len(cls.classes) == 10
        assert all(m.endswith("/") for m in cls.mirrors)


# --------------------------------------------------------------------- digits


def test_load_digits():
    images, labels = load_digits()
    assert images.shape == (1797, 8, 8)
    assert images.dtype == np.float32
    assert labels.shape == (1797,)
    assert labels.dtype == np.int64
    assert images.min() == 0.0
    assert images.max() == 1.0
    # Values are counts 0..16 divided by 16.
    np.testing.assert_array_equal(images * 16, np.round(images * 16))
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert labels[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    # The first image of scikit-learn's copy (a zero), row 0.
    assert (images[0, 0] * 16).tolist() == [0, 0, 5, 13, 9, 1, 0, 0]
    # Fresh arrays each call.
    images[:] = 7
    assert load_digits()[0].max() == 1.0


def test_digits_shipped_file_checksum():
    blob = (Path(digits_mod.__file__).parent / "data" / "digits.csv.gz").read_bytes()
    assert hashlib.sha256(blob).hexdigest() == DIGITS_SHA256


def test_digits_corrupt_file_detected(monkeypatch):
    monkeypatch.setattr(digits_mod, "DIGITS_SHA256", "0" * 64)
    digits_mod._load_raw.cache_clear()
    try:
        with pytest.raises(ValueError, match="corrupt"):
            load_digits()
    finally:
        monkeypatch.undo()
        digits_mod._load_raw.cache_clear()
    assert load_digits()[0].shape == (1797, 8, 8)


def test_digits_split_deterministic_disjoint_stratified():
    train, test = Digits(train=True), Digits(train=False)
    assert len(train) == 1438
    assert len(test) == 359
    assert set(train.indices).isdisjoint(test.indices)
    assert sorted(np.concatenate([train.indices, test.indices]).tolist()) == list(range(1797))
    images, labels = load_digits()
    np.testing.assert_array_equal(train.data, images[train.indices])
    np.testing.assert_array_equal(test.targets, labels[test.indices])
    assert train.data.dtype == np.float32
    assert train.data.shape == (1438, 8, 8)
    assert train.targets.dtype == np.int64
    # Stratified: every class holds out about test_fraction of its members.
    for c, n in enumerate(np.bincount(labels)):
        assert abs(np.sum(test.targets == c) - 0.2 * n) <= 0.5
    # Deterministic, and pinned (a change here changes every reported digits result).
    np.testing.assert_array_equal(Digits(train=False).indices, test.indices)
    assert test.indices[:8].tolist() == [5, 9, 12, 14, 16, 17, 19, 23]
    other = Digits(train=False, seed=1)
    assert len(other) == 359
    assert not np.array_equal(other.indices, test.indices)
    half = Digits(train=False, test_fraction=0.5)
    assert abs(len(half) - 1797 / 2) <= 10


def test_digits_split_pinned_values():
    _, test = split_indices(load_digits()[1], 0.2, 0)
    # Guards against a silent change of the split (e.g. numpy's generator).
    assert int(test.sum()) == _PINNED_TEST_SUM


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_digits_bad_fraction(fraction):
    with pytest.raises(ValueError, match="test_fraction"):
        Digits(test_fraction=fraction)


def test_digits_as_arrays():
    ds = Digits(train=False)
    x, y = ds.as_arrays()
    assert x.shape == (359, 1, 8, 8)
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x[:, 0], ds.data)
    np.testing.assert_array_equal(y, ds.targets)


def test_digits_getitem():
    ds = Digits(train=True, target_transform=str)
    image, label = ds[5]
    assert isinstance(image, tinytorch.Tensor)
    assert image.dtype == tinytorch.float32
    assert tuple(image.shape) == (1, 8, 8)
    pixels = np.asarray(image.data)
    assert pixels.shape == (1, 8, 8)
    assert pixels.dtype == np.float32
    np.testing.assert_array_equal(pixels[0], ds.data[5])
    assert label == str(int(ds.targets[5]))
    plain = Digits(train=True)
    assert type(plain[0][1]) is int
    pixels[...] = 0  # the Tensor must not alias the dataset's storage
    assert ds.data[5].max() > 0
    assert len(Digits(transform=lambda t: None)[0]) == 2
