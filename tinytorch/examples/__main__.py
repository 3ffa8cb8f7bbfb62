"""``python -m tinytorch.examples NAME [options]``: run the example called NAME."""

from __future__ import annotations

import importlib
import sys

import tinytorch.examples as _examples
from tinytorch.examples import EXAMPLES


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in EXAMPLES:
        print(_examples.__doc__)
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(f"tinytorch.examples.{argv[0]}")
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
