"""The bundled 8x8 handwritten-digits dataset (UCI "Optical Recognition of Handwritten Digits").

1,797 grey-scale 8x8 images of the digits 0-9 with pixel values 0..16 (the number
of "on" pixels in each 4x4 block of a 32x32 bitmap). The file shipped in
``tinytorch/datasets/data/digits.csv.gz`` is byte-identical to the one that
scikit-learn bundles; see ``data/README.md`` for its source, licence (CC BY 4.0)
and checksum. It needs no download, which makes it the dataset for tests,
examples and CI.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import math
import operator
from collections.abc import Callable
from importlib import resources
from typing import Any, ClassVar

import numpy as np

__all__ = ["DIGITS_SHA256", "Digits", "load_digits"]

#: SHA-256 of ``data/digits.csv.gz`` (scikit-learn 1.9.1's copy); checked on every load.
DIGITS_SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"
_N_SAMPLES = 1797
_FILE = "digits.csv.gz"


@functools.lru_cache(maxsize=1)
def _load_raw() -> tuple[np.ndarray, np.ndarray]:
    """Parse and validate the bundled CSV once; arrays are read-only, callers copy."""
    blob = resources.files(__package__).joinpath("data").joinpath(_FILE).read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != DIGITS_SHA256:
        raise ValueError(
            f"tinytorch/datasets/data/{_FILE} is corrupt: SHA-256 {digest}, expected "
            f"{DIGITS_SHA256}; reinstall tinytorch"
        )
    # 65 comma-separated integers per row: 64 pixels (row-major 8x8), then the label.
    table = np.loadtxt(io.StringIO(gzip.decompress(blob).decode("ascii")), delimiter=",")
    if table.shape != (_N_SAMPLES, 65):
        raise ValueError(f"{_FILE}: expected shape ({_N_SAMPLES}, 65), got {table.shape}")
    pixels = table[:, :64].astype(np.uint8).reshape(-1, 8, 8)
    labels = table[:, 64].astype(np.int64)
    if pixels.max() > 16 or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{_FILE}: values out of range (pixels 0..16, labels 0..9)")
    pixels.flags.writeable = False
    labels.flags.writeable = False
    return pixels, labels


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """Load the whole digits dataset.

    Returns:
        ``(images, labels)``: ``images`` float32 of shape (1797, 8, 8) with values
        in [0, 1] (the 0..16 counts divided by 16); ``labels`` int64 of shape
        (1797,) with values 0..9. Both are fresh arrays the caller may modify.

    Raises:
        ValueError: the bundled file fails its SHA-256 check or does not parse.
    """
    pixels, labels = _load_raw()
    return pixels.astype(np.float32) / np.float32(16.0), labels.copy()


def split_indices(
    labels: np.ndarray, test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic stratified train/test split of ``range(len(labels))``.

    For each class ``c`` (in increasing order) the indices of that class are
    permuted with one ``numpy.random.default_rng(seed)`` generator, the first
    ``floor(n_c * test_fraction + 0.5)`` go to the test set and the rest to the
    training set; each set is returned sorted. The two sets are disjoint, cover
    every index, and have (up to rounding) the class proportions of the whole.

    Returns:
        ``(train_indices, test_indices)``, int64 arrays.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    test: list[np.ndarray] = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        test.append(members[: math.floor(len(members) * test_fraction + 0.5)])
    test_idx = np.sort(np.concatenate(test)).astype(np.int64)
    mask = np.ones(len(labels), dtype=bool)
    mask[test_idx] = False
    return np.flatnonzero(mask).astype(np.int64), test_idx


class Digits:
    """The 8x8 digits as a map-style dataset with a fixed train/test split.

    The split is stratified by class and depends only on ``test_fraction`` and
    ``seed`` (see :func:`split_indices`): with the defaults, 1,438 training and
    359 test images, the same on every machine. ``Digits(train=True)`` and
    ``Digits(train=False)`` with equal ``test_fraction`` and ``seed`` are disjoint
    and together cover all 1,797 images.

    Args:
        train: the training part if true, else the test part.
        transform: called on each image Tensor (shape (1, 8, 8)) in ``__getitem__``.
        target_transform: called on each label (a Python int).
        test_fraction: share of each class held out for the test part, in (0, 1).
        seed: seed of the split.

    Attributes:
        data: float32 array (N, 8, 8), values in [0, 1].
        targets: int64 array (N,), values 0..9.
        indices: int64 array (N,): each sample's row in :func:`load_digits`.
        classes: the class names ``"0"`` .. ``"9"``.
    """

    classes: ClassVar[list[str]] = [str(i) for i in range(10)]

    def __init__(
        self,
        train: bool = True,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        test_fraction: float = 0.2,
        seed: int = 0,
    ) -> None:
        images, labels = load_digits()
        train_idx, test_idx = split_indices(labels, test_fraction, seed)
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        self.test_fraction = test_fraction
        self.seed = seed
        self.indices = train_idx if train else test_idx
        self.data: np.ndarray = images[self.indices]
        self.targets: np.ndarray = labels[self.indices]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        """Return ``(image, label)``: a float32 Tensor (1, 8, 8) and an int, then transforms."""
        import tinytorch  # lazy: tinytorch/__init__ may import this package

        i = operator.index(index)
        image: Any = tinytorch.from_numpy(self.data[i][None].copy())
        target: Any = int(self.targets[i])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def as_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All samples at once: float32 (N, 1, 8, 8) in [0, 1] and int64 (N,), copies.

        Transforms are not applied. Meant for wrapping in a TensorDataset.
        """
        return self.data[:, None].copy(), self.targets.copy()

    def __repr__(self) -> str:
        split = "train" if self.train else "test"
        return (
            f"Digits(split={split}, samples={len(self)}, "
            f"test_fraction={self.test_fraction}, seed={self.seed})"
        )
