"""Anomaly mode: find the first op that produced a NaN/inf, with the user's source line.

Only in anomaly mode does each node record where it was created, so normal
runs pay nothing.
"""

from __future__ import annotations

import traceback
from typing import Any

import numpy as np

from tinytorch.autograd.grad_mode import STATE


class detect_anomaly:  # noqa: N801 - torch's name
    """Context manager: raise at the first non-finite forward output or backward gradient."""

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan

    def __enter__(self) -> None:
        self._prev = STATE.anomaly
        STATE.anomaly = self.check_nan

    def __exit__(self, *exc: object) -> None:
        STATE.anomaly = self._prev


def set_detect_anomaly(mode: bool) -> None:
    STATE.anomaly = bool(mode)


def is_anomaly_enabled() -> bool:
    return STATE.anomaly


def _user_line() -> str:
    for frame in reversed(traceback.extract_stack()[:-3]):
        if "/tinytorch/" not in frame.filename.replace("\\", "/"):
            where = f'File "{frame.filename}", line {frame.lineno}, in {frame.name}'
            return f"{where}\n    {frame.line}"
    return "<unknown>"


def record_forward(node: Any, out: np.ndarray) -> None:
    node._trace = _user_line()
    if out.dtype.kind == "f" and not np.all(np.isfinite(out)):
        raise RuntimeError(
            f"Anomaly detected: {node.name()[: -len('Backward0')]} produced a non-finite "
            f"output of shape {list(out.shape)} in forward. The op was created at:\n"
            f"{node._trace}"
        )


def check_backward(node: Any, grads: tuple[Any, ...]) -> None:
    for i, g in enumerate(grads):
        if g is not None and g.data.dtype.kind == "f" and not np.all(np.isfinite(g.data)):
            raise RuntimeError(
                f"Function '{node.name()}' returned nan values in its {i}th output "
                f"(gradient of shape {list(g.data.shape)}). The forward op was created at:\n"
                f"{node._trace or '<not recorded: enable anomaly mode before the forward>'}"
            )
