"""Helpers shared by the benchmark cases.

Every case module exposes the same small interface (see :mod:`bench.cases`)::

    NAME: str                      # short name used by ``--only``
    TITLE: str                     # one-line description for the table
    SIZES: tuple[str, ...]         # sizes of a full run
    QUICK_SIZES: tuple[str, ...]   # sizes of a ``--quick`` run
    ENGINES: tuple[str, ...]       # engines with an implementation (others print N/A)
    UNIT: tuple[str, float]        # (label, factor): seconds * factor is shown
    def setup(engine: str, size: str) -> None
    def step() -> object           # one timed iteration; may return the loss
    def check(engine: str, size: str) -> list[float]   # values compared across engines
    def scratch_bytes() -> int     # bytes of the numpy reference's preallocated work arrays

The weights of every engine are generated from numpy with :func:`param_array`, keyed by
the torch parameter name, so torch, tinytorch and the numpy reference start from
identical values and their losses can be compared.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from bench.engines import import_engine

StepFn = Callable[[], object]


class NotApplicableError(Exception):
    """Raised by a case for an engine it has no implementation for (shown as N/A)."""


@dataclass
class Bench:
    """What a case builds for one (engine, size): the timed step and optional extras.

    ``probe`` returns the values compared across engines after two calls of ``step``;
    without it the two losses returned by ``step`` are compared.

    ``scratch`` (numpy references only): arrays a hand-written step allocates once and
    reuses every step: its working memory beyond parameters, their gradients, optimizer
    state and input data (activations, activation gradients, im2col columns, ...).
    tracemalloc cannot see memory that is already allocated when a step starts, so the
    memory phase adds their size to the step's traced peak.  Parameter gradients are
    left out because torch and tinytorch hold them between steps too (``.grad`` of the
    previous step is live when the next one starts), like parameters and optimizer
    state.  The arrays must not overlap (no views of one another).
    """

    step: StepFn
    probe: Callable[[], list[float]] | None = None
    scratch: Sequence[np.ndarray] = ()


def train_step(opt: Any, loss_of: Callable[[], Any]) -> Bench:
    """The step every torch-API training case times: ``zero_grad``, ``loss_of()`` (the
    forward), ``backward``, ``opt.step()``; it returns the loss."""

    def step() -> object:
        opt.zero_grad()
        loss = loss_of()
        loss.backward()
        opt.step()
        return loss

    return Bench(step)


class Case:
    """Holds the state of the case that is set up in this process.

    A case module builds one with its ``build(engine, size) -> Bench`` function and
    re-exports the bound methods as its module-level ``setup``, ``step``, ``check`` and
    ``scratch_bytes``.
    """

    def __init__(self, build: Callable[[str, str], Bench]) -> None:
        self._build = build
        self._bench: Bench | None = None

    def setup(self, engine: str, size: str) -> None:
        """Build the case for ``engine`` at ``size`` (untimed)."""
        self._bench = None
        self._bench = self._build(engine, size)

    def step(self) -> object:
        """Run one timed iteration."""
        assert self._bench is not None, "setup() first"
        return self._bench.step()

    def scratch_bytes(self) -> int:
        """Total size of the set-up bench's ``scratch`` arrays (0 for torch-API engines)."""
        assert self._bench is not None, "setup() first"
        return sum(int(a.nbytes) for a in self._bench.scratch)

    def check(self, engine: str, size: str) -> list[float]:
        """Set up afresh, run two steps and return the values to compare across engines."""
        self.setup(engine, size)
        assert self._bench is not None
        first = self._bench.step()
        second = self._bench.step()
        if self._bench.probe is not None:
            return [float(v) for v in self._bench.probe()]
        return [to_float(first), to_float(second)]


def torch_like(engine: str) -> ModuleType:
    """Return the torch-API module for ``engine``; raise :class:`NotApplicableError` for numpy."""
    if engine == "numpy":
        raise NotApplicableError("no numpy reference for this case")
    return import_engine(engine)


def param_array(name: str, shape: Sequence[int], seed: int = 0) -> np.ndarray:
    """Deterministic float32 initial value for the parameter called ``name``.

    Matrices and higher get ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (torch's default
    scale for ``Linear``/``Conv``); 1-d tensors named ``*bias*`` get ``U(-0.1, 0.1)``,
    other 1-d tensors (norm weights) get ``1 + U(-0.1, 0.1)``.
    """
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    shape = tuple(int(s) for s in shape)
    if len(shape) >= 2:
        bound = 1.0 / np.sqrt(np.prod(shape[1:]))
        value = rng.uniform(-bound, bound, shape)
    elif "bias" in name:
        value = rng.uniform(-0.1, 0.1, shape)
    else:
        value = 1.0 + rng.uniform(-0.1, 0.1, shape)
    return value.astype(np.float32)


def load_params(tt: ModuleType, model: Any, seed: int = 0) -> None:
    """Overwrite every parameter of ``model`` with :func:`param_array` of its name."""
    with tt.no_grad():
        for name, p in model.named_parameters():
            value = tt.tensor(param_array(name, tuple(p.shape), seed))
            p.copy_(value)


def to_float(x: object) -> float:
    """Convert a loss (numpy scalar, torch or tinytorch tensor) to a Python float."""
    item = getattr(x, "item", None)
    if callable(item):
        return float(item())
    return float(x)  # type: ignore[arg-type]


def to_numpy(t: Any) -> np.ndarray:
    """Copy a tensor of any engine to a numpy array (untimed helper for probes)."""
    if isinstance(t, np.ndarray):
        return t
    t = t.detach()
    numpy_fn = getattr(t, "numpy", None)
    if callable(numpy_fn):
        return np.asarray(numpy_fn())
    return np.asarray(t.tolist())


def data_rng(seed: int = 1234) -> np.random.Generator:
    """Random generator for input data (kept apart from the weights' generators)."""
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- numpy refs


def softmax_ce_grad_(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fused softmax + mean cross-entropy, in place.

    On return ``logits`` holds ``d loss / d logits`` (``(softmax - onehot) / N``) and the
    mean loss is returned.
    """
    n = logits.shape[0]
    rows = np.arange(n)
    logits -= logits.max(axis=1, keepdims=True)
    picked = logits[rows, labels]
    np.exp(logits, out=logits)
    sums = logits.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(sums[:, 0]) - picked))
    logits *= (1.0 / n) / sums
    logits[rows, labels] -= 1.0 / n
    return loss


def im2col(x_cnhw: np.ndarray, k: int, out: np.ndarray | None = None) -> np.ndarray:
    """Columns ``(C*k*k, N*Ho*Wo)`` of a ``(C, N, H, W)`` array for a valid ``k x k`` conv.

    One strided view (``sliding_window_view``) and one copy (into ``out`` if given); the
    row order ``(c, i, j)`` matches torch's ``weight.reshape(F, C*k*k)``.
    """
    c, n, h, w = x_cnhw.shape
    ho, wo = h - k + 1, w - k + 1
    win = np.lib.stride_tricks.sliding_window_view(x_cnhw, (k, k), axis=(2, 3))
    win = win.transpose(0, 4, 5, 1, 2, 3)  # (C, N, Ho, Wo, k, k) -> (C, k, k, N, Ho, Wo)
    if out is None:
        out = np.empty((c * k * k, n * ho * wo), dtype=x_cnhw.dtype)
    np.copyto(out.reshape(c, k, k, n, ho, wo), win)
    return out


def col2im(
    dcols: np.ndarray, shape_cnhw: tuple[int, int, int, int], k: int, out: np.ndarray | None = None
) -> np.ndarray:
    """Adjoint of :func:`im2col`: accumulate ``(C*k*k, N*Ho*Wo)`` back to ``(C, N, H, W)``.

    Loops over the ``k*k`` kernel offsets (not over pixels), one strided add each.
    """
    c, n, h, w = shape_cnhw
    ho, wo = h - k + 1, w - k + 1
    d6 = dcols.reshape(c, k, k, n, ho, wo)
    if out is None:
        out = np.zeros(shape_cnhw, dtype=dcols.dtype)
    else:
        out.fill(0)
    for i in range(k):
        for j in range(k):
            region = out[:, :, i : i + ho, j : j + wo]
            np.add(region, d6[:, i, j], out=region)
    return out


_POOL_OFFSETS: tuple[tuple[int, int], ...] = ((0, 0), (0, 1), (1, 0), (1, 1))


def maxpool2_fwd(x_cnhw: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """2x2/stride-2 max pool of ``(C, N, H, W)`` (odd edges dropped, like torch).

    The maximum of the four strided views (30x faster than ``reshape(...).max(axis=(3,
    5))``, numpy's multi-axis reduction over length-2 axes).  Returns ``(out, masks)``,
    ``masks`` being the four "this view holds the maximum" indicators.
    """
    _, _, h, w = x_cnhw.shape
    ho, wo = h // 2, w // 2
    views = [x_cnhw[:, :, a : 2 * ho : 2, b : 2 * wo : 2] for a, b in _POOL_OFFSETS]
    out = np.maximum(views[0], views[1])
    np.maximum(out, views[2], out=out)
    np.maximum(out, views[3], out=out)
    return out, [v == out for v in views]


def maxpool2_bwd(
    gout: np.ndarray, masks: list[np.ndarray], shape_cnhw: tuple[int, int, int, int]
) -> np.ndarray:
    """Backward of :func:`maxpool2_fwd`.

    Ties send the gradient to every maximum; after a ReLU the only ties are zeros, whose
    gradient the ReLU's backward drops, so the result equals torch's.
    """
    _, _, h, w = shape_cnhw
    ho, wo = h // 2, w // 2
    dx = (
        np.zeros(shape_cnhw, dtype=gout.dtype)
        if (h % 2 or w % 2)
        else np.empty(shape_cnhw, dtype=gout.dtype)
    )
    for (a, b), mask in zip(_POOL_OFFSETS, masks):
        np.multiply(gout, mask, out=dx[:, :, a : 2 * ho : 2, b : 2 * wo : 2])
    return dx
