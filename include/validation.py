"""Post-sync checks: did the Airbyte job move the data we expect?

``validate_sync_results`` is the seed's early-warning check: it refuses a job that did not
succeed or moved fewer records than expected, pushes the job's figures to XCom for the
tasks and notifications downstream, and logs a one-line summary.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from airflow.sdk.exceptions import AirflowFailException
from pydantic import ValidationError

from plugins.airbyte_client.contracts import (
    JOB_ID_KEY,
    STATS_KEY,
    SyncStats,
    job_from_dict,
    sync_stats,
)
from plugins.airbyte_client.models import AirbyteJob, JobStatus, describe_validation_error

log = logging.getLogger(__name__)

#: What a job handed over from XCom must carry; a default would hide a broken hand-over.
REQUIRED_FIELDS = ("job_id", "connection_id", "job_type", "status", "records", "bytes")


class SyncValidationError(AirflowFailException):
    """The sync finished but its results are not acceptable; retrying the check will not help."""


def checked_job(job: AirbyteJob | Mapping[str, Any]) -> AirbyteJob:
    """The job as a model; ``SyncValidationError`` when a field is missing, negative or not
    what the contract says (never a raw pydantic error, which would spend retries)."""
    if isinstance(job, AirbyteJob):
        return job
    if not isinstance(job, Mapping):
        raise SyncValidationError(
            f"Expected the Airbyte job the sync task returned (a dict), got {type(job).__name__}."
            " Pass the operator's output, e.g. validate(sync.output)."
        )
    missing = [name for name in REQUIRED_FIELDS if job.get(name) is None]
    if missing:
        raise SyncValidationError(
            f"The Airbyte job to validate has no {', '.join(missing)}: pass the sync task's "
            "return value (its XComArg, e.g. validate(sync.output)), not a hand-built dict."
        )
    try:
        return job_from_dict(job)
    except ValidationError as exc:
        problems = describe_validation_error(exc, with_input=True)
        raise SyncValidationError(
            f"The Airbyte job to validate is malformed: {problems}."
        ) from None


def publish_job_stats(
    job: AirbyteJob | Mapping[str, Any],
    context: Mapping[str, Any] | None = None,
    **extra: Any,
) -> SyncStats:
    """The job's stats, pushed to XCom (``JOB_ID_KEY``, ``STATS_KEY``) when a task
    context is given; for jobs that are reported without being validated."""
    stats = sync_stats(checked_job(job), **extra)
    if context is not None and "ti" in context:
        context["ti"].xcom_push(key=JOB_ID_KEY, value=stats["job_id"])
        context["ti"].xcom_push(key=STATS_KEY, value=stats)
    return stats


def validate_sync_results(
    job: AirbyteJob | Mapping[str, Any],
    *,
    min_records: int = 1,
    allow_zero: bool = False,
    context: Mapping[str, Any] | None = None,
) -> SyncStats:
    """Check a finished Airbyte job and return its stats (also pushed to XCom when given a context).

    :param job: the job as returned by the hook or an operator (model or its XCom dict).
    :param min_records: fewest records the sync must have committed.
    :param allow_zero: accept a sync that moved nothing (e.g. an incremental sync with no
        new data); reset and clear jobs always may.
    :param context: the Airflow task context; its ``ti`` receives the XCom pushes
        ``airbyte_job_id`` and ``airbyte_sync_stats``.
    :raises SyncValidationError: the job is malformed (missing or negative counts), did not
        succeed, moved no records, or too few. It fails the task without retries.
    """
    job = checked_job(job)
    stats = publish_job_stats(job, context, min_records=min_records)
    log.info("Airbyte sync results: %s", job.summary())
    if job.status is not JobStatus.SUCCEEDED:
        raise SyncValidationError(
            f"Airbyte job {job.job_id} on connection {job.connection_id} ended {job.status}; "
            "only a succeeded job can be validated."
        )
    moves_data = job.job_type.moves_data
    if moves_data and job.records == 0 and not allow_zero:
        raise SyncValidationError(
            f"Airbyte job {job.job_id} on connection {job.connection_id} succeeded but synced 0 "
            "records. Check the source (credentials, selected streams, cursor) or pass "
            "allow_zero=True when an empty incremental sync is normal."
        )
    if moves_data and 0 < job.records < min_records:
        raise SyncValidationError(
            f"Airbyte job {job.job_id} on connection {job.connection_id} synced {job.records} "
            f"records, fewer than the minimum of {min_records}."
        )
    return stats
