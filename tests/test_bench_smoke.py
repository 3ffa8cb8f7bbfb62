"""Smoke test of the benchmark suite: ``python -m bench --quick`` on the MLP case.

Runs the numpy reference and tinytorch only (no torch import, so it is fast and works
without torch installed).  It asserts that the runner completes and prints its tables,
and that the numpy reference's preallocated arrays count in its peak step memory; it
makes no assertion about timings.  tinytorch failing a feature still exits 0 (the
engine is then reported as unavailable), which is the suite's contract.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_quick_mlp_numpy_tinytorch(tmp_path: Path) -> None:
    out_json = tmp_path / "bench.json"
    out_md = tmp_path / "bench.md"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--only",
            "mlp",
            "--engines",
            "numpy,tinytorch",
            "--json",
            str(out_json),
            "--markdown",
            str(out_md),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "Time per step" in out
    assert "numpy med" in out and "tinytorch med" in out
    rows = [ln for ln in out.splitlines() if ln.startswith("mlp ")]
    assert rows and "b32" in rows[0], out
    assert "torch med" not in out.replace("tinytorch med", "")
    assert "numpy peak" in out and "tinytorch peak" in out and "tt/np" in out
    assert out_json.exists() and out_md.read_text().startswith("# Benchmarks")
    memory = json.loads(out_json.read_text())["rows"][0]["memory"]
    numpy_mem = memory["numpy"]
    assert numpy_mem["step_peak"] >= numpy_mem["scratch"] > 0, numpy_mem
    if memory["tinytorch"]["status"] == "ok":
        assert memory["tinytorch"]["step_peak"] > 0, memory["tinytorch"]
