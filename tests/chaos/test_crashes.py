"""Processes die mid-sync in a real Airflow; each sync still runs exactly once.

Every scenario ends by checking the run's final state and the stand-in's job list: exactly
one Airbyte job for the task's try chain, and none left running.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.chaos.conftest import Chaos, wait_until

pytestmark = pytest.mark.timeout(420)


def started(ti: dict) -> float:
    return datetime.fromisoformat(ti["start_date"]).timestamp()


def returned(chaos: Chaos, dag_id: str, run_id: str) -> dict:
    """The task's return value (the job it reported), from the REST API."""
    path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/sync/xcomEntries/return_value"
    return chaos.airflow._ok(chaos.airflow.api("GET", path))["value"]


def test_task_killed_after_submit_retry_returns_the_job_that_finished(chaos):
    """The duplicate-after-crash case: the first try dies right after starting its job, the
    job succeeds while the task waits for its retry, and the retry reuses that result."""
    dag_id, run_id = chaos.trigger("blocking")
    first = chaos.wait_task(dag_id, run_id, "running")
    job_id = chaos.wait_stored(dag_id, run_id)
    chaos.kill_task(first)
    chaos.finish_jobs()
    done = chaos.wait_job(job_id, "succeeded")
    assert chaos.finished_run(dag_id, run_id)["state"] == "success"
    retry = chaos.task(dag_id, run_id)
    assert retry["try_number"] == 2
    assert started(retry) > done["updated_at"], "the retry began before the job ended"
    assert returned(chaos, dag_id, run_id)["job_id"] == job_id
    chaos.assert_one_job("succeeded")


def test_task_killed_mid_wait_retry_waits_for_the_same_job(chaos):
    dag_id, run_id = chaos.trigger("blocking")
    first = chaos.wait_task(dag_id, run_id, "running")
    job_id = chaos.wait_stored(dag_id, run_id)
    chaos.wait_job(job_id, "running")
    chaos.kill_task(first)
    chaos.wait_task(dag_id, run_id, "running", try_number=2)
    assert chaos.jobs()[0]["status"] == "running"
    chaos.finish_jobs()
    assert chaos.finished_run(dag_id, run_id)["state"] == "success"
    assert returned(chaos, dag_id, run_id)["job_id"] == job_id
    chaos.assert_one_job("succeeded")


def test_triggerer_killed_mid_wait_a_restarted_one_takes_over(chaos):
    dag_id, run_id = chaos.trigger("deferred")
    chaos.wait_task(dag_id, run_id, "deferred")
    job_id = chaos.wait_stored(dag_id, run_id)
    chaos.airflow.kill_component("triggerer")
    chaos.finish_jobs()  # the job ends while no triggerer watches it
    chaos.wait_job(job_id, "succeeded")
    assert chaos.airflow.restart_dead(log=lambda _: None) == ["triggerer"]
    assert chaos.finished_run(dag_id, run_id)["state"] == "success"
    assert chaos.task(dag_id, run_id)["try_number"] == 1
    chaos.assert_one_job("succeeded")


def test_deferred_task_marked_failed_cancels_its_job(chaos):
    dag_id, run_id = chaos.trigger("deferred")
    chaos.wait_task(dag_id, run_id, "deferred")
    job_id = chaos.wait_stored(dag_id, run_id)
    chaos.wait_polled()  # by the trigger: a trigger that never ran has nothing to cancel
    path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/sync"
    chaos.airflow._ok(chaos.airflow.api("PATCH", path, json={"new_state": "failed"}))
    chaos.wait_job(job_id, "cancelled")
    assert chaos.finished_run(dag_id, run_id)["state"] == "failed"
    chaos.assert_one_job("cancelled")


def test_scheduler_restarted_mid_run(chaos):
    dag_id, run_id = chaos.trigger("deferred")
    chaos.wait_task(dag_id, run_id, "deferred")
    chaos.wait_stored(dag_id, run_id)
    chaos.airflow.kill_component("scheduler")
    assert chaos.airflow.restart_dead(log=lambda _: None) == ["scheduler"]
    chaos.finish_jobs()
    assert chaos.finished_run(dag_id, run_id)["state"] == "success"
    assert chaos.task(dag_id, run_id)["try_number"] == 1
    chaos.assert_one_job("succeeded")


def test_airbyte_down_longer_than_the_poll_interval_then_back(chaos):
    dag_id, run_id = chaos.trigger("deferred")
    ti = chaos.wait_task(dag_id, run_id, "deferred")
    job_id = chaos.wait_stored(dag_id, run_id)
    chaos.wait_job(job_id, "running")
    seen = failed_polls(chaos, dag_id, run_id, ti)
    chaos.stop_standin()
    # The trigger keeps polling a server that refuses connections (poll interval <= 2 s).
    wait_until(
        lambda: failed_polls(chaos, dag_id, run_id, ti) >= seen + 3,
        "three failed polls while Airbyte is down",
    )
    chaos.start_standin()
    chaos.finish_jobs()
    assert chaos.finished_run(dag_id, run_id)["state"] == "success"
    assert chaos.task(dag_id, run_id)["try_number"] == 1
    chaos.assert_one_job("succeeded")


def failed_polls(chaos: Chaos, dag_id: str, run_id: str, ti: dict) -> int:
    """Polls the trigger logged as failed, in the logs the triggerer writes for the task."""
    pattern = f"dag_id={dag_id}/run_id={run_id}/task_id=sync/attempt={ti['try_number']}.log*"
    logs = (chaos.airflow.home / "logs").glob(pattern)
    return sum(path.read_text(errors="replace").count("; still waiting") for path in logs)
