"""Case 8: second-order step on the MLP: ``loss + lambda * ||d loss / d x||^2``.

Size ``penalty``: forward, ``torch.autograd.grad(loss, x, create_graph=True)``, the
penalty, ``backward()`` of the total through the double-backward graph, SGD.
Size ``plain``: the same MLP step without the penalty (first order only).
The runner prints the ratio penalty / plain per engine (forward included in both).
torch vs tinytorch only (no numpy reference: N/A).
"""

from __future__ import annotations

from bench.cases import mlp
from bench.cases._common import Bench, Case, load_params, torch_like

NAME = "gradpen"
TITLE = "MLP + gradient penalty (create_graph) step, batch 128"
SIZES: tuple[str, ...] = ("penalty", "plain")
QUICK_SIZES: tuple[str, ...] = ("penalty",)
ENGINES: tuple[str, ...] = ("torch", "tinytorch")
UNIT: tuple[str, float] = ("ms", 1e3)
DERIVED: tuple[tuple[str, str, str], ...] = (
    ("create_graph step / first-order step (median)", "penalty", "plain"),
)
BATCH = 128
LAMBDA = 0.1


def build(engine: str, size: str) -> Bench:
    """Build the step for ``engine``; ``size`` is ``penalty`` or ``plain``."""
    tt = torch_like(engine)
    if size == "plain":  # the MLP case's step at this batch size
        return mlp.build_torch_like(tt, BATCH)
    model = mlp.make_model(tt)
    load_params(tt, model)
    opt = tt.optim.SGD(model.parameters(), lr=mlp.LR)
    xn, yn = mlp.make_data(BATCH)
    x, y = tt.tensor(xn, requires_grad=True), tt.tensor(yn)
    cross_entropy = tt.nn.functional.cross_entropy
    grad = tt.autograd.grad

    def step() -> object:
        opt.zero_grad()
        x.grad = None
        loss = cross_entropy(model(x), y)
        (gx,) = grad(loss, x, create_graph=True)
        total = loss + LAMBDA * (gx * gx).sum()
        total.backward()
        opt.step()
        return total

    return Bench(step)


_case = Case(build)
setup = _case.setup
step = _case.step
check = _case.check
scratch_bytes = _case.scratch_bytes
