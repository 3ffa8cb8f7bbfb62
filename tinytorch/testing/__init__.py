"""Testing helpers for tinytorch users (``tinytorch.testing``).

* ``assert_close(actual, expected, *, rtol=None, atol=None, equal_nan=False,
  check_dtype=True, msg=None)``: as ``torch.testing.assert_close``, with
  torch's default tolerances per dtype and its mismatch message; compares
  tinytorch tensors, torch tensors, numpy arrays and numbers with each other.
* ``compare_with_torch(model_fn, inputs, ...)``: run a model in tinytorch and in
  torch with the same weights and report, per output, gradient and buffer, the
  largest absolute and relative difference (for porting models).
"""

from tinytorch.testing._assert_close import assert_close, default_tolerances
from tinytorch.testing._parity import ParityReport, ParityRow, compare_with_torch

__all__ = ["ParityReport", "ParityRow", "assert_close", "compare_with_torch", "default_tolerances"]
