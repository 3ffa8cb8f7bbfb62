"""Fit an MLP to a noisy 1-D function: ``python -m tinytorch.examples.regression``.

The target is ``f(x) = sin(2x) + 0.3 x^2 - 0.5`` on [-3, 3] with Gaussian noise
(std 0.1). A 1-64-64-1 Tanh MLP is trained full-batch with Adam on 256
points and evaluated on a noise-free grid; the test MSE approaches the noise
floor's scale within a few seconds. ``--plot FILE.png`` draws data, target and
fit (needs matplotlib).
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import numpy as np

from tinytorch.examples._backend import run_main

__all__ = ["main", "target"]


def target(x: np.ndarray) -> np.ndarray:
    """The function to learn."""
    return np.sin(2 * x) + 0.3 * x**2 - 0.5


def make_model(nn: Any, hidden: int) -> Any:
    return nn.Sequential(
        nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1)
    )


def _plot(path: str, x: np.ndarray, y: np.ndarray, grid: np.ndarray, fit: np.ndarray) -> None:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        print("matplotlib is not installed, so no plot was made (pip install matplotlib)")
        return
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.scatter(x, y, s=8, alpha=0.5, color="tab:gray", label="training data (noisy)")
    ax.plot(grid, target(grid), color="tab:blue", lw=2, label="target f(x)")
    ax.plot(grid, fit, color="tab:red", lw=2, ls="--", label="MLP fit")
    ax.set_title("1-D regression: sin(2x) + 0.3x^2 - 0.5")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path)
    print(f"plot saved to {path}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=1000, help="full-batch Adam steps")
    p.add_argument("--hidden", type=int, default=64, help="hidden width")
    p.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate")
    p.add_argument("--points", type=int, default=256, help="training points")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", metavar="FILE", help="save a PNG of the fit")
    return run_main(p, argv, run)


def run(args: argparse.Namespace, torch: Any) -> int:
    """Train and report; ``torch`` is the backend's module."""
    F = torch.nn.functional

    rng = np.random.default_rng(args.seed)
    x = rng.uniform(-3, 3, size=(args.points, 1)).astype(np.float32)
    y = (target(x) + rng.normal(0, 0.1, size=x.shape)).astype(np.float32)
    grid = np.linspace(-3, 3, 401, dtype=np.float32)[:, None]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gt, gy = torch.from_numpy(grid), torch.from_numpy(target(grid).astype(np.float32))

    torch.manual_seed(args.seed)
    model = make_model(torch.nn, args.hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.steps)
    start = time.perf_counter()
    report = max(1, args.steps // 5)
    for step in range(1, args.steps + 1):
        loss = F.mse_loss(model(xt), yt)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        if step % report == 0 or step == args.steps:
            print(f"step {step:>{len(str(args.steps))}}/{args.steps}  train mse {loss.item():.5f}")
    with torch.no_grad():
        fit = model(gt)
        test_mse = F.mse_loss(fit, gy).item()
    seconds = time.perf_counter() - start
    print(f"final train mse {loss.item():.5f} (noise variance 0.01), "
          f"test mse vs f(x) {test_mse:.5f} (rmse {math.sqrt(test_mse):.3f}), "
          f"{seconds:.1f}s on {args.backend}")  # fmt: skip
    if args.plot:
        _plot(args.plot, x[:, 0], y[:, 0], grid[:, 0], fit.numpy()[:, 0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
