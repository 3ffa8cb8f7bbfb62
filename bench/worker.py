"""Worker process: runs one engine of one case, driven by the runner over a pipe.

Started by :mod:`bench.run` as ``python -m bench.worker --mode MODE --engine ENGINE
[--case CASE --size SIZE]``.  Exactly one engine is imported per process.  The protocol is
one JSON object per line: the runner writes commands to stdin, the worker answers on the
original stdout (``sys.stdout`` itself is redirected to stderr so that prints from the
code under test cannot corrupt the protocol).

Modes:

``info``
    import the engine, touch its BLAS, answer ``{"status": "ok", "info": {...}}``.
``time``
    set the case up and answer ``{"status": "setup_done"}`` (or ``na``/``unavailable``),
    then serve ``{"cmd": "warmup", ...}``, ``{"cmd": "round", "n": N}`` and
    ``{"cmd": "exit"}``.
``mem``
    set the case up, measure the peak memory of one steady-state step (numpy: its
    declared scratch arrays + tracemalloc peak; tinytorch: tracemalloc peak; torch:
    torch.profiler's allocation records) and, for the JSON only, the peak RSS increase;
    then run the correctness check; answer once.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import re
import resource
import sys
import time
import traceback
import tracemalloc
from types import ModuleType
from typing import Any, TextIO


def describe_exception(exc: BaseException) -> str:
    """One-line ``Type: message`` description of an exception."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def _proc_status_kib(field: str) -> int | None:
    """Read a ``kB`` field (``VmRSS``, ``VmHWM``) of ``/proc/self/status``."""
    try:
        with open("/proc/self/status") as f:
            text = f.read()
    except OSError:
        return None
    m = re.search(rf"^{field}:\s+(\d+)\s+kB", text, re.M)
    return int(m.group(1)) if m else None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure_rss_peak(step: Any) -> tuple[int, str]:
    """Peak RSS increase (bytes) during one call of ``step`` and the method used.

    Preferred: reset ``VmHWM`` via ``/proc/self/clear_refs`` and read it back.  Fallback:
    ``getrusage(RUSAGE_SELF).ru_maxrss`` delta, which only sees growth beyond the
    process's earlier peak (it is labelled as such).
    """
    gc.collect()
    rss0 = _proc_status_kib("VmRSS")
    if rss0 is not None and _reset_peak_rss():
        step()
        hwm = _proc_status_kib("VmHWM")
        if hwm is not None:
            return max(0, hwm - rss0) * 1024, "peak RSS (VmHWM reset) - RSS before"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(0, after - before) * 1024, "ru_maxrss delta (no reset; lower bound)"


def measure_tracemalloc_peak(step: Any) -> int:
    """Peak traced allocation (bytes) above the live set at the start of a step.

    Tracing starts one step earlier so that buffers freed during the measured step
    (e.g. the previous step's gradients) are accounted for.
    """
    tracemalloc.start()
    try:
        step()
        gc.collect()
        tracemalloc.reset_peak()
        current0 = tracemalloc.get_traced_memory()[0]
        step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return max(0, peak - current0)


def measure_torch_profiler_peak(step: Any) -> dict[str, Any]:
    """Peak of torch's CPU tensor memory above its level at the start of one step.

    Runs one step under ``torch.profiler.profile(profile_memory=True)`` so that the
    allocator records the size of every block the step allocates (it learns sizes only
    while a profiler runs, and a later free of a block of unknown size is dropped), then
    profiles the measured step.  Returns (bytes):

    ``torch_profiler_peak``
        maximum prefix sum of the measured step's allocation records (one per
        ``malloc``/``free`` of tensor memory, in time order): exact for tensor storage.
    ``torch_profiler_op_peak``
        the same walk at operator granularity, over the profiler's events sorted by end
        time, summing ``self_cpu_memory_usage`` (``cpu_memory_usage`` for ``[memory]``
        events outside any operator).  It misses blocks an operator allocates and frees
        before it returns and counts frees at the end of the enclosing event; kept for
        comparison only.
    """
    import torch
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True):
        step()
    gc.collect()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    out: dict[str, Any] = {}
    kineto_results = getattr(prof.profiler, "kineto_results", None)
    if kineto_results is not None:
        records = sorted(
            (
                e
                for e in kineto_results.events()
                if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU
            ),
            key=lambda e: e.start_ns(),
        )
        out["torch_profiler_peak"] = max_prefix_sum(e.nbytes() for e in records)
    events = sorted(prof.events(), key=lambda e: e.time_range.end)
    out["torch_profiler_op_peak"] = max_prefix_sum(
        e.cpu_memory_usage if e.name == "[memory]" else e.self_cpu_memory_usage for e in events
    )
    return out


def max_prefix_sum(deltas: Any) -> int:
    """Largest running total of ``deltas`` (0 if it never rises above the start)."""
    total = peak = 0
    for d in deltas:
        total += int(d)
        peak = max(peak, total)
    return peak


def measure_step_peak(mod: ModuleType, engine: str) -> dict[str, Any]:
    """Peak step memory of the set-up case, comparable across engines (bytes).

    ``step_peak`` is the most memory one step needs beyond parameters, their gradients,
    optimizer state and input data.  numpy: the reference's preallocated ``scratch``
    arrays (invisible to tracemalloc, which sees only what a step allocates) plus the
    tracemalloc peak.  tinytorch: the tracemalloc peak.  torch, whose allocator
    tracemalloc cannot see: torch.profiler's allocation records.  The parts are kept
    too, and ``step_peak_method`` says which measurement gave the value.
    """
    if engine == "torch":
        out = measure_torch_profiler_peak(mod.step)
        if "torch_profiler_peak" in out:
            out["step_peak"] = out["torch_profiler_peak"]
            out["step_peak_method"] = "torch.profiler allocation records"
        else:
            out["step_peak"] = out["torch_profiler_op_peak"]
            out["step_peak_method"] = "torch.profiler operator events"
        return out
    traced = measure_tracemalloc_peak(mod.step)
    scratch = int(getattr(mod, "scratch_bytes", lambda: 0)())
    return {
        "tracemalloc_peak": traced,
        "scratch": scratch,
        "step_peak": scratch + traced,
        "step_peak_method": "scratch arrays + tracemalloc" if scratch else "tracemalloc",
    }


class Protocol:
    """JSON-lines channel over stdin and the original stdout."""

    def __init__(self) -> None:
        sys.stdout.flush()
        self._out: TextIO = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)  # anything printed by the code under test goes to stderr
        sys.stdout = sys.stderr

    def send(self, msg: dict[str, Any]) -> None:
        """Write one message."""
        self._out.write(json.dumps(msg) + "\n")
        self._out.flush()

    def recv(self) -> dict[str, Any] | None:
        """Read one command; ``None`` at end of input."""
        line = sys.stdin.readline()
        return json.loads(line) if line else None


def load_case(case: str) -> ModuleType:
    """Import the case module ``bench.cases.<case>``."""
    return importlib.import_module(f"bench.cases.{case}")


def setup_case(mod: ModuleType, engine: str, size: str) -> dict[str, Any] | None:
    """Run ``mod.setup``; return an error message dict or ``None`` on success."""
    from bench.cases._common import NotApplicableError

    try:
        mod.setup(engine, size)
    except NotApplicableError as exc:
        return {"status": "na", "error": str(exc)}
    except Exception as exc:
        traceback.print_exc()
        return {"status": "unavailable", "error": describe_exception(exc)}
    return None


def run_info(proto: Protocol, engine: str) -> None:
    """``info`` mode."""
    from bench.engines import engine_info, import_engine

    try:
        mod = import_engine(engine)
        if engine == "numpy":
            a = mod.ones((64, 64))
            a @ a
        else:
            a = mod.ones(64, 64)
            a @ a
    except Exception as exc:
        proto.send({"status": "unavailable", "error": describe_exception(exc)})
        return
    proto.send({"status": "ok", "info": engine_info(engine)})


def run_time(proto: Protocol, engine: str, case: str, size: str) -> None:
    """``time`` mode: setup, then serve warmup/round commands."""
    from bench.engines import engine_info

    mod = load_case(case)
    err = setup_case(mod, engine, size)
    if err is not None:
        proto.send(err)
        return
    proto.send({"status": "setup_done"})
    step = mod.step
    while True:
        cmd = proto.recv()
        if cmd is None or cmd["cmd"] == "exit":
            return
        try:
            if cmd["cmd"] == "warmup":
                t0 = time.perf_counter()
                step()  # the first call (lazy init, JIT, page faults) does not count
                first = time.perf_counter() - t0
                times: list[float] = []
                t_end = time.perf_counter() + float(cmd["seconds"])
                while len(times) < int(cmd["min_iters"]) or time.perf_counter() < t_end:
                    t0 = time.perf_counter()
                    step()
                    times.append(time.perf_counter() - t0)
                est = min(times)  # robust to bursts of foreign load during warmup
                proto.send(
                    {
                        "status": "ready",
                        "est": est,
                        "first_call": first,
                        "warmup_iters": len(times) + 1,
                        "info": engine_info(engine),
                    }
                )
            elif cmd["cmd"] == "round":
                gc.collect()
                perf = time.perf_counter
                times = []
                for _ in range(int(cmd["n"])):
                    t0 = perf()
                    step()
                    times.append(perf() - t0)
                proto.send({"status": "ok", "times": times})
            else:
                proto.send({"status": "error", "error": f"unknown command {cmd!r}"})
        except Exception as exc:
            traceback.print_exc()
            proto.send({"status": "error", "error": describe_exception(exc)})
            return


def run_mem(proto: Protocol, engine: str, case: str, size: str, do_check: bool) -> None:
    """``mem`` mode: memory of one steady-state step, then the correctness check."""
    mod = load_case(case)
    err = setup_case(mod, engine, size)
    if err is not None:
        proto.send(err)
        return
    result: dict[str, Any] = {"status": "ok"}
    try:
        mod.step()  # warm-up: lazily created gradients / optimizer state exist from now on
        result["rss_peak"], result["rss_method"] = measure_rss_peak(mod.step)
        result.update(measure_step_peak(mod, engine))
    except Exception as exc:
        traceback.print_exc()
        result = {"status": "error", "error": describe_exception(exc)}
    if do_check and hasattr(mod, "check"):
        try:
            result["check"] = [float(v) for v in mod.check(engine, size)]
        except Exception as exc:
            traceback.print_exc()
            result["check_error"] = describe_exception(exc)
    proto.send(result)


def main(argv: list[str] | None = None) -> int:
    """Worker entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("info", "time", "mem"), required=True)
    p.add_argument("--engine", required=True)
    p.add_argument("--case")
    p.add_argument("--size")
    p.add_argument("--no-check", action="store_true")
    args = p.parse_args(argv)
    proto = Protocol()
    if args.mode == "info":
        run_info(proto, args.engine)
    elif args.mode == "time":
        run_time(proto, args.engine, args.case, args.size)
    else:
        run_mem(proto, args.engine, args.case, args.size, not args.no_check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
