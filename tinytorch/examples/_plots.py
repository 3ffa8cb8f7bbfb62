"""PNG plots of a training run: learning curves and misclassified test images.

matplotlib is an optional extra (``pip install 'tinytorch[app]'``). Figures
are drawn with the Agg renderer through ``matplotlib.figure.Figure`` directly,
never pyplot, so no window opens and the caller's pyplot state is untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MISSING_MATPLOTLIB", "have_matplotlib", "save_curves", "save_misclassified"]

MISSING_MATPLOTLIB = (
    "matplotlib is not installed, so no plots were made "
    "(pip install matplotlib, or pip install 'tinytorch[app]')"
)


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_curves(
    history: dict[str, list[float]], path: Path, title: str, train_label: str = "train"
) -> None:
    """Loss (train and test) and test accuracy per epoch, side by side."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    epochs = history["epoch"]
    fig = _figure(10, 4)
    fig.suptitle(title)
    ax_loss, ax_acc = fig.subplots(1, 2)
    marker = "o" if len(epochs) <= 30 else None
    ax_loss.plot(epochs, history["train_loss"], marker=marker, label=train_label)
    ax_loss.plot(epochs, history["test_loss"], marker=marker, label="test")
    ax_loss.set_title("Cross-entropy loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss (mean per sample)")
    if min(history["train_loss"] + history["test_loss"]) > 0:
        ax_loss.set_yscale("log")  # early and late epochs both stay readable
        ax_loss.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 3.0, 5.0)))
        ax_loss.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax_loss.yaxis.set_minor_formatter(NullFormatter())
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    acc = [100 * a for a in history["test_acc"]]
    ax_acc.plot(epochs, acc, marker=marker, color="tab:green")
    best = int(np.argmax(acc))
    ax_acc.plot([epochs[best]], [acc[best]], "o", color="tab:red", label="best")
    ax_acc.text(0.97, 0.05, f"final {acc[-1]:.2f}%\nbest {acc[best]:.2f}% (epoch {epochs[best]})",
                transform=ax_acc.transAxes, ha="right", va="bottom",
                bbox=dict(facecolor="white", alpha=0.8, edgecolor="none"))  # fmt: skip
    ax_acc.set_title("Test accuracy")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.grid(alpha=0.3)
    for ax in (ax_loss, ax_acc):
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.savefig(path)


def save_misclassified(
    images: np.ndarray,
    true: np.ndarray,
    pred: np.ndarray,
    classes: Sequence[str],
    path: Path,
    title: str,
    limit: int = 40,
) -> int:
    """A grid of up to ``limit`` misclassified images, each titled predicted vs true.

    Args:
        images: (N, C, H, W) float images in [0, 1], the whole test split.
        true, pred: (N,) labels and predictions.

    Returns:
        The total number of misclassified images.
    """
    wrong = np.flatnonzero(pred != true)
    shown = wrong[:limit]
    cols = min(8, max(4, len(shown)))
    rows = max(1, -(-len(shown) // cols))
    fig = _figure(cols * 1.5, rows * 1.5 + 0.6)
    fig.suptitle(f"{title}: {len(wrong)} of {len(true)} test images misclassified\n"
                 f"(showing {len(shown)}; each titled predicted / true label)")  # fmt: skip
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    short = [c.split(" - ")[0] for c in classes]  # MNIST's "7 - seven" -> "7"
    for ax in axes:
        ax.axis("off")
    for ax, i in zip(axes, shown):
        img = images[i]
        img = img[0] if img.shape[0] == 1 else np.moveaxis(img, 0, -1)
        ax.imshow(img, cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_title(f"pred {short[pred[i]]} / true {short[true[i]]}", fontsize=9, pad=3)
    if not len(shown):
        axes[0].text(0.0, 0.5, "no misclassified test images", fontsize=12)
    fig.savefig(path)
    return len(wrong)
