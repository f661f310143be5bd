"""Bench 2: worker-slot seconds held per deferred sync (before deferring + after resuming).

Each sync runs in fresh processes, as a worker would: the task process imports the
operator's module (what parsing the DAG file costs on top of Airflow itself), runs the
deferrable operator's ``execute`` until it defers; the trigger it handed over runs until its
event (the triggerer's time, not the worker's, so not counted); then the resumed task
imports the module again and calls ``execute_complete`` with that event. So

    worker slot per sync = 2 x operator-module import + execute-until-defer + execute_complete

measured for jobs of two lengths, to show it does not grow with the job. Not counted (the
same for both sides): starting the task process and importing Airflow itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    CONNECTION_IDS,
    REPO_ROOT,
    emit,
    fake_context,
    median,
    parse_args,
    quiet_logs,
    standin,
    use_connection,
)
from bench.sides import defer, event_ok, make_operator, ours_extras, run_trigger

CONN_ID = "bench_slot"
OPERATOR_MODULE = {
    "ours": "plugins.airbyte_operator",
    "official": "airflow.providers.airbyte.operators.airbyte",
}


def child(side: str, out: Path) -> None:
    """One sync in this fresh process; write the timings to ``out``."""
    import importlib

    import airflow.sdk  # noqa: F401  (the task runner has Airflow loaded already)

    t0 = time.perf_counter()
    importlib.import_module(OPERATOR_MODULE[side])
    t1 = time.perf_counter()
    operator = make_operator(side, CONN_ID, CONNECTION_IDS[0], deferrable=True)
    trigger, method = defer(side, operator, scale=600.0)  # official: 60 s poll -> 0.1 s
    t2 = time.perf_counter()
    payload = run_trigger(trigger)
    resumed = make_operator(side, CONN_ID, CONNECTION_IDS[0], deferrable=True)
    t3 = time.perf_counter()
    getattr(resumed, method)(fake_context(), payload)
    t4 = time.perf_counter()
    result = {
        "import_s": t1 - t0,
        "execute_s": t2 - t1,
        "execute_complete_s": t4 - t3,
        "ok": event_ok(side, payload),
    }
    result["slot_s"] = 2 * result["import_s"] + result["execute_s"] + result["execute_complete_s"]
    out.write_text(json.dumps(result))


def one_sync(side: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        subprocess.run(
            [sys.executable, "-m", "bench.worker_slot", "--child", str(out), "--side", side],
            cwd=REPO_ROOT,
            env=os.environ.copy(),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return json.loads(out.read_text())


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        lengths={"type": float, "nargs": "+", "default": [0.5, 3.0], "help": "job seconds"},
        syncs={"type": int, "default": 2, "help": "syncs (fresh processes) per job length"},
        child={"type": Path, "default": None, "help": argparse_suppress()},
    )
    quiet_logs()
    if args.child:
        child(args.side, args.child)
        return
    lengths, syncs = ([0.3], 1) if args.quick else (args.lengths, args.syncs)
    per_length = []
    for length in lengths:
        with standin(pending_seconds=0.05, running_seconds=length) as server:
            # Ours: a 0.1 s first poll so the (untimed) trigger wait stays short.
            use_connection(args.side, server, CONN_ID, **ours_extras(20.0))
            runs = [one_sync(args.side) for _ in range(syncs)]
        row = {"job_seconds": length, "syncs": len(runs), "ok": all(r["ok"] for r in runs)}
        for key in ("import_s", "execute_s", "execute_complete_s", "slot_s"):
            row[key] = round(median([r[key] for r in runs]), 4)
        per_length.append(row)
    emit(
        {
            "bench": "worker_slot",
            "side": args.side,
            "lengths": per_length,
            "slot_s": max(r["slot_s"] for r in per_length),
        },
        args.json,
    )


def argparse_suppress() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
