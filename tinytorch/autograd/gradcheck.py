"""Finite-difference checks of gradients (``gradcheck``) and second derivatives
(``gradgradcheck``), on float64 inputs, as ``torch.autograd.gradcheck``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tinytorch.tensor import Tensor


class GradcheckError(RuntimeError):
    """Raised by ``gradcheck`` when analytical and numerical gradients differ."""


def _outputs(fn: Callable, inputs: Sequence[Any]) -> list[Tensor]:
    from tinytorch.tensor import Tensor

    out = fn(*inputs)
    outs = [out] if isinstance(out, Tensor) else [o for o in out if isinstance(o, Tensor)]
    return [o for o in outs if o.data.dtype.kind == "f"]


def _numerical_jacobian(fn: Callable, inputs: Sequence[Any], t: Tensor, eps: float
                        ) -> list[np.ndarray]:  # fmt: skip
    """d out_k / d t, one column per element of ``t``, by central differences."""
    # Evaluated with grad mode on: ``func`` may itself call ``autograd.grad``
    # (as gradgradcheck's first-order map does).
    flat = t.data.reshape(-1)  # a view: writes perturb t in place
    if not np.shares_memory(flat, t.data):
        raise ValueError("gradcheck needs contiguous inputs")
    outs0 = _outputs(fn, inputs)
    jac = [np.zeros((o.data.size, flat.size)) for o in outs0]
    for j in range(flat.size):
        orig = flat[j]
        flat[j] = orig + eps
        plus = [o.data.astype(np.float64).reshape(-1).copy() for o in _outputs(fn, inputs)]
        flat[j] = orig - eps
        minus = [o.data.astype(np.float64).reshape(-1).copy() for o in _outputs(fn, inputs)]
        flat[j] = orig
        for k in range(len(jac)):
            jac[k][:, j] = (plus[k] - minus[k]) / (2 * eps)
    return jac


def _analytical_jacobian(fn: Callable, inputs: Sequence[Any], diff: list[Tensor]
                         ) -> list[list[np.ndarray]]:  # fmt: skip
    """jac[i][k]: d out_k / d diff_i, row by row through ``autograd.grad``."""
    from tinytorch.autograd import grad
    from tinytorch.tensor import Tensor

    outs = _outputs(fn, inputs)
    jac = [[np.zeros((o.data.size, t.data.size)) for o in outs] for t in diff]
    for k, o in enumerate(outs):
        if not o.requires_grad:
            continue
        for r in range(o.data.size):
            basis = np.zeros(o.data.size, dtype=o.data.dtype)
            basis[r] = 1.0
            gs = grad(o, diff, Tensor._make(basis.reshape(o.data.shape)), retain_graph=True,
                      allow_unused=True)  # fmt: skip
            for i, g in enumerate(gs):
                if g is not None:
                    jac[i][k][r, :] = g.data.reshape(-1)
    return jac


def gradcheck(
    func: Callable[..., Any],
    inputs: Any,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    **_ignored: Any,
) -> bool:
    """Compare autograd's Jacobian of ``func`` with central finite differences.

    Checked for every input tensor with ``requires_grad=True`` (use float64):
    ``|analytical - numerical| <= atol + rtol * |numerical|`` elementwise.
    """
    from tinytorch.tensor import Tensor

    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    diff = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    for t in diff:
        if t.data.dtype != np.float64:
            import warnings

            warnings.warn(f"gradcheck input of dtype {t.data.dtype} is not float64: the check "
                          f"may fail from rounding alone", stacklevel=2)  # fmt: skip
    analytical = _analytical_jacobian(func, inputs, diff)
    for i, t in enumerate(diff):
        numerical = _numerical_jacobian(func, inputs, t, eps)
        for k, (a, n) in enumerate(zip(analytical[i], numerical)):
            if not np.allclose(a, n, rtol=rtol, atol=atol):
                if not raise_exception:
                    return False
                worst = np.unravel_index(np.argmax(np.abs(a - n)), a.shape)
                raise GradcheckError(
                    f"Jacobian mismatch for output {k} with respect to input {i},\n"
                    f"numerical:{n}\nanalytical:{a}\nlargest difference at {worst}: "
                    f"{a[worst]} vs {n[worst]}"
                )
    return True


def gradgradcheck(
    func: Callable[..., Any],
    inputs: Any,
    grad_outputs: Any = None,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    **_ignored: Any,
) -> bool:
    """``gradcheck`` of the map (inputs, v) -> vᵀ J(inputs): checks second derivatives."""
    from tinytorch.autograd import grad
    from tinytorch.random import default_generator
    from tinytorch.tensor import Tensor

    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    outs = _outputs(func, inputs)
    if grad_outputs is None:
        gen = default_generator.np
        grad_outputs = [Tensor._make(gen.standard_normal(o.data.shape)).requires_grad_()
                        for o in outs]  # fmt: skip
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    n_in = len(inputs)
    diff_pos = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]

    def first_order(*args: Any) -> tuple[Tensor, ...]:
        xs, vs = args[:n_in], args[n_in:]
        ys = _outputs(func, xs)
        gs = grad(ys, [xs[i] for i in diff_pos], list(vs), create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None)

    return gradcheck(first_order, tuple(inputs) + tuple(grad_outputs), eps=eps, atol=atol,
                     rtol=rtol, raise_exception=raise_exception)  # fmt: skip
