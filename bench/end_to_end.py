"""Bench 8: from an Airbyte sync's end to the next task's start, in a real Airflow.

One stand-in (its own process, client credentials) and one real Airflow 3
(``dev.airflow_components.run_airflow``: scheduler, triggerer, dag-processor, api-server;
LocalExecutor, SQLite) with the DAGs of ``bench/dag_files/end_to_end``, whose receiver is
mounted in the API server by ``plugins/airbyte_plugin.py``. For each job length, every
connection is synced once first (outside Airflow: the job history a scheduled DAG has, and
for zero-poll the Asset event its watchdog reads the usual duration from); then, one side
after another, ``--runs`` DAG runs of that side at once, each on its own connection, their
jobs' lengths spread over one 60-s poll interval (``SPREAD_S``).
Measured per sync: the stand-in's end of the job -> the downstream task's ``start_date``;
every Airbyte request the stand-in served while the side's runs were live / runs; the
Airbyte tasks' worker-slot seconds (``bench.e2e_figures``).

Sides: ours deferred (the default), blocking and zero-poll (the notification's Asset event
schedules the downstream DAG); the official provider's deferred operator (its shipped 60 s
trigger interval), its blocking operator (3 s) and its deferrable sensor. ``--side both``
runs all six and must run in ``bench/.venv-official`` (the project's venv plus the provider
and its SDK): every Airflow component is started with this interpreter, so both sides'
tasks run in the same Airflow. ``--side ours``: our three, in the project's venv.

``--quick``: 6-s jobs, one run per side (a smoke run; it still starts Airflow).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
import yaml

from bench.common import REPO_ROOT, connection_env, emit
from bench.e2e_figures import (
    OFFICIAL_SIDES,
    OURS_SIDES,
    batch_figures,
    slot_seconds,
    sync_figures,
    timestamp,
    workload_seconds,
)
from dev.airbyte_standin.seed import extra_connection
from dev.airbyte_standin.serving import quick_config, run_standin_process
from dev.airflow_components import run_airflow
from dev.environment import ENV_FILE, airflow_environment
from dev.processes import wait_until
from include.connections import FILE_VARIABLE
from include.receiver.mount import URL_PREFIX

DAG_FOLDER = REPO_ROOT / "bench" / "dag_files" / "end_to_end"
FULL = {"lengths": (20.0, 120.0), "runs": 4, "pending_s": 5.0}
QUICK = {"lengths": (6.0,), "runs": 1, "pending_s": 1.0}
#: Run r of a side runs its job (r - 1) x SPREAD_S / runs s longer: the ends of a side's jobs
#: are spread evenly over one of the official trigger's 60-s poll intervals.
SPREAD_S = 60.0
GRACE_S = 5.0  # the zero-poll watchdog's grace past 1.5 x the usual duration
#: Airflow's own defaults for the loops that set how soon a ready task starts
#: (dev/airflow_settings.py shortens them for the tests).
SCHEDULER = {
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "1",
    "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "5",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "5",
    "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "5",
}
WAITER = {"official_sensor": "wait", "ours_zero_poll": None}  # else "sync"
RUN_TIMEOUT_S = 900.0


def build_plan(sides: tuple[str, ...], lengths: tuple[float, ...], runs: int) -> list[dict]:
    """One DAG spec per (job length, side, run), each on its own stand-in connection."""
    specs, index = [], 0
    for job_s in lengths:
        for side in sides:
            for run in range(1, runs + 1):
                index += 1
                spec = {
                    "dag_id": f"e2e_{side}_{job_s:g}s_{run}",
                    "side": side,
                    "job_s": job_s,
                    "connection_id": extra_connection(index).connection_id,
                    "index": index,
                    "running_extra_s": (run - 1) * SPREAD_S / runs,
                    "conn_id": "airbyte_official" if side in OFFICIAL_SIDES else "airbyte_default",
                }
                if side == "ours_zero_poll":
                    spec |= {"entry": f"e2e_{job_s:g}s_{run}", "grace_seconds": GRACE_S}
                specs.append(spec)
    return specs


def write_connections_file(path: Path, specs: list[dict]) -> None:
    """The connections file the receiver and the zero-poll DAGs read: the zero-poll entries."""
    entries = {
        s["entry"]: {
            "connection_id": s["connection_id"],
            "label": f"Bench {s['entry']}",
            "wait": "zero_poll",
            "retries": 0,
            "streams": list(extra_connection(s["index"]).streams),
        }
        for s in specs
        if "entry" in s
    }
    document = {"version": 1, "pool": {"name": "airbyte", "slots": 64}, "connections": entries}
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def environment(standin: Any, home: Path, plan: Path, connections: Path) -> dict[str, str]:
    env = airflow_environment(standin.url, home / "airflow")
    return env | {
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAG_FOLDER),
        "BENCH_E2E_PLAN": str(plan),
        FILE_VARIABLE: str(connections),
        # Ours with its shipped poll schedule (dev/airflow.env's is shortened for the demo).
        "AIRFLOW_CONN_AIRBYTE_DEFAULT": connection_env("ours", standin),
        "AIRFLOW_CONN_AIRBYTE_OFFICIAL": connection_env("official", standin),
    }


def receiver_url(airflow: Any) -> str:
    from dotenv import dotenv_values

    token = dotenv_values(ENV_FILE)["AIRBYTE_NOTIFICATION_TOKEN"]
    return f"{airflow.url}{URL_PREFIX}/airbyte/notifications/{token}"


def start_jobs(standin: Any, specs: list[dict]) -> list[int]:
    """One sync per spec's connection through the Public API (not through Airflow)."""
    headers = standin.auth_headers()
    ids = []
    for spec in specs:
        response = requests.post(
            f"{standin.public_api_url}/jobs",
            json={"connectionId": spec["connection_id"], "jobType": "sync"},
            headers=headers,
            timeout=10,
        )
        response.raise_for_status()
        ids.append(response.json()["jobId"])
    return ids


def warm_up(standin: Any, airflow: Any, specs: list[dict], timeout: float) -> None:
    """Sync every connection once, notifications on; wait for their downstream DAGs too."""
    standin.notify_to(receiver_url(airflow))
    ids = set(start_jobs(standin, specs))

    def settled() -> bool:
        ended = {j["id"] for j in standin.jobs() if j["id"] in ids and _terminal(j)}
        return ended == ids and ids <= {n["job_id"] for n in standin.notifications_sent()}

    wait_until(settled, timeout=timeout, interval=0.5, what="warm-up syncs notified")
    standin.notify_to(None)
    for spec in specs:
        if "entry" in spec:
            run = wait_until(
                lambda s=spec: airflow.list_runs(f"{s['dag_id']}__downstream"),
                timeout=120,
                interval=0.5,
                what=f"warm-up downstream run of {spec['dag_id']}",
            )[0]
            dag_id, run_id = f"{spec['dag_id']}__downstream", run["dag_run_id"]
            airflow.wait_for_run(dag_id, quote(run_id, safe=""), timeout=RUN_TIMEOUT_S)


def _terminal(job: dict[str, Any]) -> bool:
    return job["status"] in ("succeeded", "failed", "cancelled")


def trigger(airflow: Any, dag_id: str) -> str:
    """A manual run (SQLite's locks make the API answer 500 at times: retried)."""
    for _ in range(10):
        with contextlib.suppress(RuntimeError):
            return airflow.trigger(dag_id)["dag_run_id"]
        if runs := airflow.list_runs(dag_id):  # created before the error
            return runs[-1]["dag_run_id"]
        time.sleep(1.0)
    raise RuntimeError(f"{dag_id}: no run after 10 tries")


def downstream_run(airflow: Any, spec: dict, since: float) -> tuple[str, str]:
    """(dag id, run id) of the run holding ``downstream`` for a run started at ``since``."""
    dag_id = f"{spec['dag_id']}__downstream"

    def created() -> list[dict]:
        return [
            r
            for r in airflow.list_runs(dag_id)
            if (r.get("queued_at") or r.get("run_after")) and _after(r, since)
        ]

    [run, *_] = wait_until(created, timeout=RUN_TIMEOUT_S, interval=0.5, what=f"{dag_id} run")
    airflow.wait_for_run(dag_id, quote(run["dag_run_id"], safe=""), timeout=RUN_TIMEOUT_S)
    return dag_id, run["dag_run_id"]


def _after(run: dict[str, Any], since: float) -> bool:
    return (timestamp(run.get("queued_at") or run.get("run_after")) or 0.0) >= since


def task_log(home: Path, dag_id: str, run_id: str, ti: dict[str, Any]) -> str:
    path = (
        home
        / "airflow"
        / "logs"
        / f"dag_id={dag_id}"
        / f"run_id={run_id}"
        / f"task_id={ti['task_id']}"
        / f"attempt={ti['try_number']}.log"
    )
    return _read(path)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def worker_held(home: Path, ti_ids: list[str]) -> dict[str, float]:
    """How long each task instance held a worker; its supervisor logs the last run's line a
    moment (up to its 5 s heartbeat wait) after the task's state, so it is waited for."""
    log = home / "airflow" / "processes" / "scheduler.log"
    with contextlib.suppress(TimeoutError):  # what is missing then reads n/a
        wait_until(
            lambda: set(ti_ids) <= workload_seconds(_read(log))[1],
            timeout=30,
            interval=0.5,
            what="the supervisor's last lines",
        )
    return workload_seconds(_read(log))[0]


def sync_record(
    airflow: Any, home: Path, spec: dict, run_id: str, job: dict, since: float
) -> dict[str, Any]:
    """The figures of one sync from its DAG run (and the downstream DAG's run)."""
    dag_id = spec["dag_id"]
    tis = airflow.task_instances(dag_id, quote(run_id, safe=""))
    if spec["side"] == "ours_zero_poll":
        down_dag, down_run = downstream_run(airflow, spec, since)
        down_tis = airflow.task_instances(down_dag, quote(down_run, safe=""))
    else:
        down_tis = tis
    downstream = next((t for t in down_tis if t["task_id"] == "downstream"), None)
    airbyte = [t for t in tis if t["task_id"] != "downstream"]
    held = worker_held(home, [t["id"] for t in airbyte])
    slots = {t["task_id"]: slot_seconds(t, task_log(home, dag_id, run_id, t)) for t in airbyte}
    waiter = WAITER.get(spec["side"], "sync")
    return sync_figures(job, airbyte, downstream, slots, waiter, held)


def run_batch(standin: Any, airflow: Any, home: Path, side: str, specs: list[dict]) -> dict:
    """``len(specs)`` runs of ``side`` at once; every Airbyte request while they were live."""
    seen, known = len(standin.requests()), {j["id"] for j in standin.jobs()}
    if side == "ours_zero_poll":
        standin.notify_to(receiver_url(airflow))
    since = time.time()
    runs = [trigger(airflow, spec["dag_id"]) for spec in specs]
    for spec, run_id in zip(specs, runs, strict=True):
        airflow.wait_for_run(spec["dag_id"], quote(run_id, safe=""), timeout=RUN_TIMEOUT_S)
    jobs = {j["connection_id"]: j for j in standin.jobs() if j["id"] not in known}
    syncs = [
        sync_record(airflow, home, spec, run_id, jobs[spec["connection_id"]], since)
        for spec, run_id in zip(specs, runs, strict=True)
    ]
    standin.notify_to(None)
    served = [r for r in standin.requests()[seen:] if not r["path"].endswith("/health")]
    return {
        "side": side,
        "job_s": specs[0]["job_s"],
        "wall_s": round(time.time() - since, 1),
        "jobs_created": sum(1 for j in standin.jobs() if j["id"] not in known),
        "syncs": syncs,
        "figures": batch_figures(syncs, served),
    }


def measure(doc: dict[str, Any], size: dict, sides: tuple[str, ...], home: Path) -> None:
    """Start the stand-in and Airflow; add each batch to ``doc["batches"]`` as it ends."""
    specs = build_plan(sides, size["lengths"], size["runs"])
    (plan := home / "plan.json").write_text(json.dumps(specs))
    write_connections_file(connections := home / "connections.yaml", specs)
    pending = size["pending_s"]
    config = quick_config(home, auth="token", extra_connections=len(specs), validate_contract=False)
    started = time.monotonic()
    with run_standin_process(config, log_file=home / "standin.log") as standin:
        env = environment(standin, home, plan, connections)
        overrides = SCHEDULER | {"AIRFLOW__CORE__PARALLELISM": str(2 * size["runs"] + 4)}
        with run_airflow(env, overrides=overrides) as airflow:
            doc["airflow_start_s"] = round(time.monotonic() - started, 1)
            airflow.wait_for_dag(specs[-1]["dag_id"], timeout=300)
            body = {"params": {"dag_id_pattern": "e2e_"}, "json": {"is_paused": False}}
            airflow._ok(airflow.api("PATCH", "/dags", **body))
            for job_s in size["lengths"]:
                at_length = [s for s in specs if s["job_s"] == job_s]
                standin.set_durations(pending_seconds=pending)
                for spec in at_length:
                    running = job_s - pending + spec["running_extra_s"]
                    standin.set_durations(
                        running_seconds=running, connection_id=spec["connection_id"]
                    )
                warm_up(standin, airflow, at_length, timeout=job_s + SPREAD_S + 180)
                for side in sides:
                    mine = [s for s in at_length if s["side"] == side]
                    doc["batches"].append(run_batch(standin, airflow, home, side, mine))


def describe(size: dict[str, Any]) -> dict[str, Any]:
    """The run's setting: interpreter, versions, sizes, the scheduler's loop."""
    from importlib.metadata import PackageNotFoundError, version

    python = Path(sys.executable)
    try:
        provider = f"apache-airflow-providers-airbyte {version('apache-airflow-providers-airbyte')}"
        note = f"the project's venv plus {provider} and airbyte-api"
    except PackageNotFoundError:
        note = "the project's venv, no official provider"
    return {
        "airflow": version("apache-airflow"),
        "interpreter": str(
            python.relative_to(REPO_ROOT) if python.is_relative_to(REPO_ROOT) else python
        ),
        "interpreter_note": note,
        "lengths": list(size["lengths"]),
        "runs": size["runs"],
        "settings": {
            "pending_s": size["pending_s"],
            "grace_s": GRACE_S,
            "spread_s": SPREAD_S,
            "scheduler": "idle sleep 1 s, heartbeats 5 s",
        },
        "batches": [],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=("ours", "both"), default="ours")
    parser.add_argument("--quick", action="store_true", help="6-s jobs, one run per side")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=FULL["runs"])
    parser.add_argument("--keep", action="store_true", help="keep the Airflow home and logs")
    args = parser.parse_args()
    size = QUICK if args.quick else FULL | {"runs": args.runs}
    sides = OURS_SIDES + (OFFICIAL_SIDES if args.side == "both" else ())
    home = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    result = {"bench": "end_to_end", "side": args.side, "quick": args.quick} | describe(size)
    try:
        measure(result, size, sides, home)
    except Exception as error:  # the batches so far are kept, and the run fails
        result["error"] = f"{type(error).__name__}: {error}"[-2000:]
        result["kept"] = str(home)  # the logs of Airflow and the stand-in, to read
    else:
        if args.keep:
            result["kept"] = str(home)
        else:
            shutil.rmtree(home, ignore_errors=True)
    emit(result, args.json)
    if "error" in result:
        sys.exit(1)


if __name__ == "__main__":
    main()
