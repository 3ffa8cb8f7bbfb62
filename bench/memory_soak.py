"""Memory soak: does a long training run hold flat memory?

Trains the MNIST-sized MLP 784-512-256-10 (ReLU, cross-entropy, SGD with
momentum) on random data for many steps and samples the process's resident
set size (RSS, from /proc/self/statm, or ru_maxrss where there is no /proc).
Growth is measured after a warm-up, when the allocator and numpy's caches have
settled; a leak shows as steady growth, a healthy loop as a flat line.

    python bench/memory_soak.py                      # 3000 steps, batch 128
    python bench/memory_soak.py --steps 500 --every 50
    python bench/memory_soak.py --engine torch       # the same loop in PyTorch
    python bench/memory_soak.py --leak               # keep `total += loss` (to see a leak)

Standalone (not part of ``python -m bench``); it prints a small table and a
one-line verdict, and exits 0 either way.
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import sys
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rss_mib() -> float:
    """Current resident set size in MiB (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/statm") as fh:
            resident_pages = int(fh.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def build(lib: Any, batch: int, seed: int) -> tuple[Any, Any, Any, Any, Any]:
    lib.manual_seed(seed)
    model = lib.nn.Sequential(
        lib.nn.Linear(784, 512), lib.nn.ReLU(),
        lib.nn.Linear(512, 256), lib.nn.ReLU(),
        lib.nn.Linear(256, 10),
    )  # fmt: skip
    opt = lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(seed)
    # A few fixed batches, cycled: new random data each step would only time numpy.
    xs = [lib.tensor(rng.standard_normal((batch, 784)).astype(np.float32)) for _ in range(4)]
    ys = [lib.tensor(rng.integers(0, 10, batch)) for _ in range(4)]
    return model, opt, xs, ys, lib.nn.functional.cross_entropy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=200, help="steps before the baseline")
    parser.add_argument("--every", type=int, default=250, help="print RSS every N steps")
    parser.add_argument("--engine", choices=["tinytorch", "torch"], default="tinytorch")
    parser.add_argument("--leak", action="store_true", help="accumulate `total += loss`")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    lib = importlib.import_module(args.engine)
    if args.engine == "torch":
        lib.set_num_threads(1)
    model, opt, xs, ys, cross_entropy = build(lib, args.batch, args.seed)
    total: Any = 0.0
    print(f"{args.engine}: MLP 784-512-256-10, batch {args.batch}, {args.steps} steps"
          + (" (leaking: total += loss)" if args.leak else ""))  # fmt: skip
    print(f"{'step':>6}  {'RSS MiB':>8}  {'ms/step':>8}")
    start_rss = rss_mib()
    print(f"{0:>6}  {start_rss:>8.1f}  {'':>8}")
    base = None
    t_window = time.perf_counter()
    t_all = t_window
    for step in range(1, args.steps + 1):
        x, y = xs[step % 4], ys[step % 4]
        loss = cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total = total + loss if args.leak else total + loss.item()
        if step == args.warmup:
            base = rss_mib()
        if step % args.every == 0 or step == args.steps:
            now = time.perf_counter()
            n = args.every if step % args.every == 0 else step % args.every
            print(f"{step:>6}  {rss_mib():>8.1f}  {1e3 * (now - t_window) / n:>8.2f}")
            t_window = now
    elapsed = time.perf_counter() - t_all
    end = rss_mib()
    if base is None:
        base = start_rss
    growth = end - base
    print(
        f"\nRSS after warm-up (step {min(args.warmup, args.steps)}): {base:.1f} MiB; "
        f"at the end: {end:.1f} MiB; growth {growth:+.1f} MiB ({100 * growth / base:+.1f}%)"
    )
    print(f"{args.steps} steps in {elapsed:.1f} s ({1e3 * elapsed / args.steps:.2f} ms/step); "
          f"final mean loss {float(total) / args.steps:.4f}")  # fmt: skip
    verdict = "flat" if abs(growth) < 0.05 * base else "GROWING"
    print(f"verdict: memory {verdict} (threshold 5% of the post-warm-up RSS)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
