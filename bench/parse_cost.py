"""Bench 4: DAG parse cost per file and import time of the hook module.

Every figure is the median over fresh processes (``--reps``):

* hook import, marginal: ``import <hook module>`` in a process that has already imported
  ``airflow.sdk`` (what a DAG file, a worker or the triggerer has loaded anyway);
* hook import, standalone: the same import in a bare interpreter (Airflow included);
* DAG file parse: ``DagBag(<file>)`` in a process that has already imported Airflow and
  ``DagBag`` (as the DAG processor forks per file): the marginal cost of that file.

Ours parses every file in ``dags/`` and ``bench/dag_files/ours_minimal_sync.py``; the official
side parses ``bench/dag_files/official_minimal_sync.py`` (the same one-task DAG with its
operator). ``-X importtime`` of our hook and operator modules lists the packages they pull in
beyond airflow.sdk.

Both sides are measured from byte-compiled modules, as a deployment runs them (the DAG
processor and workers write ``__pycache__`` on first import; pip compiled the official
provider at install): ``compile_ours`` first, here and in ``bench.run``.

Ours also reports the code-size goals: lines of ``plugins/airbyte_hook.py`` and the longest
function in ``plugins/``.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.common import BENCH_DIR, REPO_ROOT, compile_ours, emit, median, parse_args

HOOK_MODULE = {
    "ours": "plugins.airbyte_hook",
    "official": "airflow.providers.airbyte.hooks.airbyte",
}

MARGINAL = """
import time, airflow.sdk
t = time.perf_counter()
import {module}
print(time.perf_counter() - t)
"""
STANDALONE = """
import time
t = time.perf_counter()
import {module}
print(time.perf_counter() - t)
"""
PARSE = """
import json, time, warnings
warnings.simplefilter("ignore")
import airflow.sdk
from airflow.dag_processing.dagbag import DagBag
t = time.perf_counter()
bag = DagBag(dag_folder={path!r}, safe_mode=False)
print(json.dumps([time.perf_counter() - t, len(bag.dags), len(bag.import_errors)]))
"""


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


def import_times(module: str, reps: int) -> dict[str, float]:
    marginal = [float(run_python(MARGINAL.format(module=module))) for _ in range(reps)]
    standalone = [float(run_python(STANDALONE.format(module=module))) for _ in range(reps)]
    return {"marginal_s": round(median(marginal), 4), "standalone_s": round(median(standalone), 4)}


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
        key = ".".join(pieces[:3]) if pieces[0] == "airflow" else pieces[0]
        by_package[key] += self_us / 1e6
        total += self_us / 1e6
    ranked = sorted(by_package.items(), key=lambda kv: kv[1], reverse=True)[:top]
    return [{"package": k, "self_s": round(v, 4), "share": round(v / total, 3)} for k, v in ranked]


def code_size() -> dict[str, Any]:
    """Lines of the hook module and the longest function (def to last line) in plugins/."""
    longest = {"name": "", "lines": 0}
    for path in sorted((REPO_ROOT / "plugins").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > longest["lines"]:
                    longest = {"name": f"{path.name}:{node.name}", "lines": lines}
    hook = REPO_ROOT / "plugins" / "airbyte_hook.py"
    return {"hook_lines": len(hook.read_text().splitlines()), "longest_function": longest}


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], reps={"type": int, "default": 5})
    reps = 1 if args.quick else args.reps
    module = HOOK_MODULE[args.side]
    result: dict[str, Any] = {"bench": "parse_cost", "side": args.side, "reps": reps}
    if args.side == "ours":
        compile_ours()
        result["code_size"] = code_size()
        files = [BENCH_DIR / "dag_files" / "ours_minimal_sync.py"]
        if not args.quick:
            files += sorted((REPO_ROOT / "dags").glob("*.py"))
        result["importtime_top"] = {
            name: importtime_top(name, top=8)
            for name in ([module] if args.quick else [module, "plugins.airbyte_operator"])
        }
    else:
        files = [BENCH_DIR / "dag_files" / "official_minimal_sync.py"]
    result["hook_import"] = import_times(module, reps)
    result["dag_files"] = [parse_times(path, max(1, min(reps, 3))) for path in files]
    emit(result, args.json)


if __name__ == "__main__":
    main()
