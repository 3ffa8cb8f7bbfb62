"""The library an example runs on: tinytorch, or real PyTorch for side-by-side timings.

The examples are written against torch's API and receive the library as a module
(``torch = backend.torch``), so ``--backend torch`` runs the identical script on
PyTorch. Only saving differs: tinytorch writes safetensors files (no pickle),
PyTorch its own format.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["BACKENDS", "Backend", "add_backend_arg", "get_backend", "limit_threads", "run_main"]

BACKENDS = ("tinytorch", "torch")


@dataclass(frozen=True)
class Backend:
    """A library plus how to save and load checkpoints with it."""

    name: str
    torch: ModuleType
    #: the checkpoint file name for this library
    checkpoint_name: str

    def save(self, obj: Any, path: str | os.PathLike[str]) -> None:
        """Write ``obj`` to ``path`` atomically (a crash leaves the old file intact)."""
        if self.name == "tinytorch":
            from tinytorch import serialization  # already atomic

            serialization.save(obj, path)
            return
        path = Path(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                self.torch.save(obj, f)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self, path: str | os.PathLike[str]) -> Any:
        """Read what :meth:`save` wrote (never runs code from the file)."""
        if self.name == "tinytorch":
            from tinytorch import serialization

            return serialization.load(path)
        return self.torch.load(path, weights_only=True)

    @property
    def weights_name(self) -> str:
        return "model.safetensors" if self.name == "tinytorch" else "model.pt"


def get_backend(name: str = "tinytorch") -> Backend:
    """The backend called ``name`` (``"tinytorch"`` or ``"torch"``).

    Raises:
        ValueError: an unknown name.
        ImportError: ``"torch"`` and PyTorch is not installed.
    """
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")
    module = importlib.import_module(name)
    importlib.import_module(f"{name}.utils.data")  # makes ``torch.utils.data`` an attribute
    if name == "tinytorch":
        return Backend(name, module, "checkpoint.safetensors")
    return Backend(name, module, "checkpoint.pt")


@contextlib.contextmanager
def limit_threads(backend: Backend, threads: int | None) -> Iterator[None]:
    """Within the block, use at most ``threads`` CPU threads for the math.

    None leaves the library's default. Why: small matrix products gain nothing
    from several BLAS threads, and on a busy machine the threads' hand-offs can
    make them several times slower. tinytorch's threads are numpy's BLAS pool,
    limited through ``threadpoolctl``; the previous limits return at the end.

    Raises:
        ValueError: ``threads`` is not positive.
        ImportError: tinytorch and threadpoolctl is not installed.
    """
    if threads is None:
        yield
        return
    if threads <= 0:
        raise ValueError(f"--threads must be positive, got {threads}")
    if backend.name == "torch":
        previous = backend.torch.get_num_threads()
        backend.torch.set_num_threads(threads)
        try:
            yield
        finally:
            backend.torch.set_num_threads(previous)
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise ImportError("--threads needs threadpoolctl (pip install threadpoolctl)") from None
    with threadpool_limits(threads):
        yield


def add_backend_arg(p: argparse.ArgumentParser) -> None:
    """Add ``--backend`` and ``--threads`` (see :func:`limit_threads`)."""
    p.add_argument("--threads", type=int, help="CPU threads for the math (default: all)")
    p.add_argument("--backend", choices=BACKENDS, default="tinytorch",
                   help="library to run on (torch for a side-by-side timing)")  # fmt: skip


def run_main(p: argparse.ArgumentParser, argv: list[str] | None,
             run: Callable[[argparse.Namespace, Any], int]) -> int:  # fmt: skip
    """An example's ``main``: add ``--backend``/``--threads`` to ``p``, parse ``argv``
    and return ``run(args, torch)`` with the chosen library, within its thread limit."""
    add_backend_arg(p)
    args = p.parse_args(argv)
    backend = get_backend(args.backend)
    with limit_threads(backend, args.threads):
        return run(args, backend.torch)
