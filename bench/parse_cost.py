"""Bench 4: DAG parse cost, per file: the goal is every file in ``dags/`` under 100 ms.

DAG file parse: ``DagBag(<file>)`` in a process prepared as the DAG processor prepares the
one it forks per file (``PRELUDE``): the marginal cost of that file, the median over fresh
processes (``--reps``, at most 3), one file per measurement.

Ours parses every file in ``dags/`` (the goal) and ``bench/dag_files/ours_minimal_sync.py``;
the official side parses ``bench/dag_files/official_minimal_sync.py`` (the same one-task DAG
with its operator), which the report sets beside our minimal DAG for comparison only.
``--quick`` parses the same files once. ``-X importtime`` of our hook and operator modules
lists, for information, the packages they pull in beyond airflow.sdk (one run, no goal).

Both sides are measured from byte-compiled modules, as a deployment runs them (the DAG
processor and workers write ``__pycache__`` on first import; pip compiled the official
provider at install): ``compile_ours`` first, here and in ``bench.run``.

Module and function size limits and import layering are not benchmarked here: they are
enforced by ``tests/test_repository.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.common import BENCH_DIR, REPO_ROOT, compile_ours, emit, median, parse_args

#: The goal: every DAG file in ``dags/`` parses in under this many seconds.
DAG_PARSE_GOAL_S = 0.1
#: The modules whose imports ``-X importtime`` breaks down (ours; informational).
IMPORTTIME_MODULES = ("plugins.airbyte_hook", "plugins.airbyte_operator")

#: A process in the state the DAG processor forks a file's parser from (Airflow 3.3): Airflow
#: and ``DagBag`` imported, the Airflow modules the file names pre-imported
#: (``[dag_processor] parsing_pre_import_modules``, on by default) and the heap frozen
#: (``DagFileProcessorManager.before_run`` calls ``gc.freeze()``), so that a garbage collection
#: in the parser does not scan the manager's objects. Without the freeze a collection of
#: Airflow's own heap (about 70 ms) lands in whichever file happens to trigger it.
PRELUDE = """
import gc, json, time, warnings
warnings.simplefilter("ignore")
import airflow.sdk
import structlog
from airflow.dag_processing.dagbag import DagBag
from airflow.dag_processing.processor import _pre_import_airflow_modules
_pre_import_airflow_modules({path!r}, structlog.get_logger())
gc.freeze()
"""
PARSE = (
    PRELUDE
    + """
t = time.perf_counter()
bag = DagBag(dag_folder={path!r}, safe_mode=False)
print(json.dumps([time.perf_counter() - t, len(bag.dags), len(bag.import_errors)]))
"""
)


def run_python(code: str) -> str:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def parse_times(path: Path, reps: int) -> dict[str, Any]:
    runs = [json.loads(run_python(PARSE.format(path=str(path)))) for _ in range(reps)]
    return {
        "file": str(path.relative_to(REPO_ROOT)),
        "parse_s": round(median([r[0] for r in runs]), 4),
        "dags": runs[-1][1],
        "import_errors": runs[-1][2],
    }


def importtime_top(module: str, top: int = 12) -> list[dict[str, Any]]:
    """Packages ``import module`` loads beyond airflow.sdk, by self time (``-X importtime``)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import airflow.sdk\nimport {module}"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    start = next((i for i, line in enumerate(lines) if line.rstrip().endswith("| airflow.sdk")), 0)
    by_package: dict[str, float] = defaultdict(float)
    total = 0.0
    for line in lines[start + 1 :]:
        parts = line.split("|")
        try:
            self_us = int(parts[0].split(":")[1])
        except (IndexError, ValueError):
            continue
        name = parts[2].strip()
        pieces = name.split(".")
        depth = {"airflow": 3, "plugins": 2}.get(pieces[0], 1)  # plugins.airbyte_client, ...
        key = ".".join(pieces[:depth])
        by_package[key] += self_us / 1e6
        total += self_us / 1e6
    ranked = sorted(by_package.items(), key=lambda kv: kv[1], reverse=True)[:top]
    return [{"package": k, "self_s": round(v, 4), "share": round(v / total, 3)} for k, v in ranked]


def dag_parse_goal(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The goal over the ``dags/`` rows of ``rows``: each file parses, in under 100 ms.

    A file with an import error or no DAG misses it (its time measures a failure). None when
    no ``dags/`` file was measured (the official side).
    """
    dags = [r for r in rows if r["file"].startswith("dags/")]
    if not dags:
        return None
    slowest = max(dags, key=lambda r: r["parse_s"])
    missed = [
        r["file"]
        for r in dags
        if r["parse_s"] >= DAG_PARSE_GOAL_S or r["import_errors"] or not r["dags"]
    ]
    return {
        "goal_ms": round(DAG_PARSE_GOAL_S * 1000),
        "files": len(dags),
        "slowest": slowest["file"],
        "slowest_ms": round(slowest["parse_s"] * 1000, 1),
        "missed": missed,
        "met": not missed,
    }


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], reps={"type": int, "default": 3})
    reps = 1 if args.quick else max(1, args.reps)
    result: dict[str, Any] = {"bench": "parse_cost", "side": args.side, "reps": reps}
    if args.side == "ours":
        compile_ours()
        files = [BENCH_DIR / "dag_files" / "ours_minimal_sync.py"]
        files += sorted((REPO_ROOT / "dags").glob("*.py"))
        modules = IMPORTTIME_MODULES[:1] if args.quick else IMPORTTIME_MODULES
        result["importtime_top"] = {name: importtime_top(name, top=8) for name in modules}
    else:
        files = [BENCH_DIR / "dag_files" / "official_minimal_sync.py"]
    result["dag_files"] = [parse_times(path, reps) for path in files]
    result["dag_parse_goal"] = dag_parse_goal(result["dag_files"])
    emit(result, args.json)


if __name__ == "__main__":
    main()
