"""Anomaly mode: find the first op that produced a NaN/inf, with the user's source line.

Inside ``detect_anomaly()`` every recorded node remembers where it was created
(the innermost frame outside tinytorch, plus the chain of tinytorch functions
the user's call went through, e.g. ``cross_entropy > log_softmax``). Outside
anomaly mode nothing is recorded: ``Node.apply`` tests one thread-local flag.

* forward: an op whose output contains NaN, or an inf that its (finite)
  inputs did not have, raises ``RuntimeError`` naming the op, the shapes and
  the line. Infs that only propagate (an attention mask filled with ``-inf``)
  are allowed, as they are legitimate;
* backward: a gradient with NaN/inf raises, naming the backward function, the
  forward op it belongs to and the line that created that op; any other
  exception raised inside a backward gets that line attached as a note;
* ``detect_anomaly(check_nan=False)`` records lines (for the notes) but
  checks no values.

The graph-retention watch (``autograd.diagnostics``) borrows the same hook
for a few steps when it suspects a leak; it never raises.
"""

from __future__ import annotations

import linecache
import os
import sys
import threading
from typing import Any

import numpy as np

from tinytorch.autograd.grad_mode import STATE

__all__ = ["detect_anomaly", "is_anomaly_check_nan_enabled", "is_anomaly_enabled",
           "set_detect_anomaly"]  # fmt: skip

# Frames from files under this folder are tinytorch's own; the training app
# in ``tinytorch/examples`` counts as user code.
_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_USER_DIRS = (os.path.join(_PKG_DIR, "examples") + os.sep,)
# Wrapper frames that say nothing about which function the user called.
_PLUMBING = {"apply", "__call__", "_call_impl", "_inplace", "_binary", "_broadcast_apply",
             "<lambda>", "<listcomp>", "wrapper", "record_forward", "inplace", "unary"}  # fmt: skip


class _AnomalyState(threading.local):
    def __init__(self) -> None:
        self.enabled = False  # the user asked for anomaly mode
        self.check_nan = True
        self.watch = False  # the retention watch needs the forward hook


_A = _AnomalyState()


def _sync() -> None:
    """``STATE.anomaly`` (the one flag the hot path reads) = anyone needs the hook."""
    STATE.anomaly = _A.enabled or _A.watch


def _set(enabled: bool, check_nan: bool) -> None:
    _A.enabled, _A.check_nan = bool(enabled), bool(check_nan)
    _sync()


def set_watch(on: bool) -> None:
    """Turn the forward hook on for the retention watch (``diagnostics``)."""
    _A.watch = on
    _sync()


class detect_anomaly:  # noqa: N801 - torch's name
    """Context manager (and decorator) enabling anomaly mode, as in torch.

    Costs one frame walk per recorded op and a finiteness check per op
    output and per gradient: use it to find a bug, not for training.
    """

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan

    def __enter__(self) -> None:
        self._prev = (_A.enabled, _A.check_nan)
        _set(True, self.check_nan)

    def __exit__(self, *exc: object) -> None:
        _set(*self._prev)

    def __call__(self, fn: Any) -> Any:
        import functools

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)

        return wrapper


class set_detect_anomaly:  # noqa: N801 - torch's name
    """Turn anomaly mode on or off now; as a context manager, restore it on exit."""

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        self._prev = (_A.enabled, _A.check_nan)
        _set(mode, check_nan)

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        _set(*self._prev)


def is_anomaly_enabled() -> bool:
    return _A.enabled


def is_anomaly_check_nan_enabled() -> bool:
    return _A.enabled and _A.check_nan


# --------------------------------------------------------------------------- where
def _is_internal(filename: str) -> bool:
    return filename.startswith(_PKG_DIR) and not filename.startswith(_USER_DIRS)


def user_frame() -> tuple[str, int, str, tuple[str, ...]] | None:
    """(file, line, function, tinytorch call chain) of the innermost user frame.

    Only file names and numbers are kept (not frame objects, which would keep
    every local variable of the forward alive); the source text is read when
    an error is formatted.
    """
    frame: Any = sys._getframe(1)
    chain: list[str] = []
    while frame is not None:
        code = frame.f_code
        filename = code.co_filename
        if not os.path.isabs(filename) and not filename.startswith("<"):
            filename = os.path.abspath(filename)
        if not _is_internal(filename):
            return filename, frame.f_lineno, code.co_name, tuple(reversed(chain))
        name = code.co_qualname
        if code.co_name not in _PLUMBING and not name.startswith(("Node.", "_")):
            chain.append(name)
        frame = frame.f_back
    return None


def format_where(where: tuple[str, int, str, tuple[str, ...]] | None) -> str:
    """``File "...", line N, in f`` plus the source line and the tinytorch call chain."""
    if where is None:
        return "    <not recorded: enable anomaly mode before running the forward>"
    filename, lineno, func, chain = where
    text = f'    File "{filename}", line {lineno}, in {func}'
    line = linecache.getline(filename, lineno).strip()
    if line:
        text += f"\n      {line}"
    if chain:
        text += f"\n    (inside tinytorch: {' > '.join(_dedupe(chain))})"
    return text


def _dedupe(chain: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for name in chain:
        if not out or out[-1] != name:
            out.append(name)
    return out


def op_name(node: Any) -> str:
    """``LogBackward0`` -> ``Log``; ``CubeBackward`` (a Function) -> ``Cube``."""
    name = node.name()
    for suffix in ("Backward0", "Backward"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _bad_kind(a: np.ndarray) -> str:
    """'nan', 'inf' or 'nan and inf' for an array known to be non-finite."""
    has_nan = bool(np.isnan(a).any())
    has_inf = bool(np.isinf(a).any())
    return " and ".join(k for k, b in (("nan", has_nan), ("inf", has_inf)) if b)


def _describe(a: np.ndarray) -> str:
    n_bad = int(a.size - np.count_nonzero(np.isfinite(a)))
    return f"shape {list(a.shape)} {a.dtype}, {n_bad} of {a.size} values non-finite"


# --------------------------------------------------------------------------- hooks
def record_forward(node: Any, out: np.ndarray, inputs: Any = ()) -> None:
    """Called by ``Node.apply`` / ``Function.apply`` for each recorded node when the
    hook is on: record the creation site, check the output, feed the watch."""
    if _A.watch:
        from tinytorch.autograd import diagnostics

        diagnostics.watch_forward(node)
    if not _A.enabled:
        return
    node._trace = user_frame()
    if not _A.check_nan or out.dtype.kind not in "fc" or np.isfinite(out).all():
        return
    in_arrays = [t.data for t in inputs if getattr(t, "data", None) is not None]
    bad_in = [i for i, a in enumerate(in_arrays)
              if a.dtype.kind in "fc" and not np.isfinite(a).all()]  # fmt: skip
    out_nan = bool(np.isnan(out).any())
    if not out_nan and bad_in:
        return  # an inf that was already there (e.g. a -inf attention mask): propagation
    shapes = ", ".join(f"{list(a.shape)} {a.dtype}" for a in in_arrays)
    msg = (
        f"Anomaly detected in forward: {op_name(node)} produced {_bad_kind(out)} "
        f"(output {_describe(out)}; inputs: {shapes or 'none'}).\n"
        f"  The op was created at:\n{format_where(node._trace)}"
    )
    if bad_in:
        msg += (
            f"\n  Input {bad_in[0]} was already non-finite "
            f"({_describe(in_arrays[bad_in[0]])}): the bad values come from before this op, "
            f"e.g. from the data or from parameters changed outside autograd."
        )
    raise RuntimeError(msg)


def call_backward(node: Any, grad_out: Any) -> Any:
    """Run ``node.backward`` in anomaly mode: attach the creation site to errors."""
    try:
        return node.backward(grad_out)
    except Exception as e:
        note = (
            f"The failing backward is {node.name()}, of the forward op {op_name(node)} "
            f"created at:\n{format_where(node._trace)}"
        )
        if hasattr(e, "add_note"):  # Python 3.11+
            e.add_note(note)
        else:  # Python 3.10: chain a RuntimeError that carries the note
            raise RuntimeError(f"{e}\n{note}") from e
        raise


def check_backward(node: Any, grads: tuple[Any, ...]) -> None:
    """Raise if a backward returned NaN/inf (``check_nan``), naming the forward op."""
    if not (_A.enabled and _A.check_nan):
        return
    for i, g in enumerate(grads):
        if g is None:
            continue
        a = g.data
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            raise RuntimeError(
                f"Function '{node.name()}' returned {_bad_kind(a)} values in its {i}th output "
                f"(the gradient w.r.t. input {i} of the forward op {op_name(node)}: "
                f"{_describe(a)}).\n"
                f"  The forward op was created at:\n{format_where(node._trace)}"
            )
