"""Named tuples returned by ops that give several results (as ``torch.return_types``)."""

from __future__ import annotations

from typing import Any, NamedTuple


class MinMax(NamedTuple):
    """``(values, indices)`` from ``max(dim)`` / ``min(dim)``."""

    values: Any
    indices: Any
