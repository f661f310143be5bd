"""Typed results of the Airbyte client, shared by both API flavours.

Every answer from Airbyte is parsed into these models; the raw contract shapes of the
Configuration API and the Public API live in ``plugins.airbyte_client.api``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, NonNegativeInt, ValidationError


class JobStatus(StrEnum):
    """Airbyte job status; only ``failed``, ``succeeded`` and ``cancelled`` are terminal."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    INCOMPLETE = "incomplete"
    FAILED = "failed"
    SUCCEEDED = "succeeded"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    @property
    def is_waiting_for_capacity(self) -> bool:
        """True while Airbyte has not given the job to a worker yet."""
        return self in (JobStatus.PENDING, JobStatus.QUEUED)


TERMINAL_STATUSES = frozenset({JobStatus.FAILED, JobStatus.SUCCEEDED, JobStatus.CANCELLED})


class JobType(StrEnum):
    """What a job does to the connection (the Public API's names)."""

    SYNC = "sync"
    RESET = "reset"
    CLEAR = "clear"
    REFRESH = "refresh"

    @property
    def moves_data(self) -> bool:
        """Sync and refresh jobs copy records; reset and clear jobs only empty the tables."""
        return self in (JobType.SYNC, JobType.REFRESH)


class StreamStats(BaseModel):
    """Per-stream figures of a job, where the API reports them."""

    model_config = ConfigDict(frozen=True)

    name: str
    namespace: str | None = None
    records: NonNegativeInt = 0
    bytes: NonNegativeInt = 0


class AirbyteJob(BaseModel):
    """One Airbyte job as last seen: id, state and the figures of what it moved."""

    model_config = ConfigDict(frozen=True)

    job_id: int
    connection_id: str
    job_type: JobType
    status: JobStatus
    records: NonNegativeInt = 0
    bytes: NonNegativeInt = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    duration_seconds: float | None = None
    #: How many attempts the job had; None where the answer does not say (a poll's light
    #: answer, the Public API).
    attempts: NonNegativeInt | None = None
    failure_reason: str | None = None
    streams: tuple[StreamStats, ...] = ()

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    def summary(self) -> str:
        """One log line: ``job_id=12 status=succeeded records=150 bytes=20480 duration=31.0s``."""
        duration = "?" if self.duration_seconds is None else f"{self.duration_seconds:.1f}s"
        return (
            f"job_id={self.job_id} connection_id={self.connection_id} type={self.job_type} "
            f"status={self.status} records={self.records} bytes={self.bytes} duration={duration}"
        )


def running_job(
    jobs: Iterable[AirbyteJob], created_since: float | None = None
) -> AirbyteJob | None:
    """The first job still running; with ``created_since`` (epoch s), also one created since
    then even if it already ended (the job a trigger whose answer was lost started)."""
    for job in jobs:
        if not job.is_terminal:
            return job
        created = job.created_at.timestamp() if job.created_at else None
        if created is not None and created_since is not None and created >= int(created_since):
            return job
    return None


class AirbyteConnection(BaseModel):
    """An Airbyte connection (source → destination) as the API describes it."""

    model_config = ConfigDict(frozen=True)

    connection_id: str
    name: str
    status: str
    source_id: str
    destination_id: str
    workspace_id: str | None = None
    streams: tuple[str, ...] = ()
    schedule_type: str | None = None


class CatalogStream(BaseModel):
    """One selected stream of a connection's sync catalog, as lineage needs it."""

    model_config = ConfigDict(frozen=True)

    name: str
    namespace: str | None = None
    #: The destination's name for the stream before the connection prefix (``aliasName``).
    destination_name: str | None = None
    #: ``(column, type)`` pairs from the stream's JSON schema, in schema order.
    fields: tuple[tuple[str, str], ...] = ()


class ConnectorInfo(BaseModel):
    """A source or destination: its type, id and where it lives (never its secrets)."""

    model_config = ConfigDict(frozen=True)

    actor_id: str
    #: Lower-case connector type, e.g. ``stripe`` or ``postgres``; None when the API hides it.
    type: str | None = None
    #: Location settings only (host, port, database, schema...), picked from its configuration.
    location: dict[str, str] = {}


class ConnectionDetails(BaseModel):
    """What a connection reads and writes: its source, destination and sync catalog."""

    model_config = ConfigDict(frozen=True)

    connection_id: str
    name: str | None = None
    workspace_id: str | None = None
    source: ConnectorInfo
    destination: ConnectorInfo
    #: ``source``, ``destination`` or ``customformat`` (Airbyte's ``namespaceDefinition``).
    namespace_definition: str | None = None
    namespace_format: str | None = None
    prefix: str = ""
    streams: tuple[CatalogStream, ...] = ()


def describe_validation_error(error: ValidationError, *, with_input: bool = False) -> str:
    """The first problems of a pydantic error on one line: ``records=-5: Input should be ...``."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<body>'}"
        + (f"={err.get('input')!r}" if with_input else "")
        + f": {err['msg']}"
        for err in error.errors()[:5]
    )
