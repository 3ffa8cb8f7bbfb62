"""RMSprop, Adagrad and Adadelta (torch.optim equivalents), single-tensor algorithms."""

from __future__ import annotations

from typing import Any

import numpy as np

import tinytorch

from ._functional import add_, addcdiv_, addcmul_, effective_grad, lerp_
from .optimizer import ParamsT, _GroupwiseOptimizer, _zeros_like

__all__ = ["Adadelta", "Adagrad", "RMSprop"]


class RMSprop(_GroupwiseOptimizer):
    r"""RMSprop (torch.optim.RMSprop).

    .. math::
        \begin{aligned}
        g_t &= \pm\nabla_\theta f(\theta_{t-1}) + \lambda\theta_{t-1} \\
        v_t &= \alpha v_{t-1} + (1-\alpha) g_t^2 \\
        \bar g_t &= \operatorname{lerp}(\bar g_{t-1}, g_t, 1-\alpha),\;
            \tilde v_t = v_t - \bar g_t^2 \text{ if centered else } v_t \\
        d_t &= \sqrt{\tilde v_t} + \epsilon \\
        b_t &= \mu b_{t-1} + g_t / d_t,\; \theta_t = \theta_{t-1} - \gamma b_t
            \quad\text{if } \mu > 0 \\
        \theta_t &= \theta_{t-1} - \gamma\, g_t / d_t \quad\text{otherwise}
        \end{aligned}

    Args:
        params: parameters or parameter groups.
        lr: :math:`\gamma` (default ``1e-2``).
        alpha: smoothing constant :math:`\alpha` (default 0.99).
        eps: :math:`\epsilon` (default ``1e-8``).
        weight_decay: :math:`\lambda` (default 0).
        momentum: :math:`\mu` (default 0).
        centered: normalise by the estimated variance of the gradient (default False).
        maximize: maximize the objective (keyword-only here; torch's positional
            ``capturable``/``foreach`` slots are not supported).

    State: ``step``, ``square_avg``, ``momentum_buffer`` (momentum > 0), ``grad_avg`` (centered).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        if not lr >= 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not eps >= 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not momentum >= 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not weight_decay >= 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not alpha >= 0.0:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any], params: list[Any]) -> None:
        lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
        momentum = float(group["momentum"])
        for p in params:
            state = self.state[p]
            if len(state) == 0:
                state["step"] = 0.0
                state["square_avg"] = _zeros_like(p)
                if group["momentum"] > 0:
                    state["momentum_buffer"] = _zeros_like(p)
                if group["centered"]:
                    state["grad_avg"] = _zeros_like(p)
            param = p.data
            state["step"] += 1
            grad = effective_grad(param, p.grad.data, group["maximize"], group["weight_decay"])
            tmp = np.empty_like(param)
            square_avg = state["square_avg"].data
            np.multiply(square_avg, alpha, out=square_avg)
            addcmul_(square_avg, grad, grad, 1 - alpha, tmp)
            if group["centered"]:
                grad_avg = state["grad_avg"].data
                lerp_(grad_avg, grad, 1 - alpha, tmp)
                avg = np.negative(grad_avg)  # square_avg.addcmul(grad_avg, grad_avg, value=-1)
                np.multiply(avg, grad_avg, out=avg)
                np.add(square_avg, avg, out=avg)
                np.sqrt(avg, out=avg)
            else:
                avg = np.sqrt(square_avg)
            np.add(avg, eps, out=avg)
            if momentum > 0:
                buf = state["momentum_buffer"].data
                np.multiply(buf, momentum, out=buf)
                addcdiv_(buf, grad, avg, 1.0, tmp)
                add_(param, buf, -lr, tmp)
            else:
                addcdiv_(param, grad, avg, -lr, tmp)


class Adagrad(_GroupwiseOptimizer):
    r"""Adagrad (torch.optim.Adagrad).

    .. math::
        \begin{aligned}
        g_t &= \pm\nabla_\theta f(\theta_{t-1}) + \lambda\theta_{t-1} \\
        \tilde\gamma &= \gamma / (1 + (t-1)\eta) \\
        s_t &= s_{t-1} + g_t^2, \quad s_0 = \text{initial\_accumulator\_value} \\
        \theta_t &= \theta_{t-1} - \tilde\gamma\, g_t / (\sqrt{s_t} + \epsilon)
        \end{aligned}

    Args:
        params: parameters or parameter groups.
        lr: :math:`\gamma` (default ``1e-2``).
        lr_decay: :math:`\eta` (default 0).
        weight_decay: :math:`\lambda` (default 0).
        initial_accumulator_value: :math:`s_0` (default 0).
        eps: :math:`\epsilon` (default ``1e-10``).
        maximize: maximize the objective (keyword-only).

    State: ``step``, ``sum``. Like torch, state of the constructor's parameters is created
    eagerly, and lazily (from ``defaults``) for groups added later.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ) -> None:
        if not lr >= 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not lr_decay >= 0.0:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not weight_decay >= 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not initial_accumulator_value >= 0.0:
            raise ValueError(
                f"Invalid initial_accumulator_value value: {initial_accumulator_value}"
            )
        if not eps >= 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "eps": eps,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "maximize": maximize,
        }
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p)

    def _init_state(self, p: Any) -> None:
        state = self.state[p]
        state["step"] = 0.0
        # torch reads the constructor default, not the group's value.
        init = self.defaults["initial_accumulator_value"]
        state["sum"] = tinytorch.from_numpy(np.full_like(p.data, init))

    def _update_group(self, group: dict[str, Any], params: list[Any]) -> None:
        lr, lr_decay, eps = float(group["lr"]), float(group["lr_decay"]), float(group["eps"])
        for p in params:
            state = self.state[p]
            if len(state) == 0:  # parameters added later via add_param_group
                self._init_state(p)
            param = p.data
            state["step"] += 1
            step = state["step"]
            grad = effective_grad(param, p.grad.data, group["maximize"], group["weight_decay"])
            clr = lr / (1 + (step - 1) * lr_decay)
            tmp = np.empty_like(param)
            state_sum = state["sum"].data
            addcmul_(state_sum, grad, grad, 1.0, tmp)
            std = np.sqrt(state_sum)
            np.add(std, eps, out=std)
            addcdiv_(param, grad, std, -clr, tmp)


class Adadelta(_GroupwiseOptimizer):
    r"""Adadelta (torch.optim.Adadelta).

    .. math::
        \begin{aligned}
        g_t &= \pm\nabla_\theta f(\theta_{t-1}) + \lambda\theta_{t-1} \\
        v_t &= \rho v_{t-1} + (1-\rho) g_t^2 \\
        \Delta_t &= \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, g_t \\
        u_t &= \rho u_{t-1} + (1-\rho)\Delta_t^2 \\
        \theta_t &= \theta_{t-1} - \gamma\Delta_t
        \end{aligned}

    Args:
        params: parameters or parameter groups.
        lr: :math:`\gamma` scaling the delta (default 1.0).
        rho: :math:`\rho` (default 0.9).
        eps: :math:`\epsilon` (default ``1e-6``).
        weight_decay: :math:`\lambda` (default 0).
        maximize: maximize the objective (keyword-only).

    State: ``step``, ``square_avg`` (:math:`v`), ``acc_delta`` (:math:`u`).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        *,
        maximize: bool = False,
    ) -> None:
        if not lr >= 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        if not eps >= 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not weight_decay >= 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {
            "lr": lr,
            "rho": rho,
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any], params: list[Any]) -> None:
        lr, rho, eps = float(group["lr"]), float(group["rho"]), float(group["eps"])
        for p in params:
            state = self.state[p]
            if len(state) == 0:
                state["step"] = 0.0
                state["square_avg"] = _zeros_like(p)
                state["acc_delta"] = _zeros_like(p)
            param = p.data
            state["step"] += 1
            grad = effective_grad(param, p.grad.data, group["maximize"], group["weight_decay"])
            tmp = np.empty_like(param)
            square_avg, acc_delta = state["square_avg"].data, state["acc_delta"].data
            np.multiply(square_avg, rho, out=square_avg)
            addcmul_(square_avg, grad, grad, 1 - rho, tmp)
            std = np.add(square_avg, eps)
            np.sqrt(std, out=std)
            delta = np.add(acc_delta, eps)
            np.sqrt(delta, out=delta)
            np.divide(delta, std, out=delta)
            np.multiply(delta, grad, out=delta)
            np.multiply(acc_delta, rho, out=acc_delta)
            addcmul_(acc_delta, delta, delta, 1 - rho, tmp)
            add_(param, delta, -lr, tmp)
