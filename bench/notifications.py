"""Airbyte's notifications as Airflow's clock: latency and Airbyte requests per sync.

Starts a stand-in (client-credentials auth, Configuration API), a real local Airflow 3
(``dev.airflow_components``) and the webhook receiver, and points the stand-in's notification
webhook at the receiver. Then:

The metadata database is SQLite (as ``make airflow``), so figures include its write locks.

1. ``--syncs`` syncs started outside Airflow, through the stand-in's API: for each, the
   receiver's answer (202 once recorded: ``ack_*``), the time from the notification being
   sent to the connection Asset's event existing in Airflow (p50/p95/max), and the
   Airbyte requests the receiver made (goal: p95 <= 2 s, one confirmation per sync; the
   receiver's token and the connection's details are cached, so they cost one request per
   token lifetime and per hour, not per sync);
2. ``--runs`` runs of ``airbyte_stripe_zero_poll_sync``: every Airbyte request made while
   each run is live, by any component (task, receiver, watchdog). Goal: <= 3 (token, start,
   confirmation), whatever the job's length, against the official provider's counts for
   2- and 10-minute syncs in ``bench/RESULTS.md`` (it polls every 3 s blocking, 60 s
   deferred).

``python -m bench.notifications [--quick] [--json FILE]`` prints one JSON document.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import statistics
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from bench.common import emit, parse_args
from dev.airbyte_standin.seed import STRIPE_CONNECTION_ID
from dev.airbyte_standin.serving import quick_config, run_standin
from dev.airflow_components import run_airflow
from dev.environment import airflow_environment
from dev.processes import wait_until
from dev.webhook_server import serve_receiver
from include.assets import connection_asset
from include.connections import load_connections
from include.receiver import WebhookSettings
from plugins.airbyte_client.contracts import JOB_ID_KEY

TOKEN = "bench-notification-token-0123456789"  # noqa: S105 - a local bench value
ZERO_POLL_DAG = "airbyte_stripe_zero_poll_sync"
CONNECTION_ASSET = connection_asset(load_connections().entry("stripe")).uri
QUALITY_DAG = "airbyte_quality__stripe"
STRIPE_DAG = "airbyte_stripe_to_postgres"
#: Official provider, requests while waiting for one sync (bench/RESULTS.md, first sync).
OFFICIAL = {
    "blocking, 2-min sync": 42,
    "deferred, 2-min sync": 5,
    "blocking, 10-min sync": 199,
    "deferred, 10-min sync": 13,
}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def airbyte_calls(served: list[dict[str, Any]]) -> Counter:
    return Counter(f"{r['method']} {r['path']}" for r in served)


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        syncs={"type": int, "default": 30},
        runs={"type": int, "default": 5},
    )
    syncs, runs = (5, 2) if args.quick else (args.syncs, args.runs)
    logging.getLogger("webhook").setLevel(logging.WARNING)  # stdout carries the JSON
    home = Path(tempfile.mkdtemp(prefix="bench-notifications-"))
    try:
        outside, zero_poll = measure(home, syncs, runs)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    result = {"outside_syncs": outside, "zero_poll": zero_poll}
    emit(result | {"official_requests_per_sync": OFFICIAL, "goals": goals(result)}, args.json)


def goals(result: dict[str, Any]) -> dict[str, bool]:
    outside, zero_poll = result["outside_syncs"], result["zero_poll"]
    return {
        "notification to asset event p95 <= 2 s": outside["p95_seconds"] <= 2.0,
        "one Airbyte request (the confirmation) per notified sync": (
            outside["confirmations_per_sync"] == 1.0
        ),
        "zero-poll <= 3 Airbyte requests per DAG-started sync": (
            zero_poll["max_requests_per_run"] <= 3
        ),
    }


def measure(home: Path, syncs: int, runs: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The stand-in, Airflow and the receiver in ``home``: (outside syncs, zero-poll runs)."""
    config = quick_config(home, auth="token", running_seconds=0.5)
    with run_standin(config) as standin:
        environment = airflow_environment(standin.url, home)
        environment["AIRFLOW_CONN_AIRBYTE_DEFAULT"] = json.dumps(
            {
                "conn_type": "airbyte",
                "host": standin.url,
                "login": config.client_id,
                "password": config.client_secret,
                "extra": {"auth_type": "client_credentials"},
            }
        )
        # The receiver reads the same Connection and Variables, the Airflow way.
        os.environ.update(
            {
                k: v
                for k, v in environment.items()
                if k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))
            }
        )
        with run_airflow(environment) as airflow:
            # The quality DAG stays paused: its runs would contend with the receiver for the
            # SQLite metadata database, which no production Airflow uses.
            airflow.unpause(ZERO_POLL_DAG)
            airflow.wait_for_dag(QUALITY_DAG)
            register_table_assets(airflow)
            settings = WebhookSettings(
                webhook_secret="bench-webhook-secret-0123456789",  # noqa: S106
                airflow_api_url=airflow.url,
                ledger_path=str(home / "ledger.db"),
                airbyte_notification_token=TOKEN,
            )
            with serve_receiver(settings) as receiver:
                standin.notify_to(f"{receiver}/airbyte/notifications/{TOKEN}")
                outside = measure_outside_syncs(standin, airflow, syncs)
                zero_poll = measure_zero_poll(standin, airflow, runs)
                standin.notify_to(None)
    return outside, zero_poll


def register_table_assets(airflow) -> None:
    """One run of ``airbyte_stripe_to_postgres``: its lineage registers the tables' Assets,
    as in a deployment where it ran before, so each notification makes four events."""
    airflow.unpause(STRIPE_DAG)  # catchup off: one run for the latest interval
    [run] = wait_until(lambda: airflow.list_runs(STRIPE_DAG), timeout=120, interval=0.5)
    airflow.wait_for_run(STRIPE_DAG, quote(run["dag_run_id"], safe=""), timeout=300)
    airflow.api("PATCH", f"/dags/{STRIPE_DAG}", json={"is_paused": True})


def event_time(airflow, job_id: int) -> float | None:
    """When the connection Asset's event of Airbyte job ``job_id`` was created (epoch)."""
    params = {"uri_pattern": CONNECTION_ASSET, "only_active": False}
    assets = airflow.api("GET", "/assets", params=params).json()["assets"]
    [asset] = [a for a in assets if a["uri"] == CONNECTION_ASSET]
    response = airflow.api(
        "GET", "/assets/events", params={"asset_id": asset["id"], "order_by": "-timestamp"}
    )
    if response.status_code != 200:  # apache/airflow#71360 while a run is queued: later
        return None
    for event in response.json()["asset_events"]:
        if (event.get("extra") or {}).get(JOB_ID_KEY) == job_id:
            return datetime.fromisoformat(event["timestamp"]).timestamp()
    return None


def measure_outside_syncs(standin, airflow, count: int) -> dict[str, Any]:
    """Per sync: the receiver's answer (``ack``), and the time from the notification being
    sent to the connection Asset's event existing (``p50_seconds``, ...)."""
    headers = standin.auth_headers()
    acks: list[float] = []
    latencies: list[float] = []
    calls: Counter = Counter()
    for _ in range(count):
        before = len(standin.requests())
        response = requests.post(
            f"{standin.config_api_url}/connections/sync",
            json={"connectionId": STRIPE_CONNECTION_ID},
            headers=headers,
            timeout=10,
        )
        job_id = response.json()["job"]["id"]
        [record] = wait_until(
            lambda job_id=job_id: [
                r for r in standin.notifications_sent() if r["job_id"] == job_id
            ],
            timeout=60,
            interval=0.05,
            what=f"notification of job {job_id}",
        )
        assert record["status"] == 202, record
        acks.append(record["seconds"])
        created = wait_until(
            lambda job_id=job_id: event_time(airflow, job_id),
            timeout=60,
            interval=0.05,
            what=f"the asset event of job {job_id}",
        )
        latencies.append(created - record["sent_at"])
        served = airbyte_calls(standin.requests()[before:])
        served.subtract({"POST /api/v1/connections/sync": 1})  # the bench's own start
        calls.update({k: v for k, v in served.items() if v > 0})
    return {
        "syncs": count,
        "ack_p50_seconds": round(statistics.median(acks), 3),
        "ack_p95_seconds": round(percentile(acks, 0.95), 3),
        "p50_seconds": round(statistics.median(latencies), 3),
        "p95_seconds": round(percentile(latencies, 0.95), 3),
        "max_seconds": round(max(latencies), 3),
        "receiver_requests": dict(calls),
        "receiver_requests_per_sync": round(sum(calls.values()) / count, 2),
        "confirmations_per_sync": round(calls["POST /api/v1/jobs/get"] / count, 2),
    }


def measure_zero_poll(standin, airflow, count: int) -> dict[str, Any]:
    per_run: list[dict[str, int]] = []
    states: list[dict[str, str]] = []
    for _ in range(count):
        before = len(standin.requests())
        run_id = airflow.trigger(ZERO_POLL_DAG, {"grace_seconds": 2, "fallback_after_seconds": 2})[
            "dag_run_id"
        ]
        quoted = quote(run_id, safe="")
        # A task can be retried when SQLite delays its final state (Airflow then sees the
        # executor report "success" for a running task); the retry waits retry_delay.
        airflow.wait_for_run(ZERO_POLL_DAG, quoted, timeout=900)
        tasks = airflow.task_instances(ZERO_POLL_DAG, quoted)
        states.append({t["task_id"]: t["state"] for t in tasks})
        per_run.append(dict(airbyte_calls(standin.requests()[before:])))
    totals = [sum(r.values()) for r in per_run]
    return {
        "runs": count,
        "requests_per_run": per_run,
        "task_states": states,
        "max_requests_per_run": max(totals),
        "mean_requests_per_run": round(statistics.mean(totals), 2),
    }


if __name__ == "__main__":
    main()
