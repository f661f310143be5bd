"""What both API flavours' contracts share: the lenient pydantic base of raw answer shapes,
the parse that turns a contract breach into ``AirbyteResponseError`` naming the endpoint,
and the readers of connector configurations and stream schemas."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from plugins.airbyte_client.errors import AirbyteResponseError
from plugins.airbyte_client.models import describe_validation_error
from plugins.airbyte_client.transport import ApiRequest


class Contract(BaseModel):
    """A raw answer shape: unknown fields are ignored, aliases or names accepted."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


Model = TypeVar("Model", bound=BaseModel)


def parse(model: type[Model], body: Any, request: ApiRequest) -> Model:
    """``body`` as ``model``, or ``AirbyteResponseError`` naming the endpoint and the problem."""
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


def epoch(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


#: Configuration keys that say where a connector's data lives; nothing else (no secret) is kept.
LOCATION_KEYS = ("host", "port", "database", "schema", "project_id", "dataset_id")


def location(configuration: dict[str, Any] | None) -> dict[str, str]:
    config = configuration or {}
    return {
        key: str(config[key])
        for key in LOCATION_KEYS
        if isinstance(config.get(key), str | int) and not isinstance(config.get(key), bool)
    }


def connector_type(display_name: str) -> str:
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
