"""The training app's models, built from whichever ``nn`` module is passed in."""

from __future__ import annotations

from types import ModuleType
from typing import Any

__all__ = ["MODELS", "build_model", "describe_model"]

MODELS = ("mlp", "cnn")


def build_model(
    nn: ModuleType,
    kind: str,
    image_shape: tuple[int, int, int],
    n_classes: int,
    hidden: int,
    dropout: float = 0.0,
) -> Any:
    """An ``nn.Sequential`` classifier for images of ``image_shape`` (C, H, W).

    * ``mlp``: Flatten -> Linear(C*H*W, hidden) -> ReLU -> Dropout(dropout) ->
      Linear(hidden, hidden) -> ReLU -> Dropout(dropout) -> Linear(hidden, n_classes)
      (no Dropout layers when ``dropout`` is 0).
    * ``cnn``: two blocks of 3x3 Conv (padding 1) -> ReLU -> 2x2 MaxPool (32 then
      64 channels, each halving H and W), then Flatten -> Dropout(0.25) ->
      Linear(64*H/4*W/4, hidden) -> ReLU -> Dropout(dropout) -> Linear(hidden, n_classes).

    ``nn`` is ``tinytorch.nn`` or ``torch.nn``; both give the same parameter
    names and default initialisation.
    """
    c, h, w = image_shape
    if kind == "mlp":
        drop = [nn.Dropout(dropout)] if dropout > 0 else []
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(c * h * w, hidden),
            nn.ReLU(),
            *drop,
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            *[nn.Dropout(dropout)] * bool(drop),
            nn.Linear(hidden, n_classes),
        )
    if kind == "cnn":
        if h % 4 or w % 4:
            raise ValueError(f"the cnn needs H and W divisible by 4, got {h}x{w}")
        return nn.Sequential(
            nn.Conv2d(c, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (N, 32, H/2, W/2)
            nn.Conv2d(32, 64, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (N, 64, H/4, W/4)
            nn.Flatten(),
            nn.Dropout(0.25),
            nn.Linear(64 * (h // 4) * (w // 4), hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )
    raise ValueError(f"unknown model {kind!r}; expected one of {', '.join(MODELS)}")


def describe_model(model: Any) -> str:
    """A one-line summary: the layer widths (for an MLP) or layer count, and parameters."""
    n_params = sum(p.numel() for p in model.parameters())
    names = [type(m).__name__ for m in model]
    if "Conv2d" in names:
        shape = f"{names.count('Conv2d')} conv + {names.count('Linear')} linear layers"
    else:
        linears = [m for m in model if type(m).__name__ == "Linear"]
        shape = "-".join(str(m.in_features) for m in linears) + f"-{linears[-1].out_features}"
    return f"{shape}, {n_params:,} parameters"
