"""CeleryExecutor, as deployed: a real Airflow with a Redis broker and a Celery worker.

The session's Celery Airflow (``tests/airflow_fixtures.py``) runs the event-driven DAG to
success through the worker, with the Celery results in the Airflow metadata database; and a
worker SIGKILLed in the middle of a sync (its whole process group, as when its pod dies) costs
neither the run nor a second Airbyte job: the scheduler notices the dead task, the retry runs
on the restarted worker and ends on the same job.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from dev.airbyte_standin.seed import HUBSPOT_CONNECTION_ID, STRIPE_CONNECTION_ID
from dev.airbyte_standin.testing import wait_until
from dev.celery_executor import run_redis
from tests.airflow_fixtures import EVENT_DAG, TIMEOUT, SharedAirflow, shared_airflow

SYNC_TASK = "run_airbyte_job"
WORKER = "celery-worker"
TERMINAL_JOB_STATES = {"succeeded", "failed", "cancelled"}


@pytest.fixture(scope="module")
def celery_airflow(request: pytest.FixtureRequest) -> SharedAirflow:
    shared = shared_airflow(request.config, "celery")
    shared.standin.reset()
    return shared


def test_redis_broker_starts_on_loopback_and_stops(tmp_path: Path):
    with run_redis(tmp_path) as redis:
        assert redis.ping()
        assert redis.url == f"redis://127.0.0.1:{redis.port}/0"
        assert redis.settings() == {"AIRFLOW__CELERY__BROKER_URL": redis.url}
    assert not redis.ping()
    assert redis.process.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(redis.process.pid, 0)


def celery_results(airflow_home: Path) -> list[str]:
    """States of the Celery task results in the Airflow metadata database."""
    with sqlite3.connect(airflow_home / "airflow.db") as db:
        return [status for (status,) in db.execute("SELECT status FROM celery_taskmeta")]


def jobs_of(shared: SharedAirflow, connection_id: str) -> list[dict]:
    return [job for job in shared.standin.jobs() if job["connection_id"] == connection_id]


def sync_task(shared: SharedAirflow, run_id: str) -> dict:
    (task,) = (
        t for t in shared.airflow.task_instances(EVENT_DAG, run_id) if t["task_id"] == SYNC_TASK
    )
    return task


def returned_job(shared: SharedAirflow, run_id: str) -> dict:
    path = f"/dags/{EVENT_DAG}/dagRuns/{run_id}/taskInstances/{SYNC_TASK}/xcomEntries/return_value"
    response = shared.airflow.api("GET", path, params={"deserialize": True})
    response.raise_for_status()
    return response.json()["value"]


def test_a_dag_runs_to_success_through_the_celery_worker(celery_airflow: SharedAirflow):
    before = celery_results(celery_airflow.home)
    run = celery_airflow.airflow.trigger(EVENT_DAG, conf={"connection_id": HUBSPOT_CONNECTION_ID})
    final = celery_airflow.airflow.wait_for_run(EVENT_DAG, run["dag_run_id"], timeout=TIMEOUT)

    tasks = celery_airflow.airflow.task_instances(EVENT_DAG, run["dag_run_id"])
    assert final["state"] == "success", {t["task_id"]: t["state"] for t in tasks}
    assert {t["state"] for t in tasks} == {"success"}
    # Each task went through Celery, which records its result in the metadata database once
    # the task process has ended (after Airflow has the task's state).
    wait_until(
        lambda: (
            celery_results(celery_airflow.home).count("SUCCESS")
            == before.count("SUCCESS") + len(tasks)
        ),
        timeout=60,
        interval=0.5,
        what="a Celery SUCCESS result per task",
    )
    (job,) = jobs_of(celery_airflow, HUBSPOT_CONNECTION_ID)
    assert job["status"] == "succeeded"
    assert returned_job(celery_airflow, run["dag_run_id"])["job_id"] == job["id"]


def test_a_worker_killed_mid_sync_costs_neither_the_run_nor_a_second_job(
    celery_airflow: SharedAirflow,
):
    airflow, standin = celery_airflow.airflow, celery_airflow.standin
    # A long sync: its first attempt ends `incomplete`, the second succeeds.
    standin.set_job_behaviour("incomplete_then_succeed", connection_id=STRIPE_CONNECTION_ID)
    run = airflow.trigger(EVENT_DAG, conf={"connection_id": STRIPE_CONNECTION_ID})
    run_id = run["dag_run_id"]
    (job,) = wait_until(
        lambda: jobs_of(celery_airflow, STRIPE_CONNECTION_ID), timeout=TIMEOUT, what="the sync"
    )
    task = sync_task(celery_airflow, run_id)
    assert (task["state"], task["try_number"]) == ("running", 1)

    airflow.kill_component(WORKER)
    assert jobs_of(celery_airflow, STRIPE_CONNECTION_ID)[0]["status"] not in TERMINAL_JOB_STATES
    airflow.start_component(WORKER)
    final = airflow.wait_for_run(EVENT_DAG, run_id, timeout=TIMEOUT)

    task = sync_task(celery_airflow, run_id)
    assert final["state"] == "success", task
    assert (task["state"], task["try_number"]) == ("success", 2)
    jobs = jobs_of(celery_airflow, STRIPE_CONNECTION_ID)
    assert [(j["id"], j["status"]) for j in jobs] == [(job["id"], "succeeded")]
    assert returned_job(celery_airflow, run_id)["job_id"] == job["id"]
    assert all(j["status"] in TERMINAL_JOB_STATES for j in standin.jobs())
