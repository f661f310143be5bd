"""The Configuration API (``<server>/api/v1``, every call a JSON POST; ``config.yaml``):
requests, raw answer shapes and their parsing into the shared models."""

from __future__ import annotations

from typing import Any

from plugins.airbyte_client.api.base import (
    Contract,
    connector_type,
    location,
    parse,
    schema_fields,
)
from plugins.airbyte_client.api.config_jobs import (
    JOB_TYPE_TO_CONFIG_TYPE,
    parse_job_info,
    parse_job_light,
    parse_job_list,
)
from plugins.airbyte_client.config import ApiFlavour
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
    name: str | None = None
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


_CONFIG_TRIGGER_PATH = {
    JobType.SYNC: "/connections/sync",
    JobType.RESET: "/connections/reset",
    JobType.CLEAR: "/connections/clear",
    JobType.REFRESH: "/connections/refresh",
}


class ConfigApi:
    """Configuration API v1: ``<server>/api/v1``, JSON POSTs."""

    flavour = ApiFlavour.CONFIG
    health = ApiRequest("GET", "/health")
    token_as_form = False

    def trigger(
        self,
        connection_id: str,
        job_type: JobType,
        streams: tuple[str, ...] = (),
        refresh_mode: str | None = None,
    ) -> ApiRequest:
        """The request that starts the job: of ``streams`` only when given (per-stream
        reset and clear, a refresh of some streams); a refresh merges unless told to
        truncate."""
        body: dict[str, Any] = {"connectionId": connection_id}
        path = _CONFIG_TRIGGER_PATH[job_type]
        if job_type is JobType.REFRESH:
            body["refreshMode"] = (refresh_mode or "merge").capitalize()
        elif streams:
            path += "/stream"
        if streams:
            body["streams"] = [{"streamName": name} for name in streams]
        return ApiRequest("POST", path, body, subject=f"connection {connection_id}")

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
                "configTypes": [JOB_TYPE_TO_CONFIG_TYPE[job_type]],
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

    parse_job = staticmethod(parse_job_info)
    parse_polled_job = staticmethod(parse_job_light)
    parse_jobs = staticmethod(parse_job_list)

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
            name=c.name,
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
                for s in _selected(c.syncCatalog)
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
            streams=tuple(s.stream.name for s in _selected(c.syncCatalog)),
            schedule_type=c.scheduleType,
        )


def _selected(catalog: _ConfigCatalog) -> list[Any]:
    """The catalog's streams the connection syncs (a stream without a config is synced)."""
    return [s for s in catalog.streams if s.config is None or s.config.selected is not False]
