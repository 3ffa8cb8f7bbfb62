"""Adam and AdamW (torch.optim.Adam / torch.optim.AdamW), single-tensor algorithm."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._functional import addcdiv_, addcmul_, effective_grad, lerp_
from .optimizer import ParamsT, _GroupwiseOptimizer, _zeros_like

__all__ = ["Adam", "AdamW"]


def _check_betas(betas: tuple[float, float]) -> None:
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")


class Adam(_GroupwiseOptimizer):
    r"""Adam (torch.optim.Adam), including AMSGrad and decoupled weight decay.

    .. math::
        \begin{aligned}
        g_t &= \pm\nabla_\theta f(\theta_{t-1}) \quad(- \text{ if maximize}) \\
        &\text{if } \lambda \ne 0: \text{decoupled: }
            \theta_{t-1} \leftarrow \theta_{t-1}(1-\gamma\lambda),
            \text{ else } g_t \leftarrow g_t + \lambda\theta_{t-1} \\
        m_t &= \operatorname{lerp}(m_{t-1}, g_t, 1-\beta_1) \\
        v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \text{ if amsgrad else } v_t \\
        \theta_t &= \theta_{t-1} - \frac{\gamma}{1-\beta_1^t}\,
            \frac{m_t}{\sqrt{\hat v_t}/\sqrt{1-\beta_2^t} + \epsilon}
        \end{aligned}

    Args:
        params: parameters or parameter groups.
        lr: learning rate :math:`\gamma` (default ``1e-3``).
        betas: :math:`(\beta_1, \beta_2)` (default ``(0.9, 0.999)``).
        eps: :math:`\epsilon` added to the denominator (default ``1e-8``).
        weight_decay: :math:`\lambda` (default 0).
        amsgrad: use the AMSGrad variant (default False).
        maximize: maximize the objective (keyword-only).
        decoupled_weight_decay: apply AdamW-style weight decay (keyword-only).

    State: ``step`` (float), ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (amsgrad only).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        if not lr >= 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not eps >= 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        _check_betas(betas)
        if not weight_decay >= 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not (isinstance(betas[0], float) and isinstance(betas[1], float)):
            raise ValueError("betas must be either both floats or both Tensors")
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any], params: list[Any]) -> None:
        lr = float(group["lr"])
        beta1, beta2 = (float(b) for b in group["betas"])
        eps = float(group["eps"])
        weight_decay = float(group["weight_decay"])
        amsgrad = group["amsgrad"]
        decoupled = group["decoupled_weight_decay"]
        for p in params:
            state = self.state[p]
            if len(state) == 0:  # lazy initialisation, as in torch
                state["step"] = 0.0
                state["exp_avg"] = _zeros_like(p)
                state["exp_avg_sq"] = _zeros_like(p)
                if amsgrad:
                    state["max_exp_avg_sq"] = _zeros_like(p)
            param = p.data
            exp_avg = state["exp_avg"].data
            exp_avg_sq = state["exp_avg_sq"].data
            state["step"] += 1
            step = state["step"]

            if weight_decay != 0 and decoupled:
                np.multiply(param, 1 - lr * weight_decay, out=param)
                grad = effective_grad(param, p.grad.data, group["maximize"], 0.0)
            else:
                grad = effective_grad(param, p.grad.data, group["maximize"], weight_decay)

            tmp = np.empty_like(param)
            lerp_(exp_avg, grad, 1 - beta1, tmp)
            np.multiply(exp_avg_sq, beta2, out=exp_avg_sq)
            addcmul_(exp_avg_sq, grad, grad, 1 - beta2, tmp)

            bias_correction1 = 1 - beta1**step
            bias_correction2 = 1 - beta2**step
            step_size = lr / bias_correction1
            bias_correction2_sqrt = bias_correction2**0.5

            if amsgrad:
                max_exp_avg_sq = state["max_exp_avg_sq"].data
                np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
                denom = np.sqrt(max_exp_avg_sq)
            else:
                denom = np.sqrt(exp_avg_sq)
            np.divide(denom, bias_correction2_sqrt, out=denom)
            np.add(denom, eps, out=denom)
            addcdiv_(param, exp_avg, denom, -step_size, tmp)


class AdamW(Adam):
    r"""AdamW (torch.optim.AdamW): Adam with decoupled weight decay.

    .. math::
        \theta_{t-1} \leftarrow \theta_{t-1}(1 - \gamma\lambda), \text{ then the Adam update
        of } \theta_{t-1} \text{ without the } \lambda\theta \text{ gradient term.}

    Same arguments as :class:`Adam` except ``weight_decay`` defaults to ``1e-2`` and
    ``decoupled_weight_decay`` is always True.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
        )

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
