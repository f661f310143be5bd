"""`make demo`: run the DAGs end to end against the local Airbyte stand-in: the seed's four,
one generated from `airbyte_connections.yaml` (`airbyte_sync__github`) and the drift check.

Sets up an Airflow home in ``.airflow/`` (SQLite metadata database), starts the Airbyte
stand-in on a free loopback port, configures Connections and Variables from
``dev/airflow.env``, runs every DAG for real with ``dag.test()`` (the event-driven one with
a conf, as a webhook would send it; Airbyte waits deferred, their triggers run inline; set
``AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE=False`` to wait in the task instead), and prints
what happened: run states, Airbyte jobs, rows and bytes per source, Great Expectations
result, transform output, notifications, and per DAG the datasets its tasks reported to
OpenLineage (file transport, ``dev/airflow.env``).
Airflow's own task logs go to ``.airflow/demo.log``. Everything it starts, it stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dev.airbyte_standin.admin_client import RunningStandin
from dev.airbyte_standin.config import StandinConfig
from dev.airbyte_standin.seed import CONNECTIONS_BY_ID
from dev.airbyte_standin.serving import run_standin
from dev.environment import (
    AIRFLOW_HOME,
    airflow_environment,
    apply,
    caller_overrides,
    migrate_metadata_db,
)

LOG_FILE = AIRFLOW_HOME / "demo.log"
WAREHOUSE = AIRFLOW_HOME / "warehouse.db"
OUTBOX = AIRFLOW_HOME / "notifications.jsonl"
LINEAGE = AIRFLOW_HOME / "openlineage.jsonl"
STRIPE = "2a6f1c2e-8b1d-4c3a-9f0e-1d2c3b4a5f60"
RUNS = (
    ("airbyte_stripe_to_postgres", None),
    ("airbyte_multi_source_sync", None),
    ("airbyte_event_driven_sync", {"connection_id": STRIPE, "min_records": 10}),
    ("airbyte_advanced_examples", {"max_age_hours": 0}),
    # generated from airbyte_connections.yaml: the entry github, found by its name in Airbyte
    ("airbyte_sync__github", None),
    ("airbyte_workspace_drift", None),
)
#: One DAG run: its id, its state, the state of each task, and its Airbyte jobs.
Result = tuple[str, str, dict[str, str], list[Any]]


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


@contextlib.contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (file descriptors 1 and 2) to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a", encoding="utf-8") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def table_count(table: str) -> int | str:
    with sqlite3.connect(WAREHOUSE) as db:
        try:
            return db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
        except sqlite3.OperationalError:
            return "missing"


def lineage_by_dag(path: Path) -> dict[str, list[tuple[str, str, str, str]]]:
    """``dag_id -> [(task, "in"/"out", dataset, rows)]`` from the OpenLineage COMPLETE events."""
    found: dict[str, list[tuple[str, str, str, str]]] = {}
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    for event in (json.loads(line) for line in lines if line.strip()):
        dag_id, _, task = event["job"]["name"].partition(".")
        if event.get("eventType") != "COMPLETE" or not task:
            continue
        for direction, datasets in (("in", event.get("inputs", [])), ("out", event["outputs"])):
            for ds in datasets:
                stats = (ds.get("outputFacets") or {}).get("outputStatistics") or {}
                rows = f"{stats['rowCount']} rows" if "rowCount" in stats else ""
                found.setdefault(dag_id, []).append(
                    (task, direction, f"{ds['namespace']}/{ds['name']}", rows)
                )
    return found


def print_lineage() -> None:
    print(f"\nLineage (OpenLineage events in {LINEAGE.relative_to(AIRFLOW_HOME.parent)})")
    found = lineage_by_dag(LINEAGE)
    for dag_id, _ in RUNS:
        datasets = found.get(dag_id, [])
        print(f"  {dag_id}: {len(datasets)} dataset(s)")
        for task, direction, name, rows in datasets:
            print(f"    {task:<24} {direction:<3} {name} {rows}".rstrip())


def run_dags(standin: RunningStandin) -> list[Result] | None:
    """Run every DAG of ``RUNS`` against ``standin``, Airflow configured for it; None if the
    DAG folder does not import (the errors are printed)."""
    environment = {**airflow_environment(standin.url), **caller_overrides()}
    apply(environment)
    step(
        f"Airbyte stand-in at {standin.url} ({len(CONNECTIONS_BY_ID)} connections); the DAGs "
        "use its Public API "
        "with client credentials (dev/airflow.env)"
    )
    step(f"Airflow home {AIRFLOW_HOME} (SQLite); Connections and Variables from dev/airflow.env")
    migrate_metadata_db(environment)

    # Airflow reads its configuration when first imported: only after ``apply``.
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.pool import Pool

    from include.connections import load_connections

    pool = load_connections().pool
    Pool.create_or_update_pool(pool.name, pool.slots, pool.description, include_deferred=True)
    step(f"Pool {pool.name}: {pool.slots} Airbyte jobs at once, deferred tasks included")

    from plugins.airbyte_hook import AirbyteHook

    hook = AirbyteHook()
    with output_to(LOG_FILE):
        dagbag = DagBag(dag_folder=environment["AIRFLOW__CORE__DAGS_FOLDER"])
    if dagbag.import_errors:
        print(json.dumps(dagbag.import_errors, indent=2))
        return None
    results = []
    for dag_id, conf in RUNS:
        before = {j["id"] for j in standin.jobs()}
        step(f"Running {dag_id}" + (f" with conf {json.dumps(conf)}" if conf else ""))
        t0 = time.monotonic()
        with output_to(LOG_FILE):
            run = dagbag.dags[dag_id].test(run_conf=conf)
        states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
        with output_to(LOG_FILE):
            jobs = [hook.get_job(j["id"]) for j in standin.jobs() if j["id"] not in before]
        results.append((dag_id, str(run.state), states, jobs))
        step(f"{dag_id}: {run.state} in {time.monotonic() - t0:.1f}s, {len(jobs)} Airbyte job(s)")
    return results


def print_runs(results: list[Result]) -> None:
    print("\nDAG runs")
    row = "  {:<28} {:<8} {}"
    print(row.format("DAG", "state", "tasks"))
    for dag_id, state, states, _ in results:
        ok = sum(s == "success" for s in states.values())
        skipped = sum(s == "skipped" for s in states.values())
        print(row.format(dag_id, state, f"{ok} succeeded, {skipped} skipped, {len(states)} total"))


def print_jobs(results: list[Result]) -> None:
    print("\nAirbyte jobs")
    row = "  {:<28} {:>4}  {:<22} {:<6} {:<10} {:>7} {:>8} {:>6}"
    print(row.format("DAG", "job", "connection", "type", "status", "records", "bytes", "secs"))
    for dag_id, _, _, jobs in results:
        for job in jobs:
            name = CONNECTIONS_BY_ID[job.connection_id].name
            print(
                row.format(
                    dag_id,
                    job.job_id,
                    name,
                    job.job_type,
                    job.status,
                    job.records,
                    job.bytes,
                    f"{job.duration_seconds or 0:.0f}",
                )
            )


def print_data(results: list[Result]) -> None:
    stripe_states = results[0][2]
    notes = (
        [json.loads(line) for line in OUTBOX.read_text().splitlines()] if OUTBOX.exists() else []
    )
    print("\nData")
    gx_state = stripe_states.get("stripe_postgres_checkpoint")
    print(f"  Great Expectations stripe_postgres_checkpoint: {gx_state}")
    print(f"  analytics_stripe_daily_revenue rows: {table_count('analytics_stripe_daily_revenue')}")
    for seeded in CONNECTIONS_BY_ID.values():
        counts = ", ".join(f"{t}={table_count(t)}" for t in seeded.table_names)
        print(f"  {seeded.name}: {counts}")
    outbox = OUTBOX.relative_to(AIRFLOW_HOME.parent)
    print(f"  notifications delivered: {len(notes)} (outbox {outbox})")
    for note in notes[:6]:
        print(f"    - {note['subject']}")


def main() -> int:
    started = time.monotonic()
    AIRFLOW_HOME.mkdir(exist_ok=True)
    LOG_FILE.write_text("")
    OUTBOX.unlink(missing_ok=True)
    LINEAGE.unlink(missing_ok=True)

    step("Starting the local Airbyte stand-in")
    config = StandinConfig(
        port=0, pending_seconds=0.3, running_seconds=1.5, warehouse_url=f"sqlite:///{WAREHOUSE}"
    )
    with run_standin(config) as standin:
        results = run_dags(standin)
        if results is None:
            return 1
    step("Stand-in stopped")

    print_runs(results)
    print_jobs(results)
    print_data(results)
    print_lineage()
    print(f"\nDone in {time.monotonic() - started:.0f}s; Airflow task logs in {LOG_FILE}")
    return 0 if all(state == "success" for _, state, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
