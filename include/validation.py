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

from plugins.airbyte_models import AirbyteJob, JobStatus, JobType

log = logging.getLogger(__name__)

#: XCom keys other tasks and notifiers read.
JOB_ID_XCOM_KEY = "airbyte_job_id"
STATS_XCOM_KEY = "airbyte_sync_stats"


class SyncValidationError(AirflowFailException):
    """The sync finished but its results are not acceptable; retrying the check will not help."""


def publish_job_stats(
    job: AirbyteJob | Mapping[str, Any],
    context: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The job's stats as a dict, pushed to XCom (``airbyte_job_id``, ``airbyte_sync_stats``)
    when a task context is given; for jobs that are reported without being validated."""
    job = job if isinstance(job, AirbyteJob) else AirbyteJob.model_validate(job)
    stats = {
        "job_id": job.job_id,
        "connection_id": job.connection_id,
        "job_type": str(job.job_type),
        "status": str(job.status),
        "records": job.rows,
        "bytes": job.bytes,
        "duration_seconds": job.duration_seconds,
        "streams": {s.name: {"records": s.rows, "bytes": s.bytes} for s in job.streams},
        **extra,
    }
    if context is not None and "ti" in context:
        context["ti"].xcom_push(key=JOB_ID_XCOM_KEY, value=job.job_id)
        context["ti"].xcom_push(key=STATS_XCOM_KEY, value=stats)
    return stats


def validate_sync_results(
    job: AirbyteJob | Mapping[str, Any],
    *,
    min_records: int = 1,
    allow_zero: bool = False,
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Check a finished Airbyte job and return its stats (also pushed to XCom when given a context).

    :param job: the job as returned by the hook or an operator (model or its XCom dict).
    :param min_records: fewest records the sync must have committed.
    :param allow_zero: accept a sync that moved nothing (e.g. an incremental sync with no
        new data); reset and clear jobs always may.
    :param context: the Airflow task context; its ``ti`` receives the XCom pushes
        ``airbyte_job_id`` and ``airbyte_sync_stats``.
    :raises SyncValidationError: the job did not succeed, moved no records, or too few.
    """
    job = job if isinstance(job, AirbyteJob) else AirbyteJob.model_validate(job)
    stats = publish_job_stats(job, context, min_records=min_records)
    log.info("Airbyte sync results: %s", job.summary())

    if job.status is not JobStatus.SUCCEEDED:
        raise SyncValidationError(
            f"Airbyte job {job.job_id} on connection {job.connection_id} ended {job.status}; "
            "only a succeeded job can be validated."
        )
    moves_data = job.job_type in (JobType.SYNC, JobType.REFRESH)
    if moves_data and job.rows == 0 and not allow_zero:
        raise SyncValidationError(
            f"Airbyte job {job.job_id} on connection {job.connection_id} succeeded but synced 0 "
            "records. Check the source (credentials, selected streams, cursor) or pass "
            "allow_zero=True when an empty incremental sync is normal."
        )
    if moves_data and 0 < job.rows < min_records:
        raise SyncValidationError(
            f"Airbyte job {job.job_id} on connection {job.connection_id} synced {job.rows} "
            f"records, fewer than the minimum of {min_records}."
        )
    return stats
