"""Runnable examples, written as ordinary PyTorch scripts over ``import tinytorch as torch``.

* ``python -m tinytorch.examples.train``: the image-classification training app
  (bundled digits by default; MNIST, Fashion-MNIST; MLP or CNN; checkpoints,
  resume, plots). Also installed as the ``tinytorch-train`` command.
* ``python -m tinytorch.examples.mnist_cnn``: a compact CNN-on-MNIST script.
* ``python -m tinytorch.examples.char_lstm``: a character-level LSTM language model.
* ``python -m tinytorch.examples.gpt``: a small GPT (nanoGPT-style) on the same text.
* ``python -m tinytorch.examples.regression``: an MLP fitting a 1-D function.

``python -m tinytorch.examples NAME [options]`` runs one of them by name.
"""

EXAMPLES = ("train", "mnist_cnn", "char_lstm", "gpt", "regression")

__all__ = ["EXAMPLES"]
