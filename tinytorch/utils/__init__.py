"""Utilities, as ``torch.utils``: ``tinytorch.utils.data``."""

from tinytorch.utils import data

__all__ = ["data"]
