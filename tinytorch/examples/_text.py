"""Character-level text data shared by the language-model examples (char_lstm, gpt)."""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DEFAULT_TEXT", "CharCorpus", "add_text_args"]

#: The bundled text: original stories and verse written for these examples (no licence
#: restrictions), about 21 KB of plain ASCII.
DEFAULT_TEXT = "lighthouse_tales.txt"


def add_text_args(p: argparse.ArgumentParser, block_help: str) -> None:
    """The options both language-model examples take (data, length, reports, sampling)."""
    p.add_argument("--text", help="a UTF-8 text file (default: the bundled stories)")
    p.add_argument("--steps", type=int, default=600, help="training steps")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--block", type=int, default=64, help=block_help)
    p.add_argument("--eval-every", type=int, default=100, help="steps between loss reports")
    p.add_argument("--eval-batches", type=int, default=4)
    p.add_argument("--sample-len", type=int, default=400, help="characters to sample at the end")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--prompt", default="The keeper ")
    p.add_argument("--seed", type=int, default=0)


class CharCorpus:
    """A text as integer character codes, with a 90/10 train/validation split.

    Args:
        path: a text file (default: the bundled :data:`DEFAULT_TEXT`).

    Attributes:
        chars: the sorted distinct characters; ``vocab_size`` is their count.
        train, val: int64 arrays of character indices.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        if path is None:
            text = (
                resources.files("tinytorch.examples")
                .joinpath("data")
                .joinpath(DEFAULT_TEXT)
                .read_text()
            )
        else:
            text = Path(path).read_text(encoding="utf-8")
        if len(text) < 100:
            raise ValueError(f"the text is too short to train on ({len(text)} characters)")
        self.text = text
        self.chars = sorted(set(text))
        self.vocab_size = len(self.chars)
        self._index = {c: i for i, c in enumerate(self.chars)}
        data = self.encode(text)
        cut = int(0.9 * len(data))
        self.train, self.val = data[:cut], data[cut:]

    def encode(self, s: str) -> np.ndarray:
        """Characters -> int64 indices (characters not in the text raise KeyError)."""
        return np.array([self._index[c] for c in s], dtype=np.int64)

    def decode(self, indices: Any) -> str:
        return "".join(self.chars[int(i)] for i in indices)

    def batch(
        self, torch: Any, split: str, batch_size: int, block: int, generator: Any
    ) -> tuple[Any, Any]:
        """Random windows: inputs (B, T) and targets (B, T), the inputs shifted by one.

        Window starts come from ``torch.randint`` with ``generator``, so a seeded
        run is reproducible on either backend.
        """
        data = self.train if split == "train" else self.val
        if len(data) <= block + 1:
            raise ValueError(f"--block {block} is too long for the {split} text ({len(data)})")
        starts = torch.randint(0, len(data) - block - 1, (batch_size,), generator=generator)
        rows = starts.numpy()[:, None] + np.arange(block + 1)  # (B, T+1)
        windows = data[rows]
        x = torch.from_numpy(np.ascontiguousarray(windows[:, :-1]))
        y = torch.from_numpy(np.ascontiguousarray(windows[:, 1:]))
        return x, y
