"""``compare_with_torch``: run one model in tinytorch and in torch with the same
weights and inputs, and report how far apart the outputs and gradients are.

Meant for people porting a model: build it once for each library (the code
is usually the same with ``lib`` = ``tinytorch`` or ``torch``), and read one
table that says which output, parameter gradient or buffer disagrees first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

import tinytorch
from tinytorch.testing._assert_close import default_tolerances, differences, to_numpy, within


@dataclasses.dataclass(frozen=True)
class ParityRow:
    """One compared quantity: an output, a gradient or a buffer."""

    name: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    rtol: float
    atol: float
    ok: bool
    note: str = ""


@dataclasses.dataclass
class ParityReport:
    """The result of ``compare_with_torch``: ``.ok``, ``.rows``, a printable table."""

    rows: list[ParityRow]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def failures(self) -> list[ParityRow]:
        return [r for r in self.rows if not r.ok]

    def assert_ok(self) -> None:
        """Raise ``AssertionError`` with the table if anything differs."""
        if not self.ok:
            raise AssertionError(str(self))

    def __str__(self) -> str:
        head = ("what", "shape", "max abs diff", "max rel diff", "allowed (rtol, atol)", "ok")
        body = [
            (r.name, str(list(r.shape)), f"{r.max_abs:.3g}", f"{r.max_rel:.3g}",
             f"{r.rtol:g}, {r.atol:g}", ("yes" if r.ok else "NO") + (f"  {r.note}" if r.note
                                                                     else ""))
            for r in self.rows
        ]  # fmt: skip
        widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
        lines = [
            f"compare_with_torch: {len(self.rows)} checks, "
            + ("all within tolerance" if self.ok else f"{len(self.failures)} MISMATCHED")
        ]
        for row in [head, *body]:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<ParityReport ok={self.ok} rows={len(self.rows)}>"


def _flatten(out: Any, name: str) -> list[tuple[str, Any]]:
    """(name, tensor) for every tensor in a (nested) output."""
    if isinstance(out, (list, tuple)):
        return [p for i, o in enumerate(out) for p in _flatten(o, f"{name}[{i}]")]
    if isinstance(out, dict):
        return [p for k, o in out.items() for p in _flatten(o, f"{name}[{k!r}]")]
    if hasattr(out, "shape") and hasattr(out, "dtype"):
        return [(name, out)]
    return []


def _row(name: str, ours: Any, theirs: Any, rtol: float | None, atol: float | None) -> ParityRow:
    a, a_dtype, _ = to_numpy(ours)
    e, e_dtype, _ = to_numpy(theirs)
    r, t = (rtol, atol) if rtol is not None else default_tolerances(a_dtype, e_dtype)
    assert t is not None  # the callers take both tolerances or neither
    if a.shape != e.shape:
        return ParityRow(name, a.shape, float("nan"), float("nan"), r, t, False,
                         f"shape {list(a.shape)} vs torch {list(e.shape)}")  # fmt: skip
    note = "" if a_dtype == e_dtype else f"dtype {a_dtype} vs torch {e_dtype}"
    if a.size == 0:
        return ParityRow(name, a.shape, 0.0, 0.0, r, t, not note, note)
    abs_diff, rel = differences(a, e, equal_nan=True)  # NaN in both: agreement
    ok = bool(np.all(within(abs_diff, e, r, t))) and not note
    return ParityRow(name, a.shape, float(abs_diff.max()), float(rel.max()), r, t, ok, note)


def _to_torch_dtype(torch: Any, dtype: Any) -> Any:
    name = dtype.name if isinstance(dtype, tinytorch.dtype) else str(dtype).split(".")[-1]
    return getattr(torch, name)


def _copy_weights(tt_model: Any, th_model: Any, torch: Any) -> None:
    """Load tinytorch's state_dict into the torch model; report every key/shape problem."""
    ours = tt_model.state_dict()
    theirs = th_model.state_dict()
    missing = sorted(set(theirs) - set(ours))
    extra = sorted(set(ours) - set(theirs))
    shapes = [
        f"{k}: tinytorch {list(ours[k].shape)} vs torch {list(theirs[k].shape)}"
        for k in ours
        if k in theirs and tuple(ours[k].shape) != tuple(theirs[k].shape)
    ]
    if missing or extra or shapes:  # fmt: skip
        raise ValueError(
            "compare_with_torch: the two models do not have the same state_dict:\n"
            f"  only in torch: {missing}\n  only in tinytorch: {extra}\n"
            f"  shape mismatches: {shapes}"
        )
    converted = {k: torch.from_numpy(np.array(v.data)).to(theirs[k].dtype) for k, v in ours.items()}
    th_model.load_state_dict(converted)


def compare_with_torch(
    model: Any,
    inputs: Any,
    *,
    torch_model: Any = None,
    loss_fn: Callable[[Any], Any] | None = None,
    dtype: Any = None,
    rtol: float | None = None,
    atol: float | None = None,
    seed: int = 0,
) -> ParityReport:
    """Run a model in tinytorch and in torch with the same weights; compare everything.

    Args:
        model: either ``model_fn(lib)`` returning the model (a Module or any
            callable) built with ``lib`` = ``tinytorch`` or ``torch``, or a
            tinytorch ``nn.Module`` together with ``torch_model=``.
        inputs: one input or a tuple of them (numpy arrays, tinytorch or torch
            tensors, or plain Python values passed through unchanged). Float
            inputs require grad, so their gradients are compared too.
        torch_model: the torch model when ``model`` is a tinytorch Module.
        loss_fn: ``loss_fn(output) -> scalar`` written with tensor methods (it
            runs on both libraries' outputs). Default: ``sum(out * w)`` over
            every float output with a fixed random ``w``, which gives every
            element its own gradient (a plain ``sum`` would hide a permutation).
        dtype: e.g. ``tinytorch.float64``: cast both models and the float inputs
            first. float64 separates real bugs from float32 rounding noise.
        rtol, atol: tolerances (both or neither); default: torch's for the dtype.
        seed: seeds the projection ``w``.

    Weights are copied from the tinytorch model to the torch one through
    ``state_dict`` (names and shapes must match; all differences are reported
    at once). The torch model is put in the tinytorch model's train/eval mode.
    Use ``eval()`` for models with dropout, which draws different masks.

    Returns:
        a ``ParityReport``: ``.ok``, ``.rows`` (name, shape, max abs/rel
        difference, tolerances, ok) and a table when printed. Rows: each output,
        the loss, each input gradient, each parameter gradient, each buffer.
    """
    try:
        import torch
    except ImportError as e:  # pragma: no cover - torch is the oracle, optional
        raise ImportError("compare_with_torch needs PyTorch (pip install torch)") from e
    if (rtol is None) != (atol is None):
        raise ValueError("Both 'rtol' and 'atol' must be either specified or omitted")
    if isinstance(model, tinytorch.nn.Module):
        if torch_model is None:
            raise TypeError(
                "compare_with_torch: pass torch_model= with a tinytorch Module, "
                "or pass model_fn(lib) building the model for either library"
            )
        tt_model, th_model = model, torch_model
    elif callable(model) and torch_model is None:
        tt_model, th_model = model(tinytorch), model(torch)
    else:
        raise TypeError("compare_with_torch: model must be model_fn(lib) or a tinytorch Module")
    is_tt_module = isinstance(tt_model, tinytorch.nn.Module)
    is_th_module = isinstance(th_model, torch.nn.Module)
    if dtype is not None:
        if is_tt_module:
            tt_model.to(dtype)
        if is_th_module:
            th_model.to(_to_torch_dtype(torch, dtype))
    if is_tt_module and is_th_module:
        _copy_weights(tt_model, th_model, torch)
        th_model.train(tt_model.training)

    tt_in, th_in = _prepare_inputs(inputs, dtype, torch)
    tt_out = tt_model(*tt_in)
    th_out = th_model(*th_in)
    outs_tt, outs_th = _flatten(tt_out, "output"), _flatten(th_out, "output")
    if len(outs_tt) != len(outs_th):
        raise ValueError(f"compare_with_torch: tinytorch returned {len(outs_tt)} tensors, "
                         f"torch {len(outs_th)}")  # fmt: skip
    rows = [_row(n, a, b, rtol, atol) for (n, a), (_, b) in zip(outs_tt, outs_th)]

    loss_tt, loss_th = _losses(outs_tt, outs_th, loss_fn, tt_out, th_out, seed, torch)
    if loss_tt is not None:
        rows.append(_row("loss", loss_tt, loss_th, rtol, atol))
        loss_tt.backward()
        loss_th.backward()
        for i, (a, b) in enumerate(zip(tt_in, th_in)):
            if isinstance(a, tinytorch.Tensor) and a.requires_grad:
                rows.append(_grad_row(f"grad input[{i}]", a.grad, b.grad, rtol, atol))
        if is_tt_module and is_th_module:
            th_params = dict(th_model.named_parameters())
            for name, p in tt_model.named_parameters():
                rows.append(_grad_row(f"grad {name}", p.grad, th_params[name].grad, rtol, atol))
    if is_tt_module and is_th_module:
        th_buffers = dict(th_model.named_buffers())
        for name, b in tt_model.named_buffers():
            if name in th_buffers:
                rows.append(_row(f"buffer {name}", b, th_buffers[name], rtol, atol))
    return ParityReport(rows)


def _prepare_inputs(inputs: Any, dtype: Any, torch: Any) -> tuple[list[Any], list[Any]]:
    items = list(inputs) if isinstance(inputs, (tuple, list)) else [inputs]
    tt_in, th_in = [], []
    for x in items:
        if isinstance(x, (np.ndarray, tinytorch.Tensor, torch.Tensor)):
            a = np.array(to_numpy(x)[0])  # a private copy for each library
            float_like = a.dtype.kind == "f"
            if float_like and dtype is not None:
                a = a.astype(tinytorch.tensor([], dtype=dtype).data.dtype)
            tt_in.append(tinytorch.tensor(a, requires_grad=float_like))
            th_in.append(torch.tensor(a, requires_grad=float_like))
        else:
            tt_in.append(x)
            th_in.append(x)
    return tt_in, th_in


def _losses(outs_tt: list[tuple[str, Any]], outs_th: list[tuple[str, Any]],
            loss_fn: Callable[[Any], Any] | None, tt_out: Any, th_out: Any, seed: int,
            torch: Any) -> tuple[Any, Any]:  # fmt: skip
    """The scalar each library backpropagates (None if no output requires grad)."""
    if loss_fn is not None:
        return loss_fn(tt_out), loss_fn(th_out)
    rng = np.random.default_rng(seed)
    loss_tt = loss_th = None
    for (_, a), (_, b) in zip(outs_tt, outs_th):
        if not (a.requires_grad and b.requires_grad):
            continue
        w = rng.standard_normal(tuple(a.shape)).astype(a.data.dtype)
        term_tt = (a * tinytorch.tensor(w)).sum()
        term_th = (b * torch.tensor(w, dtype=b.dtype)).sum()
        loss_tt = term_tt if loss_tt is None else loss_tt + term_tt
        loss_th = term_th if loss_th is None else loss_th + term_th
    return loss_tt, loss_th


def _grad_row(name: str, ours: Any, theirs: Any, rtol: float | None,
              atol: float | None) -> ParityRow:  # fmt: skip
    if ours is None and theirs is None:
        return ParityRow(name, (), 0.0, 0.0, 0.0, 0.0, True, "no gradient in either")
    if ours is None or theirs is None:
        which = "tinytorch" if ours is None else "torch"
        shape = tuple((theirs if ours is None else ours).shape)
        return ParityRow(name, shape, float("nan"), float("nan"), 0.0, 0.0, False,
                         f"{which} has no gradient")  # fmt: skip
    return _row(name, ours, theirs, rtol, atol)
