"""The Public API (``<server>/api/public/v1``, Airbyte Cloud's ``https://api.airbyte.com/v1``;
``public-api.yaml``): requests, raw answer shapes and their parsing into the shared models."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import NonNegativeInt, RootModel

from plugins.airbyte_client.api.base import Contract, connector_type, location, parse
from plugins.airbyte_client.config import ApiFlavour
from plugins.airbyte_client.errors import AirbyteConfigError
from plugins.airbyte_client.models import (
    AirbyteConnection,
    AirbyteJob,
    CatalogStream,
    ConnectionDetails,
    ConnectorInfo,
    JobStatus,
    JobType,
)
from plugins.airbyte_client.transport import ApiRequest


class _PublicJob(Contract):
    jobId: int
    status: JobStatus
    jobType: JobType
    startTime: datetime
    connectionId: str
    lastUpdatedAt: datetime | None = None
    duration: timedelta | None = None
    bytesSynced: NonNegativeInt | None = None
    rowsSynced: NonNegativeInt | None = None


class _PublicJobs(Contract):
    data: list[_PublicJob]


class _PublicSchedule(Contract):
    scheduleType: str | None = None


class _PublicStream(Contract):
    name: str


class _PublicConfigurations(Contract):
    streams: list[_PublicStream] | None = None


class _PublicConnection(Contract):
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


class _PublicSource(Contract):
    sourceId: str
    sourceType: str
    configuration: dict[str, Any] | None = None


class _PublicDestination(Contract):
    destinationId: str
    destinationType: str
    configuration: dict[str, Any] | None = None


class _PublicStreamProperties(Contract):
    streamName: str
    propertyFields: list[list[str]] | None = None


class _PublicStreamList(RootModel[list[_PublicStreamProperties]]):
    pass


class _PublicConnections(Contract):
    data: list[_PublicConnection]
    next: str | None = None


def _connector(actor_id: str, kind: str, configuration: dict[str, Any] | None) -> ConnectorInfo:
    """A source or destination: its type and where it lives (no secret is kept)."""
    return ConnectorInfo(
        actor_id=actor_id, type=connector_type(kind), location=location(configuration)
    )


class PublicApi:
    """Public API v1: ``<server>/api/public/v1`` or ``https://api.airbyte.com/v1``."""

    flavour = ApiFlavour.PUBLIC
    health = ApiRequest("GET", "/health")
    token_as_form = True

    def trigger(
        self,
        connection_id: str,
        job_type: JobType,
        streams: tuple[str, ...] = (),
        refresh_mode: str | None = None,
    ) -> ApiRequest:
        """``POST /jobs``; its jobs are of whole connections, with the server's refresh mode:
        per-stream jobs and refresh modes are refused before any call."""
        if streams or refresh_mode:
            what = "per-stream jobs" if streams else "refresh modes"
            raise AirbyteConfigError(
                f"The Public API has no {what}: a {job_type} of {connection_id} "
                f"{'of streams ' + ', '.join(streams) if streams else 'with refresh_mode'} "
                "needs the Configuration API. Use an Airflow Connection with "
                "api_type=config (the host's /api/v1), e.g. airbyte_config_api."
            )
        body = {"connectionId": connection_id, "jobType": str(job_type)}
        return ApiRequest("POST", "/jobs", body, subject=f"connection {connection_id}")

    def get_job(self, job_id: int) -> ApiRequest:
        return ApiRequest("GET", f"/jobs/{job_id}", subject=f"job {job_id}")

    def poll_job(self, job_id: int) -> ApiRequest:
        """A job answer of the Public API is small already (no attempts, no logs)."""
        return self.get_job(job_id)

    @staticmethod
    def needs_full_read(job: AirbyteJob) -> bool:
        """A polled job is the whole job here."""
        return False

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
        """The connection, naming its source and destination by id only: their types and
        locations come from ``get_source``/``get_destination``, its fields from ``streams``."""
        return self.get_connection(connection_id)

    def get_source(self, source_id: str) -> ApiRequest:
        return ApiRequest("GET", f"/sources/{source_id}", subject=f"source {source_id}")

    def get_destination(self, destination_id: str) -> ApiRequest:
        return ApiRequest(
            "GET", f"/destinations/{destination_id}", subject=f"destination {destination_id}"
        )

    def streams(self, source_id: str, destination_id: str) -> ApiRequest:
        """The source's streams and their fields (from the cached catalog: no discover)."""
        params = {"sourceId": source_id, "destinationId": destination_id}
        return ApiRequest("GET", "/streams", params=params, subject=f"source {source_id}")

    def list_connections(
        self, workspace_id: str | None, offset: int = 0, limit: int = 100
    ) -> ApiRequest:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if workspace_id:
            params["workspaceIds"] = workspace_id
        return ApiRequest("GET", "/connections", params=params)

    def parse_job(self, body: Any, request: ApiRequest) -> AirbyteJob:
        return self._job(parse(_PublicJob, body, request))

    def parse_polled_job(self, body: Any, request: ApiRequest) -> AirbyteJob:
        return self.parse_job(body, request)

    def parse_jobs(self, body: Any, request: ApiRequest) -> list[AirbyteJob]:
        return [self._job(j) for j in parse(_PublicJobs, body, request).data]

    def parse_connection(self, body: Any, request: ApiRequest) -> AirbyteConnection:
        return self._connection(parse(_PublicConnection, body, request))

    def parse_connection_details(self, body: Any, request: ApiRequest) -> ConnectionDetails:
        c = parse(_PublicConnection, body, request)
        return ConnectionDetails(
            connection_id=c.connectionId,
            name=c.name,
            workspace_id=c.workspaceId,
            source=ConnectorInfo(actor_id=c.sourceId),
            destination=ConnectorInfo(actor_id=c.destinationId),
            namespace_definition=c.namespaceDefinition,
            namespace_format=c.namespaceFormat,
            prefix=c.prefix or "",
            streams=tuple(CatalogStream(name=s.name) for s in c.configurations.streams or ()),
        )

    def parse_source(self, body: Any, request: ApiRequest) -> ConnectorInfo:
        s = parse(_PublicSource, body, request)
        return _connector(s.sourceId, s.sourceType, s.configuration)

    def parse_destination(self, body: Any, request: ApiRequest) -> ConnectorInfo:
        d = parse(_PublicDestination, body, request)
        return _connector(d.destinationId, d.destinationType, d.configuration)

    def parse_stream_fields(
        self, body: Any, request: ApiRequest
    ) -> dict[str, tuple[tuple[str, str], ...]]:
        """Stream name -> its top-level fields; the Public API gives no types (``unknown``)."""
        streams = parse(_PublicStreamList, body, request).root
        return {
            s.streamName: tuple(
                (path[0], "unknown") for path in s.propertyFields or () if len(path) == 1
            )
            for s in streams
        }

    def parse_connections(
        self, body: Any, request: ApiRequest
    ) -> tuple[list[AirbyteConnection], str | None]:
        page = parse(_PublicConnections, body, request)
        return [self._connection(c) for c in page.data], page.next or None

    @staticmethod
    def _job(j: _PublicJob) -> AirbyteJob:
        return AirbyteJob(
            job_id=j.jobId,
            connection_id=j.connectionId,
            job_type=j.jobType,
            status=j.status,
            records=j.rowsSynced or 0,
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
