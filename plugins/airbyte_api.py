"""The two Airbyte API flavours behind one interface.

``ConfigApi`` speaks the Configuration API (``<server>/api/v1``, every call a POST),
``PublicApi`` the Public API (``<server>/api/public/v1`` or Airbyte Cloud's
``https://api.airbyte.com/v1``). Each builds ``ApiRequest`` objects and parses answers
into the shared models; the raw contract shapes are validated with pydantic so a body
that breaks the contract is caught at the edge, naming the endpoint.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, NonNegativeInt, ValidationError

from plugins.airbyte_errors import AirbyteResponseError
from plugins.airbyte_models import (
    AirbyteConnection,
    AirbyteJob,
    CatalogStream,
    ConnectionDetails,
    ConnectorInfo,
    JobStatus,
    JobType,
    StreamStats,
    describe_validation_error,
)
from plugins.airbyte_settings import ApiFlavour


@dataclass(frozen=True)
class ApiRequest:
    """One HTTP call, relative to the API root."""

    method: str
    path: str
    json: dict[str, Any] | None = None
    params: dict[str, Any] | None = field(default=None)
    #: What the request is about, for error messages: ``job 42``, ``connection <id>``.
    subject: str = ""

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"

    def to_httpx(self, api_root: str) -> httpx.Request:
        return httpx.Request(self.method, api_root + self.path, json=self.json, params=self.params)


class _Contract(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


Model = TypeVar("Model", bound=_Contract)
Item = TypeVar("Item")


def _parse(model: type[Model], body: Any, request: ApiRequest) -> Model:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problems = describe_validation_error(exc)
        raise AirbyteResponseError(
            f"Airbyte answered {request.endpoint} with a body that breaks the API contract "
            f"({problems}). Check that the API URL points at an Airbyte server of a supported "
            "version and that no proxy rewrites its answers.",
            endpoint=request.endpoint,
        ) from None


def _epoch(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


# --- Configuration API contract (config.yaml) -------------------------------------------


class _ConfigAggregatedStats(_Contract):
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


class _ConfigFailure(_Contract):
    externalMessage: str | None = None
    failureOrigin: str | None = None
    failureType: str | None = None


class _ConfigFailureSummary(_Contract):
    failures: list[_ConfigFailure]


class _ConfigAttemptStreamStats(_Contract):
    streamName: str
    streamNamespace: str | None = None
    stats: _ConfigAggregatedStats | None = None


class _ConfigAttempt(_Contract):
    id: int
    status: str
    createdAt: int
    updatedAt: int
    endedAt: int | None = None
    failureSummary: _ConfigFailureSummary | None = None
    streamStats: list[_ConfigAttemptStreamStats] | None = None


class _ConfigAttemptInfo(_Contract):
    attempt: _ConfigAttempt


class _ConfigJob(_Contract):
    id: int
    configType: str
    configId: str
    createdAt: int
    updatedAt: int
    startedAt: int | None = None
    status: JobStatus
    aggregatedStats: _ConfigAggregatedStats | None = None
    streamAggregatedStats: list[_ConfigStreamStats] | None = None


class _ConfigJobInfo(_Contract):
    job: _ConfigJob
    attempts: list[_ConfigAttemptInfo]


class _ConfigJobWithAttempts(_Contract):
    job: _ConfigJob
    attempts: list[_ConfigAttempt] | None = None


class _ConfigJobList(_Contract):
    jobs: list[_ConfigJobWithAttempts]


class _ConfigStream(_Contract):
    name: str
    namespace: str | None = None
    #: Only lineage reads it (leniently, ``schema_fields``): an odd one never fails a parse.
    jsonSchema: Any = None


class _ConfigStreamConfig(_Contract):
    selected: bool | None = None
    aliasName: str | None = None


class _ConfigStreamAndConfig(_Contract):
    stream: _ConfigStream
    config: _ConfigStreamConfig | None = None


class _ConfigCatalog(_Contract):
    streams: list[_ConfigStreamAndConfig]


class _ConfigConnection(_Contract):
    connectionId: str
    name: str
    sourceId: str
    destinationId: str
    status: str
    syncCatalog: _ConfigCatalog
    scheduleType: str | None = None
    workspaceId: str | None = None


class _ConfigActor(_Contract):
    workspaceId: str | None = None
    connectionConfiguration: dict[str, Any] | None = None


class _ConfigSource(_ConfigActor):
    sourceId: str
    sourceName: str


class _ConfigDestination(_ConfigActor):
    destinationId: str
    destinationName: str


class _ConfigWebBackendConnection(_Contract):
    connectionId: str
    namespaceDefinition: str | None = None
    namespaceFormat: str | None = None
    prefix: str | None = None
    syncCatalog: _ConfigCatalog
    source: _ConfigSource
    destination: _ConfigDestination


class _ConfigConnectionList(_Contract):
    connections: list[_ConfigConnection]


class _ConfigWorkspace(_Contract):
    workspaceId: str


class _ConfigWorkspaceList(_Contract):
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


def _config_job(job: _ConfigJob, attempts: list[_ConfigAttempt]) -> AirbyteJob:
    job_type = _CONFIG_TYPE_TO_JOB_TYPE.get(job.configType)
    if job_type is None:
        raise AirbyteResponseError(
            f"Airbyte job {job.id} has unexpected configType {job.configType!r}"
        )
    rows, bytes_ = job.aggregatedStats.figures() if job.aggregatedStats else (0, 0)
    streams = tuple(
        StreamStats(name=s.streamName, namespace=s.streamNamespace, rows=r, bytes=b)
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
        rows=rows,
        bytes=bytes_,
        created_at=_epoch(job.createdAt),
        updated_at=_epoch(job.updatedAt),
        duration_seconds=float(max(job.updatedAt - start, 0)),
        attempts=len(attempts),
        failure_reason=failure,
        streams=streams,
    )


def _attempt_stream_stats(attempts: list[_ConfigAttempt]) -> tuple[StreamStats, ...]:
    """Per-stream figures summed over the attempts (servers without ``streamAggregatedStats``).

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
        StreamStats(name=name, namespace=namespace, rows=rows, bytes=size)
        for (name, namespace), (rows, size) in totals.items()
    )


#: Configuration keys that say where a connector's data lives; nothing else (no secret) is kept.
LOCATION_KEYS = ("host", "port", "database", "schema", "project_id", "dataset_id")


def _location(configuration: dict[str, Any] | None) -> dict[str, str]:
    config = configuration or {}
    return {
        key: str(config[key])
        for key in LOCATION_KEYS
        if isinstance(config.get(key), str | int) and not isinstance(config.get(key), bool)
    }


def _connector_type(display_name: str) -> str:
    """A URI scheme from a connector's name: ``Google Sheets`` -> ``google-sheets``."""
    return re.sub(r"[^a-z0-9+.]+", "-", display_name.lower()).strip("-") or "unknown"


def schema_fields(json_schema: Any) -> tuple[tuple[str, str], ...]:
    """``(column, type)`` pairs of a stream's JSON schema; odd entries are skipped."""
    properties = json_schema.get("properties") if isinstance(json_schema, dict) else None
    if not isinstance(properties, dict):
        return ()
    fields = []
    for name, spec in properties.items():
        if not isinstance(spec, dict):
            continue
        types = spec.get("type")
        types = [types] if isinstance(types, str) else types if isinstance(types, list) else []
        kind = next((t for t in types if isinstance(t, str) and t != "null"), "unknown")
        fmt = spec.get("format")
        if kind == "string" and fmt in ("date", "date-time", "time"):
            kind = "timestamp" if fmt == "date-time" else fmt
        fields.append((str(name), kind))
    return tuple(fields)


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
        info = _parse(_ConfigJobInfo, body, request)
        return _config_job(info.job, [a.attempt for a in info.attempts])

    def parse_jobs(self, body: Any, request: ApiRequest) -> list[AirbyteJob]:
        listing = _parse(_ConfigJobList, body, request)
        return [_config_job(j.job, j.attempts or []) for j in listing.jobs]

    def parse_connection(self, body: Any, request: ApiRequest) -> AirbyteConnection:
        return self._connection(_parse(_ConfigConnection, body, request))

    def parse_connections(self, body: Any, request: ApiRequest) -> list[AirbyteConnection]:
        return [
            self._connection(c) for c in _parse(_ConfigConnectionList, body, request).connections
        ]

    def parse_connection_details(self, body: Any, request: ApiRequest) -> ConnectionDetails:
        c = _parse(_ConfigWebBackendConnection, body, request)
        return ConnectionDetails(
            connection_id=c.connectionId,
            workspace_id=c.source.workspaceId or c.destination.workspaceId,
            source=ConnectorInfo(
                actor_id=c.source.sourceId,
                type=_connector_type(c.source.sourceName),
                location=_location(c.source.connectionConfiguration),
            ),
            destination=ConnectorInfo(
                actor_id=c.destination.destinationId,
                type=_connector_type(c.destination.destinationName),
                location=_location(c.destination.connectionConfiguration),
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
        return [w.workspaceId for w in _parse(_ConfigWorkspaceList, body, request).workspaces]

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


# --- Public API contract (public-api.yaml) ----------------------------------------------


class _PublicJob(_Contract):
    jobId: int
    status: JobStatus
    jobType: JobType
    startTime: datetime
    connectionId: str
    lastUpdatedAt: datetime | None = None
    duration: timedelta | None = None
    bytesSynced: NonNegativeInt | None = None
    rowsSynced: NonNegativeInt | None = None


class _PublicJobs(_Contract):
    data: list[_PublicJob]


class _PublicSchedule(_Contract):
    scheduleType: str | None = None


class _PublicStream(_Contract):
    name: str


class _PublicConfigurations(_Contract):
    streams: list[_PublicStream] | None = None


class _PublicConnection(_Contract):
    connectionId: str
    name: str
    sourceId: str
    destinationId: str
    workspaceId: str
    status: str
    schedule: _PublicSchedule
    configurations: _PublicConfigurations
    namespaceDefinition: str | None = None
    namespaceFormat: str | None = None
    prefix: str | None = None


class _PublicConnections(_Contract):
    data: list[_PublicConnection]
    next: str | None = None


class PublicApi:
    """Public API v1: ``<server>/api/public/v1`` or ``https://api.airbyte.com/v1``."""

    flavour = ApiFlavour.PUBLIC
    health = ApiRequest("GET", "/health")
    token_as_form = True

    def trigger(self, connection_id: str, job_type: JobType) -> ApiRequest:
        body = {"connectionId": connection_id, "jobType": str(job_type)}
        return ApiRequest("POST", "/jobs", body, subject=f"connection {connection_id}")

    def get_job(self, job_id: int) -> ApiRequest:
        return ApiRequest("GET", f"/jobs/{job_id}", subject=f"job {job_id}")

    def cancel_job(self, job_id: int) -> ApiRequest:
        return ApiRequest("DELETE", f"/jobs/{job_id}", subject=f"job {job_id}")

    def recent_jobs(self, connection_id: str, job_type: JobType, limit: int) -> ApiRequest:
        params = {
            "connectionId": connection_id,
            "jobType": str(job_type),
            "limit": limit,
            "orderBy": "createdAt|DESC",
        }
        return ApiRequest("GET", "/jobs", params=params, subject=f"connection {connection_id}")

    def get_connection(self, connection_id: str) -> ApiRequest:
        return ApiRequest(
            "GET", f"/connections/{connection_id}", subject=f"connection {connection_id}"
        )

    def connection_details(self, connection_id: str) -> ApiRequest:
        """The connection; the Public API gives no connector types, locations or schemas here."""
        return self.get_connection(connection_id)

    def list_connections(
        self, workspace_id: str | None, offset: int = 0, limit: int = 100
    ) -> ApiRequest:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if workspace_id:
            params["workspaceIds"] = workspace_id
        return ApiRequest("GET", "/connections", params=params)

    def parse_job(self, body: Any, request: ApiRequest) -> AirbyteJob:
        return self._job(_parse(_PublicJob, body, request))

    def parse_jobs(self, body: Any, request: ApiRequest) -> list[AirbyteJob]:
        return [self._job(j) for j in _parse(_PublicJobs, body, request).data]

    def parse_connection(self, body: Any, request: ApiRequest) -> AirbyteConnection:
        return self._connection(_parse(_PublicConnection, body, request))

    def parse_connection_details(self, body: Any, request: ApiRequest) -> ConnectionDetails:
        c = _parse(_PublicConnection, body, request)
        return ConnectionDetails(
            connection_id=c.connectionId,
            workspace_id=c.workspaceId,
            source=ConnectorInfo(actor_id=c.sourceId),
            destination=ConnectorInfo(actor_id=c.destinationId),
            namespace_definition=c.namespaceDefinition,
            namespace_format=c.namespaceFormat,
            prefix=c.prefix or "",
            streams=tuple(CatalogStream(name=s.name) for s in c.configurations.streams or ()),
        )

    def parse_connections(
        self, body: Any, request: ApiRequest
    ) -> tuple[list[AirbyteConnection], str | None]:
        page = _parse(_PublicConnections, body, request)
        return [self._connection(c) for c in page.data], page.next or None

    @staticmethod
    def _job(j: _PublicJob) -> AirbyteJob:
        return AirbyteJob(
            job_id=j.jobId,
            connection_id=j.connectionId,
            job_type=j.jobType,
            status=j.status,
            rows=j.rowsSynced or 0,
            bytes=j.bytesSynced or 0,
            created_at=j.startTime,
            updated_at=j.lastUpdatedAt,
            duration_seconds=None if j.duration is None else j.duration.total_seconds(),
        )

    @staticmethod
    def _connection(c: _PublicConnection) -> AirbyteConnection:
        return AirbyteConnection(
            connection_id=c.connectionId,
            name=c.name,
            status=c.status,
            source_id=c.sourceId,
            destination_id=c.destinationId,
            workspace_id=c.workspaceId,
            streams=tuple(s.name for s in c.configurations.streams or ()),
            schedule_type=c.schedule.scheduleType,
        )


def read_pages(fetch: Callable[[int], tuple[list[Item], str | None]], max_pages: int) -> list[Item]:
    """Every item of a paginated list; ``fetch(offset)`` gives one page and its ``next`` link.

    Stops with ``AirbyteResponseError`` when ``next`` repeats, when a page is empty but has a
    ``next``, or past ``max_pages``: a server whose pagination never ends cannot hang a task
    or the UI's Test button.
    """
    found: list[Item] = []
    seen: set[str] = set()
    for number in range(1, max_pages + 1):
        page, next_link = fetch(len(found))
        found.extend(page)
        if not next_link:
            return found
        if next_link in seen or not page:
            what = "repeats an earlier next link" if page else "is empty but has a next link"
            raise AirbyteResponseError(
                f"Airbyte's list does not advance: page {number} {what} (after {len(found)} "
                "items). Stopped reading; the server's pagination is broken."
            )
        seen.add(next_link)
    raise AirbyteResponseError(
        f"Airbyte's list had more than max_pages={max_pages} pages ({len(found)} items so far). "
        "Stopped reading; raise the Connection extra max_pages if there really are that many."
    )


def api_for(flavour: ApiFlavour) -> ConfigApi | PublicApi:
    return ConfigApi() if flavour is ApiFlavour.CONFIG else PublicApi()
