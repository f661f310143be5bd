"""Error bodies: Configuration API exception infos and Public API problem bodies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.responses import JSONResponse

PROBLEM_CONTENT_TYPE = "application/problem+json"
PUBLIC_PREFIX = "/api/public/v1"
ERRORS_URL = "https://reference.airbyte.com/reference/errors"

# status -> (problem title, type fragment), after api-problems.yaml
PROBLEM_KINDS: dict[int, tuple[str, str]] = {
    400: ("bad-request", "#bad-request"),
    401: ("invalid-api-key", "#invalid-api-key"),
    403: ("forbidden", "#forbidden"),
    404: ("resource-not-found", "#resource-not-found"),
    409: ("state-conflict", "#409-state-conflict"),
    422: ("unprocessable-entity", "#unprocessable-entity"),
    429: ("rate-limited", "#rate-limited"),
    500: ("unexpected-problem", ""),
    502: ("bad-gateway", ""),
    503: ("service-unavailable", ""),
    504: ("gateway-timeout", ""),
}


@dataclass
class ApiError(Exception):
    """An error answer; rendered by ``render_error`` in the shape of the API asked."""

    status: int
    message: str
    resource_id: str | None = None
    resource_type: str | None = None
    property_path: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"


def is_public(path: str) -> bool:
    """Whether ``path`` belongs to the Public API."""
    return path.startswith(PUBLIC_PREFIX)


def problem_body(status: int, detail: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """A problem body (RFC 9457) as in api-problems.yaml."""
    title, fragment = PROBLEM_KINDS.get(status, ("unexpected-problem", ""))
    return {
        "status": status,
        "type": ERRORS_URL + fragment,
        "title": title,
        "detail": detail,
        "data": data if data is not None else {"message": detail},
    }


def config_error_body(error: ApiError) -> dict[str, Any]:
    """Configuration API body: NotFoundKnownExceptionInfo, InvalidInputExceptionInfo or else."""
    if error.status == 404:
        return {
            "id": error.resource_id,
            "message": error.message,
            "exceptionClassName": "io.airbyte.commons.server.errors.IdNotFoundKnownException",
            "exceptionStack": [],
        }
    if error.status == 422:
        return {
            "message": error.message,
            "exceptionClassName": "io.airbyte.commons.server.errors.BadObjectSchemaKnownException",
            "exceptionStack": [],
            "validationErrors": [
                {"propertyPath": error.property_path or "body", "message": error.message}
            ],
        }
    # Undeclared in the spec (401, 409, 429, 5xx): a problem body that also carries `message`.
    return {**problem_body(error.status, error.message), "message": error.message}


def render_error(path: str, error: ApiError) -> JSONResponse:
    """The HTTP response for ``error`` on the API ``path`` belongs to."""
    if is_public(path):
        data: dict[str, Any] | None = None
        if error.status == 404 and error.resource_id is not None:
            data = {"resourceId": error.resource_id, "resourceType": error.resource_type or ""}
        return JSONResponse(
            problem_body(error.status, error.message, data),
            status_code=error.status,
            headers=error.headers,
            media_type=PROBLEM_CONTENT_TYPE,
        )
    return JSONResponse(config_error_body(error), status_code=error.status, headers=error.headers)
