"""The XCom contract of Airbyte tasks, defined once: key names and the fields of the stats.

* ``return_value`` of ``AirbyteSyncOperator``: the job (``AirbyteJob.to_xcom()``); downstream
  tasks receive it as an XComArg (``validate(sync.output)``), not by pulling a task id.
* ``JOB_ID_XCOM_KEY``: the job id, pushed as soon as the job exists (before any wait), so a
  failure callback can name the job of a task that failed while waiting.
* ``STATS_XCOM_KEY``: the job's ``SyncStats``, pushed by ``include.validation``; what
  notifications and run summaries report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from plugins.airbyte_models import AirbyteJob

JOB_ID_XCOM_KEY = "airbyte_job_id"
STATS_XCOM_KEY = "airbyte_sync_stats"


class StreamFigures(TypedDict):
    records: int
    bytes: int


class SyncStats(TypedDict, total=False):
    """What one Airbyte job moved, as reported to people and downstream tasks."""

    job_id: int
    connection_id: str
    job_type: str
    status: str
    records: int
    bytes: int
    duration_seconds: float | None
    streams: dict[str, StreamFigures]
    min_records: int


def sync_stats(job: AirbyteJob, **extra: Any) -> SyncStats:
    """The job's ``SyncStats`` (``extra``: more fields, e.g. ``min_records``)."""
    stats: SyncStats = {
        "job_id": job.job_id,
        "connection_id": job.connection_id,
        "job_type": str(job.job_type),
        "status": str(job.status),
        "records": job.rows,
        "bytes": job.bytes,
        "duration_seconds": job.duration_seconds,
        "streams": {s.name: {"records": s.rows, "bytes": s.bytes} for s in job.streams},
    }
    stats.update(extra)  # type: ignore[typeddict-item]
    return stats
