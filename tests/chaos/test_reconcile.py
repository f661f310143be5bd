"""``airbyte_reconcile`` in the chaos Airflow: it cancels the jobs nobody watches, and killed in
the middle of a run, the next run finishes its work without doubling any of it.

Judged by the stand-in's job list and by Airflow's Asset events and the runs they scheduled.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from dev.airbyte_standin import HUBSPOT_CONNECTION_ID, STRIPE_CONNECTION_ID
from include.assets import connection_asset
from include.connections import load_connections
from tests.chaos.conftest import Chaos, wait_until
from tests.chaos.dags.downstream import downstream_dag
from tests.include.receiver.test_airbyte_notifications import (
    asset_events,
    job_status,
    quality_runs_for,
    start_outside_airflow,
)

pytestmark = pytest.mark.timeout(420)
RECONCILE = "airbyte_reconcile"
#: Run now, on every job of the last hour: nothing is left to a notification still on its way.
CONF = {"lookback_hours": 1, "settle_after_minutes": 0}
#: The connections file's entries the scenario syncs, in the order the reconciler reads them.
SYNCED = {"stripe": STRIPE_CONNECTION_ID, "hubspot": HUBSPOT_CONNECTION_ID}


def reconcile_now(chaos: Chaos) -> str:
    """Trigger a reconcile run; its run id, quoted for the REST API's paths."""
    return quote(chaos.airflow.trigger(RECONCILE, CONF)["dag_run_id"], safe="")


def active_runs(chaos: Chaos) -> list[dict]:
    """The reconcile runs queued or running (``max_active_runs=1``: one at a time)."""
    return [r for r in chaos.airflow.list_runs(RECONCILE) if r["state"] in ("queued", "running")]


def sync_outside_airflow(chaos: Chaos, connection_id: str) -> int:
    """A sync started through the stand-in's API, once it succeeded (Airbyte runs one sync of
    a connection at a time)."""
    job_id = start_outside_airflow(chaos, connection_id)
    wait_until(lambda: job_status(chaos, job_id) == "succeeded", f"job {job_id} succeeded")
    return job_id


def transform_runs(chaos: Chaos, key: str, job_ids: list[int]) -> dict[int, list[dict]]:
    """The runs of the entry's transform DAG that consumed each job's event."""
    return {j: quality_runs_for(chaos, j, downstream_dag(key)) for j in job_ids}


def test_deferred_task_marked_failed_while_no_triggerer_runs_the_reconciler_cancels_its_job(
    chaos,
):
    """No trigger ever ran, so nothing in Airflow cancels the job: the reconciler does."""
    chaos.airflow.kill_component("triggerer")
    sync = chaos.start_sync("deferred")
    path = f"/dags/{sync.dag_id}/dagRuns/{sync.run_id}/taskInstances/sync"
    chaos.airflow._ok(chaos.airflow.api("PATCH", path, json={"new_state": "failed"}))
    assert chaos.finished_run(sync.dag_id, sync.run_id)["state"] == "failed"
    assert chaos.jobs()[0]["status"] == "running"  # an orphan: nobody watches it
    run_id = reconcile_now(chaos)
    assert chaos.finished_run(RECONCILE, run_id)["state"] == "success"
    chaos.wait_job(sync.job_id, "cancelled")
    chaos.assert_one_job("cancelled")


def test_reconcile_killed_mid_run_then_run_again_loses_and_doubles_nothing(chaos):
    """Five syncs Airbyte ran whose notifications were lost (three of Stripe, two of HubSpot).
    The first reconcile run settles Stripe's, then is SIGKILLed while Airbyte is slow to list
    HubSpot's jobs; the next run creates HubSpot's events and leaves Stripe's alone: one event
    per job on each connection's Asset, and no job's event runs the transform twice."""
    chaos.finish_jobs()
    jobs = {key: [sync_outside_airflow(chaos, cid) for _ in range(n)]
            for (key, cid), n in zip(SYNCED.items(), (3, 2), strict=True)}  # fmt: skip
    uris = {key: connection_asset(load_connections().entry(key)).uri for key in SYNCED}

    # No other run (the DAG's schedule) may meet the fault: none runs before or beside ours.
    wait_until(lambda: not active_runs(chaos), "no reconcile run active")
    first = reconcile_now(chaos)
    listing = f"connectionId={HUBSPOT_CONNECTION_ID}"
    chaos.standin.inject("hang", path="/api/public/v1/jobs", exact=True, query=listing, seconds=300)
    # HubSpot's listing has begun (the fault is taken): Stripe's jobs are behind the try that
    # waits for it (a job Airflow did not answer for, on a busy machine, is left unsettled).
    wait_until(lambda: not chaos.standin.faults(), "the reconciler listing HubSpot's jobs")
    assert all(len(asset_events(chaos, uris["stripe"], j)) <= 1 for j in jobs["stripe"])
    # The try waiting now (an earlier one may have failed on its own and been retried).
    chaos.kill_task(chaos.wait_task(RECONCILE, first, "running", task_id="reconcile"))
    path = f"/dags/{RECONCILE}/dagRuns/{first}/taskInstances/reconcile"
    chaos.airflow._ok(chaos.airflow.api("PATCH", path, json={"new_state": "failed"}))
    assert chaos.finished_run(RECONCILE, first)["state"] == "failed"
    assert all(asset_events(chaos, uris["hubspot"], j) == [] for j in jobs["hubspot"])

    second = reconcile_now(chaos)
    assert chaos.finished_run(RECONCILE, second)["state"] == "success"
    for key, ids in jobs.items():
        for job_id in ids:
            [event] = asset_events(chaos, uris[key], job_id)
            assert event["extra"]["origin"] == "airbyte_reconciled"
    # Airflow 3.3.0 may fold events created together into one run of the transform.
    for key, ids in jobs.items():
        ran = lambda key=key, ids=ids: any(transform_runs(chaos, key, ids).values())  # noqa: E731
        wait_until(ran, f"a run of {downstream_dag(key)}")
        assert all(len(runs) <= 1 for runs in transform_runs(chaos, key, ids).values())
