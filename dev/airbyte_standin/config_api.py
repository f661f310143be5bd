"""Configuration API (``/api/v1``): every call a POST with a JSON body, plus GET health."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from dev.airbyte_standin import views
from dev.airbyte_standin.auth import check_authorization
from dev.airbyte_standin.errors import ApiError
from dev.airbyte_standin.job_model import JobType
from dev.airbyte_standin.jobs import ConflictError, UnknownJobError
from dev.airbyte_standin.seed import WORKSPACE_ID
from dev.airbyte_standin.state import (
    Standin,
    get_standin,
    json_object,
    require_int,
    require_uuid,
)

INVALID = 422
DEFAULT_PAGE_SIZE = 200


async def body(request: Request) -> dict[str, Any]:
    """The JSON object body of a Configuration API call (422 otherwise)."""
    return await json_object(request, INVALID)


StandinDep = Annotated[Standin, Depends(get_standin)]
Body = Annotated[dict[str, Any], Depends(body)]


def authorized(request: Request, standin: StandinDep) -> None:
    """Dependency enforcing the configured auth mode."""
    check_authorization(standin.config, standin.tokens, request.headers.get("authorization"))


open_router = APIRouter(prefix="/api/v1")
router = APIRouter(prefix="/api/v1", dependencies=[Depends(authorized)])


@open_router.get("/health")
def health() -> dict[str, bool]:
    return {"available": True}


@open_router.post("/applications/token")
def application_token(payload: Body, standin: StandinDep) -> dict[str, Any]:
    client_id, client_secret = payload.get("client_id"), payload.get("client_secret")
    if not isinstance(client_id, str) or not isinstance(client_secret, str):
        raise ApiError(
            INVALID, "'client_id' and 'client_secret' are required.", property_path="client_id"
        )
    token = standin.tokens.issue(client_id, client_secret)
    return {"access_token": token, "token_type": "Bearer", "expires_in": standin.tokens.expires_in}


@router.post("/workspaces/list")
def list_workspaces() -> dict[str, Any]:
    return {"workspaces": [views.workspace_read()]}


def _flag(payload: dict[str, Any], name: str) -> bool:
    value = payload.get(name, False)
    if not isinstance(value, bool):
        raise ApiError(INVALID, f"'{name}' must be a boolean.", property_path=name)
    return value


@router.post("/connections/list")
def list_connections(payload: Body, standin: StandinDep) -> dict[str, Any]:
    """Every connection of the workspace, unpaged as in Airbyte (deleted ones on request)."""
    workspace_id = require_uuid(payload.get("workspaceId"), "workspaceId", INVALID)
    if workspace_id != WORKSPACE_ID:
        raise ApiError(
            404, f"Could not find workspace with id: {workspace_id}", resource_id=workspace_id
        )
    listed = standin.connections.listed(include_deleted=_flag(payload, "includeTombstone"))
    return {"connections": [views.connection_read(conn) for conn in listed]}


@router.post("/connections/list_paginated")
def list_connections_paginated(payload: Body, standin: StandinDep) -> dict[str, Any]:
    """A page (``pagination.pageSize`` from ``rowOffset``) of the workspaces' connections."""
    workspace_ids = payload.get("workspaceIds")
    if not isinstance(workspace_ids, list):
        raise ApiError(INVALID, "'workspaceIds' is required and must be a list.")
    wanted = {require_uuid(w, "workspaceIds", INVALID) for w in workspace_ids}
    require_uuid(payload.get("userId"), "userId", INVALID)
    page_size, offset = _pagination(payload)
    listed = (
        standin.connections.listed(include_deleted=_flag(payload, "includeDeleted"))
        if WORKSPACE_ID in wanted
        else []
    )
    return {"connections": [views.connection_read(c) for c in listed[offset : offset + page_size]]}


@router.post("/connections/get")
def get_connection(payload: Body, standin: StandinDep) -> dict[str, Any]:
    connection_id = require_uuid(payload.get("connectionId"), "connectionId", INVALID)
    return views.connection_read(standin.find_connection(connection_id))


@router.post("/web_backend/connections/get")
def web_backend_get_connection(payload: Body, standin: StandinDep) -> dict[str, Any]:
    connection_id = require_uuid(payload.get("connectionId"), "connectionId", INVALID)
    return views.web_backend_connection_read(
        standin.find_connection(connection_id), standin.config.warehouse_url
    )


@router.post("/sources/get")
def get_source(payload: Body, standin: StandinDep) -> dict[str, Any]:
    source_id = require_uuid(payload.get("sourceId"), "sourceId", INVALID)
    return views.source_read(standin.find_source(source_id))


def _start_job(
    payload: dict[str, Any], standin: Standin, job_type: JobType, *, per_stream: bool = False
) -> dict[str, Any]:
    connection_id = require_uuid(payload.get("connectionId"), "connectionId", INVALID)
    connection = standin.find_connection(connection_id)
    streams = _streams(payload, connection.streams) if per_stream else None
    mode = None
    if job_type == "refresh":
        mode = payload.get("refreshMode")
        if mode not in ("Truncate", "Merge"):
            raise ApiError(INVALID, "'refreshMode' must be Truncate or Merge.")
        mode = mode.lower()
    try:
        job = standin.jobs.create(connection_id, job_type, streams, mode)
    except ConflictError as exc:
        raise ApiError(409, str(exc)) from None
    with standin.jobs.lock:
        return views.job_info_read(job)


@router.post("/connections/sync")
def sync_connection(payload: Body, standin: StandinDep) -> dict[str, Any]:
    return _start_job(payload, standin, "sync")


@router.post("/connections/reset")
def reset_connection(payload: Body, standin: StandinDep) -> dict[str, Any]:
    return _start_job(payload, standin, "reset")


@router.post("/connections/clear")
def clear_connection(payload: Body, standin: StandinDep) -> dict[str, Any]:
    return _start_job(payload, standin, "clear")


@router.post("/connections/clear/stream")
def clear_streams(payload: Body, standin: StandinDep) -> dict[str, Any]:
    return _start_job(payload, standin, "clear", per_stream=True)


@router.post("/connections/reset/stream")
def reset_streams(payload: Body, standin: StandinDep) -> dict[str, Any]:
    return _start_job(payload, standin, "reset", per_stream=True)


@router.post("/connections/refresh")
def refresh_connection(payload: Body, standin: StandinDep) -> dict[str, Any]:
    """JobReadResponse (the job without attempts), as Airbyte answers a refresh."""
    answer = _start_job(payload, standin, "refresh", per_stream=bool(payload.get("streams")))
    return {"job": answer["job"]}


def _streams(payload: dict[str, Any], known: tuple[str, ...]) -> list[str]:
    """The stream names of a per-stream request; 422 for an unknown or malformed one."""
    streams = payload.get("streams")
    if not isinstance(streams, list) or not streams:
        raise ApiError(INVALID, "'streams' must be a non-empty list of {streamName}.")
    names = []
    for stream in streams:
        name = stream.get("streamName") if isinstance(stream, dict) else None
        if name not in known:
            raise ApiError(INVALID, f"Unknown stream {name!r}; the connection has {list(known)}.")
        names.append(name)
    return names


def _job_id(payload: dict[str, Any]) -> int:
    return require_int(payload.get("id"), "id", INVALID)


def _not_found(job_id: int) -> ApiError:
    return ApiError(
        404, f"Could not find job with id: {job_id}", resource_id=str(job_id), resource_type="job"
    )


@router.post("/jobs/get")
def get_job(payload: Body, standin: StandinDep) -> dict[str, Any]:
    job_id = _job_id(payload)
    try:
        with standin.jobs.lock:
            return views.job_info_read(standin.jobs.get(job_id))
    except UnknownJobError:
        raise _not_found(job_id) from None


@router.post("/jobs/get_light")
def get_job_light(payload: Body, standin: StandinDep) -> dict[str, Any]:
    job_id = _job_id(payload)
    try:
        with standin.jobs.lock:
            return {"job": views.job_read(standin.jobs.get(job_id))}
    except UnknownJobError:
        raise _not_found(job_id) from None


@router.post("/jobs/cancel")
def cancel_job(payload: Body, standin: StandinDep) -> dict[str, Any]:
    job_id = _job_id(payload)
    try:
        with standin.jobs.lock:
            return views.job_info_read(standin.jobs.cancel(job_id))
    except UnknownJobError:
        raise _not_found(job_id) from None


def _pagination(payload: dict[str, Any]) -> tuple[int, int]:
    """``pagination.pageSize`` (default DEFAULT_PAGE_SIZE) and ``rowOffset`` (default 0)."""
    pagination = payload.get("pagination") or {}
    if not isinstance(pagination, dict):
        raise ApiError(INVALID, "'pagination' must be an object.", property_path="pagination")
    page_size = pagination.get("pageSize", DEFAULT_PAGE_SIZE)
    offset = pagination.get("rowOffset", 0)
    for name, value in (("pageSize", page_size), ("rowOffset", offset)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ApiError(INVALID, f"'pagination.{name}' must be a non-negative integer.")
    return page_size, offset


@router.post("/jobs/list")
def list_jobs(payload: Body, standin: StandinDep) -> dict[str, Any]:
    config_types = payload.get("configTypes")
    if not isinstance(config_types, list) or not all(isinstance(t, str) for t in config_types):
        raise ApiError(
            INVALID, "'configTypes' is required and must be a list.", property_path="configTypes"
        )
    config_id = payload.get("configId")
    statuses = payload.get("statuses")
    page_size, offset = _pagination(payload)
    with standin.jobs.lock:
        jobs = [
            job
            for job in reversed(standin.jobs.list())
            if views.CONFIG_TYPES[job.job_type] in config_types
            and (config_id is None or job.connection_id == config_id)
            and (not statuses or job.status in statuses)
        ]
        page = jobs[offset : offset + page_size]
        return {
            "jobs": [views.job_with_attempts_read(job) for job in page],
            "totalJobCount": len(jobs),
        }
