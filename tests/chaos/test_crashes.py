"""Processes die mid-sync in a real Airflow; each sync still runs exactly once.

Every scenario ends by checking the run's final state and the stand-in's job list: exactly
one Airbyte job for the task's try chain, and none left running.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.chaos.conftest import Chaos, Sync, wait_until

pytestmark = pytest.mark.timeout(420)


def started(ti: dict) -> float:
    return datetime.fromisoformat(ti["start_date"]).timestamp()


def test_task_killed_after_submit_retry_returns_the_job_that_finished(chaos):
    """The duplicate-after-crash case: the first try dies right after starting its job, the
    job succeeds while the task waits for its retry, and the retry reuses that result."""
    sync = chaos.start_sync("blocking")
    chaos.kill_task(sync.ti)
    chaos.finish_jobs()
    done = chaos.wait_job(sync.job_id, "succeeded")
    chaos.assert_synced_once(sync, tries=2)
    retry = chaos.task(sync.dag_id, sync.run_id)
    assert started(retry) > done["updated_at"], "the retry began before the job ended"


@pytest.mark.parametrize("flavour", ["public", "config"])
def test_task_killed_mid_wait_retry_waits_for_the_same_job(chaos, flavour):
    sync = chaos.start_sync("blocking", flavour)
    chaos.wait_job(sync.job_id, "running")
    chaos.kill_task(sync.ti)
    chaos.wait_task(sync.dag_id, sync.run_id, "running", try_number=2)
    assert chaos.jobs()[0]["status"] == "running"
    chaos.finish_jobs()
    chaos.assert_synced_once(sync, tries=2)


def test_triggerer_killed_mid_wait_a_restarted_one_takes_over(chaos):
    sync = chaos.start_sync("deferred")
    chaos.wait_polled()  # by the trigger: the first triggerer really is waiting on the job
    chaos.airflow.kill_component("triggerer")
    chaos.finish_jobs()  # the job ends while no triggerer watches it
    chaos.wait_job(sync.job_id, "succeeded")
    assert chaos.airflow.restart_dead(log=lambda _: None) == ["triggerer"]
    chaos.assert_synced_once(sync, tries=1)


def test_deferred_task_marked_failed_cancels_its_job(chaos):
    sync = chaos.start_sync("deferred")
    chaos.wait_polled()  # by the trigger: a trigger that never ran has nothing to cancel
    path = f"/dags/{sync.dag_id}/dagRuns/{sync.run_id}/taskInstances/sync"
    chaos.airflow._ok(chaos.airflow.api("PATCH", path, json={"new_state": "failed"}))
    chaos.wait_job(sync.job_id, "cancelled")
    assert chaos.finished_run(sync.dag_id, sync.run_id)["state"] == "failed"
    chaos.assert_one_job("cancelled")


def test_scheduler_restarted_mid_run(chaos):
    sync = chaos.start_sync("deferred")
    chaos.airflow.kill_component("scheduler")
    assert chaos.airflow.restart_dead(log=lambda _: None) == ["scheduler"]
    chaos.finish_jobs()
    chaos.assert_synced_once(sync, tries=1)


@pytest.mark.parametrize("flavour", ["public", "config"])
def test_airbyte_down_longer_than_the_poll_interval_then_back(chaos, flavour):
    sync = chaos.start_sync("deferred", flavour)
    chaos.wait_job(sync.job_id, "running")
    seen = failed_polls(chaos, sync)
    chaos.stop_standin()
    # The trigger keeps polling a server that refuses connections (poll interval <= 2 s).
    wait_until(lambda: failed_polls(chaos, sync) >= seen + 3, "three failed polls while down")
    chaos.start_standin()
    chaos.finish_jobs()
    chaos.assert_synced_once(sync, tries=1)


@pytest.mark.parametrize("chaos_airflow", ["celery"], indirect=True)
def test_celery_worker_killed_mid_sync_retry_ends_on_the_same_job(chaos):
    """A worker pod dies mid-sync (its whole process group SIGKILLed): the scheduler notices
    the dead task, the retry runs on the restarted worker and waits for the same job, and
    Celery records the retry's result in the metadata database."""
    sync = chaos.start_sync("blocking")
    chaos.wait_job(sync.job_id, "running")
    chaos.airflow.kill_component("celery-worker")
    assert chaos.airflow.restart_dead(log=lambda _: None) == ["celery-worker"]
    chaos.wait_task(sync.dag_id, sync.run_id, "running", try_number=2)
    assert chaos.jobs()[0]["status"] == "running"
    chaos.finish_jobs()
    chaos.assert_synced_once(sync, tries=2)
    wait_until(lambda: "SUCCESS" in chaos.celery_results(), "Celery's record of the retry")


def failed_polls(chaos: Chaos, sync: Sync) -> int:
    """Polls the trigger logged as failed, in the logs the triggerer writes for the task."""
    attempt = f"task_id=sync/attempt={sync.ti['try_number']}.log*"
    logs = (chaos.airflow.home / "logs").glob(
        f"dag_id={sync.dag_id}/run_id={sync.run_id}/{attempt}"
    )
    return sum(path.read_text(errors="replace").count("; still waiting") for path in logs)
