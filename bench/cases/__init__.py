"""Registry of benchmark cases (one small module each, see :mod:`bench.cases._common`)."""

from __future__ import annotations

import importlib
from types import ModuleType

CASE_NAMES: tuple[str, ...] = (
    "mlp",
    "overhead",
    "conv",
    "cnn",
    "lstm",
    "transformer",
    "adam",
    "gradpen",
    "mnist",
)
"""Case modules in the order they are run and shown."""


def load(name: str) -> ModuleType:
    """Import the case module called ``name``."""
    if name not in CASE_NAMES:
        raise KeyError(f"unknown case {name!r}; expected one of {', '.join(CASE_NAMES)}")
    return importlib.import_module(f"bench.cases.{name}")
