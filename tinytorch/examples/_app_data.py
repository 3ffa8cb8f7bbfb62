"""Image-classification data for the training app: whole splits as numpy arrays.

The app trains from arrays wrapped in a ``TensorDataset`` (the loader's fast
path) rather than from per-sample ``__getitem__`` calls, and standardises the
pixels with the training split's mean and standard deviation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["DATASETS", "DEFAULT_DATA_DIR", "ImageData", "load_image_data"]

DATASETS = ("digits", "mnist", "fashion-mnist")

#: Where MNIST-style files are looked for (and downloaded to) without ``--data-dir``;
#: the readers also look under ``<dir>/MNIST/raw`` and ``<dir>/FashionMNIST/raw``.
DEFAULT_DATA_DIR = Path("~/.cache/tinytorch/datasets")


@dataclass
class ImageData:
    """Both splits of a dataset. Images are float32 (N, C, H, W) in [0, 1]."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: list[str]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train_images.shape[1:]
        return int(c), int(h), int(w)

    def normalized(self) -> tuple[np.ndarray, np.ndarray]:
        """Train and test images standardised with the training mean and std (float32)."""
        mean = np.float32(self.train_images.mean())
        std = np.float32(self.train_images.std() + 1e-8)
        return (self.train_images - mean) / std, (self.test_images - mean) / std


def load_image_data(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    limit_train: int | None = None,
    limit_test: int | None = None,
) -> ImageData:
    """Load ``name`` (one of :data:`DATASETS`), optionally keeping only the first samples.

    Raises:
        ValueError: an unknown dataset or a non-positive limit.
        FileNotFoundError: MNIST files missing (the message says where and how to get them).
    """
    from tinytorch import datasets  # lazy: keeps ``--help`` fast

    train: datasets.Digits | datasets.MNIST
    test: datasets.Digits | datasets.MNIST
    if name == "digits":
        train, test = datasets.Digits(train=True), datasets.Digits(train=False)
        classes = list(train.classes)
    elif name in ("mnist", "fashion-mnist"):
        cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
        root = Path(data_dir if data_dir is not None else DEFAULT_DATA_DIR).expanduser()
        train = cls(root, train=True, download=download)
        test = cls(root, train=False, download=download)
        classes = list(train.classes)
    else:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    x_train, y_train = train.as_arrays()
    x_test, y_test = test.as_arrays()
    for flag, limit in (("--limit-train", limit_train), ("--limit-test", limit_test)):
        if limit is not None and limit <= 0:
            raise ValueError(f"{flag} must be positive, got {limit}")
    if limit_train is not None:
        x_train, y_train = x_train[:limit_train], y_train[:limit_train]
    if limit_test is not None:
        x_test, y_test = x_test[:limit_test], y_test[:limit_test]
    return ImageData(name, x_train, y_train, x_test, y_test, classes)
