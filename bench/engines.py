"""Engine names, engine import and per-process environment information.

An *engine* is one of ``"tinytorch"``, ``"torch"`` or ``"numpy"``.  Each engine is only
ever imported inside its own worker process (see :mod:`bench.worker`).
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
from types import ModuleType
from typing import Any

ENGINES: tuple[str, ...] = ("numpy", "torch", "tinytorch")
"""All engines, in the order they are run within a round and shown in tables."""

TORCH_LIKE: tuple[str, ...] = ("torch", "tinytorch")
"""Engines that expose the torch API (the case code is shared between them)."""

OPENBLAS_ENV_VARS: tuple[str, ...] = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
"""Environment variables that select OpenBLAS kernels and can slow numpy down."""

_THREAD_ENV_VARS: tuple[str, ...] = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OMP_WAIT_POLICY",
)
"""Thread-count related environment variables that are reported in the header."""


def import_engine(engine: str) -> ModuleType:
    """Import and return the module that implements ``engine``.

    For ``"torch"`` and ``"tinytorch"`` that is the torch-API module itself, so case code
    can be written once as ``tt.nn.Linear(...)`` with ``tt`` either of them.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {ENGINES}")
    return importlib.import_module(engine)


def engine_info(engine: str) -> dict[str, Any]:
    """Describe the current process: versions, thread pools and relevant env vars.

    Meant to be called inside a worker after the engine (and its BLAS) is loaded.
    """
    info: dict[str, Any] = {
        "engine": engine,
        "python": platform.python_version(),
        "executable": sys.executable,
        "env": {k: os.environ.get(k) for k in OPENBLAS_ENV_VARS + _THREAD_ENV_VARS},
        "cpu_count": os.cpu_count(),
    }
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        info["numpy"] = numpy.__version__
    mod = sys.modules.get(engine)
    if mod is not None and engine != "numpy":
        info[engine] = str(getattr(mod, "__version__", "unknown"))
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch_num_threads"] = torch.get_num_threads()
    info["torch_imported"] = torch is not None
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        info["threadpools"] = None
    else:
        keep = (
            "user_api",
            "internal_api",
            "prefix",
            "version",
            "num_threads",
            "architecture",
            "threading_layer",
            "filepath",
        )
        info["threadpools"] = [{k: p.get(k) for k in keep if k in p} for p in threadpool_info()]
    return info
