"""Regenerate the graph pictures used by the docs: ``python docs/img/make_graphs.py``.

Needs the ``graphviz`` Python package and Graphviz's ``dot`` program.
"""

from pathlib import Path

import tinytorch as torch
import tinytorch.nn as nn
import tinytorch.nn.functional as F
from tinytorch.viz import draw_graph, record_modules

HERE = Path(__file__).parent


def main() -> None:
    torch.manual_seed(0)
    # The README's quick-start expression: a matmul, a broadcast bias, tanh, sum.
    x = torch.randn(4, 3)
    w = torch.randn(3, 2, requires_grad=True)
    b = torch.zeros(2, requires_grad=True)
    loss = (x @ w + b).tanh().sum()
    draw_graph(loss, params={"w": w, "b": b}).render(HERE / "quickstart_graph.png")

    # A small MLP and its loss, the ops grouped by the module that ran them.
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    with record_modules(model) as scopes:
        pred = model(torch.randn(8, 3))
    loss = F.mse_loss(pred, torch.randn(8, 1))
    draw_graph(loss, model=model, scopes=scopes).render(HERE / "mlp_graph.png")


if __name__ == "__main__":
    main()
