"""validate_sync_results: which finished jobs pass, and what reaches XCom."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from include.validation import (
    JOB_ID_KEY,
    STATS_KEY,
    SyncValidationError,
    validate_sync_results,
)
from plugins.airbyte_client.models import AirbyteJob, JobStatus, JobType, StreamStats
from tests.conftest import RecordingTaskInstance

CONNECTION_ID = "2a6f1c2e-8b1d-4c3a-9f0e-1d2c3b4a5f60"


def job(**fields) -> AirbyteJob:
    values = {
        "job_id": 7,
        "connection_id": CONNECTION_ID,
        "job_type": JobType.SYNC,
        "status": JobStatus.SUCCEEDED,
        "records": 150,
        "bytes": 20480,
        "duration_seconds": 31.0,
        "streams": (StreamStats(name="charges", records=100, bytes=15000),),
    }
    return AirbyteJob(**(values | fields))


def test_good_sync_returns_and_pushes_its_stats():
    ti = RecordingTaskInstance()
    stats = validate_sync_results(job(), min_records=100, context={"ti": ti})
    assert stats["records"] == 150
    assert stats["bytes"] == 20480
    assert stats["streams"] == {"charges": {"records": 100, "bytes": 15000}}
    assert ti.pushed == {JOB_ID_KEY: 7, STATS_KEY: stats}


def test_accepts_the_xcom_dict_of_a_job():
    assert validate_sync_results(job().model_dump(mode="json"))["job_id"] == 7


def test_too_few_records():
    with pytest.raises(
        SyncValidationError, match="synced 150 records, fewer than the minimum of 500"
    ):
        validate_sync_results(job(), min_records=500)


def test_zero_records_is_a_clear_failure_unless_allowed():
    with pytest.raises(SyncValidationError, match="synced 0 records"):
        validate_sync_results(job(records=0, bytes=0))
    assert validate_sync_results(job(records=0, bytes=0), allow_zero=True)["records"] == 0


def test_reset_moves_no_records_and_passes():
    assert validate_sync_results(job(job_type=JobType.RESET, records=0))["job_type"] == "reset"


@pytest.mark.parametrize("status", [JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.RUNNING])
def test_job_that_did_not_succeed_is_refused_but_its_stats_still_reach_xcom(status):
    ti = RecordingTaskInstance()
    with pytest.raises(SyncValidationError, match=f"ended {status}"):
        validate_sync_results(job(status=status), context={"ti": ti})
    assert ti.pushed[JOB_ID_KEY] == 7


@pytest.mark.parametrize("field", ["records", "bytes"])
def test_negative_counts_are_refused_without_retries(field):
    with pytest.raises(SyncValidationError, match=rf"{field}=-5: Input should be greater"):
        validate_sync_results(job().model_dump(mode="json") | {field: -5})
    assert issubclass(SyncValidationError, AirflowFailException)


@pytest.mark.parametrize("field", ["records", "bytes", "status", "job_id"])
def test_missing_counts_or_fields_are_refused(field):
    broken = job().model_dump(mode="json")
    del broken[field]
    with pytest.raises(SyncValidationError, match=f"has no {field}: pass the sync task's"):
        validate_sync_results(broken)


def test_malformed_stats_give_a_clear_error_not_a_pydantic_one():
    with pytest.raises(SyncValidationError, match="status='half-done'"):
        validate_sync_results(job().model_dump(mode="json") | {"status": "half-done"})
    with pytest.raises(SyncValidationError, match="got list"):
        validate_sync_results([1, 2, 3])


def test_negative_stream_counts_are_refused():
    broken = job().model_dump(mode="json")
    broken["streams"] = [{"name": "charges", "records": -1, "bytes": 0}]
    with pytest.raises(SyncValidationError, match=r"streams\.0\.records=-1"):
        validate_sync_results(broken)
