"""Benchmark runner: tinytorch vs torch vs a hand-written numpy reference.

Usage::

    python -m bench                      # full run (a few minutes)
    python -m bench --quick              # smoke run: small sizes, few iterations
    python -m bench --only mlp --only conv:c28 --engines numpy,torch
    python -m bench --json out.json --markdown BENCHMARKS.md

Each engine of each case runs in its own worker process (:mod:`bench.worker`); the
workers are driven in alternation (numpy, torch, tinytorch, numpy, torch, ...) so that
only one of them is busy at any time, and ratios are paired per round.  Memory and the
correctness check run in further fresh processes.  See ``bench/README.md``.
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # run as ``python bench/run.py``
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_PARENT_ENV: dict[str, str] = dict(os.environ)
# This process only does bookkeeping; keep its own (idle) BLAS/OpenMP pools small.  The
# workers get _PARENT_ENV, not these settings.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import queue  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Any  # noqa: E402

from bench import cases as case_registry  # noqa: E402
from bench.engines import ENGINES, OPENBLAS_ENV_VARS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHORT: dict[str, str] = {"numpy": "np", "torch": "torch", "tinytorch": "tt"}
RATIO_PAIRS: tuple[tuple[str, str], ...] = (
    ("tinytorch", "numpy"),
    ("tinytorch", "torch"),
    ("torch", "numpy"),
)
BUSY_CORES = 0.1
"""Above this many cores of foreign CPU use during a case, the report warns."""
LOAD_NOTE = (
    "'other CPU': average cores used by other processes (and hypervisor steal) "
    f"while the case was timed; above {BUSY_CORES} the timings are disturbed."
)
CHECK_TOL = 1e-4
"""Correctness tolerance: ``|value - torch value| <= CHECK_TOL * max(1, |torch value|)``."""


# ----------------------------------------------------------------------------- config


@dataclass
class Config:
    """Run settings (see ``--help``)."""

    quick: bool = False
    engines: list[str] = field(default_factory=lambda: list(ENGINES))
    only: list[str] = field(default_factory=list)
    rounds: int = 7
    round_time: float = 0.25
    warmup_time: float = 0.3
    min_warmup: int = 2
    gap: float = 0.1
    case_budget: float = 45.0
    threads: int | None = None
    unset_openblas_env: bool = False
    memory: bool = True
    timeout: float = 600.0
    retry_busy: int = 0
    retry_wait: float = 20.0

    def selection(self) -> list[tuple[ModuleType, str]]:
        """The (case module, size) pairs to run, in suite order."""
        wanted: dict[str, set[str] | None] = {}
        for item in self.only:
            for part in item.split(","):
                if not part.strip():
                    continue
                name, _, size = part.strip().partition(":")
                case_registry.load(name)  # validates the name
                if size:
                    sizes = wanted.get(name, set())
                    if sizes is not None:
                        sizes.add(size)
                        wanted[name] = sizes
                else:
                    wanted[name] = None
        out = []
        for name in case_registry.CASE_NAMES:
            if wanted and name not in wanted:
                continue
            mod = case_registry.load(name)
            sizes = list(mod.QUICK_SIZES if self.quick else mod.SIZES)
            chosen = wanted.get(name)
            if chosen:
                unknown = chosen - set(mod.SIZES) - set(mod.QUICK_SIZES)
                if unknown:
                    raise SystemExit(
                        f"unknown size(s) {sorted(unknown)} for case {name}; "
                        f"known: {list(dict.fromkeys(mod.SIZES + mod.QUICK_SIZES))}"
                    )
                sizes = [
                    s for s in dict.fromkeys(list(mod.SIZES) + list(mod.QUICK_SIZES)) if s in chosen
                ]
            out.extend((mod, s) for s in sizes)
        return out

    def child_env(self, mode: str) -> dict[str, str]:
        """Environment of a worker process."""
        env = dict(_PARENT_ENV)
        if self.unset_openblas_env:
            for var in OPENBLAS_ENV_VARS:
                env.pop(var, None)
        if self.threads is not None:
            for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
                env[var] = str(self.threads)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
        if mode == "mem":
            # Serve every allocation >= 4 KiB by mmap and give it back on free, so that
            # RSS follows the live set instead of glibc's cached heap (for the JSON's
            # rss_peak only; tinytorch's own mallopt settings override this at import).
            env["MALLOC_MMAP_THRESHOLD_"] = "4096"
            env["MALLOC_TRIM_THRESHOLD_"] = "65536"
        return env


# ----------------------------------------------------------------------------- workers


class WorkerError(RuntimeError):
    """A worker died, timed out or could not be talked to."""


class Worker:
    """One ``python -m bench.worker`` child process and its JSON-lines channel."""

    def __init__(
        self,
        mode: str,
        engine: str,
        env: dict[str, str],
        case: str | None = None,
        size: str | None = None,
    ) -> None:
        self.engine = engine
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        cmd = [sys.executable, "-m", "bench.worker", "--mode", mode, "--engine", engine]
        if case is not None and size is not None:
            cmd += ["--case", case, "--size", size]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=ROOT,
            env=env,
            text=True,
            bufsize=1,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def stderr_tail(self) -> str:
        """Last non-empty line the worker wrote to stderr."""
        self._stderr.seek(0)
        lines = [ln.strip() for ln in self._stderr.read().decode(errors="replace").splitlines()]
        lines = [ln for ln in lines if ln]
        return lines[-1] if lines else ""

    def _died(self) -> WorkerError:
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        tail = self.stderr_tail()
        return WorkerError(f"worker exited (rc={rc})" + (f": {tail}" if tail else ""))

    def send(self, msg: dict[str, Any]) -> None:
        """Send one command."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
        except OSError as exc:
            raise self._died() from exc

    def recv(self, timeout: float) -> dict[str, Any]:
        """Wait for one message."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise WorkerError(f"timed out after {timeout:.0f} s") from None
        if line is None:
            raise self._died()
        return json.loads(line)

    def kill(self) -> None:
        """Kill the worker process."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        """Ask the worker to exit; kill it if it does not."""
        if self.proc.poll() is None:
            try:
                self.send({"cmd": "exit"})
                self.proc.wait(timeout=10)
            except (WorkerError, subprocess.TimeoutExpired):
                self.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._stderr.close()


class CpuMonitor:
    """CPU time used by processes other than this runner and its workers (Linux /proc).

    ``start()`` and ``stop()`` bracket the timed rounds; :attr:`other_cores` is the
    average number of cores that anything else (the rest of the machine, and hypervisor
    steal time) used meanwhile.  ``None`` where ``/proc`` is not available.
    """

    def __init__(self) -> None:
        self.other_cores: float | None = None
        self._t0 = 0.0
        self._sys0: int | None = None
        self._own0: dict[int, int] = {}

    @staticmethod
    def _system_busy() -> int | None:
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        user, nice, system, _idle, _iowait, irq, softirq, steal = (v + [0] * 8)[:8]
        return user + nice + system + irq + softirq + steal

    @staticmethod
    def _pid_ticks(pid: int) -> int | None:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])  # utime + stime
        except (OSError, ValueError, IndexError):
            return None

    def _own(self, pids: Sequence[int]) -> dict[int, int]:
        out = {}
        for pid in [os.getpid(), *pids]:
            ticks = self._pid_ticks(pid)
            if ticks is not None:
                out[pid] = ticks
        return out

    def start(self, pids: Sequence[int]) -> None:
        """Begin measuring; ``pids`` are the benchmark's worker processes."""
        self._t0 = time.perf_counter()
        self._sys0 = self._system_busy()
        self._own0 = self._own(pids)

    def stop(self, pids: Sequence[int]) -> None:
        """Finish measuring (call before the workers exit)."""
        sys1 = self._system_busy()
        wall = time.perf_counter() - self._t0
        if self._sys0 is None or sys1 is None or wall <= 0:
            return
        own1 = self._own(pids)
        own = sum(own1.get(pid, t0) - t0 for pid, t0 in self._own0.items())
        hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.other_cores = max(0.0, (sys1 - self._sys0 - own) / hz / wall)


def log(msg: str) -> None:
    """Progress output (stderr, so that stdout holds only the report)."""
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- phases


def _one_answer_each(workers: dict[str, Worker], timeout: float, failed: str) -> dict[str, Any]:
    """Each worker's one reply (``{"status": failed, "error": ...}`` if it failed); the
    workers are closed."""
    out: dict[str, Any] = {}
    for engine, w in workers.items():
        try:
            out[engine] = w.recv(timeout)
        except WorkerError as exc:
            out[engine] = {"status": failed, "error": str(exc)}
        finally:
            w.close()
    return out


def collect_info(cfg: Config) -> dict[str, Any]:
    """Versions and thread pools as seen by a fresh worker of each engine."""
    workers = {e: Worker("info", e, cfg.child_env("info")) for e in cfg.engines}
    return _one_answer_each(workers, cfg.timeout, "unavailable")


def measure_memory(
    cfg: Config, mod: ModuleType, size: str, engines: Sequence[str]
) -> dict[str, Any]:
    """Memory + correctness values of each engine, each in a fresh process."""
    workers = {e: Worker("mem", e, cfg.child_env("mem"), mod.NAME, size) for e in engines}
    return _one_answer_each(workers, cfg.timeout, "error")


def spawn_timing_workers(
    cfg: Config, mod: ModuleType, size: str, engines: Sequence[str]
) -> dict[str, Worker]:
    """Start the timing workers; they import and set up concurrently (untimed)."""
    env = cfg.child_env("time")
    return {e: Worker("time", e, env, mod.NAME, size) for e in engines}


def time_case(
    cfg: Config,
    pending: dict[str, Worker],
    min_warmup: int | None = None,
    max_rounds: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Time one (case, size), alternating between the engines' worker processes.

    Everything from the warmup on is serial: only one worker runs at a time.
    """
    results: dict[str, dict[str, Any]] = {}
    workers: dict[str, Worker] = {}
    engines = list(pending)
    for engine, w in pending.items():
        try:
            msg = w.recv(cfg.timeout)
        except WorkerError as exc:
            msg = {"status": "error", "error": str(exc)}
        if msg.get("status") == "setup_done":
            workers[engine] = w
        else:
            results[engine] = {
                "status": msg.get("status", "error"),
                "message": msg.get("error", ""),
            }
            w.close()

    n_iter: dict[str, int] = {}
    for engine, w in list(workers.items()):
        try:
            w.send(
                {
                    "cmd": "warmup",
                    "seconds": cfg.warmup_time,
                    "min_iters": cfg.min_warmup if min_warmup is None else min_warmup,
                }
            )
            msg = w.recv(cfg.timeout)
        except WorkerError as exc:
            msg = {"status": "error", "error": str(exc)}
        if msg.get("status") != "ready":
            results[engine] = {"status": "error", "message": msg.get("error", "")}
            w.close()
            del workers[engine]
            continue
        est = max(float(msg["est"]), 1e-7)
        n_iter[engine] = max(1, min(1_000_000, round(cfg.round_time / est)))
        results[engine] = {
            "status": "ok",
            "message": "",
            "est": est,
            "info": msg.get("info"),
            "first_call": msg.get("first_call"),
            "n_per_round": n_iter[engine],
            "rounds": [],
        }
        time.sleep(cfg.gap)

    # Fewer rounds for slow cases, so one slow engine cannot blow the time budget.
    round_cost = sum(max(results[e]["est"] * n_iter[e], cfg.round_time) + cfg.gap for e in workers)
    n_rounds = cfg.rounds if max_rounds is None else max(2, min(cfg.rounds, max_rounds))
    if round_cost > 0:
        n_rounds = max(2, min(n_rounds, math.floor(cfg.case_budget / round_cost)))
    monitor = CpuMonitor()
    pids = [w.proc.pid for w in workers.values()]
    if workers:
        monitor.start(pids)
    t_rounds = time.perf_counter()
    for r in range(n_rounds):
        if r >= 2 and time.perf_counter() - t_rounds > cfg.case_budget:
            break  # a loaded machine made the rounds much slower than calibrated
        for engine in [e for e in ENGINES if e in workers]:
            w = workers[engine]
            res = results[engine]
            timeout = max(cfg.timeout, 20 * res["est"] * n_iter[engine])
            try:
                w.send({"cmd": "round", "n": n_iter[engine]})
                msg = w.recv(timeout)
            except WorkerError as exc:
                msg = {"status": "error", "error": str(exc)}
            if msg.get("status") == "ok":
                res["rounds"].append(msg["times"])
            else:
                res["status"] = "error"
                res["message"] = msg.get("error", "")
                w.close()
                del workers[engine]
            time.sleep(cfg.gap)
    if pids:
        monitor.stop(pids)
    for w in workers.values():
        w.close()
    results["_load"] = {"other_cores": monitor.other_cores}

    for engine in engines:
        res = results[engine]
        rounds = res.get("rounds") or []
        if rounds and res.get("status") == "ok":  # partial rounds of a failed engine: JSON only
            flat = [t for r in rounds for t in r]
            res["round_medians"] = [statistics.median(r) for r in rounds]
            res["median"] = statistics.median(flat)
            res["min"] = min(flat)
            res["iterations"] = len(flat)
        elif res.get("status") == "ok":
            res["status"] = "error"
            res["message"] = res.get("message") or "no completed round"
    return results


def paired_ratios(engines: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Median over rounds of (round median of a) / (round median of b)."""
    out: dict[str, Any] = {}
    for a, b in RATIO_PAIRS:
        ra = engines.get(a, {}).get("round_medians")
        rb = engines.get(b, {}).get("round_medians")
        if ra and rb:
            per_round = [x / y for x, y in zip(ra, rb)]
            out[f"{a}/{b}"] = {"median": statistics.median(per_round), "per_round": per_round}
    return out


def check_verdict(memory: dict[str, Any]) -> dict[str, Any]:
    """Compare each engine's check values with torch's (or with numpy's without torch)."""
    values = {e: m["check"] for e, m in memory.items() if isinstance(m.get("check"), list)}
    ref_engine = "torch" if "torch" in values else ("numpy" if "numpy" in values else None)
    out: dict[str, Any] = {"reference": ref_engine}
    for engine, m in memory.items():
        if engine == ref_engine:
            continue
        if m.get("check_error"):
            out[engine] = {"ok": False, "error": m["check_error"]}
            continue
        if engine not in values or ref_engine is None:
            continue
        ref, got = values[ref_engine], values[engine]
        if len(ref) != len(got):
            out[engine] = {"ok": False, "error": f"{len(got)} values vs {len(ref)}"}
            continue
        if not ref:
            continue
        diff = max(abs(g - r) / max(1.0, abs(r)) for g, r in zip(got, ref))
        ok = diff <= CHECK_TOL  # False for NaN
        out[engine] = {"ok": bool(ok), "max_rel_diff": diff}
    return out


def run_case(cfg: Config, mod: ModuleType, size: str, with_memory: bool = True) -> dict[str, Any]:
    """Memory/check phase, then timing phase, for one (case, size)."""
    engines = [e for e in cfg.engines if e in mod.ENGINES]
    row: dict[str, Any] = {
        "case": mod.NAME,
        "size": size,
        "title": mod.TITLE,
        "unit": list(mod.UNIT),
        "engines": {},
        "memory": {},
        "check": {},
    }
    for e in cfg.engines:
        if e not in engines:
            row["engines"][e] = {"status": "na", "message": "no implementation for this case"}
    label = f"[{mod.NAME} {size}]"
    # The timing workers import and set up while memory is measured (both untimed).
    pending = spawn_timing_workers(cfg, mod, size, engines)
    if with_memory and cfg.memory and engines and getattr(mod, "MEASURE_MEMORY", True):
        log(f"{label} memory + check ({', '.join(engines)})")
        row["memory"] = measure_memory(cfg, mod, size, engines)
        row["check"] = check_verdict(row["memory"])
    log(f"{label} timing ({', '.join(engines)})")
    timing = time_case(
        cfg, pending, getattr(mod, "MIN_WARMUP", None), getattr(mod, "MAX_ROUNDS", None)
    )
    row["other_cpu_cores"] = timing.pop("_load")["other_cores"]
    row["engines"].update(timing)
    row["ratios"] = paired_ratios(row["engines"])
    unit, factor = mod.UNIT
    parts = []
    for e in cfg.engines:
        res = row["engines"][e]
        if res.get("median") is not None:
            parts.append(f"{e} {fmt_num(res['median'] * factor)} {unit}")
        else:
            parts.append(f"{e} {status_text(res)}")
    load = row["other_cpu_cores"]
    if load is not None:
        parts.append(f"other CPU load {load:.2f} cores")
    log(f"{label} " + ", ".join(parts))
    return row


def run_case_retrying(cfg: Config, mod: ModuleType, size: str) -> dict[str, Any]:
    """:func:`run_case`; with ``--retry-busy N``, time a disturbed case again (up to N times).

    A case counts as disturbed when other processes used more than ``BUSY_CORES`` while
    it was timed.  The retry waits ``--retry-wait`` seconds, re-times (memory and check are
    kept from the first attempt) and the least disturbed attempt is reported.
    """
    row = run_case(cfg, mod, size)
    row["attempts"] = 1
    for attempt in range(cfg.retry_busy):
        load = row.get("other_cpu_cores")
        if load is None or load <= BUSY_CORES:
            break
        log(
            f"[{mod.NAME} {size}] disturbed ({load:.2f} other cores); timing again in "
            f"{cfg.retry_wait:g} s ({attempt + 1}/{cfg.retry_busy})"
        )
        time.sleep(cfg.retry_wait)
        again = run_case(cfg, mod, size, with_memory=False)
        again["memory"], again["check"] = row["memory"], row["check"]
        again["attempts"] = row["attempts"] + 1
        new_load = again.get("other_cpu_cores")
        if new_load is not None and new_load < load:
            row = again
        else:
            row["attempts"] = again["attempts"]
    return row


# ----------------------------------------------------------------------------- output


def fmt_num(v: float) -> str:
    """Compact number: 3 significant digits, no exponent for the usual range."""
    if v != v:  # NaN
        return "nan"
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    if a >= 0.01:
        return f"{v:.3f}"
    return f"{v:.2g}"


def fmt_bytes(n: float | None) -> str:
    """Bytes as MiB (or KiB when small)."""
    if n is None:
        return "-"
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"


def status_text(res: dict[str, Any]) -> str:
    """Short cell text for an engine that produced no timing."""
    status = res.get("status")
    msg = res.get("message", "")
    if status == "na":
        return "N/A"
    if "not yet available" in msg:
        return "not yet available"
    if status == "unavailable":
        return "unavailable"
    return "error"


class Notes:
    """Numbered footnotes (deduplicated)."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def ref(self, text: str) -> str:
        """Return ``[n]`` for ``text`` (cut to 300 characters), adding it if new."""
        if len(text) > 300:
            text = text[:297] + "..."
        if text not in self.items:
            self.items.append(text)
        return f"[{self.items.index(text) + 1}]"


def render(headers: list[str], rows: list[list[str]], markdown: bool) -> str:
    """Render a table as aligned plain text or as a Markdown pipe table."""
    if markdown:
        lines = [
            "| " + " | ".join(headers) + " |",
            "|" + "|".join("---" if i < 2 else "---:" for i in range(len(headers))) + "|",
        ]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep] + [line(r) for r in rows])


def engine_cell(res: dict[str, Any], key: str, factor: float, notes: Notes, row: dict) -> str:
    """Timing cell (``median`` or ``min``) or a status text with a footnote."""
    if res.get(key) is not None:
        return fmt_num(res[key] * factor)
    text = status_text(res)
    if text == "N/A" or key == "min":
        return text if key == "median" else ""
    msg = res.get("message") or "unknown error"
    return f"{text} " + notes.ref(f"{row['case']} {row['size']}: {msg}")


def time_table(
    rows: list[dict[str, Any]], engines: Sequence[str], notes: Notes, markdown: bool
) -> str:
    """The timing table."""
    headers = ["case", "size", "unit"]
    for e in engines:
        headers += [f"{e} med", f"{e} min"]
    pairs = [(a, b) for a, b in RATIO_PAIRS if a in engines and b in engines]
    headers += [f"{SHORT[a]}/{SHORT[b]}" for a, b in pairs]
    headers.append("other CPU")
    body = []
    for row in rows:
        unit, factor = row["unit"]
        cells = [row["case"], row["size"], unit]
        for e in engines:
            res = row["engines"].get(e, {"status": "na"})
            cells += [
                engine_cell(res, "median", factor, notes, row),
                engine_cell(res, "min", factor, notes, row),
            ]
        for a, b in pairs:
            r = row.get("ratios", {}).get(f"{a}/{b}")
            cells.append(f"{fmt_num(r['median'])}x" if r else "-")
        load = row.get("other_cpu_cores")
        tries = row.get("attempts", 1)
        cells.append(
            ("-" if load is None else f"{load:.2f}") + (f" ({tries} tries)" if tries > 1 else "")
        )
        body.append(cells)
    return render(headers, body, markdown)


def memory_table(
    rows: list[dict[str, Any]], engines: Sequence[str], notes: Notes, markdown: bool
) -> str:
    """The memory + correctness table: each engine's peak step memory (``step_peak``)."""
    headers = ["case", "size"] + [f"{e} peak" for e in engines]
    ratios = [
        (a, b, f"{SHORT[a]}/{SHORT[b]}")
        for a, b in (("tinytorch", "numpy"), ("tinytorch", "torch"))
        if a in engines and b in engines
    ]
    headers += [label for _, _, label in ratios]
    headers.append("check vs " + ("torch" if "torch" in engines else "numpy"))
    body = []
    for row in rows:
        cells = [row["case"], row["size"]]
        mem = row.get("memory", {})
        for e in engines:
            m = mem.get(e)
            if m is None:
                res = row["engines"].get(e, {"status": "na"})
                cells.append("-" if res.get("status") == "ok" else status_text(res))
            elif m.get("status") == "ok":
                cells.append(fmt_bytes(m.get("step_peak")))
            elif m.get("status") == "na":
                cells.append("N/A")
            else:
                text = (
                    "not yet available"
                    if "not yet available" in m.get("error", "")
                    else ("unavailable" if m.get("status") == "unavailable" else "error")
                )
                cells.append(
                    text
                    if text == "not yet available"
                    else text
                    + " "
                    + notes.ref(f"{row['case']} {row['size']}: {m.get('error', '')}")
                )
        for a, b, _ in ratios:
            num = mem.get(a, {}).get("step_peak")
            den = mem.get(b, {}).get("step_peak")
            cells.append(f"{fmt_num(num / den)}x" if num is not None and den else "-")
        verdict = row.get("check", {})
        parts = []
        for e in engines:
            v = verdict.get(e)
            if not v:
                continue
            if "error" in v:
                parts.append(
                    f"{SHORT[e]} FAIL "
                    + notes.ref(f"{row['case']} {row['size']} check ({e}): {v['error']}")
                )
            else:
                parts.append(
                    f"{SHORT[e]} {'ok' if v['ok'] else 'MISMATCH'} {v['max_rel_diff']:.1e}"
                )
        cells.append("; ".join(parts) if parts else "-")
        body.append(cells)
    return render(headers, body, markdown)


def derived_lines(rows: list[dict[str, Any]], engines: Sequence[str]) -> list[str]:
    """Ratios between two sizes of one case declared by ``DERIVED`` in the case module."""
    lines = []
    by_key = {(r["case"], r["size"]): r for r in rows}
    for name in dict.fromkeys(r["case"] for r in rows):
        mod = case_registry.load(name)
        for label, num, den in getattr(mod, "DERIVED", ()):
            parts = []
            for e in engines:
                a = by_key.get((name, num), {}).get("engines", {}).get(e, {}).get("median")
                b = by_key.get((name, den), {}).get("engines", {}).get(e, {}).get("median")
                if a and b:
                    parts.append(f"{e} {fmt_num(a / b)}x")
            if parts:
                lines.append(f"{name}: {label}: " + ", ".join(parts))
    return lines


def header_lines(cfg: Config, info: dict[str, Any]) -> list[str]:
    """Versions, BLAS, thread and environment settings."""
    lines = [f"python {platform.python_version()} ({sys.executable})"]
    versions = []
    for e in cfg.engines:
        i = info.get(e, {})
        if i.get("status") == "ok":
            key = "numpy" if e == "numpy" else e
            versions.append(f"{e} {i['info'].get(key, '?')}")
        else:
            versions.append(f"{e} unavailable ({i.get('error', '?')})")
    np_info = next(
        (
            i["info"]
            for i in info.values()
            if i.get("status") == "ok" and "numpy" in i.get("info", {})
        ),
        None,
    )
    if np_info and "numpy" not in cfg.engines:
        versions.append(f"(numpy {np_info['numpy']})")
    lines.append("versions: " + ", ".join(versions))
    lines.append(f"machine: {platform.machine()}, {os.cpu_count()} logical CPUs, {cpu_model()}")
    for e in cfg.engines:
        i = info.get(e, {})
        if i.get("status") != "ok":
            continue
        pools = i["info"].get("threadpools")
        if pools is None:
            desc = "threadpoolctl not installed"
        else:
            desc = "; ".join(
                f"{p.get('internal_api')} {p.get('version') or ''} "
                f"{p.get('architecture') or ''} {p.get('threading_layer') or ''} "
                f"{p.get('num_threads')} threads ({Path(p.get('filepath', '')).name})".replace(
                    "  ", " "
                )
                for p in pools
            )
        extra = ""
        if "torch_num_threads" in i["info"] and e == "torch":
            extra = f"; torch.get_num_threads()={i['info']['torch_num_threads']}"
        lines.append(f"threadpools in the {e} worker: {desc}{extra}")
        if e != "torch" and i["info"].get("torch_imported"):
            lines.append(f"WARNING: torch got imported in the {e} worker")
    envs = ", ".join(f"{k}={_PARENT_ENV.get(k, '<unset>')}" for k in OPENBLAS_ENV_VARS)
    lines.append(
        f"env (runner): {envs}; workers: "
        + ("OPENBLAS_* unset (--unset-openblas-env)" if cfg.unset_openblas_env else "inherit")
        + (f"; threads forced to {cfg.threads}" if cfg.threads else "")
    )
    lines.append(
        f"settings: {'quick' if cfg.quick else 'full'}, up to {cfg.rounds} rounds of "
        f"~{cfg.round_time:g} s per engine, warmup {cfg.warmup_time:g} s, "
        f"gap {cfg.gap:g} s; one process per engine, alternated per round"
    )
    return lines


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (or platform.processor())."""
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def report(cfg: Config, info: dict[str, Any], rows: list[dict[str, Any]], markdown: bool) -> str:
    """The full report: header, timing table, memory table, notes."""
    notes = Notes()
    t_table = time_table(rows, cfg.engines, notes, markdown)
    m_table = memory_table(rows, cfg.engines, notes, markdown) if cfg.memory else ""
    derived = derived_lines(rows, cfg.engines)
    head = header_lines(cfg, info)
    mem_note = (
        "Peak step memory: the most memory one steady-state step needs beyond parameters, "
        "their gradients, optimizer state and input data. numpy = its preallocated work "
        "arrays + tracemalloc peak above step start; tinytorch = tracemalloc peak above step "
        "start (arrays and Python objects); torch = torch.profiler allocation records, peak "
        "above step start (tensor storage only). Check: values after two steps vs torch "
        f"(vs numpy without torch), ok if |diff| <= {CHECK_TOL:g} * max(1, |torch|)."
    )
    loads = [r["other_cpu_cores"] for r in rows if r.get("other_cpu_cores") is not None]
    busy = ""
    if loads and max(loads) > BUSY_CORES:
        busy = (
            f"other processes used up to {max(loads):.2f} cores during the timed rounds; "
            "medians are disturbed (mins and paired ratios less so). Rerun on an idle "
            "machine for numbers to publish"
            + (
                ", or with --threads 1, which a busy neighbour disturbs far less."
                if cfg.threads is None
                else "."
            )
        )
    out: list[str] = []
    if markdown:
        out += ["## Environment", ""] + [f"- {ln}" for ln in head] + [""]
        out += ["## Time per step", "", t_table, ""]
        out += [
            "Ratios are paired per round: median over rounds of "
            "(round median of A) / (round median of B). " + LOAD_NOTE,
            "",
        ]
        if busy:
            out += [f"**Warning:** {busy}", ""]
        if m_table:
            out += [
                "## Peak step memory, and correctness",
                "",
                m_table,
                "",
                mem_note,
                "",
            ]
        if derived:
            out += ["## Derived", ""] + [f"- {d}" for d in derived] + [""]
        if notes.items:
            out += ["## Notes", ""] + [f"{i + 1}. {n}" for i, n in enumerate(notes.items)]
    else:
        out += ["tinytorch benchmarks"] + ["  " + ln for ln in head] + [""]
        out += [
            "Time per step (median and min over all iterations; ratios paired per round)",
            t_table,
            "  " + LOAD_NOTE,
            "",
        ]
        if busy:
            out += ["WARNING: " + busy, ""]
        if m_table:
            out += [
                "Peak memory of one steady-state step, and correctness",
                m_table,
                "  " + mem_note,
                "",
            ]
        if derived:
            out += ["Derived"] + ["  " + d for d in derived] + [""]
        if notes.items:
            out += ["Notes"] + [f"  [{i + 1}] {n}" for i, n in enumerate(notes.items)]
    return "\n".join(out).rstrip() + "\n"


# ----------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> tuple[Config, argparse.Namespace]:
    """Command line -> Config."""
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark tinytorch against torch and a hand-written numpy reference.",
    )
    p.add_argument(
        "--quick", action="store_true", help="smoke run: smallest sizes, few short rounds"
    )
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="CASE[:SIZE]",
        help="run only these cases (repeatable or comma-separated); "
        f"cases: {', '.join(case_registry.CASE_NAMES)}",
    )
    p.add_argument(
        "--engines",
        default=",".join(ENGINES),
        help="comma-separated subset of " + ",".join(ENGINES),
    )
    p.add_argument("--rounds", type=int, help="rounds per case (default 7, quick 3)")
    p.add_argument(
        "--round-time", type=float, help="seconds per engine per round (default 0.25, quick 0.02)"
    )
    p.add_argument(
        "--gap",
        type=float,
        help="idle seconds between two engines' turns, so the previous "
        "engine's thread pools go to sleep (default 0.1, quick 0.01)",
    )
    p.add_argument(
        "--case-budget",
        type=float,
        default=45.0,
        help="rounds are reduced (to >= 2) when one case would take longer",
    )
    p.add_argument("--threads", type=int, help="set OMP/OPENBLAS/MKL_NUM_THREADS in the workers")
    p.add_argument(
        "--unset-openblas-env",
        action="store_true",
        help="remove " + " and ".join(OPENBLAS_ENV_VARS) + " in the workers",
    )
    p.add_argument(
        "--no-memory",
        action="store_true",
        help="skip the memory measurement and the correctness check",
    )
    p.add_argument(
        "--retry-busy",
        type=int,
        default=0,
        metavar="N",
        help=f"time a case again (up to N times) when other processes used more than "
        f"{BUSY_CORES} cores meanwhile; the least disturbed attempt is kept",
    )
    p.add_argument(
        "--retry-wait", type=float, default=20.0, help="seconds to wait before such a retry"
    )
    p.add_argument("--json", metavar="PATH", help="write all raw results as JSON")
    p.add_argument("--markdown", metavar="PATH", help="write the report as Markdown")
    p.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to wait for any single worker answer"
    )
    args = p.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    bad = [e for e in engines if e not in ENGINES]
    if bad or not engines:
        p.error(f"unknown engine(s) {bad}; choose from {','.join(ENGINES)}")
    q = args.quick
    cfg = Config(
        quick=q,
        engines=[e for e in ENGINES if e in engines],
        only=args.only,
        rounds=args.rounds or (3 if q else 7),
        round_time=args.round_time if args.round_time is not None else (0.02 if q else 0.25),
        warmup_time=0.02 if q else 0.3,
        min_warmup=2,
        gap=args.gap if args.gap is not None else (0.01 if q else 0.1),
        case_budget=args.case_budget,
        threads=args.threads,
        unset_openblas_env=args.unset_openblas_env,
        memory=not args.no_memory,
        timeout=args.timeout,
        retry_busy=max(0, args.retry_busy),
        retry_wait=args.retry_wait,
    )
    return cfg, args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite and print the report; returns the exit status."""
    cfg, args = parse_args(argv)
    try:
        selection = cfg.selection()
    except KeyError as exc:
        log(str(exc.args[0]))
        return 2
    t0 = time.perf_counter()
    log(f"collecting engine info ({', '.join(cfg.engines)})")
    info = collect_info(cfg)
    rows = [run_case_retrying(cfg, mod, size) for mod, size in selection]
    elapsed = time.perf_counter() - t0
    text = report(cfg, info, rows, markdown=False)
    print(text + f"\n(total {elapsed:.0f} s)")
    if args.markdown:
        Path(args.markdown).write_text(
            "# Benchmarks\n\nGenerated by `python -m bench "
            + " ".join(argv if argv is not None else sys.argv[1:])
            + "`.\n\n"
            + report(cfg, info, rows, markdown=True)
        )
        log(f"wrote {args.markdown}")
    if args.json:
        payload = {
            "config": asdict(cfg),
            "info": info,
            "rows": rows,
            "elapsed_s": elapsed,
            "unix_time": time.time(),
        }
        Path(args.json).write_text(json.dumps(payload, indent=1))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
