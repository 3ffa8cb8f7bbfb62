"""Datasets: the bundled 8x8 digits, MNIST / Fashion-MNIST, and the IDX file format.

* :func:`load_digits` / :class:`Digits`: 1,797 8x8 digit images shipped inside
  the package (no download), for tests, examples and CI.
* :class:`MNIST` / :class:`FashionMNIST`: torchvision-compatible readers of the
  standard IDX files, with checksum-verified, atomic ``download=True``.
* :func:`read_idx` / :func:`write_idx`: the IDX format itself.

Datasets return ``(image, label)`` pairs where ``image`` is a float32 tinytorch
Tensor (C, H, W) in [0, 1] and ``label`` a Python int; each also offers
``as_arrays()`` to get all samples as numpy arrays at once.
"""

from .digits import Digits, load_digits
from .idx import read_idx, write_idx
from .mnist import MNIST, FashionMNIST

__all__ = ["MNIST", "Digits", "FashionMNIST", "load_digits", "read_idx", "write_idx"]
