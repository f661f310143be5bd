"""AirbyteSyncOperator against the stand-in: blocking and deferrable waits, kill, retry, timeout."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred
from airflow.sdk.execution_time.context import OutletEventAccessors

from dev.airbyte_standin.seed import STRIPE_CONNECTION_ID
from dev.processes import wait_until
from plugins.airbyte_client.errors import (
    AirbyteAuthError,
    AirbyteConfigError,
    AirbyteJobCancelledError,
    AirbyteJobFailedError,
    AirbyteJobStuckPendingError,
)
from plugins.airbyte_hook import AirbyteHook
from plugins.airbyte_operator import AirbyteSyncOperator
from plugins.airbyte_trigger import AirbyteJobTrigger
from tests.conftest import (
    MemoryTaskStateStore,
    RecordingTaskInstance,
    airbyte_conn_env,
    resume_deferred,
    trigger_event,
)


@pytest.fixture
def context() -> dict:
    return {"ti": RecordingTaskInstance(), "task_state_store": MemoryTaskStateStore()}


@pytest.fixture
def standin(airbyte_conn):
    return airbyte_conn


def operator(**kwargs) -> AirbyteSyncOperator:
    return AirbyteSyncOperator(task_id="sync", **({"connection_id": STRIPE_CONNECTION_ID} | kwargs))


def sync_jobs(standin) -> list[dict]:
    return [j for j in standin.jobs() if j["job_type"] == "sync"]


def resume(op: AirbyteSyncOperator, context: dict, deferred: TaskDeferred):
    """Do what the triggerer and the resumed worker do with a deferral."""
    assert isinstance(deferred.trigger, AirbyteJobTrigger)
    return resume_deferred(op, context, deferred)


def test_blocking_wait_returns_the_job_and_pushes_its_id(standin, context):
    result = operator().execute(context)
    assert result["status"] == "succeeded"
    assert result["records"] > 0
    assert context["ti"].pushed["airbyte_job_id"] == result["job_id"]


def test_deferrable_hands_the_wait_to_the_trigger(standin, context):
    op = operator(deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    assert [j["status"] for j in sync_jobs(standin)] in (["pending"], ["running"])
    result = resume(op, context, deferred.value)
    assert result["status"] == "succeeded"
    assert len(sync_jobs(standin)) == 1


def test_deferrable_failed_job_raises_with_the_reason(standin, context):
    standin.set_job_behaviour("fail", failure_reason="quota exceeded")
    op = operator(deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    with pytest.raises(AirbyteJobFailedError, match="quota exceeded"):
        resume(op, context, deferred.value)


def test_deferrable_timeout_cancels_like_the_blocking_wait(standin, context):
    standin.set_job_behaviour("stuck_pending")
    op = operator(deferrable=True, timeout_minutes=0.005, cancel_on_timeout=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    with pytest.raises(AirbyteJobStuckPendingError, match="cancelled"):
        resume(op, context, deferred.value)
    assert [j["status"] for j in sync_jobs(standin)] == ["cancelled"]


def test_blocking_timeout_cancels_the_job(standin, context):
    standin.set_job_behaviour("stuck_pending")
    with pytest.raises(AirbyteJobStuckPendingError):
        operator(timeout_minutes=0.005, cancel_on_timeout=True).execute(context)
    assert [j["status"] for j in sync_jobs(standin)] == ["cancelled"]


def test_killed_task_cancels_its_airbyte_job(standin, context):
    standin.set_job_behaviour("stuck_running")
    op = operator()
    outcome: dict = {}

    def run() -> None:
        try:
            op.execute(context)
        except Exception as exc:  # reported below
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    # The operator knows its job once it polls it (the stand-in lists the job a moment before
    # the trigger's answer reaches the operator).
    wait_until(
        lambda: any(r["path"].startswith("/api/v1/jobs/get") for r in standin.requests()),
        what="the wait to start",
    )
    op.on_kill()  # what Airflow calls when the task is killed or marked failed
    worker.join(timeout=30)
    assert isinstance(outcome.get("error"), AirbyteJobCancelledError)
    assert [j["status"] for j in sync_jobs(standin)] == ["cancelled"]


def test_retry_attaches_to_the_job_its_first_try_started(standin, context):
    standin.set_job_behaviour("stuck_running")
    first = operator(wait=False).execute(context)  # the first try dies after starting the sync
    retry = operator(wait=False).execute(context)
    assert retry["job_id"] == first["job_id"]
    assert len(sync_jobs(standin)) == 1
    AirbyteHook().cancel_job(first["job_id"])


def test_wait_false_returns_the_started_job(standin, context):
    result = operator(wait="False").execute(context)  # as a template renders it
    assert result["status"] in ("pending", "running")
    # Zero-poll mode's budget: the start only; lineage waits for the job's end.
    assert [r["path"] for r in standin.requests()] == ["/api/v1/connections/sync"]


def test_missing_variable_names_it_and_calls_nothing(standin, context):
    op = AirbyteSyncOperator(
        task_id="sync", connection_id_variable=("AIRBYTE_NEW_NAME", "AIRBYTE_OLD_NAME")
    )
    with pytest.raises(AirbyteConfigError) as err:
        op.execute(context)
    assert "AIRBYTE_NEW_NAME or AIRBYTE_OLD_NAME" in str(err.value)
    assert "airflow variables set AIRBYTE_NEW_NAME" in str(err.value)
    assert standin.requests() == []


def test_connection_id_from_a_variable(standin, context, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_AIRBYTE_OLD_NAME", STRIPE_CONNECTION_ID)
    op = AirbyteSyncOperator(
        task_id="sync", connection_id_variable=("AIRBYTE_NEW_NAME", "AIRBYTE_OLD_NAME")
    )
    assert op.execute(context)["connection_id"] == STRIPE_CONNECTION_ID


def test_unknown_job_type(standin, context):
    with pytest.raises(AirbyteConfigError, match="not one of sync, reset, clear"):
        operator(job_type="refresh-all").execute(context)


def test_needs_exactly_one_way_to_name_the_connection():
    with pytest.raises(ValueError, match="exactly one"):
        AirbyteSyncOperator(task_id="sync")


def test_deferred_wait_is_quiet_until_the_usual_end(tmp_path, context, monkeypatch):
    """With history, the trigger is told when the job is expected to be nearly done."""
    from dev.airbyte_standin.serving import quick_config, run_standin

    with run_standin(quick_config(tmp_path, auth="basic", running_seconds=2.2)) as slow:
        airbyte_conn_env(monkeypatch, slow.url, login="airbyte", password="password")
        operator().execute(context)  # the history: one ~2 s sync
        op = operator(deferrable=True)
        with pytest.raises(TaskDeferred) as deferred:
            op.execute(context)
        assert deferred.value.trigger.quiet_until > time.time()
        assert resume(op, context, deferred.value)["status"] == "succeeded"


def test_history_can_be_turned_off(standin, context):
    op = operator(wait=False, poll_from_history=False)
    op.execute(context)
    assert op._quiet_until(op._job) is None
    AirbyteHook().cancel_job(op._job.job_id)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timeout_minutes", "abc", "timeout_minutes 'abc'"),
        ("timeout_minutes", "", "timeout_minutes ''"),
        ("timeout_minutes", "0", "timeout_minutes '0'"),
        ("timeout_minutes", "-5", "timeout_minutes '-5'"),
        ("wait", "sometimes", "wait 'sometimes' is not true or false"),
        ("job_type", "drop", "job_type 'drop' is not one of sync, reset, clear, refresh"),
        ("connection_id", "stripe", "'stripe' is not an Airbyte connection id"),
    ],
)
def test_rendered_arguments_are_checked_before_any_api_call(
    standin, context, field, value, message
):
    op = operator(**{field: "{{ params.value }}"})
    op.render_template_fields({**context, "params": {"value": value}})
    assert getattr(op, field) == value  # rendered
    with pytest.raises(AirbyteConfigError, match=message) as err:
        op.execute(context)
    assert isinstance(err.value, AirflowFailException)  # no retries spent on it
    assert standin.requests() == []  # nothing started on Airbyte


def test_trigger_errors_keep_their_class_in_execute_complete(standin, context, monkeypatch):
    """A 401 in the triggerer fails the task without retries, as it does in a worker, and the
    job the task started is cancelled."""
    standin.set_job_behaviour("stuck_running")
    op = operator(deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    airbyte_conn_env(monkeypatch, standin.url, login="airbyte", password="rotated-away")
    event = trigger_event(deferred.value.trigger)
    assert event["error"] == "AirbyteAuthError"
    airbyte_conn_env(monkeypatch, standin.url, login="airbyte", password="password")
    with pytest.raises(AirbyteAuthError, match="It was cancelled") as err:
        AirbyteSyncOperator(
            task_id="sync", connection_id=STRIPE_CONNECTION_ID, deferrable=True
        ).execute_complete(context, event)
    assert isinstance(err.value, AirflowFailException)
    assert [j["status"] for j in sync_jobs(standin)] == ["cancelled"]


def test_error_event_round_trip_keeps_class_and_attributes():
    from plugins.airbyte_client.errors import AirbyteNotFoundError, error_from_event

    error = AirbyteNotFoundError("no such job", status_code=404, endpoint="POST /jobs/get")
    restored = error_from_event(json.loads(json.dumps(error.to_event())))
    assert type(restored) is AirbyteNotFoundError
    assert (str(restored), restored.status_code, restored.endpoint) == (
        "no such job",
        404,
        "POST /jobs/get",
    )
    assert type(error_from_event({"error": "os.system", "message": "x"})).__name__ == (
        "AirbyteError"
    )


# --- Airbyte's own job types: per-stream clear and reset, refresh ------------------------


def run_task(op: AirbyteSyncOperator, context: dict, deferrable: bool) -> dict:
    if not deferrable:
        return op.execute(context)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    return resume(op, context, deferred.value)


def table_rows(standin) -> dict[str, list[str]]:
    """The Stripe tables' ``_airbyte_raw_id`` values (which source rows each holds)."""
    with sqlite3.connect(standin.warehouse_url.removeprefix("sqlite:///")) as db:
        return {
            t: [r[0] for r in db.execute(f"SELECT _airbyte_raw_id FROM stripe_{t}")]
            for t in ("customers", "charges", "invoices")
        }


def with_lineage(context: dict) -> dict:
    return context | {"outlet_events": OutletEventAccessors()}


@pytest.mark.parametrize("deferrable", [False, True], ids=["blocking", "deferred"])
def test_a_per_stream_clear_empties_those_tables_only(standin, context, deferrable):
    operator().execute(context | {"task_state_store": MemoryTaskStateStore()})
    before = table_rows(standin)
    op = operator(job_type="clear", streams=["charges"], deferrable=deferrable)
    result = run_task(op, with_lineage(context), deferrable)
    assert (result["job_type"], result["status"]) == ("clear", "succeeded")
    after = table_rows(standin)
    assert after["charges"] == []
    assert after["customers"] == before["customers"]
    assert after["invoices"] == before["invoices"]
    lineage = op.get_openlineage_facets_on_complete(None)
    assert [o.name for o in lineage.outputs] == ["stripe_charges"]
    assert lineage.inputs == []
    assert "lifecycleStateChange" in lineage.outputs[0].facets
    assert [j["job_type"] for j in standin.jobs()] == ["sync", "clear"]


@pytest.mark.parametrize(
    ("mode", "kept"), [("truncate", False), ("merge", True)], ids=["truncate", "merge"]
)
@pytest.mark.parametrize("deferrable", [False, True], ids=["blocking", "deferred"])
def test_a_refresh_syncs_the_streams_from_scratch(standin, context, mode, kept, deferrable):
    operator().execute(context | {"task_state_store": MemoryTaskStateStore()})
    before = table_rows(standin)
    op = operator(job_type="refresh", streams="charges", refresh_mode=mode, deferrable=deferrable)
    result = run_task(op, with_lineage(context), deferrable)
    assert (result["job_type"], result["status"]) == ("refresh", "succeeded")
    after = table_rows(standin)
    rows = len(before["charges"])
    # every source row again from the first (the cursor was reset), plus the new ones, each
    # once (merge: in place of its old row; truncate: into the emptied table)
    batch = standin.config.rows_per_stream
    assert len(after["charges"]) == len(set(after["charges"])) == rows + batch
    assert after["charges"][:rows] == before["charges"]
    assert after["customers"] == before["customers"]  # not refreshed
    lineage = op.get_openlineage_facets_on_complete(None)
    assert [o.name for o in lineage.outputs] == ["stripe_charges"]
    assert [i.name for i in lineage.inputs] == ["charges"]
    assert ("lifecycleStateChange" in lineage.outputs[0].facets) is not kept


def test_a_retried_refresh_resumes_its_job_instead_of_starting_another(standin, context):
    standin.set_job_behaviour("stuck_running")
    op = operator(job_type="refresh", streams=["charges"], wait=False)
    first = op.execute(context)
    retry = operator(job_type="refresh", streams=["charges"])
    assert retry.is_job_active(retry.get_job_status(first["job_id"], context))
    other = operator(job_type="clear", streams=["charges"])  # another job type: not its job
    assert other.get_job_status(first["job_id"], context) == "not_resumable"
    AirbyteHook().cancel_job(first["job_id"])
    assert [j["job_type"] for j in standin.jobs()] == ["refresh"]


def test_the_public_api_refuses_a_per_stream_job_before_any_call(standin, context, monkeypatch):
    airbyte_conn_env(
        monkeypatch, standin.url, login="airbyte", password="password", api_type="public"
    )
    with pytest.raises(AirbyteConfigError, match="needs the Configuration API"):
        operator(job_type="clear", streams=["charges"]).execute(context)
    assert standin.requests() == []
