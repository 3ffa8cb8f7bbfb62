"""Benchmark suite for tinytorch: tinytorch vs torch vs hand-written numpy.

Run ``python -m bench --help``; see ``bench/README.md`` for the methodology.
"""

__all__: list[str] = []
