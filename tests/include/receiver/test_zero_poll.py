"""Zero-poll syncs against the session's Airflow: the DAG starts the sync and returns; the
notification (or, when it is lost, the watchdog) announces the end. Judged by the asset
events, DAG runs and Airbyte requests that result."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from dev.airbyte_standin.seed import CONNECTIONS_BY_ID, DESTINATION_ID
from dev.processes import wait_until
from tests.airflow_fixtures import STRIPE, TIMEOUT
from tests.include.receiver.conftest import TOKEN as NOTIFICATION_TOKEN
from tests.include.receiver.conftest import quiesce
from tests.include.receiver.test_airbyte_notifications import (
    CONNECTION_ASSET,
    asset_events,
    events_per_asset,
    notification_status,
    notify,
    outbox_messages,
    outcome,
    quality_runs_for,
)

pytestmark = pytest.mark.timeout(TIMEOUT)
ZERO_POLL_DAG = "airbyte_stripe_zero_poll_sync"
#: The stand-in's syncs take well under a second: look 3 s after the start.
PUBLIC = "/api/public/v1"
START = f"POST {PUBLIC}/jobs"
#: Each process (the task's, the receiver's) exchanges the client credentials once.
TOKEN = f"POST {PUBLIC}/applications/token"
#: The tables' names: the connection, its source and destination, its streams' fields.
DETAILS = [
    f"GET {PUBLIC}/connections/{STRIPE}",
    f"GET {PUBLIC}/sources/{CONNECTIONS_BY_ID[STRIPE].source_id}",
    f"GET {PUBLIC}/destinations/{DESTINATION_ID}",
    f"GET {PUBLIC}/streams",
]
QUICK = {"grace_seconds": 3, "fallback_after_seconds": 3, "timeout_minutes": 5}


@pytest.fixture(scope="module")
def zero_poll(shared, intake) -> str:
    shared.airflow.unpause(ZERO_POLL_DAG)
    return intake


def run_zero_poll(shared) -> tuple[str, dict, int, list[dict]]:
    """Trigger the DAG and wait for it; return its run id, task states, job id and the
    Airbyte API requests served meanwhile."""
    quiesce(shared)
    served = len(shared.standin.requests())
    run_id = shared.airflow.trigger(ZERO_POLL_DAG, QUICK)["dag_run_id"]
    finished = shared.airflow.wait_for_run(ZERO_POLL_DAG, quote(run_id, safe=""), timeout=180)
    tasks = {
        t["task_id"]: t["state"]
        for t in shared.airflow.task_instances(ZERO_POLL_DAG, quote(run_id, safe=""))
    }
    path = (
        f"/dags/{ZERO_POLL_DAG}/dagRuns/{quote(run_id, safe='')}"
        "/taskInstances/start_sync/xcomEntries/airbyte_job_id"
    )
    job_id = int(shared.airflow.api("GET", path).json()["value"])
    return finished["state"], tasks, job_id, shared.standin.requests()[served:]


def airbyte_calls(requests_served: list[dict]) -> list[str]:
    """The API calls served, without the token exchanges (at most one per process)."""
    calls = [f"{r['method']} {r['path']}" for r in requests_served]
    assert calls.count(TOKEN) <= 2, calls  # the task's and the receiver's
    return [c for c in calls if c != TOKEN]


def confirm(job_id: int) -> str:
    return f"GET {PUBLIC}/jobs/{job_id}"


def test_the_notification_announces_the_sync_and_the_watchdog_stands_down(
    stripe_assets, shared, zero_poll
):
    state, tasks, job_id, served = run_zero_poll(shared)
    assert state == "success"
    assert tasks == {"start_sync": "success", "watchdog": "skipped"}
    assert events_per_asset(shared, job_id, stripe_assets) == dict.fromkeys(stripe_assets, 1)
    [event] = asset_events(shared, CONNECTION_ASSET, job_id)
    assert event["extra"]["origin"] == "airbyte_notification"
    wait_until(lambda: quality_runs_for(shared, job_id), timeout=60, interval=0.5)
    # Start and the receiver's confirmation: no polling, no history request. The table names
    # come from the connection's details, which the receiver asks for once and then reuses.
    # (A try Airflow refused, busy, is given back; each try confirms the job once.)
    tries = 1 + notification_status(zero_poll, job_id)["attempts"]
    calls = airbyte_calls(served)
    assert all(calls.count(d) <= 1 for d in DETAILS)
    assert [c for c in calls if c not in DETAILS] == [START] + [confirm(job_id)] * tries


def test_a_lost_notification_is_caught_by_the_watchdog(
    stripe_assets, shared, zero_poll, make_receiver
):
    shared.standin.notify_to(zero_poll, drop=1)
    state, tasks, job_id, served = run_zero_poll(shared)
    assert state == "success"
    assert tasks == {"start_sync": "success", "watchdog": "success"}
    sent = [r for r in shared.standin.notifications_sent() if r["job_id"] == job_id]
    assert sent == [{"job_id": job_id, "success": True, "status": "dropped"}]
    assert events_per_asset(shared, job_id, stripe_assets) == dict.fromkeys(stripe_assets, 1)
    [event] = asset_events(shared, CONNECTION_ASSET, job_id)
    assert event["extra"]["origin"] == "watchdog"
    assert event["extra"]["records"] == 60
    [run] = wait_until(lambda: quality_runs_for(shared, job_id), timeout=60, interval=0.5)
    assert run["dag_id"] == "airbyte_quality__stripe"
    # Start, then the watchdog's one look and the lineage the sync task would have asked for.
    assert airbyte_calls(served) == [START, confirm(job_id), *DETAILS]
    # The notification comes after all (late, or sent again) to a receiver that has never
    # read this connection's details: it confirms the job, finds the watchdog's announcement
    # and reads no table names. (Once no run is queued: apache/airflow#71360.)
    quiesce(shared)
    receiver = make_receiver(shared.airflow.url, airbyte_notification_token=NOTIFICATION_TOKEN)
    late = f"{receiver}/airbyte/notifications/{NOTIFICATION_TOKEN}"
    served = len(shared.standin.requests())
    assert notify(late, job_id)["status"] == "accepted"
    assert outcome(late, job_id)["status"] == "duplicate"
    assert airbyte_calls(shared.standin.requests()[served:]) == [confirm(job_id)]
    assert events_per_asset(shared, job_id, stripe_assets) == dict.fromkeys(stripe_assets, 1)


def test_a_failed_job_fails_the_watchdog_and_announces_nothing(
    stripe_assets, shared, zero_poll, outbox
):
    shared.standin.set_job_behaviour("fail", STRIPE, failure_reason="Stripe rate limit exhausted")
    state, tasks, job_id, _ = run_zero_poll(shared)
    assert state == "failed"
    assert tasks == {"start_sync": "success", "watchdog": "failed"}
    assert events_per_asset(shared, job_id, stripe_assets) == dict.fromkeys(stripe_assets, 0)
    [message] = wait_until(lambda: outbox_messages(outbox, job_id), timeout=30)
    assert "Stripe rate limit exhausted" in message["body"]
