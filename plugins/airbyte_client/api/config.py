"""The Configuration API (``<server>/api/v1``, every call a JSON POST; ``config.yaml``):
requests, raw answer shapes and their parsing into the shared models."""

from __future__ import annotations

from typing import Any

from pydantic import NonNegativeInt

from plugins.airbyte_client.api.base import (
    Contract,
    connector_type,
    epoch,
    location,
    parse,
    schema_fields,
)
from plugins.airbyte_client.config import ApiFlavour
from plugins.airbyte_client.errors import AirbyteResponseError
from plugins.airbyte_client.models import (
    AirbyteConnection,
    AirbyteJob,
    CatalogStream,
    ConnectionDetails,
    ConnectorInfo,
    JobStatus,
    JobType,
    StreamStats,
)
from plugins.airbyte_client.transport import ApiRequest


class _ConfigAggregatedStats(Contract):
    recordsEmitted: NonNegativeInt = 0
    bytesEmitted: NonNegativeInt = 0
    recordsCommitted: NonNegativeInt | None = None
    bytesCommitted: NonNegativeInt | None = None

    def figures(self) -> tuple[int, int]:
        """``(rows, bytes)``: committed where reported, else emitted."""
        rows = self.recordsCommitted if self.recordsCommitted is not None else self.recordsEmitted
        size = self.bytesCommitted if self.bytesCommitted is not None else self.bytesEmitted
        return rows, size


class _ConfigStreamStats(_ConfigAggregatedStats):
    streamName: str
    streamNamespace: str | None = None


class _ConfigFailure(Contract):
    externalMessage: str | None = None
    failureOrigin: str | None = None
    failureType: str | None = None


class _ConfigFailureSummary(Contract):
    failures: list[_ConfigFailure]


class _ConfigAttemptStreamStats(Contract):
    streamName: str
    streamNamespace: str | None = None
    stats: _ConfigAggregatedStats | None = None


class _ConfigAttempt(Contract):
    id: int
    status: str
    createdAt: int
    updatedAt: int
    endedAt: int | None = None
    failureSummary: _ConfigFailureSummary | None = None
    streamStats: list[_ConfigAttemptStreamStats] | None = None


class _ConfigAttemptInfo(Contract):
    attempt: _ConfigAttempt


class _ConfigJob(Contract):
    id: int
    configType: str
    configId: str
    createdAt: int
    updatedAt: int
    startedAt: int | None = None
    status: JobStatus
    aggregatedStats: _ConfigAggregatedStats | None = None
    streamAggregatedStats: list[_ConfigStreamStats] | None = None


class _ConfigJobInfo(Contract):
    job: _ConfigJob
    #: Validated lazily, newest first and at most ``MAX_ATTEMPTS_READ`` (``_newest``).
    attempts: list[Any]


class _ConfigJobInfoLight(Contract):
    job: _ConfigJob


class _ConfigJobWithAttempts(Contract):
    job: _ConfigJob
    attempts: list[Any] | None = None


class _ConfigJobList(Contract):
    jobs: list[_ConfigJobWithAttempts]


class _ConfigStream(Contract):
    name: str
    namespace: str | None = None
    #: Only lineage reads it (leniently, ``schema_fields``): an odd one never fails a parse.
    jsonSchema: Any = None


class _ConfigStreamConfig(Contract):
    selected: bool | None = None
    aliasName: str | None = None


class _ConfigStreamAndConfig(Contract):
    stream: _ConfigStream
    config: _ConfigStreamConfig | None = None


class _ConfigCatalog(Contract):
    streams: list[_ConfigStreamAndConfig]


class _ConfigConnection(Contract):
    connectionId: str
    name: str
    sourceId: str
    destinationId: str
    status: str
    syncCatalog: _ConfigCatalog
    scheduleType: str | None = None
    workspaceId: str | None = None


class _ConfigActor(Contract):
    workspaceId: str | None = None
    connectionConfiguration: dict[str, Any] | None = None


class _ConfigSource(_ConfigActor):
    sourceId: str
    sourceName: str


class _ConfigDestination(_ConfigActor):
    destinationId: str
    destinationName: str


class _ConfigWebBackendConnection(Contract):
    connectionId: str
    namespaceDefinition: str | None = None
    namespaceFormat: str | None = None
    prefix: str | None = None
    syncCatalog: _ConfigCatalog
    source: _ConfigSource
    destination: _ConfigDestination


class _ConfigConnectionList(Contract):
    connections: list[_ConfigConnection]


class _ConfigWorkspace(Contract):
    workspaceId: str


class _ConfigWorkspaceList(Contract):
    workspaces: list[_ConfigWorkspace]


_CONFIG_TYPE_TO_JOB_TYPE = {
    "sync": JobType.SYNC,
    "reset_connection": JobType.RESET,
    "clear": JobType.CLEAR,
    "refresh": JobType.REFRESH,
}
_JOB_TYPE_TO_CONFIG_TYPE = {v: k for k, v in _CONFIG_TYPE_TO_JOB_TYPE.items()}
_CONFIG_TRIGGER_PATH = {
    JobType.SYNC: "/connections/sync",
    JobType.RESET: "/connections/reset",
    JobType.CLEAR: "/connections/clear",
}


#: Attempts of a job answer that are read: the newest. A job retried thousands of times (an
#: answer of megabytes) must not cost a second of parsing; the count is of all of them.
MAX_ATTEMPTS_READ = 20


def _newest(
    attempts: list[Any], model: type[_ConfigAttempt | _ConfigAttemptInfo], request: ApiRequest
) -> list[_ConfigAttempt]:
    """The newest ``MAX_ATTEMPTS_READ`` attempts of an answer, validated, oldest first."""
    read = [parse(model, a, request) for a in attempts[-MAX_ATTEMPTS_READ:]]
    return [a.attempt if isinstance(a, _ConfigAttemptInfo) else a for a in read]


def _config_job(
    job: _ConfigJob, attempts: list[_ConfigAttempt], attempt_count: int | None
) -> AirbyteJob:
    """The job of an answer; ``attempt_count`` None where the answer has no attempts."""
    job_type = _CONFIG_TYPE_TO_JOB_TYPE.get(job.configType)
    if job_type is None:
        raise AirbyteResponseError(
            f"Airbyte job {job.id} has unexpected configType {job.configType!r}"
        )
    rows, bytes_ = job.aggregatedStats.figures() if job.aggregatedStats else (0, 0)
    streams = tuple(
        StreamStats(name=s.streamName, namespace=s.streamNamespace, records=r, bytes=b)
        for s in job.streamAggregatedStats or ()
        for r, b in [s.figures()]
    )
    if job.streamAggregatedStats is None:
        streams = _attempt_stream_stats(attempts)
    failure = next(
        (
            f.externalMessage
            for a in reversed(attempts)
            if a.failureSummary
            for f in a.failureSummary.failures
            if f.externalMessage
        ),
        None,
    )
    start = job.startedAt or job.createdAt
    return AirbyteJob(
        job_id=job.id,
        connection_id=job.configId,
        job_type=job_type,
        status=job.status,
        records=rows,
        bytes=bytes_,
        created_at=epoch(job.createdAt),
        updated_at=epoch(job.updatedAt),
        duration_seconds=float(max(job.updatedAt - start, 0)),
        attempts=attempt_count,
        failure_reason=failure,
        streams=streams,
    )


def _attempt_stream_stats(attempts: list[_ConfigAttempt]) -> tuple[StreamStats, ...]:
    """Per-stream figures summed over the attempts read (servers without
    ``streamAggregatedStats``; at most ``MAX_ATTEMPTS_READ``, the newest).

    Each attempt commits its own records, so the job's committed figures are the sum.
    """
    totals: dict[tuple[str, str | None], tuple[int, int]] = {}
    for attempt in attempts:
        for s in attempt.streamStats or ():
            if s.stats is None:
                continue
            rows, size = s.stats.figures()
            old_rows, old_bytes = totals.get((s.streamName, s.streamNamespace), (0, 0))
            totals[(s.streamName, s.streamNamespace)] = (old_rows + rows, old_bytes + size)
    return tuple(
        StreamStats(name=name, namespace=namespace, records=rows, bytes=size)
        for (name, namespace), (rows, size) in totals.items()
    )


class ConfigApi:
    """Configuration API v1: ``<server>/api/v1``, JSON POSTs."""

    flavour = ApiFlavour.CONFIG
    health = ApiRequest("GET", "/health")
    token_as_form = False

    def trigger(self, connection_id: str, job_type: JobType) -> ApiRequest:
        return ApiRequest(
            "POST",
            _CONFIG_TRIGGER_PATH[job_type],
            {"connectionId": connection_id},
            subject=f"connection {connection_id}",
        )

    def get_job(self, job_id: int) -> ApiRequest:
        return ApiRequest("POST", "/jobs/get", {"id": job_id}, subject=f"job {job_id}")

    def poll_job(self, job_id: int) -> ApiRequest:
        """The job without its attempts and logs (which make ``/jobs/get`` answers megabytes
        long): what a poll needs, at the cost of the web app's own poll."""
        return ApiRequest("POST", "/jobs/get_light", {"id": job_id}, subject=f"job {job_id}")

    @staticmethod
    def needs_full_read(job: AirbyteJob) -> bool:
        """Whether a polled (light) job lacks what its outcome needs: a failure's reason is
        in its attempts, and so are the per-stream figures of servers without
        ``streamAggregatedStats``."""
        return job.is_terminal and (job.status is JobStatus.FAILED or not job.streams)

    def cancel_job(self, job_id: int) -> ApiRequest:
        return ApiRequest("POST", "/jobs/cancel", {"id": job_id}, subject=f"job {job_id}")

    def recent_jobs(self, connection_id: str, job_type: JobType, limit: int) -> ApiRequest:
        return ApiRequest(
            "POST",
            "/jobs/list",
            {
                "configTypes": [_JOB_TYPE_TO_CONFIG_TYPE[job_type]],
                "configId": connection_id,
                "pagination": {"pageSize": limit, "rowOffset": 0},
            },
            subject=f"connection {connection_id}",
        )

    def get_connection(self, connection_id: str) -> ApiRequest:
        return ApiRequest(
            "POST",
            "/connections/get",
            {"connectionId": connection_id},
            subject=f"connection {connection_id}",
        )

    def list_workspaces(self) -> ApiRequest:
        return ApiRequest("POST", "/workspaces/list", {})

    def connection_details(self, connection_id: str) -> ApiRequest:
        """Connection, source, destination and catalog in one call (the web app's own)."""
        body = {"connectionId": connection_id, "withRefreshedCatalog": False}
        return ApiRequest("POST", "/web_backend/connections/get", body)

    def list_connections(self, workspace_id: str) -> ApiRequest:
        return ApiRequest("POST", "/connections/list", {"workspaceId": workspace_id})

    def parse_job(self, body: Any, request: ApiRequest) -> AirbyteJob:
        info = parse(_ConfigJobInfo, body, request)
        attempts = _newest(info.attempts, _ConfigAttemptInfo, request)
        return _config_job(info.job, attempts, len(info.attempts))

    def parse_polled_job(self, body: Any, request: ApiRequest) -> AirbyteJob:
        return _config_job(parse(_ConfigJobInfoLight, body, request).job, [], None)

    def parse_jobs(self, body: Any, request: ApiRequest) -> list[AirbyteJob]:
        listing = parse(_ConfigJobList, body, request)
        return [
            _config_job(
                j.job, _newest(j.attempts or [], _ConfigAttempt, request), len(j.attempts or [])
            )
            for j in listing.jobs
        ]

    def parse_connection(self, body: Any, request: ApiRequest) -> AirbyteConnection:
        return self._connection(parse(_ConfigConnection, body, request))

    def parse_connections(self, body: Any, request: ApiRequest) -> list[AirbyteConnection]:
        return [
            self._connection(c) for c in parse(_ConfigConnectionList, body, request).connections
        ]

    def parse_connection_details(self, body: Any, request: ApiRequest) -> ConnectionDetails:
        c = parse(_ConfigWebBackendConnection, body, request)
        return ConnectionDetails(
            connection_id=c.connectionId,
            workspace_id=c.source.workspaceId or c.destination.workspaceId,
            source=ConnectorInfo(
                actor_id=c.source.sourceId,
                type=connector_type(c.source.sourceName),
                location=location(c.source.connectionConfiguration),
            ),
            destination=ConnectorInfo(
                actor_id=c.destination.destinationId,
                type=connector_type(c.destination.destinationName),
                location=location(c.destination.connectionConfiguration),
            ),
            namespace_definition=c.namespaceDefinition,
            namespace_format=c.namespaceFormat,
            prefix=c.prefix or "",
            streams=tuple(
                CatalogStream(
                    name=s.stream.name,
                    namespace=s.stream.namespace,
                    destination_name=s.config.aliasName if s.config else None,
                    fields=schema_fields(s.stream.jsonSchema),
                )
                for s in c.syncCatalog.streams
                if s.config is None or s.config.selected is not False
            ),
        )

    def parse_workspaces(self, body: Any, request: ApiRequest) -> list[str]:
        return [w.workspaceId for w in parse(_ConfigWorkspaceList, body, request).workspaces]

    @staticmethod
    def _connection(c: _ConfigConnection) -> AirbyteConnection:
        return AirbyteConnection(
            connection_id=c.connectionId,
            name=c.name,
            status=c.status,
            source_id=c.sourceId,
            destination_id=c.destinationId,
            workspace_id=c.workspaceId,
            streams=tuple(s.stream.name for s in c.syncCatalog.streams),
            schedule_type=c.scheduleType,
        )
