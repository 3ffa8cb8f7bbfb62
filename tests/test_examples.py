"""Each example script runs end to end with tiny settings (seconds, not minutes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinytorch import serialization
from tinytorch.datasets import write_idx
from tinytorch.examples import __main__ as dispatcher
from tinytorch.examples import char_lstm, gpt, mnist_cnn, regression
from tinytorch.examples._text import CharCorpus

LM_TINY = ["--steps", "3", "--eval-every", "2", "--eval-batches", "1", "--batch-size", "4",
           "--block", "16", "--sample-len", "30"]  # fmt: skip


def test_regression_prints_final_loss_and_plots(tmp_path, capsys):
    assert regression.main(["--steps", "60", "--plot", str(tmp_path / "fit.png")]) == 0
    out = capsys.readouterr().out
    assert "final train mse" in out and "test mse" in out
    assert (tmp_path / "fit.png").read_bytes()[:4] == b"\x89PNG"


def test_regression_learns():
    # the loss of the fit must fall well below the target's variance (~1.4)
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        regression.main(["--steps", "200", "--hidden", "32"])
    final = next(line for line in buf.getvalue().splitlines() if line.startswith("final"))
    assert float(final.split("test mse vs f(x) ")[1].split()[0]) < 0.1


def test_char_lstm_trains_and_samples(capsys):
    assert char_lstm.main([*LM_TINY, "--hidden", "16", "--embed", "8"]) == 0
    out = capsys.readouterr().out
    assert "final train loss" in out and "val loss" in out
    sample = out.split("--- sample ---\n")[1]
    assert sample.startswith("The keeper ") and len(sample.rstrip("\n")) >= 30


def test_gpt_trains_and_samples(capsys):
    args = [*LM_TINY, "--n-layer", "1", "--n-head", "2", "--n-embd", "16"]
    assert gpt.main(args) == 0
    out = capsys.readouterr().out
    assert "final train loss" in out
    assert out.split("--- sample ---\n")[1].startswith("The keeper ")


def test_gpt_ties_weights_and_masks_the_future():
    import tinytorch

    torch = tinytorch
    model = gpt.build_gpt(torch, gpt.GPTConfig(block_size=8, vocab_size=11, n_layer=1,
                                               n_head=2, n_embd=8))  # fmt: skip
    assert model.transformer.wte.weight is model.lm_head.weight
    idx = torch.randint(0, 11, (1, 8))
    changed = idx.clone()
    changed[0, 5] = (int(changed[0, 5]) + 1) % 11
    with torch.no_grad():
        logits, _ = model(idx, idx)
        logits2, _ = model(changed, changed)
    # positions before 5 cannot see position 5 (causal attention)
    np.testing.assert_allclose(logits.numpy()[0, :5], logits2.numpy()[0, :5], rtol=1e-5)
    assert not np.allclose(logits.numpy()[0, 5:], logits2.numpy()[0, 5:])


@pytest.mark.parametrize("script", [char_lstm, gpt])
def test_language_models_on_torch_too(script, capsys):
    extra = ["--hidden", "16"] if script is char_lstm else ["--n-layer", "1", "--n-embd", "16"]
    assert script.main([*LM_TINY, *extra, "--backend", "torch"]) == 0
    assert "--- sample ---" in capsys.readouterr().out


def test_text_option_and_corpus(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("abcabcabd " * 40)
    corpus = CharCorpus(path)
    assert corpus.chars == [" ", "a", "b", "c", "d"]
    assert corpus.decode(corpus.encode("cab d")) == "cab d"
    assert len(corpus.train) + len(corpus.val) == 400
    assert gpt.main([*LM_TINY, "--text", str(path), "--prompt", "ab", "--n-embd", "8",
                     "--n-head", "2", "--n-layer", "1"]) == 0  # fmt: skip
    with pytest.raises(ValueError, match="too short"):
        path.write_text("tiny")
        CharCorpus(path)


def _fake_mnist(root: Path, n_train: int = 64, n_test: int = 32) -> None:
    root.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 255, (n, 28, 28)).astype(np.uint8)
        write_idx(root / f"{prefix}-images-idx3-ubyte", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", labels)


def test_mnist_cnn_on_small_idx_files(tmp_path, capsys):
    _fake_mnist(tmp_path / "data")
    weights = tmp_path / "out" / "net.safetensors"
    args = ["--data-dir", str(tmp_path / "data"), "--epochs", "1", "--batch-size", "16",
            "--log-interval", "2", "--save", str(weights)]  # fmt: skip
    assert mnist_cnn.main(args) == 0
    out = capsys.readouterr().out
    assert "64 train / 32 test images" in out and "final test loss" in out
    state = serialization.load(weights)
    assert set(state) == {f"{m}.{p}" for m in ("conv1", "conv2", "fc1", "fc2")
                          for p in ("weight", "bias")}  # fmt: skip


def test_mnist_cnn_missing_files(tmp_path, capsys):
    assert mnist_cnn.main(["--data-dir", str(tmp_path)]) == 2
    assert "download" in capsys.readouterr().out


def test_dispatcher(capsys):
    assert dispatcher.main([]) == 0
    assert "tinytorch.examples.train" in capsys.readouterr().out
    assert dispatcher.main(["nope"]) == 2
    assert dispatcher.main(["regression", "--steps", "5"]) == 0
    assert "final train mse" in capsys.readouterr().out
