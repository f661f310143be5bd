"""Public API (``/api/public/v1``): jobs, connections, sources, destinations, streams,
health and the token endpoint."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request

from dev.airbyte_standin import views
from dev.airbyte_standin.auth import check_authorization
from dev.airbyte_standin.errors import PUBLIC_PREFIX, ApiError
from dev.airbyte_standin.job_model import JOB_TYPES, Job
from dev.airbyte_standin.jobs import ConflictError, UnknownJobError
from dev.airbyte_standin.seed import DESTINATION_ID, WORKSPACE_ID
from dev.airbyte_standin.state import (
    Standin,
    get_standin,
    json_object,
    require_uuid,
)

BAD = 400
JOB_STATUSES = ("pending", "queued", "running", "incomplete", "failed", "succeeded", "cancelled")
ORDER_BY = re.compile(r"^(createdAt|updatedAt)\|(ASC|DESC)$")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100

StandinDep = Annotated[Standin, Depends(get_standin)]


def authorized(request: Request, standin: StandinDep) -> None:
    """Dependency enforcing the configured auth mode."""
    check_authorization(standin.config, standin.tokens, request.headers.get("authorization"))


open_router = APIRouter(prefix=PUBLIC_PREFIX)
router = APIRouter(prefix=PUBLIC_PREFIX, dependencies=[Depends(authorized)])


@open_router.get("/health")
def health() -> dict[str, bool]:
    return {"available": True}


async def _token_request(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
    return await json_object(request, BAD)


@open_router.post("/applications/token")
async def application_token(request: Request, standin: StandinDep) -> dict[str, Any]:
    form = await _token_request(request)
    grant = form.get("grant_type", form.get("grant-type", "client_credentials"))
    if grant != "client_credentials":
        raise ApiError(BAD, f"Unsupported grant_type {grant!r}; use client_credentials.")
    client_id, client_secret = form.get("client_id"), form.get("client_secret")
    if not isinstance(client_id, str) or not isinstance(client_secret, str):
        raise ApiError(BAD, "'client_id' and 'client_secret' are required.")
    token = standin.tokens.issue(client_id, client_secret)
    # The spec's enum is "Bearer"; clients should compare case-insensitively.
    return {"access_token": token, "token_type": "Bearer", "expires_in": standin.tokens.expires_in}


# -- jobs ---------------------------------------------------------------------------------
@router.post("/jobs")
async def create_job(request: Request, standin: StandinDep) -> dict[str, Any]:
    payload = await json_object(request, BAD)
    connection_id = require_uuid(payload.get("connectionId"), "connectionId", BAD)
    job_type = payload.get("jobType")
    if job_type not in JOB_TYPES:
        raise ApiError(BAD, f"'jobType' must be one of {', '.join(JOB_TYPES)}.")
    standin.find_connection(connection_id)
    try:
        job = standin.jobs.create(connection_id, job_type)
    except ConflictError as exc:
        raise ApiError(409, str(exc)) from None
    with standin.jobs.lock:
        return views.job_response(job)


def _job_id(raw: str) -> int:
    if not re.fullmatch(r"-?\d{1,18}", raw):
        raise ApiError(BAD, f"Job id must be an integer, got {raw!r}.")
    return int(raw)


def _job_or_404(standin: Standin, job_id: int, cancel: bool = False) -> dict[str, Any]:
    try:
        with standin.jobs.lock:
            job = standin.jobs.cancel(job_id) if cancel else standin.jobs.get(job_id)
            return views.job_response(job)
    except UnknownJobError:
        raise ApiError(
            404,
            f"Could not find job with id: {job_id}",
            resource_id=str(job_id),
            resource_type="job",
        ) from None


@router.get("/jobs/{job_id}")
def get_job(job_id: str, standin: StandinDep) -> dict[str, Any]:
    return _job_or_404(standin, _job_id(job_id))


@router.delete("/jobs/{job_id}")
def cancel_job(job_id: str, standin: StandinDep) -> dict[str, Any]:
    return _job_or_404(standin, _job_id(job_id), cancel=True)


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"\d+", raw) or not low <= int(raw) <= high:
        raise ApiError(BAD, f"'{name}' must be an integer between {low} and {high}.")
    return int(raw)


def _page_links(request: Request, offset: int, limit: int, total: int) -> dict[str, str]:
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("limit", "offset")]

    def link(new_offset: int) -> str:
        query = "&".join(f"{k}={v}" for k, v in [*params, ("limit", limit), ("offset", new_offset)])
        return str(request.url.replace(query=query))

    links = {}
    if offset + limit < total:
        links["next"] = link(offset + limit)
    if offset > 0:
        links["previous"] = link(max(offset - limit, 0))
    return links


def _job_filter(request: Request) -> dict[str, Any]:
    query = request.query_params
    wanted: dict[str, Any] = {}
    if "connectionId" in query:
        wanted["connection_id"] = require_uuid(query["connectionId"], "connectionId", BAD)
    if "jobType" in query:
        if query["jobType"] not in JOB_TYPES:
            raise ApiError(BAD, f"'jobType' must be one of {', '.join(JOB_TYPES)}.")
        wanted["job_type"] = query["jobType"]
    if "status" in query:
        if query["status"] not in JOB_STATUSES:
            raise ApiError(BAD, f"'status' must be one of {', '.join(JOB_STATUSES)}.")
        wanted["status"] = query["status"]
    return wanted


@router.get("/jobs")
def list_jobs(request: Request, standin: StandinDep) -> dict[str, Any]:
    limit = _int_param(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int_param(request, "offset", 0, 0, 2**31 - 1)
    order_by = request.query_params.get("orderBy", "createdAt|DESC")
    match = ORDER_BY.match(order_by)
    if not match:
        raise ApiError(BAD, "'orderBy' must look like createdAt|DESC or updatedAt|ASC.")
    wanted = _job_filter(request)
    workspace_ids = request.query_params.getlist("workspaceIds")
    with standin.jobs.lock:
        jobs = [
            job
            for job in standin.jobs.list()
            if all(getattr(job, key) == value for key, value in wanted.items())
            and (not workspace_ids or WORKSPACE_ID in workspace_ids)
        ]
        field = "created_at" if match.group(1) == "createdAt" else "updated_at"

        def key(job: Job) -> tuple[float, int]:
            return getattr(job, field), job.id

        jobs.sort(key=key, reverse=match.group(2) == "DESC")
        data = [views.job_response(job) for job in jobs[offset : offset + limit]]
    return {"data": data, **_page_links(request, offset, limit, len(jobs))}


# -- connections --------------------------------------------------------------------------
def _bool_param(request: Request, name: str) -> bool:
    raw = request.query_params.get(name, "false")
    if raw not in ("true", "false"):
        raise ApiError(BAD, f"'{name}' must be true or false.")
    return raw == "true"


@router.get("/connections")
def list_connections(request: Request, standin: StandinDep) -> dict[str, Any]:
    """A page of the connections (deleted ones with ``includeDeleted=true``), with links."""
    limit = _int_param(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int_param(request, "offset", 0, 0, 2**31 - 1)
    workspace_ids = [
        require_uuid(w, "workspaceIds", BAD) for w in request.query_params.getlist("workspaceIds")
    ]
    include_deleted = _bool_param(request, "includeDeleted")
    connections = (
        standin.connections.listed(include_deleted)
        if not workspace_ids or WORKSPACE_ID in workspace_ids
        else []
    )
    data = [views.connection_response(conn) for conn in connections[offset : offset + limit]]
    return {"data": data, **_page_links(request, offset, limit, len(connections))}


@router.get("/connections/{connection_id}")
def get_connection(connection_id: str, standin: StandinDep) -> dict[str, Any]:
    return views.connection_response(
        standin.find_connection(require_uuid(connection_id, "connectionId", BAD))
    )


# -- sources, destinations, streams -------------------------------------------------------
@router.get("/sources/{source_id}")
def get_source(source_id: str, standin: StandinDep) -> dict[str, Any]:
    return views.source_response(standin.find_source(require_uuid(source_id, "sourceId", BAD)))


@router.get("/destinations/{destination_id}")
def get_destination(destination_id: str, standin: StandinDep) -> dict[str, Any]:
    if require_uuid(destination_id, "destinationId", BAD) != DESTINATION_ID:
        raise ApiError(
            404,
            f"Could not find destination with id: {destination_id}",
            resource_id=destination_id,
            resource_type="destination",
        )
    return views.destination_response(standin.config.warehouse_url)


@router.get("/streams")
def get_streams(request: Request, standin: StandinDep) -> list[dict[str, Any]]:
    source_id = request.query_params.get("sourceId")
    if source_id is None:
        raise ApiError(BAD, "'sourceId' is required.")
    return views.stream_properties(standin.find_source(require_uuid(source_id, "sourceId", BAD)))
