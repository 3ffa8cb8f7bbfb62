"""``assert_close``, as ``torch.testing.assert_close``.

It accepts tinytorch tensors, torch tensors, numpy arrays, Python
numbers and (nested) sequences or mappings of them, so one call can compare a
tinytorch result with a torch one. The closeness rule and the default
tolerances are torch's::

    |actual - expected| <= atol + rtol * |expected|     (elementwise)

    dtype            rtol     atol
    float16          1e-3     1e-5
    float32          1.3e-6   1e-5
    float64          1e-7     1e-7
    integers, bool   0        0       (exact)

NaNs are equal only with ``equal_nan=True``; infinities must match exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["assert_close", "default_tolerances", "differences", "to_numpy", "within"]

_TOLERANCES = {
    "float16": (1e-3, 1e-5),
    "bfloat16": (1.6e-2, 1e-5),
    "float32": (1.3e-6, 1e-5),
    "float64": (1e-7, 1e-7),
    "complex64": (1.3e-6, 1e-5),
    "complex128": (1e-7, 1e-7),
}


def default_tolerances(*dtype_names: str) -> tuple[float, float]:
    """torch's default ``(rtol, atol)`` for the given dtypes (the loosest of them)."""
    pairs = [_TOLERANCES.get(name, (0.0, 0.0)) for name in dtype_names]
    return max(p[0] for p in pairs), max(p[1] for p in pairs)


def _is_tensor_like(x: Any) -> bool:
    """tinytorch/torch tensors and numpy arrays (checked without importing torch)."""
    if isinstance(x, np.ndarray):
        return True
    mod = type(x).__module__
    return hasattr(x, "shape") and hasattr(x, "dtype") and mod.split(".")[0] in (
        "tinytorch", "torch")  # fmt: skip


def to_numpy(x: Any) -> tuple[np.ndarray, str, str]:
    """(array, dtype name, library) of a tensor-like or a Python number."""
    if isinstance(x, np.ndarray):
        return x, str(x.dtype), "numpy"
    lib = type(x).__module__.split(".")[0]
    if lib == "tinytorch":
        return np.asarray(x.data), x.dtype.name, lib
    if lib == "torch":
        name = str(x.dtype).removeprefix("torch.")
        t = x.detach().cpu().resolve_conj()
        if name == "bfloat16":
            t = t.float()
        return t.numpy(), name, lib
    if isinstance(x, (bool, np.bool_)):
        return np.asarray(x), "bool", "python"
    if isinstance(x, (int, np.integer)):
        return np.asarray(x, dtype=np.int64), "int64", "python"
    if isinstance(x, (float, np.floating)):
        return np.asarray(x, dtype=np.float64), "float64", "python"
    if isinstance(x, complex):
        return np.asarray(x, dtype=np.complex128), "complex128", "python"
    raise TypeError(f"assert_close: no comparison for an input of type {type(x).__name__}")


def _fmt_dtype(lib: str, name: str) -> str:
    return name if lib == "python" else f"{lib}.{name}"


def _fmt_shape(lib: str, shape: tuple[int, ...]) -> str:
    return f"{'torch' if lib == 'torch' else 'tinytorch'}.Size({list(shape)})"


def _fmt_index(idx: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(i) for i in idx) + ("," if len(idx) == 1 else "") + ")"


def differences(actual: np.ndarray, expected: np.ndarray, equal_nan: bool = False
                ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Elementwise absolute and relative differences: 0 where both agree (equal
    infinities; NaNs with ``equal_nan``), inf where only ``expected`` is 0."""
    a = actual.astype(np.complex128 if actual.dtype.kind == "c" else np.float64)
    e = expected.astype(a.dtype)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        abs_diff = np.abs(a - e)
        same = a == e
        if equal_nan:
            same |= np.isnan(a) & np.isnan(e)
        abs_diff = np.where(same, 0.0, abs_diff)
        rel = np.where(abs_diff == 0, 0.0, abs_diff / np.abs(e))
    return abs_diff, rel


def within(abs_diff: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """``|a - e| <= atol + rtol * |e|``, where an infinite ``e`` allows no difference
    (``inf <= inf`` would otherwise accept any finite value against inf)."""
    e = np.abs(expected.astype(np.complex128 if expected.dtype.kind == "c" else np.float64))
    with np.errstate(invalid="ignore"):
        return (abs_diff == 0) | (abs_diff <= atol + rtol * np.where(np.isfinite(e), e, 0.0))


def _worst(diff: np.ndarray, bad: np.ndarray) -> tuple[int, ...]:
    """Index of the largest difference among mismatches (a NaN counts as largest)."""
    key = np.where(bad, np.where(np.isnan(diff), np.inf, diff), -1.0)
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(key)), bad.shape))


def _mismatch_message(a: np.ndarray, e: np.ndarray, bad: np.ndarray, rtol: float, atol: float,
                      exact: bool, scalar: bool, equal_nan: bool) -> str:  # fmt: skip
    abs_diff, rel = differences(a, e, equal_nan)
    kind = "Scalars" if scalar else "Tensor-likes"
    verb = "equal" if exact else "close"
    if scalar:
        lines = [f"{kind} are not {verb}!", "", f"Expected {e.item()} but got {a.item()}.",
                 f"Absolute difference: {abs_diff.item()}"
                 + ("" if exact else f" (up to {atol} allowed)"),
                 f"Relative difference: {rel.item()}"
                 + ("" if exact else f" (up to {rtol} allowed)")]  # fmt: skip
        return "\n".join(lines)
    n_bad, n = int(bad.sum()), bad.size
    ia = _worst(abs_diff, bad)
    ir = _worst(rel, bad)
    worst_abs = int(abs_diff[ia]) if exact else abs_diff[ia]  # torch prints ints as ints
    lines = [
        f"{kind} are not {verb}!",
        "",
        f"Mismatched elements: {n_bad} / {n} ({100 * n_bad / n:.1f}%)",
        f"Greatest absolute difference: {worst_abs} at index {_fmt_index(ia)}"
        + ("" if exact else f" (up to {atol} allowed)"),
        f"Greatest relative difference: {rel[ir]} at index {_fmt_index(ir)}"
        + ("" if exact else f" (up to {rtol} allowed)"),
    ]
    return "\n".join(lines)


def _compare_leaf(actual: Any, expected: Any, rtol: float | None, atol: float | None,
                  equal_nan: bool, check_dtype: bool) -> str | None:  # fmt: skip
    """None if close, else torch's mismatch message."""
    a, a_name, a_lib = to_numpy(actual)
    e, e_name, e_lib = to_numpy(expected)
    scalar = a_lib == "python" and e_lib == "python"
    if a.shape != e.shape:
        return (f"The values for attribute 'shape' do not match: {_fmt_shape(a_lib, a.shape)} "
                f"!= {_fmt_shape(e_lib, e.shape)}.")  # fmt: skip
    if check_dtype and a_name != e_name and not scalar:
        return (f"The values for attribute 'dtype' do not match: {_fmt_dtype(a_lib, a_name)} "
                f"!= {_fmt_dtype(e_lib, e_name)}.")  # fmt: skip
    if rtol is None:
        rtol, atol = default_tolerances(a_name, e_name)
    assert atol is not None  # assert_close takes both tolerances or neither
    exact = rtol == 0 and atol == 0 and a.dtype.kind in "biu" and e.dtype.kind in "biu"
    if a.dtype.kind == "b" or e.dtype.kind == "b":
        bad = a != e
    else:
        abs_diff, _ = differences(a, e, equal_nan)
        bad = ~within(abs_diff, e, rtol, atol)
    if not bad.any():
        return None
    return _mismatch_message(a, e, np.asarray(bad), rtol, atol, exact, scalar, equal_nan)


def assert_close(
    actual: Any,
    expected: Any,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    equal_nan: bool = False,
    check_dtype: bool = True,
    msg: str | Callable[[str], str] | None = None,
) -> None:
    """Raise ``AssertionError`` unless ``actual`` and ``expected`` are close.

    Args:
        actual, expected: tensors (tinytorch or torch), numpy arrays, Python
            numbers, or sequences / mappings of these (compared item by item).
        rtol, atol: give both or neither; neither picks torch's defaults for
            the dtypes (see the module docstring).
        equal_nan: count NaN == NaN as equal.
        check_dtype: require the same dtype (by name, so ``tinytorch.float32``
            matches ``torch.float32`` and ``numpy.float32``).
        msg: replaces the message; a callable receives the generated message.

    Raises:
        AssertionError: with torch's message: how many elements mismatch, and the
            greatest absolute and relative differences with their index.
        ValueError: if only one of ``rtol`` and ``atol`` is given.
    """
    if (rtol is None) != (atol is None):
        raise ValueError(
            f"Both 'rtol' and 'atol' must be either specified or omitted, but got no "
            f"{'rtol' if rtol is None else 'atol'}."
        )
    problem = _compare(actual, expected, rtol, atol, equal_nan, check_dtype, [])
    if problem is None:
        return
    if callable(msg):
        raise AssertionError(msg(problem))
    raise AssertionError(problem if msg is None else msg)


def _compare(actual: Any, expected: Any, rtol: float | None, atol: float | None,
             equal_nan: bool, check_dtype: bool, path: list[Any]) -> str | None:  # fmt: skip
    where = "".join(f"[{p!r}]" for p in path)
    leaf = (int, float, bool, complex, np.number, np.bool_)
    if _is_tensor_like(actual) or _is_tensor_like(expected) or (
        isinstance(actual, leaf) and isinstance(expected, leaf)
    ):  # fmt: skip
        try:
            problem = _compare_leaf(actual, expected, rtol, atol, equal_nan, check_dtype)
        except TypeError as exc:
            problem = str(exc)
        if problem is not None and path:
            problem += f"\n\nThe failure occurred for item {where}"
        return problem
    if isinstance(actual, Mapping) and isinstance(expected, Mapping):
        if set(actual) != set(expected):
            return (f"The keys of the mappings do not match{' at ' + where if path else ''}:"
                    f"\nMissing keys: {sorted(map(str, set(expected) - set(actual)))}"
                    f"\nExtra keys: {sorted(map(str, set(actual) - set(expected)))}")  # fmt: skip
        for k in expected:
            p = _compare(actual[k], expected[k], rtol, atol, equal_nan, check_dtype, [*path, k])
            if p is not None:
                return p
        return None
    if isinstance(actual, Sequence) and isinstance(expected, Sequence) and not isinstance(
        actual, str
    ):  # fmt: skip
        if len(actual) != len(expected):
            return (f"The length of the sequences mismatch: {len(actual)} != {len(expected)}"
                    + (f"\n\nThe failure occurred for item {where}" if path else ""))  # fmt: skip
        for i, (a, e) in enumerate(zip(actual, expected)):
            p = _compare(a, e, rtol, atol, equal_nan, check_dtype, [*path, i])
            if p is not None:
                return p
        return None
    if actual == expected:
        return None
    return f"No comparison rule for {type(actual).__name__} and {type(expected).__name__}" + (
        f" at item {where}" if path else "")  # fmt: skip
