"""The runtime state of one stand-in: settings, connections, warehouse, jobs, tokens, faults,
violations."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from dev.airbyte_standin.auth import TokenIssuer
from dev.airbyte_standin.config import StandinConfig
from dev.airbyte_standin.contract import ViolationLog
from dev.airbyte_standin.errors import ApiError
from dev.airbyte_standin.faults import Fault, FaultRegistry
from dev.airbyte_standin.jobs import JobStore
from dev.airbyte_standin.journal import JobJournal
from dev.airbyte_standin.seed import SeedConnection, build_seed
from dev.airbyte_standin.warehouse import Warehouse
from dev.airbyte_standin.workspace import ConnectionRegistry


@dataclass
class Standin:
    """Everything the request handlers share."""

    config: StandinConfig
    connections: ConnectionRegistry
    warehouse: Warehouse
    jobs: JobStore
    tokens: TokenIssuer
    faults: FaultRegistry
    violations: ViolationLog

    @classmethod
    def from_config(cls, config: StandinConfig) -> Standin:
        warehouse = Warehouse(config.warehouse_url)
        connections = ConnectionRegistry(build_seed(config.extra_connections))
        standin = cls(
            config=config,
            connections=connections,
            warehouse=warehouse,
            jobs=JobStore(
                warehouse,
                connections,
                config.pending_seconds,
                config.running_seconds,
                config.rows_per_stream,
                JobJournal(config.state_url) if config.state_url else None,
            ),
            tokens=TokenIssuer(config.client_id, config.client_secret, config.token_expires_in),
            faults=FaultRegistry(),
            violations=ViolationLog(),
        )
        for spec in config.faults:
            standin.faults.add(Fault(**spec))
        return standin

    def reset(self) -> None:
        """Forget faults, behaviours, the request log, violations, jobs and the connections'
        changes made through the admin API (not the warehouse)."""
        self.faults.reset()
        self.jobs.reset()
        self.connections.restore()
        self.violations.take(clear=True)

    def find_connection(self, connection_id: str) -> SeedConnection:
        """The connection (a deleted one too, as Airbyte answers for it), or a 404 ApiError."""
        found = self.connections.find(connection_id)
        if found is None:
            raise ApiError(
                404,
                f"Could not find connection with id: {connection_id}",
                resource_id=connection_id,
                resource_type="connection",
            )
        return found

    def find_source(self, source_id: str) -> SeedConnection:
        """The connection whose source is ``source_id``, or a 404 ApiError."""
        found = self.connections.by_source(source_id)
        if found is None:
            raise ApiError(
                404,
                f"Could not find source with id: {source_id}",
                resource_id=source_id,
                resource_type="source",
            )
        return found


def get_standin(request: Request) -> Standin:
    """FastAPI dependency: the app's Standin."""
    return request.app.state.standin


async def json_object(request: Request, error_status: int) -> dict[str, Any]:
    """The request body as a JSON object, or ApiError(error_status)."""
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        raise ApiError(error_status, "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(error_status, "The request body must be a JSON object.")
    return body


def require_uuid(value: Any, field: str, error_status: int) -> str:
    """``value`` as a canonical UUID string, or ApiError(error_status)."""
    if not isinstance(value, str):
        raise ApiError(
            error_status, f"'{field}' is required and must be a UUID string.", property_path=field
        )
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ApiError(
            error_status, f"'{field}' is not a valid UUID: {value!r}.", property_path=field
        ) from None


def require_int(value: Any, field: str, error_status: int) -> int:
    """``value`` as an int (bools refused), or ApiError(error_status)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(
            error_status, f"'{field}' is required and must be an integer.", property_path=field
        )
    return value
