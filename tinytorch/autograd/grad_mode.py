"""Thread-local gradient mode: ``no_grad``, ``enable_grad``, ``set_grad_enabled``."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class _GradState(threading.local):
    def __init__(self) -> None:
        self.enabled = True
        self.anomaly = False


STATE = _GradState()


def is_grad_enabled() -> bool:
    """Whether operations on tensors that require grad are being recorded."""
    return STATE.enabled


class _GradModeContext:
    """Base for the grad-mode switches: a context manager and a decorator."""

    _mode: bool

    def __enter__(self) -> None:
        self._prev = STATE.enabled
        STATE.enabled = self._mode

    def __exit__(self, *exc: object) -> None:
        STATE.enabled = self._prev

    def __call__(self, fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            prev = STATE.enabled
            STATE.enabled = self._mode
            try:
                return fn(*args, **kwargs)
            finally:
                STATE.enabled = prev

        return wrapper  # type: ignore[return-value]


class no_grad(_GradModeContext):  # noqa: N801 - torch's name
    """Disable graph recording inside the block (or the decorated function)."""

    _mode = False


class enable_grad(_GradModeContext):  # noqa: N801 - torch's name
    """Enable graph recording inside the block (or the decorated function)."""

    _mode = True


class set_grad_enabled(_GradModeContext):  # noqa: N801 - torch's name
    """Set grad mode to ``mode``; takes effect immediately, like torch's.

    Usable as a function call, a context manager (restores the previous mode
    on exit) or a decorator.
    """

    def __init__(self, mode: bool) -> None:
        self._mode = bool(mode)
        self._prev = STATE.enabled
        STATE.enabled = self._mode

    def __enter__(self) -> None:
        pass

    def __call__(self, fn: F) -> F:
        STATE.enabled = self._prev
        return super().__call__(fn)
