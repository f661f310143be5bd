"""Bench 6b: bursts of Airbyte notifications against one and two receiver processes.

Two rounds, each with fresh receiver processes (``python -m webhook``) sharing one
PostgreSQL ledger, in front of a real Airflow 3 whose metadata database is PostgreSQL
(``dev.postgres``; on SQLite, local only, concurrent writers meet its write lock): N Stripe
syncs run to success outside Airflow (the stand-in's API), then their N success
notifications are posted as fast as ``POSTERS`` threads can, alternating the round's
receivers. A sync's notification makes four Asset events (the connection's and its three
tables'; one run of ``airbyte_stripe_to_postgres`` registered the tables' Assets first).

* ``ack_*``: the receiver's answer (202 once recorded in the inbox);
* ``accepted_per_second``: N / (first post to last answer);
* ``processed_per_second``: N / (first post to the last connection Asset event, by
  Airflow's own event timestamps); ``last_event_seconds``: first post to the last event of
  any of the jobs' Assets;
* ``airflow_calls_per_notification``: the receivers' requests to Airflow's REST API
  (``/api/v2``, ``/auth/token``) from the first post until every inbox row is done, counted
  in the API server's access log (Airflow's ``http.access`` lines; nothing else calls that
  API meanwhile), each process's token and asset-id lookups included. All N jobs are of one
  connection and began just before the burst, so a job's listing of the connection's events
  since it began (one per notification, to see whether a task announced it) grows with the
  burst: one page per ``PAGE_SIZE`` events.

``python -m bench.notification_burst [--quick] [--notifications N] [--max-requests M]
[--json FILE]`` (``--quick``: 40 notifications; ``--max-requests``: the receivers'
``AIRFLOW_MAX_REQUESTS``, the product's default if not given).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from bench.common import api_log_offset, api_requests_since, emit, parse_args
from bench.notifications import CONNECTION_ASSET, TOKEN, percentile, register_table_assets
from dev.airbyte_standin.admin_client import RunningStandin
from dev.airbyte_standin.seed import STRIPE_CONNECTION_ID
from dev.airbyte_standin.serving import quick_config, run_standin_process
from dev.airflow_components import AirflowServer, run_airflow
from dev.environment import airflow_environment
from dev.postgres import postgres_bin_dir, run_postgres
from dev.processes import wait_until
from dev.webhook_server import serve_receiver_process
from include.receiver.airflow_client import PAGE_SIZE
from include.receiver.inbox import DONE, INBOX
from include.receiver.settings import AirflowSettings, WebhookSettings
from plugins.airbyte_client.contracts import JOB_ID_KEY

QUALITY_DAG = "airbyte_quality__stripe"
#: Threads posting the notifications (Airbyte sends each on its own connection).
POSTERS = 8
SECRET = "bench-burst-webhook-secret-0123456789"  # noqa: S105 - a local bench value
#: Only the receivers call these during a round (tasks use ``/execution/``).
REST_PATHS = ("/api/v2/", "/auth/token")
MAX_REQUESTS = AirflowSettings.model_fields["airflow_max_requests"].default
WORKERS = WebhookSettings.model_fields["notification_workers"].default


@dataclass
class Setup:
    """What every round shares."""

    airflow: AirflowServer
    standin: RunningStandin
    ledger: sa.Engine
    receiver_env: dict[str, str]
    home: Path


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        notifications={"type": int, "default": 200},
        max_requests={"type": int, "default": MAX_REQUESTS, "help": "AIRFLOW_MAX_REQUESTS"},
    )
    n = 40 if args.quick else args.notifications
    home = Path(tempfile.mkdtemp(prefix="bench-burst-"))
    try:
        with burst_setup(home, args.max_requests) as setup:
            rounds = [run_round(setup, receivers, n) for receivers in (1, 2)]
    finally:
        shutil.rmtree(home, ignore_errors=True)
    setting = {
        "metadata_db": "postgresql",
        "ledger": "postgresql (shared by the round's receivers)",
        "notifications": n,
        "posters": POSTERS,
        "airflow_max_requests": args.max_requests,
        "notification_workers": WORKERS,
        "api_server_workers": 1,
        "events_per_notification": 4,
    }
    emit({"setting": setting, "rounds": rounds}, args.json)


@contextmanager
def burst_setup(home: Path, max_requests: int) -> Iterator[Setup]:
    """PostgreSQL (Airflow's metadata and the ledger), the stand-in, Airflow with the tables'
    Assets registered; the receivers' environment."""
    config = quick_config(home, pending_seconds=0.01, running_seconds=0.05)
    with (
        run_postgres(postgres_bin_dir()) as pg,
        run_standin_process(config, log_file=home / "standin.log") as standin,
    ):
        environment = airflow_environment(standin.url, home)  # the stand-in's warehouse
        metadata = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg.url(pg.create_database())}
        ledger_url = pg.url(pg.create_database())
        with run_airflow(environment, overrides=metadata) as airflow:
            airflow.wait_for_dag(QUALITY_DAG)  # it declares the connection's Asset
            register_table_assets(airflow)
            receiver_env = {
                **{
                    k: v
                    for k, v in environment.items()
                    if k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))
                },
                "AIRFLOW_HOME": str(home / "receivers"),
                "AIRFLOW_API_URL": airflow.url,
                "AIRFLOW_USERNAME": airflow.username,
                "AIRFLOW_PASSWORD": airflow.password,
                "AIRFLOW_MAX_REQUESTS": str(max_requests),
                "LEDGER_URL": ledger_url,
                "WEBHOOK_SECRET": SECRET,
                "AIRBYTE_NOTIFICATION_TOKEN": TOKEN,
            }
            ledger = sa.create_engine(ledger_url)
            try:
                yield Setup(airflow, standin, ledger, receiver_env, home)
            finally:
                ledger.dispose()


def succeeded_jobs(standin: RunningStandin, n: int) -> list[int]:
    """``n`` Stripe syncs started outside Airflow, one after the other, all succeeded."""
    headers = standin.auth_headers()

    def call(path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{standin.config_api_url}{path}"
        response = requests.post(url, json=body, headers=headers, timeout=10)
        response.raise_for_status()
        return response.json()["job"]

    jobs = []
    for _ in range(n):
        job_id = call("/connections/sync", {"connectionId": STRIPE_CONNECTION_ID})["id"]
        wait_until(
            lambda j=job_id: call("/jobs/get", {"id": j})["status"] == "succeeded",
            timeout=60,
            what=f"job {job_id} succeeded",
        )
        jobs.append(job_id)
    return jobs


def post(url: str, job_id: int) -> tuple[float, float, int]:
    """Airbyte's success notification of ``job_id``: (sent at, seconds to answer, status)."""
    body = {
        "text": "Sync succeeded",
        "data": {"jobId": job_id, "connection": {"id": STRIPE_CONNECTION_ID}, "success": True},
    }
    sent = time.time()
    response = requests.post(url, json=body, timeout=30)
    return sent, time.time() - sent, response.status_code


def run_round(setup: Setup, receivers: int, n: int) -> dict[str, Any]:
    """One burst of ``n`` notifications against ``receivers`` fresh receiver processes."""
    jobs = succeeded_jobs(setup.standin, n)
    since = datetime.fromtimestamp(time.time() - 1).astimezone().isoformat()
    with ExitStack() as stack:
        urls = [
            stack.enter_context(
                serve_receiver_process(
                    setup.receiver_env, setup.home / f"receiver-{receivers}-{i}.log"
                )
            )[0]
            + f"/airbyte/notifications/{TOKEN}"
            for i in range(receivers)
        ]
        setup.airflow.token()  # the bench's own token, before the count starts
        offset = api_log_offset(setup.airflow)
        with ThreadPoolExecutor(POSTERS) as pool:
            futures = [pool.submit(post, urls[i % receivers], j) for i, j in enumerate(jobs)]
            answers = [f.result() for f in futures]
        attempts = wait_processed(setup.ledger, jobs)
        calls = airflow_calls(setup.airflow, offset)
    first = min(sent for sent, _, _ in answers)
    events = job_events(setup.airflow, since, set(jobs))
    return figures(receivers, answers, first, events, calls, attempts)


def wait_processed(ledger: sa.Engine, jobs: list[int]) -> list[int]:
    """Wait until every job's inbox row is done; each row's tries."""

    def done() -> list[int] | None:
        query = sa.select(INBOX.c.state, INBOX.c.attempts).where(INBOX.c.job_id.in_(jobs))
        with ledger.connect() as db:
            rows = db.execute(query).all()
        finished = len(rows) == len(jobs) and all(r.state == DONE for r in rows)
        return [r.attempts + 1 for r in rows] if finished else None

    return wait_until(done, timeout=600, interval=0.2, what="every notification processed")


def airflow_calls(airflow: AirflowServer, offset: int) -> Counter:
    """The REST API requests Airflow's access log shows since ``offset``, by (method, path,
    status)."""
    return Counter(r for r in api_requests_since(airflow, offset) if r[1].startswith(REST_PATHS))


def job_events(airflow: AirflowServer, since: str, jobs: set[int]) -> dict[str, list[tuple]]:
    """Every asset's events since ``since`` that name one of ``jobs``: (job id, epoch)."""
    params = {"limit": 100, "only_active": False}
    assets = airflow.api("GET", "/assets", params=params).json()["assets"]
    found: dict[str, list[tuple]] = {}
    for asset in assets:
        events: list[dict[str, Any]] = []
        while True:
            page = airflow.api(
                "GET",
                "/assets/events",
                params={"asset_id": asset["id"], "timestamp_gte": since, "order_by": "timestamp"}
                | {"limit": PAGE_SIZE, "offset": len(events)},
            )
            page.raise_for_status()
            batch = page.json()["asset_events"]
            events += batch
            if len(batch) < PAGE_SIZE:
                break
        named = [
            ((e.get("extra") or {}).get(JOB_ID_KEY), datetime.fromisoformat(e["timestamp"]))
            for e in events
        ]
        if mine := [(job, at.timestamp()) for job, at in named if job in jobs]:
            found[asset["uri"]] = mine
    return found


def figures(
    receivers: int,
    answers: list[tuple[float, float, int]],
    first: float,
    events: dict[str, list[tuple]],
    calls: Counter,
    attempts: list[int],
) -> dict[str, Any]:
    """A round's figures (see the module docstring)."""
    n = len(answers)
    acks = [seconds for _, seconds, _ in answers]
    answered = max(sent + seconds for sent, seconds, _ in answers) - first
    connection = events.get(CONNECTION_ASSET, [])
    processed = max((at for _, at in connection), default=first) - first
    last = max((at for mine in events.values() for _, at in mine), default=first) - first
    per_asset = {uri: Counter(job for job, _ in mine) for uri, mine in events.items()}
    total = sum(calls.values())
    by_request: Counter = Counter()
    for (method, path, _), count in calls.items():
        by_request[f"{method} {path}"] += count
    return {
        "receivers": receivers,
        "notifications": n,
        "statuses": dict(Counter(str(status) for _, _, status in answers)),
        "ack_p50_seconds": round(statistics.median(acks), 3),
        "ack_p95_seconds": round(percentile(acks, 0.95), 3),
        "ack_max_seconds": round(max(acks), 3),
        "answered_seconds": round(answered, 2),
        "accepted_per_second": round(n / answered, 1),
        "connection_events": len({job for job, _ in connection}),
        "processed_seconds": round(processed, 2),
        "processed_per_second": round(n / processed, 1) if processed > 0 else None,
        "last_event_seconds": round(last, 2),
        "events": sum(len(mine) for mine in events.values()),
        "duplicate_events": sum(c - 1 for jobs in per_asset.values() for c in jobs.values()),
        "assets": len(events),
        "tries_max": max(attempts),
        "retried_notifications": sum(1 for a in attempts if a > 1),
        "airflow_calls": total,
        "airflow_calls_per_notification": round(total / n, 2),
        "airflow_calls_by_request": dict(sorted(by_request.items())),
        "airflow_calls_failed": sum(c for (_, _, status), c in calls.items() if status >= 400),
    }


if __name__ == "__main__":
    main()
