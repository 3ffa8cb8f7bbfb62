"""Case 9: one end-to-end epoch of the training app ``tinytorch.examples.train``.

Each timed step is one whole run of the app, ``main(["--dataset", D, "--epochs", "1",
"--backend", ENGINE, "--quiet", "--no-plots", "--out", TMP])``.  That includes loading
the data, building the model with the app's preset, one training epoch, the test-set
evaluation and the checkpoint.  ``--backend torch`` runs the identical app code on
PyTorch.  The app lives in the tinytorch package, so the torch worker imports tinytorch
too.  Because one step is a whole epoch, the case does one timed warm-up call (after the
untimed first call), gets 2-3 rounds, and skips the memory phase.

Sizes:

``mnist``
    MNIST (60k training images; app preset: MLP 784-512-10, batch 128, Adam, cosine
    schedule).  The IDX files are looked up in ``$BENCH_MNIST_DIR``, then in the app's
    default folder (``~/.cache/tinytorch/datasets``), then in ``shared/data/mnist`` next
    to or inside the repository.  The benchmark never downloads, and without the files
    the case reports **not yet available**.  No number is ever faked.
``digits``
    the app's bundled 8x8 digits (no download), for an end-to-end number wherever
    tinytorch is installed.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from pathlib import Path
from types import ModuleType

from bench.cases._common import Bench, Case, torch_like

NAME = "mnist"
TITLE = "training app, 1 epoch end to end (tinytorch.examples.train)"
SIZES: tuple[str, ...] = ("mnist", "digits")
QUICK_SIZES: tuple[str, ...] = ()
ENGINES: tuple[str, ...] = ("torch", "tinytorch")
UNIT: tuple[str, float] = ("s", 1.0)
MIN_WARMUP = 1  # timed warm-up calls after the first (the runner's default is 2)
MAX_ROUNDS = 3  # an epoch takes seconds: keep the full suite under ~10 minutes
MEASURE_MEMORY = False
APP_MODULE = "tinytorch.examples.train"
DATA_MODULE = "tinytorch.examples._app_data"


class NotYetAvailableError(RuntimeError):
    """The training app, or the data set it needs, is not there (yet)."""


def _import_app() -> ModuleType:
    try:
        return importlib.import_module(APP_MODULE)
    except ImportError as exc:
        raise NotYetAvailableError(
            f"not yet available: {APP_MODULE} cannot be imported ({type(exc).__name__}: {exc})"
        ) from None


def _data_dirs() -> list[Path | None]:
    """Candidate ``--data-dir`` values; ``None`` is the app's own default folder."""
    root = Path(__file__).resolve().parents[2]
    env = os.environ.get("BENCH_MNIST_DIR")
    return [
        *([Path(env)] if env else []),
        None,
        root.parent / "shared" / "data" / "mnist",
        root / "shared" / "data" / "mnist",
    ]


def find_data_dir(dataset: str) -> Path | None:
    """The first folder holding ``dataset``; :class:`NotYetAvailableError` if none."""
    if dataset == "digits":
        return None
    data = importlib.import_module(DATA_MODULE)
    errors = []
    for folder in _data_dirs():
        if folder is not None and not folder.is_dir():
            continue
        try:
            data.load_image_data(dataset, folder, False, 1, 1)
        except (FileNotFoundError, OSError, ValueError) as exc:
            errors.append(f"{folder or 'default folder'}: {type(exc).__name__}")
            continue
        return folder
    raise NotYetAvailableError(
        f"not yet available: {dataset} files not found (the benchmark never downloads; "
        f"set BENCH_MNIST_DIR); tried {'; '.join(errors)}"
    )


def build(engine: str, size: str) -> Bench:
    """One app run (1 epoch) on ``size`` (``mnist`` or ``digits``) with ``engine``."""
    torch_like(engine)  # the engine itself must import
    app = _import_app()
    folder = find_data_dir(size)
    args = ["--dataset", size, "--epochs", "1", "--backend", engine, "--quiet", "--no-plots"]
    if folder is not None:
        args += ["--data-dir", str(folder)]

    def step() -> None:
        with tempfile.TemporaryDirectory(prefix="bench-train-") as out:
            rc = app.main([*args, "--out", out])
        if rc != 0:
            raise RuntimeError(f"{APP_MODULE}.main exited with {rc}")

    return Bench(step, probe=lambda: [])


_case = Case(build)
setup = _case.setup
step = _case.step
check = _case.check
scratch_bytes = _case.scratch_bytes
