"""An error's class, message and attributes survive the trigger boundary and a new message."""

from __future__ import annotations

import json

import pytest
from airflow.sdk.exceptions import AirflowFailException

from plugins.airbyte_client.errors import (
    TRANSIENT_ERRORS,
    AirbyteApiError,
    AirbyteAuthError,
    AirbyteConfigError,
    AirbyteConflictError,
    AirbyteError,
    AirbyteJobFailedError,
    AirbyteNotFoundError,
    AirbytePermissionError,
    AirbyteRequestError,
    AirbyteResponseError,
    AirbyteTransientApiError,
    AirbyteUnreachableError,
    error_from_event,
)
from plugins.airbyte_client.models import AirbyteJob, JobStatus, JobType

URL = "http://airbyte-server:8000/api/v1"


def through_trigger(error: AirbyteError) -> AirbyteError:
    """What the operator gets back: the event goes through JSON like a real trigger event."""
    return error_from_event(json.loads(json.dumps({"status": "error", **error.to_event()})))


@pytest.mark.parametrize(
    "cls",
    [
        AirbyteAuthError,
        AirbytePermissionError,
        AirbyteNotFoundError,
        AirbyteRequestError,
        AirbyteConflictError,
        AirbyteTransientApiError,
        AirbyteResponseError,
        AirbyteApiError,
    ],
)
def test_api_errors_keep_class_message_and_attributes(cls):
    error = cls("Airbyte answered 401 to POST /jobs/get.", status_code=401, endpoint="POST /jobs")
    restored = through_trigger(error)
    assert type(restored) is cls
    assert str(restored) == str(error)
    assert (restored.status_code, restored.endpoint) == (401, "POST /jobs")


def test_fail_exceptions_still_fail_without_retries_after_the_trip():
    restored = through_trigger(AirbyteAuthError("bad credentials", status_code=401))
    assert isinstance(restored, AirflowFailException)
    assert isinstance(restored, AirbyteError)
    # A transient error must not turn into one that skips the task's retries.
    transient = through_trigger(AirbyteTransientApiError("503", status_code=503))
    assert not isinstance(transient, AirflowFailException)
    assert isinstance(transient, TRANSIENT_ERRORS)


def test_unreachable_error_keeps_its_url_without_rerunning_its_constructor():
    error = AirbyteUnreachableError(URL, "Connection refused")
    restored = through_trigger(error)
    assert type(restored) is AirbyteUnreachableError
    assert restored.url == URL
    assert str(restored) == str(error)  # not wrapped in a second "Connection refused ..."
    assert str(restored).count("Connection refused or timed out") == 1


def test_config_error_round_trips():
    restored = through_trigger(AirbyteConfigError("set the host"))
    assert type(restored) is AirbyteConfigError
    assert str(restored) == "set the host"


@pytest.mark.parametrize(
    "error",
    [AirbyteConfigError("set the host"), AirbyteUnreachableError(URL, "Connection refused")],
    ids=["config", "unreachable"],
)
def test_error_without_an_http_status_does_not_claim_one(error):
    assert "status_code" not in error.to_event()
    assert "status_code" not in through_trigger(error).__dict__


@pytest.mark.parametrize("name", ["SomethingNew", None, "ValueError", "AirflowFailException"])
def test_unknown_class_name_falls_back_to_the_base_error(name):
    event = {"error": name, "message": "odd", "status_code": 500}
    restored = error_from_event(event)
    assert type(restored) is AirbyteError
    assert str(restored) == "odd"
    assert restored.status_code == 500


def test_event_without_a_message_still_says_something():
    restored = error_from_event({"error": "AirbyteNotFoundError", "endpoint": "GET /jobs/1"})
    assert type(restored) is AirbyteNotFoundError
    assert "GET /jobs/1" in str(restored)


def test_with_message_keeps_class_and_attributes():
    error = AirbytePermissionError("403 to POST /jobs", status_code=403, endpoint="POST /jobs")
    error.extra_note = "kept too"
    copy = error.with_message("403 to POST /jobs; job 7 is still running")
    assert type(copy) is AirbytePermissionError
    assert str(copy) == "403 to POST /jobs; job 7 is still running"
    assert (copy.status_code, copy.endpoint, copy.extra_note) == (403, "POST /jobs", "kept too")
    assert str(error) == "403 to POST /jobs"  # the original is unchanged


def test_with_message_keeps_the_job_of_a_job_error():
    job = AirbyteJob(job_id=7, connection_id="c", job_type=JobType.SYNC, status=JobStatus.FAILED)
    error = AirbyteJobFailedError("Airbyte job 7 failed", job)
    copy = error.with_message("Airbyte job 7 failed. It was cancelled.")
    assert type(copy) is AirbyteJobFailedError
    assert copy.job is job
    assert copy.args == ("Airbyte job 7 failed. It was cancelled.",)
