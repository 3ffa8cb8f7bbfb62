"""Adamax, NAdam and RAdam (torch.optim equivalents), single-tensor algorithms."""

from __future__ import annotations

from typing import Any

import numpy as np

import tinytorch

from ._functional import addcdiv_, addcmul_, effective_grad, lerp_
from .adam import _check_betas
from .optimizer import ParamsT, _GroupwiseOptimizer, _zeros_like

__all__ = ["Adamax", "NAdam", "RAdam"]


def _check_common(lr: float, eps: float, betas: tuple[float, float], weight_decay: float) -> None:
    if not lr >= 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")
    if not eps >= 0.0:
        raise ValueError(f"Invalid epsilon value: {eps}")
    _check_betas(betas)
    if not weight_decay >= 0.0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


def _scalar_state_is_f32() -> bool:
    """torch keeps scalar state (``mu_product``) in a float32 tensor unless the default
    dtype is float64; mirror that with tinytorch's default dtype."""
    get_default = getattr(tinytorch, "get_default_dtype", None)
    return get_default is None or get_default() is not tinytorch.float64


class Adamax(_GroupwiseOptimizer):
    r"""Adamax (torch.optim.Adamax), Adam's infinity-norm variant.

    .. math::
        \begin{aligned}
        g_t &= \pm\nabla_\theta f(\theta_{t-1}) + \lambda\theta_{t-1} \\
        m_t &= \operatorname{lerp}(m_{t-1}, g_t, 1-\beta_1) \\
        u_t &= \max(\beta_2 u_{t-1},\ |g_t| + \epsilon) \\
        \theta_t &= \theta_{t-1} - \frac{\gamma}{1-\beta_1^t}\,\frac{m_t}{u_t}
        \end{aligned}

    Args:
        params: parameters or parameter groups.
        lr: :math:`\gamma` (default ``2e-3``).
        betas: :math:`(\beta_1, \beta_2)` (default ``(0.9, 0.999)``).
        eps: :math:`\epsilon` (default ``1e-8``).
        weight_decay: :math:`\lambda` (default 0).
        maximize: maximize the objective (keyword-only).

    State: ``step``, ``exp_avg``, ``exp_inf``.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        *,
        maximize: bool = False,
    ) -> None:
        _check_common(lr, eps, betas, weight_decay)
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any], params: list[Any]) -> None:
        lr, eps = float(group["lr"]), float(group["eps"])
        beta1, beta2 = (float(b) for b in group["betas"])
        for p in params:
            state = self.state[p]
            if len(state) == 0:
                state["step"] = 0.0
                state["exp_avg"] = _zeros_like(p)
                state["exp_inf"] = _zeros_like(p)
            param = p.data
            state["step"] += 1
            grad = effective_grad(param, p.grad.data, group["maximize"], group["weight_decay"])
            tmp = np.empty_like(param)
            exp_avg, exp_inf = state["exp_avg"].data, state["exp_inf"].data
            lerp_(exp_avg, grad, 1 - beta1, tmp)
            np.multiply(exp_inf, beta2, out=exp_inf)
            np.abs(grad, out=tmp)
            np.add(tmp, eps, out=tmp)
            np.maximum(exp_inf, tmp, out=exp_inf)
            clr = lr / (1 - beta1 ** state["step"])
            addcdiv_(param, exp_avg, exp_inf, -clr, tmp)


class NAdam(_GroupwiseOptimizer):
    r"""NAdam (torch.optim.NAdam): Adam with Nesterov momentum and momentum decay.

    .. math::
        \begin{aligned}
        \mu_t &= \beta_1\bigl(1 - \tfrac12\, 0.96^{t\psi}\bigr), \quad
            \Pi_t = \textstyle\prod_{i\le t}\mu_i \\
        g_t &= \pm\nabla_\theta f(\theta_{t-1}) \;(+\lambda\theta_{t-1}
            \text{, or } \theta_{t-1} \leftarrow \theta_{t-1}(1-\gamma\lambda)
            \text{ if decoupled}) \\
        m_t &= \operatorname{lerp}(m_{t-1}, g_t, 1-\beta_1), \quad
            v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2 \\
        d_t &= \sqrt{v_t / (1-\beta_2^t)} + \epsilon \\
        \theta_t &= \theta_{t-1} - \gamma\frac{1-\mu_t}{1-\Pi_t}\frac{g_t}{d_t}
            - \gamma\frac{\mu_{t+1}}{1-\Pi_t\mu_{t+1}}\frac{m_t}{d_t}
        \end{aligned}

    Args:
        params: parameters or parameter groups.
        lr: :math:`\gamma` (default ``2e-3``).
        betas: :math:`(\beta_1, \beta_2)` (default ``(0.9, 0.999)``).
        eps: :math:`\epsilon` (default ``1e-8``).
        weight_decay: :math:`\lambda` (default 0).
        momentum_decay: :math:`\psi` (default ``4e-3``).
        decoupled_weight_decay: AdamW-style weight decay (default False).
        maximize: maximize the objective (keyword-only).

    State: ``step``, ``mu_product`` (:math:`\Pi_t`, a float; like torch's scalar tensor it is
    computed in float32 unless the default dtype is float64), ``exp_avg``, ``exp_avg_sq``.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        _check_common(lr, eps, betas, weight_decay)
        if not momentum_decay >= 0.0:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum_decay": momentum_decay,
            "decoupled_weight_decay": decoupled_weight_decay,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any], params: list[Any]) -> None:
        lr, eps = float(group["lr"]), float(group["eps"])
        beta1, beta2 = (float(b) for b in group["betas"])
        weight_decay = float(group["weight_decay"])
        momentum_decay = float(group["momentum_decay"])
        decoupled = group["decoupled_weight_decay"]
        for p in params:
            state = self.state[p]
            if len(state) == 0:
                state["step"] = 0.0
                state["mu_product"] = 1.0
                state["exp_avg"] = _zeros_like(p)
                state["exp_avg_sq"] = _zeros_like(p)
            param = p.data
            state["step"] += 1
            step = state["step"]
            bias_correction2 = 1 - beta2**step
            if weight_decay != 0 and decoupled:
                np.multiply(param, 1 - lr * weight_decay, out=param)
                grad = effective_grad(param, p.grad.data, group["maximize"], 0.0)
            else:
                grad = effective_grad(param, p.grad.data, group["maximize"], weight_decay)

            mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
            mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
            if _scalar_state_is_f32():
                # torch multiplies a float32 tensor by mu: both operands rounded to float32.
                mu_product = float(np.float32(state["mu_product"]) * np.float32(mu))
            else:
                mu_product = state["mu_product"] * mu
            state["mu_product"] = mu_product

            tmp = np.empty_like(param)
            exp_avg, exp_avg_sq = state["exp_avg"].data, state["exp_avg_sq"].data
            lerp_(exp_avg, grad, 1 - beta1, tmp)
            np.multiply(exp_avg_sq, beta2, out=exp_avg_sq)
            addcmul_(exp_avg_sq, grad, grad, 1 - beta2, tmp)
            denom = np.divide(exp_avg_sq, bias_correction2)
            np.sqrt(denom, out=denom)
            mu_product_next = mu_product * mu_next
            np.add(denom, eps, out=denom)
            addcdiv_(param, grad, denom, -lr * (1.0 - mu) / (1.0 - mu_product), tmp)
            addcdiv_(param, exp_avg, denom, (-lr * mu_next) / (1.0 - mu_product_next), tmp)


class RAdam(_GroupwiseOptimizer):
    r"""RAdam (torch.optim.RAdam): Adam with a rectified adaptive learning rate.

    .. math::
        \begin{aligned}
        m_t, v_t &\text{ as in Adam},\quad \hat m_t = m_t / (1-\beta_1^t) \\
        \rho_\infty &= 2/(1-\beta_2) - 1, \quad
            \rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t) \\
        \theta_t &= \theta_{t-1} - \gamma\,\hat m_t\, r_t\,
            \frac{\sqrt{1-\beta_2^t}}{\sqrt{v_t}+\epsilon}, \quad
            r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}
            {(\rho_\infty-4)(\rho_\infty-2)\rho_t}} \quad\text{if } \rho_t > 5 \\
        \theta_t &= \theta_{t-1} - \gamma\,\hat m_t \quad\text{otherwise}
        \end{aligned}

    Args:
        params: parameters or parameter groups.
        lr: :math:`\gamma` (default ``1e-3``).
        betas: :math:`(\beta_1, \beta_2)` (default ``(0.9, 0.999)``).
        eps: :math:`\epsilon` (default ``1e-8``).
        weight_decay: :math:`\lambda` (default 0), coupled or decoupled.
        decoupled_weight_decay: AdamW-style weight decay (default False).
        maximize: maximize the objective (keyword-only).

    State: ``step``, ``exp_avg``, ``exp_avg_sq``.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        _check_common(lr, eps, betas, weight_decay)
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any], params: list[Any]) -> None:
        lr, eps = float(group["lr"]), float(group["eps"])
        beta1, beta2 = (float(b) for b in group["betas"])
        weight_decay = float(group["weight_decay"])
        for p in params:
            state = self.state[p]
            if len(state) == 0:
                state["step"] = 0.0
                state["exp_avg"] = _zeros_like(p)
                state["exp_avg_sq"] = _zeros_like(p)
            param = p.data
            state["step"] += 1
            step = state["step"]
            if weight_decay != 0 and group["decoupled_weight_decay"]:
                np.multiply(param, 1 - lr * weight_decay, out=param)
                grad = effective_grad(param, p.grad.data, group["maximize"], 0.0)
            else:
                grad = effective_grad(param, p.grad.data, group["maximize"], weight_decay)

            tmp = np.empty_like(param)
            exp_avg, exp_avg_sq = state["exp_avg"].data, state["exp_avg_sq"].data
            lerp_(exp_avg, grad, 1 - beta1, tmp)
            np.multiply(exp_avg_sq, beta2, out=exp_avg_sq)
            addcmul_(exp_avg_sq, grad, grad, 1 - beta2, tmp)

            bias_correction1 = 1 - beta1**step
            bias_correction2 = 1 - beta2**step
            update = np.divide(exp_avg, bias_correction1)  # bias-corrected exp_avg
            rho_inf = 2 / (1 - beta2) - 1
            rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
            np.multiply(update, lr, out=update)
            if rho_t > 5.0:
                rect = (
                    (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
                ) ** 0.5
                # adaptive lr = sqrt(bc2) / (sqrt(v) + eps), computed in tmp
                np.sqrt(exp_avg_sq, out=tmp)
                np.add(tmp, eps, out=tmp)
                np.divide(bias_correction2**0.5, tmp, out=tmp)
                np.multiply(update, tmp, out=update)
                np.multiply(update, rect, out=update)
            np.subtract(param, update, out=param)
