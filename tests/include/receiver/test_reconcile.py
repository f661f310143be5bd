"""``airbyte_reconcile`` in the session's real Airflow: syncs whose notification was lost get
their Asset events, once, whatever runs again; what a receiver already created is left alone."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from dev.processes import wait_until
from tests.airflow_fixtures import STRIPE, TIMEOUT, SharedAirflow
from tests.include.receiver.conftest import QUALITY_DAG
from tests.include.receiver.test_airbyte_notifications import (
    asset_events,
    events_per_asset,
    job_status,
    quality_runs_for,
    start_outside_airflow,
)

pytestmark = pytest.mark.timeout(TIMEOUT)
DAG = "airbyte_reconcile"


def reconcile(shared: SharedAirflow) -> dict:
    """One run of the reconciliation DAG; what its task returned (its log when it failed)."""
    conf = {"lookback_hours": 1, "settle_after_minutes": 0}
    run_id = shared.airflow.trigger(DAG, conf)["dag_run_id"]
    # A try that Airflow did not answer for is retried after a minute: room for that.
    run = shared.airflow.wait_for_run(DAG, quote(run_id, safe=""), timeout=240)
    if run["state"] != "success":
        tries = f"/dags/{DAG}/dagRuns/{quote(run_id, safe='')}/taskInstances/reconcile/logs"
        logs = [
            shared.airflow.api("GET", f"{tries}/{n}", headers={"Accept": "application/json"}).text
            for n in (1, 2)
        ]
        raise AssertionError(f"{run['state']}: {' '.join(logs)[-6000:]}")
    path = f"/dags/{DAG}/dagRuns/{quote(run_id, safe='')}/taskInstances/reconcile/xcomEntries"
    return shared.airflow._ok(shared.airflow.api("GET", f"{path}/return_value"))["value"]


def test_syncs_whose_notification_was_lost_get_their_events_once(
    shared: SharedAirflow, stripe_assets, request
):
    """The receiver hears nothing of five syncs Airbyte ran: after a reconcile run every
    Asset has one event per job, and no job's event ran the quality DAG twice."""
    shared.standin.notify_to(None)  # the notifications are lost
    shared.airflow.unpause(QUALITY_DAG)
    shared.airflow.unpause(DAG)
    request.addfinalizer(
        lambda: shared.airflow.api("PATCH", f"/dags/{DAG}", json={"is_paused": True})
    )
    jobs = []
    for _ in range(5):
        jobs.append(start_outside_airflow(shared, STRIPE))
        wait_until(lambda: job_status(shared, jobs[-1]) == "succeeded", timeout=60, what="job")

    reconcile(shared)  # (unpausing may have started a scheduled run as well: either creates)

    for job_id in jobs:
        assert events_per_asset(shared, job_id, stripe_assets) == dict.fromkeys(stripe_assets, 1)
        [event] = asset_events(shared, stripe_assets[0], job_id)
        assert event["extra"]["origin"] == "airbyte_reconciled"
        assert event["extra"]["airbyte_job_id"] == job_id
    again = reconcile(shared)  # a second run, or a replica of it, creates nothing
    assert not set(again["events_created"]) & {str(j) for j in jobs}
    for job_id in jobs:
        assert events_per_asset(shared, job_id, stripe_assets) == dict.fromkeys(stripe_assets, 1)
    # The quality DAG ran on the events, and no job's event started it twice. (Airflow 3.3.0
    # folds events that arrive together into one run; here it left some of a burst created
    # within milliseconds to no run at all, an Airflow scheduling matter.)
    wait_until(lambda: any(quality_runs_for(shared, j) for j in jobs), timeout=120, what="run")
    assert all(len(quality_runs_for(shared, j)) <= 1 for j in jobs)
