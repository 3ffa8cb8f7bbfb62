"""MNIST and Fashion-MNIST, read from the standard IDX files (torchvision-compatible API).

Where the files are looked for
    ``MNIST(root)`` needs, for the training split, ``train-images-idx3-ubyte`` and
    ``train-labels-idx1-ubyte`` (test split: ``t10k-images-idx3-ubyte`` and
    ``t10k-labels-idx1-ubyte``), each either raw or gzip-compressed (an optional
    ``.gz`` suffix; compression is recognised by content). They are looked for in
    ``root`` itself and then in ``root/MNIST/raw`` (torchvision's layout;
    ``root/FashionMNIST/raw`` for Fashion-MNIST); the first folder holding both
    files of the split wins, and in a folder an uncompressed file is preferred.

What is checked, and when (the checksum rule)
    * Every load validates structure completely: IDX header and sizes (see
      :func:`~tinytorch.datasets.idx.read_idx`), uint8 images of shape (N, 28, 28),
      uint8 labels of shape (N,), equal N, labels 0..9. A gzip file is also
      protected by gzip's own CRC-32, checked while decompressing.
    * Downloads are checked against SHA-256 checksums before they are moved into
      place; a mismatch is an error and leaves no file behind. A download passes
      if the bytes equal the published ``.gz`` file or, for MNIST, if they
      decompress to the published IDX content (so a mirror that re-compressed
      the same data is accepted).
    * Files already on disk are *not* required to match any checksum: a
      correctly structured file, such as an un-gzipped or re-compressed copy or
      your own data in MNIST format, loads. Pass ``verify=True`` to require the
      official data; then each file must equal the published ``.gz`` bytes or
      (MNIST only, for which the decompressed checksums are known) decompress to
      the published IDX content.

Checksums
    MNIST ``.gz`` SHA-256s: the published values for the files served by
    https://ossci-datasets.s3.amazonaws.com/mnist/ (the torchvision mirror; they
    match torchvision's MD5s). MNIST IDX SHA-256s: computed from the decompressed
    data, which also equals the published values. Fashion-MNIST ``.gz`` SHA-256s:
    the published values for the files of
    https://github.com/zalandoresearch/fashion-mnist (whose MD5s are in its
    README); no decompressed checksums are pinned for Fashion-MNIST.
"""

from __future__ import annotations

import gzip
import hashlib
import operator
import os
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .idx import read_idx

__all__ = ["MNIST", "FashionMNIST"]

# Module-level indirection so tests (and users behind proxies) can substitute
# the opener; it is looked up at call time.
_urlopen = urllib.request.urlopen
_TIMEOUT_S = 60
_CHUNK = 1 << 16


class _ChecksumMismatchError(Exception):
    pass


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _sha256_payload(path: Path) -> str:
    """SHA-256 of the file's content after gzip decompression (if it is gzip)."""
    with open(path, "rb") as f:
        is_gzip = f.read(2) == b"\x1f\x8b"
    if not is_gzip:
        return _sha256_file(path)
    h = hashlib.sha256()
    with gzip.open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int | None, desc: str) -> Any:
    """A tqdm bar when tqdm is installed (an optional dependency), else a no-op."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _NoProgress()
    # disable=None: tqdm turns itself off when stderr is not a terminal.
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, disable=None)


class MNIST:
    """The MNIST handwritten digits: 60,000 training and 10,000 test images, 28x28.

    See the module docstring for where files are looked for and for the
    checksum rule.

    Args:
        root: folder holding the IDX files, directly or under ``MNIST/raw``.
        train: the training split if true, else the test split.
        transform: called on each image Tensor (float32, shape (1, 28, 28),
            values in [0, 1]) in ``__getitem__``.
        target_transform: called on each label (a Python int).
        download: fetch missing files into ``root/MNIST/raw`` first (files
            already present anywhere they are looked for are not fetched again).
        verify: require every file to be the official data (see the module
            docstring); by default only the structure is checked.

    Attributes:
        data: uint8 array (N, 28, 28).
        targets: int64 array (N,), values 0..9.
        classes: class names, as in torchvision.

    Raises:
        FileNotFoundError: a file is missing; the message names it, the folders
            searched and suggests ``download=True``.
        ValueError: a file is malformed, the image and label counts differ, a
            label is outside 0..9, or ``verify=True`` and a checksum differs.
        RuntimeError: ``download=True`` and a file could be fetched from no mirror
            (network error or checksum mismatch at every mirror).
    """

    #: Tried in order; each file is fetched from the first mirror that works.
    mirrors: ClassVar[tuple[str, ...]] = (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    )
    #: file name -> (SHA-256 of the published .gz file, SHA-256 of the
    #: decompressed IDX file or None when not pinned).
    resources: ClassVar[dict[str, tuple[str, str | None]]] = {
        "train-images-idx3-ubyte.gz": (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        ),
        "train-labels-idx1-ubyte.gz": (
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        ),
        "t10k-images-idx3-ubyte.gz": (
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
    }
    classes: ClassVar[list[str]] = [
        "0 - zero",
        "1 - one",
        "2 - two",
        "3 - three",
        "4 - four",
        "5 - five",
        "6 - six",
        "7 - seven",
        "8 - eight",
        "9 - nine",
    ]
    _image_shape: ClassVar[tuple[int, int]] = (28, 28)

    def __init__(
        self,
        root: str | os.PathLike[str],
        train: bool = True,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        download: bool = False,
        verify: bool = False,
    ) -> None:
        self.root = Path(root).expanduser()
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        if download:
            self.download()
        images_path, labels_path = self._find_split_files()
        if verify:
            self._verify(images_path)
            self._verify(labels_path)
        images = read_idx(images_path)
        labels = read_idx(labels_path)
        self._validate(images, images_path, labels, labels_path)
        self.data: np.ndarray = images
        self.targets: np.ndarray = labels.astype(np.int64)

    # ----------------------------------------------------------------- locations

    @property
    def raw_folder(self) -> Path:
        """``root/<ClassName>/raw``: torchvision's layout, and where downloads go."""
        return self.root / type(self).__name__ / "raw"

    @property
    def _split_names(self) -> tuple[str, str]:
        prefix = "train" if self.train else "t10k"
        return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"

    def _search_dirs(self) -> list[Path]:
        return [self.root, self.raw_folder]

    @staticmethod
    def _find_in(folder: Path, base: str) -> Path | None:
        # Uncompressed first: it loads faster, and torchvision keeps both.
        for name in (base, base + ".gz"):
            candidate = folder / name
            if candidate.is_file():
                return candidate
        return None

    def _find_split_files(self) -> tuple[Path, Path]:
        images_base, labels_base = self._split_names
        for folder in self._search_dirs():
            images = self._find_in(folder, images_base)
            labels = self._find_in(folder, labels_base)
            if images is not None and labels is not None:
                return images, labels
        missing = [
            f"{base}[.gz]"
            for base in (images_base, labels_base)
            if all(self._find_in(d, base) is None for d in self._search_dirs())
        ]
        split = "training" if self.train else "test"
        name = type(self).__name__
        if missing:
            what = f"missing {' and '.join(missing)}"
        else:  # each file exists, but not both in the same folder
            what = f"{images_base} and {labels_base} must be in the same folder"
        searched = " and ".join(str(d) for d in self._search_dirs())
        raise FileNotFoundError(
            f"{name} {split} files not found: {what} (searched {searched}). "
            f"Pass download=True to download them into {self.raw_folder}, "
            "or copy the files into one of those folders."
        )

    # ------------------------------------------------------------------ download

    def _have(self, filename: str) -> bool:
        base = filename.removesuffix(".gz")
        return any(self._find_in(d, base) is not None for d in self._search_dirs())

    def download(self) -> None:
        """Fetch every file of both splits that is not already present.

        Files go to :attr:`raw_folder`. Each is streamed to a temporary file in
        that folder, its SHA-256 checked, and only then renamed into place
        (``os.replace``, atomic), so an interrupted or corrupt download never
        leaves a file under the final name.

        Raises:
            RuntimeError: no mirror delivered a file with the right checksum.
        """
        for filename in self.resources:
            if self._have(filename):
                continue
            self.raw_folder.mkdir(parents=True, exist_ok=True)
            errors = []
            for mirror in self.mirrors:
                url = mirror + filename
                try:
                    self._fetch(url, self.raw_folder / filename, *self.resources[filename])
                    break
                except (OSError, _ChecksumMismatchError) as exc:  # URLError is an OSError
                    errors.append(f"{url}: {exc}")
            else:
                raise RuntimeError(
                    f"could not download {filename} for {type(self).__name__}:\n  "
                    + "\n  ".join(errors)
                )

    @staticmethod
    def _fetch(url: str, dest: Path, sha256: str, idx_sha256: str | None) -> None:
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            request = urllib.request.Request(url, headers={"User-Agent": "tinytorch"})
            with os.fdopen(fd, "wb") as out, _urlopen(request, timeout=_TIMEOUT_S) as response:
                headers = getattr(response, "headers", None)
                length = headers.get("Content-Length") if headers is not None else None
                bar = _progress(int(length) if length else None, dest.name)
                try:
                    while chunk := response.read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
                finally:
                    bar.close()
                out.flush()
                os.fsync(out.fileno())
            actual = digest.hexdigest()
            if actual != sha256 and (idx_sha256 is None or _sha256_payload(tmp) != idx_sha256):
                raise _ChecksumMismatchError(f"SHA-256 mismatch: expected {sha256}, got {actual}")
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    # ---------------------------------------------------------------- validation

    def _verify(self, path: Path) -> None:
        sha256, idx_sha256 = self.resources[path.name.removesuffix(".gz") + ".gz"]
        if _sha256_file(path) == sha256:
            return
        if idx_sha256 is not None and _sha256_payload(path) == idx_sha256:
            return
        accepted = "the published .gz file" + (
            "" if idx_sha256 is None else " or its decompressed content"
        )
        raise ValueError(
            f"{path}: verify=True but the file is not the official {type(self).__name__} "
            f"data (its SHA-256 matches neither {accepted})"
        )

    def _validate(
        self, images: np.ndarray, images_path: Path, labels: np.ndarray, labels_path: Path
    ) -> None:
        h, w = self._image_shape
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (h, w):
            raise ValueError(
                f"{images_path}: expected uint8 images of shape (N, {h}, {w}), "
                f"got {images.dtype} {images.shape}"
            )
        if labels.dtype != np.uint8 or labels.ndim != 1:
            raise ValueError(
                f"{labels_path}: expected uint8 labels of shape (N,), "
                f"got {labels.dtype} {labels.shape}"
            )
        if len(images) != len(labels):
            raise ValueError(
                f"image/label count mismatch: {images_path} has {len(images)} images "
                f"but {labels_path} has {len(labels)} labels"
            )
        n_classes = len(self.classes)
        bad = np.flatnonzero(labels >= n_classes)
        if bad.size:
            raise ValueError(
                f"{labels_path}: labels must be in 0..{n_classes - 1}, found "
                f"{int(labels[bad[0]])} at index {int(bad[0])} ({bad.size} bad labels)"
            )

    # ------------------------------------------------------------------- access

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        """Return ``(image, label)`` after the transforms.

        Before ``transform``, ``image`` is a float32 Tensor (1, 28, 28) with values
        in [0, 1] (pixel / 255, as torchvision's ``ToTensor``); before
        ``target_transform``, ``label`` is a Python int.
        """
        import tinytorch  # lazy: tinytorch/__init__ may import this package

        i = operator.index(index)
        pixels = self.data[i].astype(np.float32)
        pixels /= np.float32(255.0)
        image: Any = tinytorch.from_numpy(pixels[None])
        target: Any = int(self.targets[i])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def as_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole split at once, for fast training loops (transforms not applied).

        Returns:
            ``(images, labels)``: float32 (N, 1, 28, 28) in [0, 1] (equal to
            stacking ``__getitem__``'s images) and int64 (N,); new arrays.
        """
        images = self.data.astype(np.float32)
        images /= np.float32(255.0)  # in place: no second N x 784 temporary
        return images[:, None], self.targets.copy()

    def __repr__(self) -> str:
        split = "Train" if self.train else "Test"
        return (
            f"Dataset {type(self).__name__}\n"
            f"    Number of datapoints: {len(self)}\n"
            f"    Root location: {self.root}\n"
            f"    Split: {split}"
        )


class FashionMNIST(MNIST):
    """Fashion-MNIST (Zalando): 28x28 images of 10 kinds of clothing, MNIST's format.

    Same API, layout (``root/FashionMNIST/raw``) and checksum rule as
    :class:`MNIST`. Only the published ``.gz`` SHA-256s are pinned, so
    ``verify=True`` accepts only the original ``.gz`` files.
    """

    mirrors: ClassVar[tuple[str, ...]] = (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    )
    resources: ClassVar[dict[str, tuple[str, str | None]]] = {
        "train-images-idx3-ubyte.gz": (
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            None,
        ),
        "train-labels-idx1-ubyte.gz": (
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            None,
        ),
        "t10k-images-idx3-ubyte.gz": (
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            None,
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            None,
        ),
    }
    classes: ClassVar[list[str]] = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]
