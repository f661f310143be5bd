"""A benchmark script that fails, as a broken one would: output, no JSON, exit code 1 (for
``tests/bench/test_bench_runner.py``)."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    print("failing_benchmark: something went wrong", file=sys.stderr)
    sys.exit(1)
