"""The typed results: which statuses end a job, which jobs move data, the job a lost trigger
started, and how a job and a contract breach are described on one line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from plugins.airbyte_client.models import (
    TERMINAL_STATUSES,
    AirbyteJob,
    JobStatus,
    JobType,
    StreamStats,
    describe_validation_error,
    running_job,
)

CONNECTION_ID = "2a6f1c2e-8b1d-4c3a-9f0e-1d2c3b4a5f60"
NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def job(job_id: int, status: str, created_at: datetime | None = None, **fields) -> AirbyteJob:
    return AirbyteJob(
        job_id=job_id,
        connection_id=CONNECTION_ID,
        job_type=fields.pop("job_type", JobType.SYNC),
        status=JobStatus(status),
        created_at=created_at,
        **fields,
    )


def test_only_failed_succeeded_and_cancelled_are_terminal():
    assert {s for s in JobStatus if s.is_terminal} == {"failed", "succeeded", "cancelled"}
    assert frozenset(s for s in JobStatus if s.is_terminal) == TERMINAL_STATUSES
    # An incomplete attempt is retried by Airbyte: the job is not over.
    assert not JobStatus.INCOMPLETE.is_terminal
    assert job(1, "incomplete").is_terminal is False
    assert job(1, "cancelled").is_terminal is True


def test_only_pending_and_queued_wait_for_capacity():
    assert {s for s in JobStatus if s.is_waiting_for_capacity} == {"pending", "queued"}


def test_sync_and_refresh_move_data_reset_and_clear_do_not():
    assert {t for t in JobType if t.moves_data} == {JobType.SYNC, JobType.REFRESH}
    assert not JobType.RESET.moves_data
    assert not JobType.CLEAR.moves_data


def test_running_job_is_the_first_job_not_ended():
    jobs = [job(3, "succeeded", NOW), job(2, "running", NOW), job(1, "pending", NOW)]
    assert running_job(jobs).job_id == 2
    assert running_job([job(1, "incomplete")]).job_id == 1


def test_no_running_job_without_a_window():
    assert running_job([job(2, "succeeded", NOW), job(1, "failed", NOW)]) is None
    assert running_job([]) is None
    assert running_job(iter([])) is None


def test_created_since_window_finds_a_job_that_already_ended():
    """The trigger's answer was lost and the job it started ran to the end meanwhile."""
    since = NOW.timestamp()
    ended = job(5, "succeeded", NOW + timedelta(seconds=3))
    older = job(4, "succeeded", NOW - timedelta(seconds=30))
    assert running_job([ended, older], created_since=since) is ended
    assert running_job([older], created_since=since) is None
    # The API gives whole seconds: a job of the trigger's own second counts.
    assert running_job([job(6, "failed", NOW)], created_since=since + 0.7).job_id == 6
    # A job with no creation time can not be placed in the window.
    assert running_job([job(7, "succeeded")], created_since=since) is None


def test_negative_figures_are_refused():
    with pytest.raises(ValidationError):
        job(1, "succeeded", records=-5)
    with pytest.raises(ValidationError):
        job(1, "succeeded", bytes=-1)
    with pytest.raises(ValidationError):
        StreamStats(name="charges", records=-1)


def test_unknown_status_is_refused():
    with pytest.raises(ValidationError):
        AirbyteJob(job_id=1, connection_id=CONNECTION_ID, job_type="sync", status="exploded")


def test_summary_is_one_line_with_every_figure():
    finished = job(12, "succeeded", records=150, bytes=20480, duration_seconds=31.04)
    assert finished.summary() == (
        f"job_id=12 connection_id={CONNECTION_ID} type=sync status=succeeded "
        "records=150 bytes=20480 duration=31.0s"
    )


def test_summary_of_a_job_without_duration():
    summary = job(3, "pending", job_type=JobType.RESET).summary()
    assert "type=reset status=pending" in summary
    assert summary.endswith("records=0 bytes=0 duration=?")


def test_describe_validation_error_names_the_field_and_problem():
    with pytest.raises(ValidationError) as err:
        job(1, "succeeded", records=-5)
    text = describe_validation_error(err.value)
    assert text.startswith("records: ")
    assert "greater than or equal to 0" in text
    assert "-5" not in text  # inputs only when asked: they may be large or sensitive
    assert describe_validation_error(err.value, with_input=True).startswith("records=-5: ")


def test_describe_validation_error_joins_nested_paths_and_caps_at_five():
    with pytest.raises(ValidationError) as err:
        AirbyteJob.model_validate(
            {
                "job_id": "x",
                "connection_id": 1,
                "job_type": "nope",
                "status": "nope",
                "records": -1,
                "bytes": -1,
                "streams": [{"name": "a", "records": -1}],
            }
        )
    text = describe_validation_error(err.value)
    assert len(err.value.errors()) > 5
    assert text.count("; ") == 4  # five problems at most
    assert text.split("; ")[0].startswith("job_id: ")


def test_describe_validation_error_of_a_body_that_is_not_an_object():
    with pytest.raises(ValidationError) as err:
        AirbyteJob.model_validate(["not", "an", "object"])
    assert describe_validation_error(err.value, with_input=True).startswith("<body>=['not'")


def test_streams_path_is_dotted():
    with pytest.raises(ValidationError) as err:
        job(1, "succeeded", streams=[{"name": "a"}, {"name": "b", "records": -1}])
    assert describe_validation_error(err.value).startswith("streams.1.records: ")
