"""The training app (python -m tinytorch.examples.train): accuracy, checkpoints, resume, plots."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tinytorch import serialization
from tinytorch.datasets import write_idx
from tinytorch.examples import _plots, _progress, train

ROOT = Path(__file__).resolve().parents[1]
# small and fast: 240 digits, 4 epochs of 15 batches
TINY = ["--limit-train", "240", "--limit-test", "120", "--batch-size", "16", "--hidden", "32",
        "--quiet", "--no-plots"]  # fmt: skip


def _run(out: Path, *args: str) -> int:
    return train.main([*args, "--out", str(out)])


def _metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def _weights(out: Path) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in serialization.load(out / "model.safetensors").items()}


def _assert_same_run(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)
    ha, hb = _metrics(a)["history"], _metrics(b)["history"]
    for key in ("epoch", "train_loss", "test_loss", "test_acc", "lr"):
        assert ha[key] == hb[key], key


def test_default_run_reaches_97_percent(tmp_path, capsys):
    # One BLAS thread: same numbers, but immune to thread thrashing on a busy CI machine.
    threads = ["--threads", "1"] if importlib.util.find_spec("threadpoolctl") else []
    start = time.perf_counter()
    assert _run(tmp_path, "--no-plots", *threads) == 0
    elapsed = time.perf_counter() - start
    m = _metrics(tmp_path)
    assert m["config"]["dataset"] == "digits" and m["config"]["model"] == "mlp"
    assert m["final_test_acc"] >= 0.97, m["final_test_acc"]
    out = capsys.readouterr().out
    assert "epoch 40/40" in out and "test acc" in out and "samples/s" in out
    assert "final test accuracy" in out
    print(f"default run: {100 * m['final_test_acc']:.2f}% in {elapsed:.1f}s")


def test_resume_after_an_epoch_matches_uninterrupted(tmp_path):
    common = [*TINY, "--scheduler", "step", "--dropout", "0.2"]
    assert _run(tmp_path / "straight", *common, "--epochs", "3") == 0
    assert _run(tmp_path / "split", *common, "--epochs", "1") == 0
    ckpt = serialization.load(tmp_path / "split" / "checkpoint.safetensors")
    assert ckpt["epoch"] == 1 and ckpt["batch"] == 0
    assert _run(tmp_path / "split", "--resume", str(tmp_path / "split"), "--epochs", "3",
                "--quiet") == 0  # fmt: skip
    _assert_same_run(tmp_path / "straight", tmp_path / "split")


def test_ctrl_c_mid_epoch_saves_and_resume_matches(tmp_path, monkeypatch, capsys):
    common = [*TINY, "--epochs", "3", "--dropout", "0.3", "--scheduler", "onecycle"]
    assert _run(tmp_path / "straight", *common) == 0

    # Deliver a real SIGINT to this process in the middle of epoch 2 (batch 7 of 15).
    real_update = _progress.EpochProgress.update
    calls = {"n": 0}

    def update(self, n, loss):
        real_update(self, n, loss)
        calls["n"] += 1
        if calls["n"] == 15 + 7:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(_progress.EpochProgress, "update", update)
    assert _run(tmp_path / "split", *common) == 130
    out = capsys.readouterr().out
    assert "stopped in epoch 2 after batch 7" in out and "--resume" in out
    ckpt = serialization.load(tmp_path / "split" / "checkpoint.safetensors")
    assert (ckpt["epoch"], ckpt["batch"]) == (1, 7)
    monkeypatch.setattr(_progress.EpochProgress, "update", real_update)
    assert _run(tmp_path / "split", "--resume", str(tmp_path / "split" / "checkpoint.safetensors"),
                "--quiet") == 0  # fmt: skip
    _assert_same_run(tmp_path / "straight", tmp_path / "split")


def test_sigint_to_subprocess_then_resume(tmp_path):
    common = ["--limit-train", "400", "--limit-test", "50", "--batch-size", "4", "--hidden", "16",
              "--epochs", "8", "--no-plots", "--quiet"]  # fmt: skip
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinytorch.examples.train", *common, "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    ckpt_path = out / "checkpoint.safetensors"
    deadline = time.monotonic() + 60
    while not ckpt_path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout
    assert "resume with" in stdout
    ckpt = serialization.load(ckpt_path)
    assert 1 <= ckpt["epoch"] < 8
    assert _run(out, "--resume", str(ckpt_path), "--quiet") == 0
    assert _run(tmp_path / "straight", *common) == 0
    _assert_same_run(tmp_path / "straight", out)


def _fake_mnist(root: Path, n_train: int = 96, n_test: int = 40) -> None:
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):  # a learnable pattern: a bright row per class
            images[i, 2 + 2 * label, 4:24] = 255
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images, gzip=True)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels, gzip=True)


@pytest.mark.parametrize(("dataset", "model"), [("mnist", "mlp"), ("fashion-mnist", "cnn")])
def test_mnist_path_on_small_idx_files(tmp_path, dataset, model, capsys):
    _fake_mnist(tmp_path / "data")
    args = ["--dataset", dataset, "--data-dir", str(tmp_path / "data"), "--model", model,
            "--epochs", "2", "--batch-size", "32", "--no-plots"]  # fmt: skip
    assert _run(tmp_path / "out", *args) == 0
    m = _metrics(tmp_path / "out")
    assert m["config"]["dataset"] == dataset and len(m["history"]["epoch"]) == 2
    out = capsys.readouterr().out
    assert "96 train / 40 test images" in out


def test_missing_mnist_files_explain_what_to_do(tmp_path, capsys):
    assert _run(tmp_path / "out", "--dataset", "mnist", "--data-dir", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "download" in err and "train-images-idx3-ubyte" in err


def test_plots_are_written(tmp_path, capsys):
    args = [a for a in TINY if a != "--no-plots"]
    assert _run(tmp_path, *args, "--epochs", "2") == 0
    for name in ("curves.png", "misclassified.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_matplotlib_prints_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    args = [a for a in TINY if a != "--no-plots"]
    assert _run(tmp_path, *args, "--epochs", "1") == 0
    out = capsys.readouterr().out
    assert _plots.MISSING_MATPLOTLIB in out.splitlines()
    assert not (tmp_path / "curves.png").exists()


def test_resume_rejects_contradicting_options(tmp_path, capsys):
    assert _run(tmp_path, *TINY, "--epochs", "1") == 0
    assert _run(tmp_path, "--resume", str(tmp_path), "--lr", "0.5") == 2
    assert "--lr 0.5 contradicts the checkpoint" in capsys.readouterr().err
    assert _run(tmp_path, "--resume", str(tmp_path / "nope.safetensors")) == 2


def test_finished_run_resumes_to_a_summary(tmp_path, capsys):
    assert _run(tmp_path, *TINY, "--epochs", "1") == 0
    capsys.readouterr()
    assert _run(tmp_path, "--resume", str(tmp_path), "--quiet", "--no-plots") == 0
    assert "final test accuracy" in capsys.readouterr().out


def test_torch_backend_runs_the_same_script(tmp_path):
    assert _run(tmp_path, *TINY, "--epochs", "1", "--backend", "torch") == 0
    assert (tmp_path / "checkpoint.pt").exists()
    assert _metrics(tmp_path)["config"]["backend"] == "torch"


def test_bad_options(tmp_path, capsys):
    assert _run(tmp_path, "--epochs", "0") == 2
    assert _run(tmp_path, "--dropout", "1.5") == 2
    with pytest.raises(SystemExit) as e:
        train.main(["--model", "resnet"])
    assert e.value.code == 2
