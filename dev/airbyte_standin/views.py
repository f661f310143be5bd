"""Render the workspace's objects and jobs in the shapes of the Configuration and Public APIs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from dev.airbyte_standin.job_model import Attempt, Job
from dev.airbyte_standin.records import json_schema, stream_spec
from dev.airbyte_standin.seed import (
    CUSTOMER_ID,
    DESTINATION_ID,
    ORGANIZATION_ID,
    SOURCE_TYPES,
    WORKSPACE_ID,
    SeedConnection,
)
from dev.airbyte_standin.warehouse import StreamResult

MASKED = "**********"  # how Airbyte returns a secret configuration value
SOURCE_DEFINITION_IDS = {name: kind.definition_id for name, kind in SOURCE_TYPES.items()}
POSTGRES_DEFINITION_ID = "25c5221d-dce2-4163-ade9-739ef790f503"
SQLITE_DEFINITION_ID = "b76be0a6-27dc-4560-95f6-2623da0bd7b6"

CONFIG_TYPES = {"sync": "sync", "reset": "reset_connection", "clear": "clear", "refresh": "refresh"}
JOB_TYPES_BY_CONFIG_TYPE = {value: key for key, value in CONFIG_TYPES.items()}
CREATED_AT = 1_704_067_200  # 2024-01-01T00:00:00Z, when the seeded connections were created


def iso(epoch: float) -> str:
    """``2024-01-01T00:00:00Z`` form of an epoch timestamp."""
    return datetime.fromtimestamp(int(epoch), UTC).isoformat().replace("+00:00", "Z")


def iso_duration(seconds: float) -> str:
    """ISO 8601 duration such as ``PT1M5S``."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    return f"PT{parts}{secs}S" if secs or not parts else f"PT{parts}"


# -- Configuration API --------------------------------------------------------------------
def workspace_read() -> dict[str, Any]:
    """WorkspaceRead (config-v1.6.0) of the seeded workspace."""
    return {
        "workspaceId": WORKSPACE_ID,
        "customerId": CUSTOMER_ID,
        "organizationId": ORGANIZATION_ID,
        "name": "Default Workspace",
        "slug": "default-workspace",
        "email": "data-team@example.com",
        "initialSetupComplete": True,
        "displaySetupWizard": False,
        "anonymousDataCollection": False,
        "news": False,
        "securityUpdates": False,
        "notifications": [],
        "firstCompletedSync": True,
        "feedbackDone": False,
        "tombstone": False,
    }


def _stream_and_configuration(conn: SeedConnection, stream: str) -> dict[str, Any]:
    cursor = stream_spec(conn.source, stream).cursor
    return {
        "stream": {
            "name": stream,
            "jsonSchema": json_schema(conn.source, stream),
            "supportedSyncModes": ["full_refresh", "incremental"],
            "sourceDefinedCursor": True,
            "defaultCursorField": [cursor],
            "sourceDefinedPrimaryKey": [["id"]],
            "isResumable": True,
        },
        "config": {
            "syncMode": "incremental",
            "cursorField": [cursor],
            "destinationSyncMode": "append",
            "primaryKey": [["id"]],
            "aliasName": stream,
            "selected": True,
            "suggested": True,
        },
    }


def connection_read(conn: SeedConnection) -> dict[str, Any]:
    """ConnectionRead of a connection."""
    return {
        "connectionId": conn.connection_id,
        "name": conn.name,
        "namespaceDefinition": "destination",
        "prefix": conn.prefix,
        "sourceId": conn.source_id,
        "destinationId": DESTINATION_ID,
        "operationIds": [],
        "syncCatalog": {"streams": [_stream_and_configuration(conn, s) for s in conn.streams]},
        "scheduleType": "manual",
        "status": conn.status,
        "breakingChange": False,
        "notifySchemaChanges": False,
        "nonBreakingChangesPreference": "ignore",
        "backfillPreference": "disabled",
        "created_at": CREATED_AT,
        "workspaceId": WORKSPACE_ID,
        "tags": [],
    }


def _actor_version(repository: str) -> dict[str, Any]:
    return {
        "dockerRepository": repository,
        "dockerImageTag": "1.0.0",
        "supportsRefreshes": True,
        "supportState": "supported",
        "isVersionOverrideApplied": False,
        "supportsFileTransfer": False,
        "supportsDataActivation": False,
    }


def source_read(conn: SeedConnection) -> dict[str, Any]:
    """SourceRead of a connection's source (secrets masked, as Airbyte does)."""
    return {
        "sourceDefinitionId": SOURCE_DEFINITION_IDS[conn.source],
        "sourceId": conn.source_id,
        "workspaceId": WORKSPACE_ID,
        "connectionConfiguration": {"start_date": "2024-01-01T00:00:00Z", "api_key": MASKED},
        "name": conn.source_title,
        "sourceName": conn.source_title,
        "createdAt": CREATED_AT,
    }


def destination_read(warehouse_url: str) -> dict[str, Any]:
    """DestinationRead of the warehouse the stand-in writes to: Postgres, or SQLite locally."""
    url = sa.engine.make_url(warehouse_url)
    if url.get_backend_name() == "postgresql":
        name, definition = "Postgres", POSTGRES_DEFINITION_ID
        configuration: dict[str, Any] = {
            "host": url.host,
            "port": url.port or 5432,
            "database": url.database,
            "schema": "public",
            "username": url.username,
            "password": MASKED,
        }
    else:
        name, definition = "SQLite", SQLITE_DEFINITION_ID
        configuration = {"destination_path": url.database}
    return {
        "destinationDefinitionId": definition,
        "destinationId": DESTINATION_ID,
        "workspaceId": WORKSPACE_ID,
        "connectionConfiguration": configuration,
        "name": "Warehouse",
        "destinationName": name,
        "createdAt": CREATED_AT,
    }


def web_backend_connection_read(conn: SeedConnection, warehouse_url: str) -> dict[str, Any]:
    """WebBackendConnectionRead: the connection with its source and destination."""
    destination = destination_read(warehouse_url)
    base = connection_read(conn)
    del base["workspaceId"], base["created_at"]
    return {
        **base,
        "source": source_read(conn),
        "destination": destination,
        "isSyncing": False,
        "schemaChange": "no_change",
        "notifySchemaChangesByEmail": False,
        "sourceActorDefinitionVersion": _actor_version(f"airbyte/source-{conn.source}"),
        "destinationActorDefinitionVersion": _actor_version(
            f"airbyte/destination-{destination['destinationName'].lower()}"
        ),
        "onDemandEnabled": False,
        "createdAt": CREATED_AT,
    }


def _stats(records: int, size: int) -> dict[str, int]:
    return {
        "recordsEmitted": records,
        "bytesEmitted": size,
        "recordsCommitted": records,
        "bytesCommitted": size,
        "recordsRejected": 0,
    }


def _stream_stats(results: list[StreamResult]) -> list[dict[str, Any]]:
    return [{"streamName": r.stream, **_stats(r.records, r.bytes)} for r in results]


def job_read(job: Job) -> dict[str, Any]:
    """JobRead of a job."""
    body: dict[str, Any] = {
        "id": job.id,
        "configType": CONFIG_TYPES[job.job_type],
        "configId": job.connection_id,
        "createdAt": int(job.created_at),
        "updatedAt": int(job.updated_at),
        "status": job.status,
        "aggregatedStats": _stats(job.records, job.bytes),
        "streamAggregatedStats": _stream_stats(job.streams),
    }
    if job.started_at is not None:
        body["startedAt"] = int(job.started_at)
    if job.job_type != "sync":  # the job store records the streams of every other job
        streams = job.streams_selected or []
        body["resetConfig"] = {"streamsToReset": [{"name": s} for s in streams]}
    return body


def attempt_read(attempt: Attempt) -> dict[str, Any]:
    """AttemptRead of an attempt."""
    body: dict[str, Any] = {
        "id": attempt.number,
        "status": attempt.status,
        "createdAt": int(attempt.created_at),
        "updatedAt": int(attempt.updated_at),
        "bytesSynced": attempt.bytes,
        "recordsSynced": attempt.records,
        "totalStats": _stats(attempt.records, attempt.bytes),
        "streamStats": [
            {"streamName": r.stream, "stats": _stats(r.records, r.bytes)} for r in attempt.streams
        ],
    }
    if attempt.ended_at is not None:
        body["endedAt"] = int(attempt.ended_at)
    if attempt.failure_reason:
        body["failureSummary"] = {
            "failures": [
                {
                    "failureOrigin": "source",
                    "failureType": "system_error",
                    "externalMessage": attempt.failure_reason,
                    "internalMessage": attempt.failure_reason,
                    "retryable": True,
                    "timestamp": int((attempt.ended_at or attempt.updated_at) * 1000),
                }
            ],
            "partialSuccess": False,
        }
    return body


def job_info_read(job: Job) -> dict[str, Any]:
    """JobInfoRead: the job and its attempts with (short) logs."""
    return {
        "job": job_read(job),
        "attempts": [
            {
                "attempt": attempt_read(a),
                "logType": "formatted",
                "logs": {"logLines": [f"attempt {a.number} of job {job.id}: {a.status}"]},
            }
            for a in job.attempts
        ],
    }


def job_with_attempts_read(job: Job) -> dict[str, Any]:
    """JobWithAttemptsRead, as in a JobReadList."""
    return {"job": job_read(job), "attempts": [attempt_read(a) for a in job.attempts]}


# -- Public API ---------------------------------------------------------------------------
def job_response(job: Job) -> dict[str, Any]:
    """Public API JobResponse."""
    return {
        "jobId": job.id,
        "status": job.status,
        "jobType": job.job_type,
        "startTime": iso(job.created_at),
        "connectionId": job.connection_id,
        "lastUpdatedAt": iso(job.updated_at),
        "duration": iso_duration(job.updated_at - job.created_at),
        "bytesSynced": job.bytes,
        "rowsSynced": job.records,
    }


def source_response(conn: SeedConnection) -> dict[str, Any]:
    """Public API SourceResponse of a connection's source (secrets masked)."""
    read = source_read(conn)
    return {
        "sourceId": read["sourceId"],
        "name": read["name"],
        "sourceType": conn.source,
        "definitionId": read["sourceDefinitionId"],
        "workspaceId": WORKSPACE_ID,
        "configuration": read["connectionConfiguration"],
        "createdAt": CREATED_AT,
    }


def destination_response(warehouse_url: str) -> dict[str, Any]:
    """Public API DestinationResponse of the warehouse the stand-in writes to."""
    read = destination_read(warehouse_url)
    return {
        "destinationId": read["destinationId"],
        "name": read["name"],
        "destinationType": read["destinationName"].lower(),
        "definitionId": read["destinationDefinitionId"],
        "workspaceId": WORKSPACE_ID,
        "configuration": read["connectionConfiguration"],
        "createdAt": CREATED_AT,
    }


def stream_properties(conn: SeedConnection) -> list[dict[str, Any]]:
    """Public API StreamPropertiesResponse of a source: each stream and its fields."""
    return [
        {
            "streamName": stream,
            "syncModes": ["full_refresh_overwrite", "incremental_append"],
            "defaultCursorField": [stream_spec(conn.source, stream).cursor],
            "sourceDefinedCursorField": True,
            "sourceDefinedPrimaryKey": [["id"]],
            "propertyFields": [[name] for name in json_schema(conn.source, stream)["properties"]],
        }
        for stream in conn.streams
    ]


def connection_response(conn: SeedConnection) -> dict[str, Any]:
    """Public API ConnectionResponse."""
    return {
        "connectionId": conn.connection_id,
        "name": conn.name,
        "sourceId": conn.source_id,
        "destinationId": DESTINATION_ID,
        "workspaceId": WORKSPACE_ID,
        "status": conn.status,
        "schedule": {"scheduleType": "manual"},
        "nonBreakingSchemaUpdatesBehavior": "ignore",
        "namespaceDefinition": "destination",
        "prefix": conn.prefix,
        "configurations": {
            "streams": [
                {
                    "name": s,
                    "syncMode": "incremental_append",
                    "cursorField": [stream_spec(conn.source, s).cursor],
                    "primaryKey": [["id"]],
                }
                for s in conn.streams
            ]
        },
        "createdAt": CREATED_AT,
        "tags": [],
    }
