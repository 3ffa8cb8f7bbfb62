"""Plain gradient descent (``GD``, a tinytorch addition) and ``SGD`` (torch.optim.SGD)."""

from __future__ import annotations

from typing import Any

import numpy as np

import tinytorch

from ._functional import add_, effective_grad
from .optimizer import ParamsT, _GroupwiseOptimizer

__all__ = ["GD", "SGD"]


class GD(_GroupwiseOptimizer):
    r"""Vanilla gradient descent: a tinytorch addition kept from the project seed.

    torch has no ``GD``; it is exactly ``SGD`` without momentum or weight decay:

    .. math::
        \theta_t = \theta_{t-1} - \gamma\, g_t, \qquad
        g_t = \pm\nabla_\theta f(\theta_{t-1}) \;(- \text{ if maximize})

    Args:
        params: parameters or parameter groups.
        lr: learning rate :math:`\gamma` (default ``1e-3``, the same as ``SGD``).
        maximize: ascend instead of descend.

    The optimizer keeps no state.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, *, maximize: bool = False) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        super().__init__(params, {"lr": lr, "maximize": maximize})

    def _update_group(self, group: dict[str, Any], params: list[Any]) -> None:
        lr = float(group["lr"])
        alpha = lr if group["maximize"] else -lr
        for p in params:
            add_(p.data, p.grad.data, alpha)


class SGD(_GroupwiseOptimizer):
    r"""Stochastic gradient descent with optional momentum (torch.optim.SGD).

    .. math::
        \begin{aligned}
        g_t &= \pm\nabla_\theta f(\theta_{t-1}) + \lambda\,\theta_{t-1}
              \quad(- \text{ if maximize}) \\
        b_t &= \begin{cases} g_t & t = 1 \\ \mu\, b_{t-1} + (1-\tau)\, g_t & t > 1\end{cases}
              \quad(\text{only if } \mu \ne 0) \\
        g_t &\leftarrow g_t + \mu\, b_t \text{ if nesterov, else } b_t \\
        \theta_t &= \theta_{t-1} - \gamma\, g_t
        \end{aligned}

    Args:
        params: parameters or parameter groups.
        lr: learning rate :math:`\gamma` (default ``1e-3``).
        momentum: momentum factor :math:`\mu` (default 0).
        dampening: dampening :math:`\tau` for momentum (default 0).
        weight_decay: L2 penalty :math:`\lambda` (default 0).
        nesterov: use Nesterov momentum (requires ``momentum > 0`` and zero dampening).
        maximize: maximize the objective instead of minimizing it.

    State: ``momentum_buffer`` (only when ``momentum != 0``; created from the first gradient).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
        }
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any], params: list[Any]) -> None:
        lr = float(group["lr"])
        momentum = float(group["momentum"])
        dampening = float(group["dampening"])
        for p in params:
            param = p.data
            grad = effective_grad(param, p.grad.data, group["maximize"], group["weight_decay"])
            if momentum != 0:
                state = self.state[p]
                buf_t = state.get("momentum_buffer")
                if buf_t is None:
                    buf_t = tinytorch.from_numpy(np.array(grad, copy=True))
                    state["momentum_buffer"] = buf_t
                else:
                    buf = buf_t.data
                    np.multiply(buf, momentum, out=buf)
                    add_(buf, grad, 1.0 - dampening)
                buf = buf_t.data
                if group["nesterov"]:
                    # grad + momentum * buf, into a fresh array (grad may alias p.grad).
                    nesterov_grad = np.multiply(buf, momentum)
                    np.add(grad, nesterov_grad, out=nesterov_grad)
                    grad = nesterov_grad
                else:
                    grad = buf
            add_(param, grad, -lr)
