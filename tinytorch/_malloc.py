"""glibc allocator settings for array-heavy work, applied when tinytorch is imported.

Why: a training step allocates and frees many temporaries between 128 KiB and a
few MiB (activations, gradients, im2col columns). With glibc's defaults each
large one is a fresh ``mmap`` (every page faults on first touch) or, once the
dynamic threshold has risen, heap memory that ``free`` hands back to the OS as
soon as the top of the heap is free. Either way the next step page-faults its
memory in again. Keeping freed memory in the process for reuse removed most of
that: on the project's 2-core machine (``python -m bench --threads 1``, one
process per engine) the LSTM step went from about 20 ms to 12 ms and the CNN
step from about 8 ms to 5 ms, while numpy's and torch's own steps are unchanged.

The settings: ``M_MMAP_THRESHOLD`` = 32 MiB (arrays below it come from the heap;
setting it also stops glibc's dynamic adjustment) and ``M_TRIM_THRESHOLD`` =
128 MiB (the heap keeps up to that much free memory at its top). The cost: a
process may keep up to about 128 MiB of freed memory mapped, as PyTorch's
caching allocators do on GPUs. They are process-wide; set the environment
variable ``TINYTORCH_MALLOC_TUNING=0`` before importing tinytorch to keep
glibc's defaults. Not applied (and not needed) on other C libraries or systems.
torch has no such setting; this is tinytorch's own.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 128 << 20

#: Whether the settings were applied in this process.
applied = False


def apply() -> bool:
    """Apply the settings once (glibc only, unless ``TINYTORCH_MALLOC_TUNING=0``)."""
    global applied
    if applied or os.environ.get("TINYTORCH_MALLOC_TUNING", "1") == "0":
        return applied
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    return applied
