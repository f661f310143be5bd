"""Bench 7's ``pool`` part (``bench/connections_scale.py`` writes its file): a real Airflow
(LocalExecutor, SQLite) whose connections file schedules the stand-in's extra connections
``@yearly`` (the scheduler's own runs off), their sync DAGs triggered back to back through the
REST API with a pool of N slots, deferred waits; then the reconciler's cost over the same file
(``bench.reconcile_cost``).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import reconcile_cost
from bench.report_sections import header, row
from dev.airbyte_standin.seed import extra_connection
from dev.airbyte_standin.serving import quick_config, run_standin_process
from dev.airflow_components import run_airflow
from dev.environment import airflow_environment
from include.connections import FILE_VARIABLE, load_connections

PREFIX = "airbyte_sync__bench_"
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
SAMPLE_S, RUNS_TIMEOUT_S = 0.25, 1800.0


def sample_jobs(standin: Any, samples: list, done: threading.Event) -> None:
    while not done.wait(SAMPLE_S):
        with contextlib.suppress(OSError):  # (time before the read, jobs); requests' errors
            samples.append((time.time(), standin.jobs()))


def at_once(samples: list[tuple[float, list[dict[str, Any]]]]) -> dict[str, int]:
    """Most jobs at once over [read before a job's first listing, its end], and in one read."""
    starts, ends = {}, {}  # job id: time
    previous = samples[0][0] if samples else 0.0
    for before, jobs in samples:
        for job in jobs:
            starts.setdefault(job["id"], previous)
            if job["status"] in TERMINAL:
                ends.setdefault(job["id"], job["updated_at"])
        previous = before
    steps = [(t, 1) for t in starts.values()] + [(ends.get(i, math.inf), -1) for i in starts]
    level = peak = 0
    for _, step in sorted(steps, key=lambda s: (s[0], -s[1])):  # starts first at a tie
        level += step
        peak = max(peak, level)
    reads = [[j["status"] for j in jobs] for _, jobs in samples] or [[]]
    return {
        "max_jobs_at_once": peak,
        "max_jobs_at_once_read": max(sum(s not in TERMINAL for s in read) for read in reads),
        "max_running_read": max(read.count("running") for read in reads),
    }


def wait_runs(airflow: Any, dags: int, pool: str) -> tuple[list[dict[str, Any]], int]:
    """Every run once all ended (or at the timeout), and the pool's most occupied slots."""
    deadline, occupied = time.monotonic() + RUNS_TIMEOUT_S, 0
    params = {"dag_id_prefix_pattern": PREFIX, "limit": dags}
    while True:
        runs = airflow._ok(airflow.api("GET", "/dags/~/dagRuns", params=params))["dag_runs"]
        slots = airflow._ok(airflow.api("GET", f"/pools/{pool}"))
        occupied = max(occupied, slots["occupied_slots"])
        ended = sum(r["state"] in ("success", "failed") for r in runs)
        if ended >= dags or time.monotonic() > deadline:
            return runs, occupied
        time.sleep(2.0)


def trigger(airflow: Any, dag_id: str) -> int:
    """A manual run of ``dag_id`` (SQLite's locks make the API answer 500 at times): retries."""
    for retries in range(10):
        with contextlib.suppress(RuntimeError):
            airflow.trigger(dag_id)
            return retries
        if airflow.list_runs(dag_id):  # created before the error: no second run
            return retries + 1
        time.sleep(1.0)
    raise RuntimeError(f"{dag_id}: no run after 10 tries")


def run_all(airflow: Any, dags: int, pool: str) -> dict[str, Any]:
    """Unpause the generated sync DAGs, trigger them all at once, wait for every run."""
    airflow.wait_for_dag(f"{PREFIX}{dags:04d}", timeout=300)
    # dag_id_prefix_pattern matches no DAG in PATCH /dags (Airflow 3.3.0); a LIKE pattern does.
    unpause = {"params": {"dag_id_pattern": PREFIX}, "json": {"is_paused": False}}
    body = airflow._ok(airflow.api("PATCH", "/dags", **unpause))
    assert body["total_entries"] == dags, f"unpaused {body['total_entries']} of {dags} DAGs"
    started = time.time()
    retries = sum(trigger(airflow, f"{PREFIX}{i:04d}") for i in range(1, dags + 1))
    triggered = time.time()
    runs, occupied = wait_runs(airflow, dags, pool)
    states = Counter(r["state"] for r in runs)
    ends = [datetime.fromisoformat(r["end_date"]).timestamp() for r in runs if r["end_date"]]
    return {
        "trigger_s": round(triggered - started, 2),
        "trigger_retries": retries,
        "wall_s": round(max(ends, default=math.nan) - started, 1),
        "runs": len(runs),
        "run_states": dict(states),
        "runs_succeeded": states.get("success", 0),
        "not_manual_runs": sum(1 for r in runs if r["run_type"] != "manual"),
        "pool_max_occupied": occupied,
    }


def measure_pool(tmp: Path, path: Path, dags: int, slots: int, job_s: float) -> dict[str, Any]:
    """Trigger the ``dags`` generated sync DAGs of the file at ``path`` at once, in a real
    Airflow with a pool of ``slots``; then the reconciler's cost over the same file."""
    pending = min(1.0, job_s / 4)
    settings = {"pending_seconds": pending, "running_seconds": job_s - pending}
    config = quick_config(tmp, extra_connections=dags, validate_contract=False, **settings)
    overrides = {"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"}  # manual runs only
    started, samples, done = time.monotonic(), [], threading.Event()
    with run_standin_process(config, log_file=tmp / "pool-standin.log") as standin:
        env = airflow_environment(standin.url, tmp / "airflow") | {FILE_VARIABLE: str(path)}
        with run_airflow(env, overrides=overrides) as airflow:
            up_s = time.monotonic() - started
            sampler = threading.Thread(target=sample_jobs, args=(standin, samples, done))
            sampler.start()
            try:
                figures = run_all(airflow, dags, load_connections(path).pool.name)
            finally:
                done.set()
                sampler.join()
            airflow.unpause(reconcile_cost.DAG_ID)
            entries = len(load_connections(path).connections)
            figures["reconcile"] = reconcile_cost.measure(airflow, standin, entries)
            jobs, served = standin.jobs(), standin.requests()
    tokens = sum(1 for r in served if r["path"].endswith("/applications/token"))
    ids = {extra_connection(i).connection_id for i in range(1, dags + 1)}
    per_connection = Counter(j["connection_id"] for j in jobs if j["job_type"] == "sync")
    return {"dags": dags, "slots": slots, "job_s": job_s, "airflow_start_s": round(up_s, 1)} | {
        **figures,
        **at_once(samples),
        "jobs": len(jobs),  # every job on the stand-in, whatever its connection
        "duplicated_syncs": sum(n - 1 for c, n in per_connection.items() if c in ids),
        "connections_without_job": len(ids - set(per_connection)),
        "airbyte_requests": len(served) - tokens,
        "token_requests": tokens,
    }


def section(pool: dict[str, Any]) -> list[str]:
    """The pool part's rows of section 7, with the reconciler's."""
    return [
        "",
        f"**Pool** ({pool['dags']} runs triggered in {pool['trigger_s']:.1f} s, retries: "
        f"{pool['trigger_retries']}; pool of {pool['slots']}, {pool['job_s']:g}-s jobs).",
        "",
        *header(
            "runs", "succeeded", "jobs at once", "in one read (running)", "pool occupied max",
            "jobs", "duplicated", "wall s", "Airbyte requests (tokens)",
        ),
        row(
            pool["runs"], pool["runs_succeeded"], pool["max_jobs_at_once"],
            f"{pool['max_jobs_at_once_read']} ({pool['max_running_read']})",
            pool["pool_max_occupied"], pool["jobs"], pool["duplicated_syncs"], pool["wall_s"],
            f"{pool['airbyte_requests']} ({pool['token_requests']})",
        ),
        *reconcile_cost.section(pool.get("reconcile")),
    ]  # fmt: skip
