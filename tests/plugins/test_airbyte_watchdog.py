"""AirbyteSyncWatchdogOperator's decisions against the stand-in, one per situation.

The end-to-end cases (notification arrived, notification lost, job failed) run in a real
Airflow in tests/include/receiver/test_zero_poll.py; here each branch is driven directly, with the
asset events the task would read given as a list.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime
from types import SimpleNamespace

import pytest
from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException, TaskDeferred

from dev.airbyte_standin.seed import CONNECTIONS_BY_ID, STRIPE_CONNECTION_ID
from dev.processes import wait_until
from include.assets import connection_asset, sync_outlets
from include.connections import load_connections
from plugins.airbyte_client.errors import AirbyteJobTimeoutError
from plugins.airbyte_hook import AirbyteHook
from plugins.airbyte_watchdog import AirbyteSyncWatchdogOperator

STRIPE = load_connections().entry("stripe")
ASSET = connection_asset(STRIPE)


class Events(list):
    """What ``context["inlet_events"][asset]`` gives: a sequence with query methods."""

    def __init__(self, extras, *, broken: bool = False) -> None:
        super().__init__(SimpleNamespace(extra=e) for e in extras)
        self.broken = broken

    def after(self, _):
        return self._checked()

    def ascending(self, _=True):
        return self._checked()

    def limit(self, _):
        return self

    def _checked(self):
        if self.broken:
            raise RuntimeError("API server answered 500")
        return self


class TaskInstance:
    def __init__(self, started: dict) -> None:
        self.started = started

    def xcom_pull(self, task_ids: str):
        assert task_ids == "start_sync"
        return self.started


def watchdog(**kwargs) -> AirbyteSyncWatchdogOperator:
    return AirbyteSyncWatchdogOperator(
        task_id="watchdog",
        sync_task_id="start_sync",
        announced_by=ASSET,
        outlets=sync_outlets(STRIPE),
        grace_seconds=60,
        fallback_after_seconds=600,
        **kwargs,
    )


class OutletEvents:
    """``context["outlet_events"][outlet]``: an ``extra`` to fill, or (alias) events added."""

    def __init__(self) -> None:
        self.extra: dict = {}
        self.added: list[tuple[str, dict]] = []

    def add(self, asset, extra: dict) -> None:
        self.added.append((asset.uri, extra))


def context_for(job: dict, extras=(), *, broken: bool = False) -> dict:
    return {
        "ti": TaskInstance(job),
        "inlet_events": {ASSET: Events(extras, broken=broken)},
        "outlet_events": defaultdict(OutletEvents),
    }


def start_job(standin, behaviour: str | None = None) -> dict:
    if behaviour:
        standin.set_job_behaviour(behaviour, STRIPE_CONNECTION_ID)
    return AirbyteHook().submit_job(STRIPE_CONNECTION_ID).model_dump(mode="json")


def wake_time(deferred: TaskDeferred) -> float:
    assert isinstance(deferred.trigger, DateTimeTrigger)
    return deferred.trigger.moment.timestamp()


def test_first_look_waits_for_the_usual_sync_time_from_the_asset_history(airbyte_conn):
    job = start_job(airbyte_conn)
    history = [{"duration_seconds": d} for d in (100, 120, 300)]
    with pytest.raises(TaskDeferred) as deferred:
        watchdog().execute(context_for(job, history))
    began = datetime.fromisoformat(job["created_at"]).timestamp()
    assert wake_time(deferred.value) == pytest.approx(began + 1.5 * 120 + 60, abs=1)
    assert deferred.value.kwargs == {"job_id": job["job_id"], "began": began}


def test_without_history_the_first_look_is_fallback_after_seconds(airbyte_conn):
    job = start_job(airbyte_conn)
    with pytest.raises(TaskDeferred) as deferred:
        watchdog().execute(context_for(job, broken=True))
    began = datetime.fromisoformat(job["created_at"]).timestamp()
    assert wake_time(deferred.value) == pytest.approx(began + 600, abs=1)


def test_an_event_naming_the_job_means_the_notification_arrived(airbyte_conn):
    job = start_job(airbyte_conn)
    served = len(airbyte_conn.requests())
    context = context_for(
        job, [{"airbyte_job_id": job["job_id"] - 1}, {"airbyte_job_id": job["job_id"]}]
    )
    with pytest.raises(AirflowSkipException, match="notification"):
        watchdog().check(context, job_id=job["job_id"], began=time.time())
    assert len(airbyte_conn.requests()) == served  # Airbyte was not asked


def test_a_lost_notification_of_a_succeeded_sync_is_emitted_by_the_watchdog(airbyte_conn):
    job = start_job(airbyte_conn)
    wait_until(lambda: AirbyteHook().get_job(job["job_id"]).is_terminal, timeout=10)
    context = context_for(job, [{"airbyte_job_id": job["job_id"] - 1}])
    result = watchdog().check(context, job_id=job["job_id"], began=time.time())
    assert result["status"] == "succeeded"
    connection, tables = (context["outlet_events"][outlet] for outlet in sync_outlets(STRIPE))
    assert connection.extra["airbyte_job_id"] == job["job_id"]
    assert connection.extra["origin"] == "watchdog"
    assert connection.extra["records"] == result["records"] > 0
    assert connection.extra["duration_seconds"] == result["duration_seconds"]
    # The tables, named as the sync task's lineage names them, through the alias.
    tables_synced = [uri.rsplit("/", 1)[1] for uri, _ in tables.added]
    assert tables_synced == list(CONNECTIONS_BY_ID[STRIPE_CONNECTION_ID].table_names)
    assert {extra["airbyte_job_id"] for _, extra in tables.added} == {job["job_id"]}


@pytest.mark.parametrize("behaviour", ["fail", "cancel"])
def test_a_failed_or_cancelled_job_fails_without_retry(airbyte_conn, behaviour):
    job = start_job(airbyte_conn, "fail" if behaviour == "fail" else "stuck_running")
    if behaviour == "cancel":
        AirbyteHook().cancel_job(job["job_id"])
    wait_until(lambda: AirbyteHook().get_job(job["job_id"]).is_terminal, timeout=10)
    with pytest.raises(AirflowFailException, match=str(job["job_id"])):
        watchdog().check(context_for(job), job_id=job["job_id"], began=time.time())


def test_a_running_job_is_looked_at_again_after_the_quiet_interval(airbyte_conn):
    job = start_job(airbyte_conn, "stuck_running")
    try:
        with pytest.raises(TaskDeferred) as deferred:
            watchdog().check(context_for(job), job_id=job["job_id"], began=time.time())
        quiet = AirbyteHook().settings.quiet_poll_interval
        assert wake_time(deferred.value) == pytest.approx(time.time() + quiet, abs=2)
    finally:
        AirbyteHook().cancel_job(job["job_id"])


def test_a_job_running_past_the_timeout_fails_the_task(airbyte_conn):
    job = start_job(airbyte_conn, "stuck_running")
    try:
        with pytest.raises(AirbyteJobTimeoutError):
            watchdog(timeout_minutes=1).check(
                context_for(job), job_id=job["job_id"], began=time.time() - 120
            )
    finally:
        AirbyteHook().cancel_job(job["job_id"])


def test_unreadable_asset_events_are_read_again_soon_without_asking_airbyte(airbyte_conn):
    job = start_job(airbyte_conn)
    served = len(airbyte_conn.requests())
    with pytest.raises(TaskDeferred) as deferred:
        watchdog().check(context_for(job, broken=True), job_id=job["job_id"], began=time.time())
    assert wake_time(deferred.value) == pytest.approx(time.time() + 30, abs=2)
    assert len(airbyte_conn.requests()) == served
