"""Checkpoints of the training app and the bookkeeping that makes resuming exact.

A checkpoint holds everything the remaining training depends on: the model,
optimizer and scheduler state dicts, the global RNG (dropout) and the
shuffling generator's state *at the start of the current epoch*, how many
batches of that epoch were done, the epoch's running loss, and the history.
Resuming replays the epoch's permutation from the saved generator state and
skips the batches already done, so an interrupted-and-resumed run computes
exactly the losses and weights of an uninterrupted one.
"""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

__all__ = ["FORMAT", "RunState", "StopRequest", "check_checkpoint"]

FORMAT = "tinytorch-train/1"


def _new_history() -> dict[str, list[float]]:
    keys = ("epoch", "train_loss", "test_loss", "test_acc", "lr", "seconds")
    return {k: [] for k in keys}


@dataclass
class RunState:
    """Where training stands; what a checkpoint stores besides the state dicts."""

    epoch: int = 0  # completed epochs
    batch: int = 0  # batches done in the current epoch
    loader_rng: Any = None  # shuffling generator state at the current epoch's start
    loss_sum: float = 0.0  # sum of per-sample losses so far in the current epoch
    seen: int = 0  # samples so far in the current epoch
    seconds: float = 0.0  # time spent in the current epoch before an interruption
    history: dict[str, list[float]] = field(default_factory=_new_history)

    def end_epoch(self) -> None:
        self.epoch += 1
        self.batch = self.seen = 0
        self.loss_sum = self.seconds = 0.0

    def to_checkpoint(
        self, config: dict[str, Any], model: Any, optimizer: Any, scheduler: Any, global_rng: Any
    ) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "config": config,
            "epoch": self.epoch,
            "batch": self.batch,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": None if scheduler is None else scheduler.state_dict(),
            "rng": {"global": global_rng, "loader": self.loader_rng},
            "partial": {"loss_sum": self.loss_sum, "seen": self.seen, "seconds": self.seconds},
            "history": self.history,
        }

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> RunState:
        partial = ckpt["partial"]
        return cls(
            epoch=int(ckpt["epoch"]),
            batch=int(ckpt["batch"]),
            loader_rng=ckpt["rng"]["loader"],
            loss_sum=float(partial["loss_sum"]),
            seen=int(partial["seen"]),
            seconds=float(partial["seconds"]),
            history={k: list(v) for k, v in ckpt["history"].items()},
        )


def check_checkpoint(ckpt: Any, path: str) -> None:
    """Raise ValueError unless ``ckpt`` looks like one of this app's checkpoints."""
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path} is not a checkpoint of this training app ({FORMAT})")


class StopRequest:
    """Turns the first Ctrl-C (SIGINT) into a flag the loop checks between batches.

    Stopping at a batch boundary means the saved state is consistent (never half
    an optimizer step). A second Ctrl-C raises KeyboardInterrupt as usual.
    Outside the main thread signals cannot be handled, and this does nothing.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            "\nCtrl-C: stopping after this batch to save a checkpoint "
            "(press Ctrl-C again to quit without saving)",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> StopRequest:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        except ValueError:  # not the main thread
            self._installed = False
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
