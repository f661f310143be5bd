"""Bench 7: the connections file at scale (ours only: the official provider has no such file).

1. ``parse``: 500 entries in use (``AIRBYTE_CONNECTIONS_FILE``: the repository's four, then
   the stand-in's extra connections, all scheduled, some blocking or zero-poll, every 50th
   with a checkpoint); each file of ``dags/`` parsed as ``bench.parse_cost`` does (median of
   ``--reps`` fresh processes), then serialised. Goals: ``dags/airbyte_connections.py`` <= 2 s,
   every other file < 100 ms.
2. ``discovery``: ``include.discovery.discover`` in a fresh process, from a copy of the
   repository's file, of a stand-in with 500 extra connections (Public and Configuration
   API), twice. Goal: Airbyte requests (the stand-in's log) <= pages + connections.
3. ``pool`` (``bench.pool_scale``): a real Airflow (LocalExecutor, SQLite), 100 entries
   scheduled ``@yearly`` (scheduler's own runs off), a pool of 10; the 100 sync DAGs triggered
   back to back (REST API), deferred waits, 7-s jobs. A job counts from the read of the
   stand-in's job list (every 0.25 s) before the first listing it to its ``updated_at`` at its
   end (an upper bound). Goals: <= 10 jobs at once, every run succeeds, one job per
   connection. Then the reconciler's cost per run over the same file (``bench.reconcile_cost``).

``--quick``: 50 entries, one rep, 50 connections, no ``pool`` (starting Airflow does not fit
the smoke test); ``--quick --parts pool``: 10 DAGs, 3 slots, 2-s jobs.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from bench.common import REPO_ROOT, compile_ours, emit, median, parse_args
from bench.parse_cost import PRELUDE, dag_parse_goal, run_python
from bench.pool_scale import measure_pool
from bench.pool_scale import section as pool_section
from bench.report_sections import header, row
from dev.airbyte_standin.seed import extra_connection
from dev.airbyte_standin.serving import quick_config, run_standin_process
from dev.environment import airflow_environment
from include.connections import FILE_VARIABLE, load_connections
from include.paths import CONNECTIONS_FILE

PARTS = ("parse", "discovery", "pool")
FULL = {"entries": 500, "connections": 500, "dags": 100, "slots": 10, "job_s": 7.0}
QUICK = {"entries": 50, "connections": 50, "dags": 10, "slots": 3, "job_s": 2.0, "reps": 1}
GENERATED, GENERATED_GOAL_S = "dags/airbyte_connections.py", 2.0
PAGE_SIZE = 100  # AirbyteHook.list_connections' page: the Public API's largest
SCHEDULES = ("@hourly", "@daily", "0 */6 * * *", "30 2 * * *", "*/15 * * * *")
CHECKPOINTS = ("stripe_postgres_checkpoint", "hubspot_checkpoint", "salesforce_checkpoint")

PARSE = (
    PRELUDE
    + """
t = time.perf_counter(); bag = DagBag(dag_folder={path!r}, safe_mode=False)
parse_s = time.perf_counter() - t  # as bench.parse_cost; then serialised, as the processor does
from airflow.serialization.serialized_objects import DagSerialization
t = time.perf_counter(); [DagSerialization.to_dict(dag) for dag in bag.dags.values()]
print(json.dumps([parse_s, time.perf_counter() - t, len(bag.dags), len(bag.import_errors)]))
"""
)
DISCOVER = """
import json, pathlib, sys, time
from include.discovery import discover
t, found = time.perf_counter(), discover(pathlib.Path(sys.argv[1]))
print(json.dumps({"discover_s": time.perf_counter() - t, "listed": found.connections,
    "added": len(found.added), "written": found.written}))
"""


def write_file(path: Path, total: int, *, slots: int = 10, schedule: str | None = None) -> None:
    """The repository's file (pool resized) plus the stand-in's extra connections up to
    ``total`` entries; without ``schedule``, varied ones, some blocking or zero-poll waits."""
    document = yaml.safe_load(CONNECTIONS_FILE.read_text(encoding="utf-8"))
    document["pool"] = {"name": "airbyte", "slots": slots}
    entries = document["connections"]
    for i in range(1, total - len(entries) + 1):
        conn = extra_connection(i)
        entry: dict[str, Any] = {"connection_id": conn.connection_id, "label": conn.name}
        entry["schedule"] = schedule or SCHEDULES[i % len(SCHEDULES)]
        if schedule is None:
            entry |= {3: {"wait": "blocking"}, 7: {"wait": "zero_poll"}}.get(i % 10, {})
            if i % 50 == 0:
                entry["checkpoint"] = CHECKPOINTS[i // 50 % len(CHECKPOINTS)]
        entries[f"bench_{i:04d}"] = entry | {"streams": list(conn.streams)}
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), "utf-8")


def parse_row(path: Path, reps: int) -> dict[str, Any]:
    runs = [json.loads(run_python(PARSE.format(path=str(path)))) for _ in range(reps)]
    return {
        "file": str(path.relative_to(REPO_ROOT)),
        "parse_s": round(median([r[0] for r in runs]), 4),
        "serialize_s": round(median([r[1] for r in runs]), 4),
        "dags": runs[-1][2],
        "import_errors": runs[-1][3],
    }


def measure_parse(tmp: Path, entries: int, reps: int, baseline: bool) -> dict[str, Any]:
    """Every DAG file with the ``entries``-entry file in use (and with the repository's)."""
    path = tmp / "parse.yaml"
    write_file(path, entries)
    compile_ours()
    files = sorted((REPO_ROOT / "dags").glob("*.py"))
    os.environ[FILE_VARIABLE] = str(path)
    rows = [parse_row(file, reps) for file in files]
    os.environ.pop(FILE_VARIABLE)
    for measured, file in zip(rows, files, strict=True):
        measured["repo_file_parse_s"] = parse_row(file, reps)["parse_s"] if baseline else None
    file, generated = load_connections(path), next(r for r in rows if r["file"] == GENERATED)
    generated["expected_dags"] = len(file.scheduled()) + len(file.checked())
    others = [r for r in rows if r["file"] != GENERATED]
    return {"entries": len(file.connections), "reps": reps, "generated": generated} | {
        "others": others,
        "others_goal": dag_parse_goal(others),
    }


def discover_once(server: Any, path: Path, env: dict[str, str]) -> dict[str, Any]:
    """One discovery in a fresh process: its figures and the requests the stand-in saw."""
    seen, started = len(server.requests()), time.monotonic()
    command = [sys.executable, "-c", DISCOVER, str(path)]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, check=True)
    served = [r for r in server.requests()[seen:] if not r["path"].endswith("/health")]
    tokens = sum(1 for r in served if r["path"].endswith("/applications/token"))
    calls = Counter(f"{r['method']} {r['path']}" for r in served)
    return json.loads(done.stdout.decode().splitlines()[-1]) | {
        "command_s": round(time.monotonic() - started, 2),
        "requests": len(served) - tokens,
        "token_requests": tokens,
        "calls": dict(sorted(calls.items())),
    }


def discovery_flavour(server: Any, tmp: Path, api: str) -> dict[str, Any]:
    """Discovery from a copy of the repository's file, twice (the second changes nothing)."""
    env = {**os.environ, **airflow_environment(server.url, tmp / f"home-{api}")}
    env.pop(FILE_VARIABLE, None)
    if api == "config":  # the same Connection id, on the Configuration API
        env["AIRFLOW_CONN_AIRBYTE_DEFAULT"] = env["AIRFLOW_CONN_AIRBYTE_CONFIG_API"]
    path = tmp / f"discovery-{api}.yaml"
    shutil.copy(CONNECTIONS_FILE, path)
    first, second = discover_once(server, path, env), discover_once(server, path, env)
    # Public API: a page per PAGE_SIZE; Configuration API: workspaces/list, connections/list.
    pages = max(1, math.ceil(first["listed"] / PAGE_SIZE)) if api == "public" else 2
    return first | {
        "pages": pages,
        "bound": pages + first["listed"],
        "entries_before": len(load_connections(CONNECTIONS_FILE).connections),
        "entries_after": len(load_connections(path).connections),
        "second_run": {k: second[k] for k in ("requests", "discover_s", "added", "written")},
    }


def measure_discovery(tmp: Path, connections: int) -> dict[str, Any]:
    config = quick_config(tmp, extra_connections=connections, validate_contract=False)
    with run_standin_process(config, log_file=tmp / "discovery-standin.log") as server:
        flavours = {api: discovery_flavour(server, tmp, api) for api in ("public", "config")}
    return {"extra_connections": connections, "flavours": flavours}


def goals(doc: dict[str, Any]) -> list[tuple[str, Any, bool]]:
    """(goal, ours, met) of every part measured: the report's summary rows."""
    rows = []
    if parse := doc.get("parse"):
        gen, other, n = parse["generated"], parse["others_goal"], parse["entries"]
        ok = gen["dags"] == gen["expected_dags"] and not gen["import_errors"]
        text = f"`{GENERATED}` parses in <= {GENERATED_GOAL_S:g} s ({n} entries), s"
        rows.append((text, gen["parse_s"], ok and gen["parse_s"] <= GENERATED_GOAL_S))
        missed = ", ".join(f"`{f}`" for f in other["missed"])
        text = f"every other DAG file parses in < {other['goal_ms']} ms ({n} entries), ms "
        text += f"(slowest: `{other['slowest']}`{'; missed: ' + missed if missed else ''})"
        rows.append((text, round(other["slowest_ms"]), other["met"]))
    for api, d in (doc.get("discovery") or {}).get("flavours", {}).items():
        text = f"discovery of {d['listed']} connections ({api} API): requests <= pages + "
        text += f"connections = {d['bound']} (plus {d['token_requests']} token request(s))"
        ok = d["entries_before"] + d["added"] == d["entries_after"]
        rows.append((text, d["requests"], ok and d["requests"] <= d["bound"]))
    if doc.get("pool_error"):
        rows.append(("DAGs triggered at once: failed (see `pool_error`)", None, False))
    if pool := doc.get("pool"):
        n, slots, most = pool["dags"], pool["slots"], pool["max_jobs_at_once"]
        text = f"Airbyte jobs at once, {n} DAGs triggered at once, <= {slots} (the pool)"
        rows.append((text, most, most <= slots))
        rows.append((f"runs succeeded = {n}", pool["runs_succeeded"], pool["runs_succeeded"] == n))
        ok = pool["duplicated_syncs"] == 0 and not pool["connections_without_job"]
        rows.append(("duplicated syncs = 0 (one job per connection)", pool["duplicated_syncs"], ok))
    return rows


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.0f}"


def section(doc: dict[str, Any] | None) -> list[str]:
    """Section 7 of ``bench/RESULTS.md`` (nothing if the bench did not run)."""
    if not doc:
        return []
    out = ["## 7. The connections file at scale (ours only)", "", __doc__.split("\n\n")[1], ""]
    if parse := doc.get("parse"):
        out += _parse_rows(parse)
    if found := doc.get("discovery"):
        out += _discovery_rows(found)
    if pool := doc.get("pool"):
        out += pool_section(pool)
    return [*out, ""]


def _parse_rows(parse: dict[str, Any]) -> list[str]:
    missed = parse["others_goal"]["missed"]
    out = [
        f"**Parse** ({parse['entries']} entries, median of {parse['reps']}, measured as "
        "section 4 measures). The < 100 ms goal is section 4's; last column: with the "
        "repository's own file instead.",
        "",
        *header(
            "DAG file", "DAGs", "parse ms", "serialise ms", "met", "parse ms, repository's file"
        ),
    ]
    for r in [parse["generated"], *parse["others"]]:
        goal = GENERATED_GOAL_S if r["file"] == GENERATED else math.inf
        met = r["parse_s"] <= goal and r["file"] not in missed
        out.append(
            row(
                f"`{r['file']}`", r["dags"], _ms(r["parse_s"]), _ms(r["serialize_s"]),
                "yes" if met else "**NO**", _ms(r["repo_file_parse_s"]),
            )
        )  # fmt: skip
    return out


def _discovery_rows(found: dict[str, Any]) -> list[str]:
    out = [
        "",
        f"**Discovery** ({found['extra_connections']} extra connections; seconds: "
        "`discover` itself, the whole process; a second run must add nothing).",
        "",
        *header(
            "API", "listed", "added", "requests (tokens)", "calls", "s", "process s", "second run"
        ),
    ]
    for api, d in found["flavours"].items():
        calls = ", ".join(f"`{c}` x{n}" for c, n in d["calls"].items())
        again = d["second_run"]
        out.append(
            row(
                api, d["listed"], d["added"], f"{d['requests']} ({d['token_requests']})", calls,
                f"{d['discover_s']:.2f}", f"{d['command_s']:.1f}",
                f"{again['requests']} requests, {again['added']} added",
            )
        )  # fmt: skip
    return out


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        parts={"default": None, "help": "comma-separated, of " + ",".join(PARTS)},
        reps={"type": int, "default": 3},
    )
    size = QUICK if args.quick else FULL | {"reps": max(1, args.reps)}
    wanted = (args.parts or ("parse,discovery" if args.quick else ",".join(PARTS))).split(",")
    result: dict[str, Any] = {"bench": "connections_scale", "side": "ours", "quick": args.quick}
    result["parts"] = [p for p in PARTS if p in wanted]
    with tempfile.TemporaryDirectory(prefix="bench-connections-") as name:
        tmp = Path(name)
        if "parse" in wanted:
            result["parse"] = measure_parse(tmp, size["entries"], size["reps"], not args.quick)
        if "discovery" in wanted:
            result["discovery"] = measure_discovery(tmp, size["connections"])
        try:  # the figures of the other parts stay if it fails
            if "pool" in wanted:
                path = tmp / "pool.yaml"
                seed_entries = len(load_connections(CONNECTIONS_FILE).connections)
                write_file(
                    path, size["dags"] + seed_entries, slots=size["slots"], schedule="@yearly"
                )
                result["pool"] = measure_pool(tmp, path, size["dags"], size["slots"], size["job_s"])
        except Exception as error:
            result["pool_error"] = f"{type(error).__name__}: {error}"[-2000:]
    result["goals"] = goals(result)
    emit(result, args.json)


if __name__ == "__main__":
    main()
