"""The one mapping of an Airbyte job to the dicts other code reads, with one key vocabulary.

* ``job_dict``: the job whole (``AirbyteJob``'s fields): an operator's ``return_value`` and
  the ``job`` of a trigger's event; ``job_from_dict`` reads it back.
* ``sync_stats``: what a job moved, for people and downstream tasks (XCom ``STATS_KEY``).
* ``job_extra``/``table_extra``: the ``extra`` of the Asset events that announce a finished
  job (for the connection and for each destination table), whoever emits them: a task's
  outlets, the webhook receiver or the zero-poll watchdog (named by ``origin``).
* ``JOB_ID_KEY`` names the job id everywhere: the XCom pushed before any wait, the task's
  ``task_state_store`` entry and the events' ``extra``. Renaming it breaks in-flight retries.

Figures are ``records`` and ``bytes`` in every dict, as in Airbyte's own statistics.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from plugins.airbyte_client.models import AirbyteJob

if TYPE_CHECKING:  # DAG files load this module; lineage loads OpenLineage's naming (~130 ms)
    from plugins.airbyte_client.lineage import LineageDataset, SyncLineage

JOB_ID_KEY = "airbyte_job_id"
#: The ``extra`` key of a connection event holding its tables' figures (by table Asset URI).
TABLES_KEY = "tables"
STATS_KEY = "airbyte_sync_stats"
#: Who announced a job on an Asset event (``origin`` of its ``extra``).
ORIGIN_TASK = "airflow_task"
ORIGIN_NOTIFICATION = "airbyte_notification"
ORIGIN_WATCHDOG = "watchdog"
ORIGIN_RECONCILED = "airbyte_reconciled"


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
    origin: str
    jobs: list[int]


def job_dict(job: AirbyteJob) -> dict[str, Any]:
    """The job as JSON-serialisable data (XCom, trigger events)."""
    return job.model_dump(mode="json")


def job_from_dict(data: Mapping[str, Any]) -> AirbyteJob:
    """``job_dict``'s inverse; pydantic's ``ValidationError`` on a malformed dict."""
    return AirbyteJob.model_validate(data)


def _facts(job: AirbyteJob) -> dict[str, Any]:
    """What every dict of a job says about it, besides its id."""
    return {
        "connection_id": job.connection_id,
        "job_type": str(job.job_type),
        "status": str(job.status),
        "records": job.records,
        "bytes": job.bytes,
        "duration_seconds": job.duration_seconds,
    }


def sync_stats(job: AirbyteJob, **extra: Any) -> SyncStats:
    """The job's ``SyncStats`` (``extra``: more fields, e.g. ``min_records``)."""
    stats: SyncStats = {
        "job_id": job.job_id,
        **_facts(job),  # type: ignore[typeddict-item]
        "streams": {s.name: {"records": s.records, "bytes": s.bytes} for s in job.streams},
    }
    stats.update(extra)  # type: ignore[typeddict-item]
    return stats


def job_extra(
    job: AirbyteJob, lineage: SyncLineage | None = None, origin: str = ORIGIN_TASK
) -> dict[str, Any]:
    """The ``extra`` of the connection Asset's event for ``job``; with its lineage, the
    figures per destination table too (keyed by the table Asset's URI)."""
    extra: dict[str, Any] = {JOB_ID_KEY: job.job_id, **_facts(job), "origin": origin}
    if lineage is not None:
        extra[TABLES_KEY] = {
            out.uri: {"stream": out.stream, "records": out.records, "bytes": out.bytes}
            for out in lineage.outputs
        }
    return extra


def table_extra(job: AirbyteJob, out: LineageDataset, origin: str = ORIGIN_TASK) -> dict[str, Any]:
    """The ``extra`` of one destination table's Asset event for ``job``."""
    return {
        **job_extra(job, origin=origin),
        "table": out.name,
        "namespace": out.namespace,
        "stream": out.stream,
        "records": out.records,
        "bytes": out.bytes,
    }


def names_job(extra: Mapping[str, Any] | None, job_id: int) -> bool:
    """Whether an Asset event's ``extra`` was written for Airbyte job ``job_id``."""
    return isinstance(extra, Mapping) and str(extra.get(JOB_ID_KEY)) == str(job_id)


def stats_from_events(extras: Iterable[Mapping[str, Any] | None]) -> SyncStats:
    """The ``SyncStats`` of the latest of a run's triggering Asset events (``job_extra``),
    with the ids of every job they announce."""
    syncs = [dict(e) for e in extras if isinstance(e, Mapping)]
    latest = syncs[-1] if syncs else {}
    return {
        "job_id": latest.get(JOB_ID_KEY),
        "connection_id": latest.get("connection_id"),
        "job_type": latest.get("job_type", "sync"),
        "status": latest.get("status", "succeeded"),
        "records": latest.get("records"),
        "bytes": latest.get("bytes"),
        "duration_seconds": latest.get("duration_seconds"),
        "origin": latest.get("origin", ORIGIN_TASK),
        "jobs": [s.get(JOB_ID_KEY) for s in syncs],
    }
