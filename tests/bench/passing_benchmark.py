"""A benchmark script that succeeds: it writes its JSON where the runner asks (for
``tests/bench/test_bench_runner.py``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--side")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    args.json.write_text(json.dumps({"bench": "passing", "side": args.side}))
