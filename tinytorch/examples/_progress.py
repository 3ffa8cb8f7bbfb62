"""Per-epoch progress: a tqdm bar on a terminal, else a plain line every few seconds.

tqdm is an optional extra (``pip install 'tinytorch[app]'``); without it, or
when stderr is not a terminal (logs, CI), progress is printed as plain lines
so nothing depends on it.
"""

from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ["EpochProgress"]


def _make_bar(total: int, desc: str) -> Any:
    if not sys.stderr.isatty():
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="img", unit_scale=True, leave=False,
                dynamic_ncols=True)  # fmt: skip


class EpochProgress:
    """Shows samples done, running loss and throughput (samples/s) during one epoch.

    Args:
        total: samples in the epoch.
        desc: label, e.g. ``"epoch 3/10"``.
        enabled: False shows nothing (``--quiet``).
        interval: seconds between plain lines when there is no bar.
        done: samples already done (a resumed epoch).
    """

    def __init__(
        self, total: int, desc: str, enabled: bool = True, interval: float = 10.0, done: int = 0
    ) -> None:
        self.total = total
        self.desc = desc
        self.enabled = enabled
        self.interval = interval
        self.done = done
        self._start = time.perf_counter()
        self._start_done = done
        self._last_print = self._start
        self._bar = _make_bar(total, desc) if enabled else None
        if self._bar is not None and done:
            self._bar.update(done)

    @property
    def rate(self) -> float:
        """Samples per second since this epoch (or its resumed part) began."""
        elapsed = time.perf_counter() - self._start
        return (self.done - self._start_done) / elapsed if elapsed > 0 else 0.0

    def update(self, n: int, loss: float) -> None:
        """Record ``n`` more samples; ``loss`` is the running mean loss of the epoch."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            self._bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            return
        now = time.perf_counter()
        if self.enabled and now - self._last_print >= self.interval:
            self._last_print = now
            print(
                f"  {self.desc} [{self.done}/{self.total}] loss {loss:.4f} "
                f"{self.rate:,.0f} samples/s",
                flush=True,
            )

    def write(self, message: str) -> None:
        """Print a line without breaking the bar."""
        if self._bar is not None:
            self._bar.write(message)
        else:
            print(message, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
