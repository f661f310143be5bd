"""Admin API (``/_standin``, never behind auth): faults, job behaviours, connections, logs,
reset."""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from dev.airbyte_standin.faults import Fault
from dev.airbyte_standin.job_model import BehaviourRule
from dev.airbyte_standin.seed import SeedConnection
from dev.airbyte_standin.state import Standin, get_standin, json_object
from dev.airbyte_standin.workspace import UnknownConnectionError

router = APIRouter(prefix="/_standin")
StandinDep = Annotated[Standin, Depends(get_standin)]


def _bad(message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=400)


@router.post("/faults", response_model=None)
async def add_fault(request: Request, standin: StandinDep) -> dict[str, Any] | JSONResponse:
    spec = await json_object(request, 400)
    try:
        fault = Fault(**spec)
    except (TypeError, ValueError) as exc:
        return _bad(str(exc))
    standin.faults.add(fault)
    return {"faults": standin.faults.pending()}


@router.get("/faults")
def list_faults(standin: StandinDep) -> dict[str, Any]:
    return {"faults": standin.faults.pending()}


@router.delete("/faults")
def clear_faults(standin: StandinDep) -> dict[str, Any]:
    """Drop every queued fault (the request log stays)."""
    return {"cleared": standin.faults.clear()}


@router.post("/durations", response_model=None)
async def set_durations(request: Request, standin: StandinDep) -> dict[str, Any] | JSONResponse:
    """``{"pending_seconds": s, "running_seconds": s}`` (either), or ``{"running_seconds": s,
    "connection_id": id}`` for one connection's jobs (``{"connection_id": id}``: the general
    setting again); jobs in flight follow."""
    spec = await json_object(request, 400)
    unknown = set(spec) - {"pending_seconds", "running_seconds", "connection_id"}
    if unknown:
        return _bad(
            f"unknown settings {sorted(unknown)}; use pending_seconds, running_seconds, "
            "connection_id"
        )
    try:
        standin.jobs.set_durations(**spec)
    except (TypeError, ValueError) as exc:
        return _bad(str(exc))
    except UnknownConnectionError as exc:
        return _bad(f"unknown connection {exc}")
    jobs = standin.jobs
    return {"pending_seconds": jobs.pending_seconds, "running_seconds": jobs.running_seconds}


@router.post("/job-behaviour", response_model=None)
async def set_job_behaviour(request: Request, standin: StandinDep) -> dict[str, Any] | JSONResponse:
    spec = await json_object(request, 400)
    try:
        standin.jobs.add_rule(BehaviourRule(**spec))
    except (TypeError, ValueError) as exc:
        return _bad(str(exc))
    return {"ok": True}


@router.post("/tokens/expire")
def expire_tokens(standin: StandinDep) -> dict[str, Any]:
    return {"expired": standin.tokens.expire_all()}


@router.get("/requests")
def served_requests(standin: StandinDep) -> list[dict[str, Any]]:
    return standin.faults.requests()


@router.get("/jobs")
def all_jobs(standin: StandinDep) -> list[dict[str, Any]]:
    with standin.jobs.lock:
        return [job.summary() for job in standin.jobs.list()]


@router.get("/contract-violations")
def contract_violations(standin: StandinDep, clear: bool = False) -> list[dict[str, Any]]:
    return standin.violations.take(clear=clear)


@router.get("/info")
def info(standin: StandinDep) -> dict[str, Any]:
    config = standin.config
    return {
        "pid": os.getpid(),  # which process answers on this port (serving.wait_until_healthy)
        "auth": config.auth,
        "warehouse_url": config.warehouse_url,
        "validate_contract": config.validate_contract,
        "connections": [
            {"connection_id": c.connection_id, "name": c.name, "tables": list(c.table_names)}
            for c in standin.connections.listed()
        ],
    }


def describe(conn: SeedConnection) -> dict[str, Any]:
    """A connection as the admin API shows it."""
    return {
        "connection_id": conn.connection_id,
        "name": conn.name,
        "status": conn.status,
        "source_id": conn.source_id,
        "source_type": conn.source,
        "source_name": conn.source_title,
        "streams": list(conn.streams),
        "tables": list(conn.table_names),
    }


def _unknown(connection_id: str) -> JSONResponse:
    return JSONResponse({"message": f"no connection {connection_id}"}, status_code=404)


@router.get("/connections")
def list_connections(standin: StandinDep, include_deleted: bool = False) -> list[dict[str, Any]]:
    """Every connection in list order (deleted ones too if ``include_deleted``)."""
    return [describe(c) for c in standin.connections.listed(include_deleted)]


@router.post("/connections", response_model=None)
async def add_connection(request: Request, standin: StandinDep) -> dict[str, Any] | JSONResponse:
    """``{"name", "streams", "source_type"?, "source_name"?}``: a new connection, listed last."""
    spec = await json_object(request, 400)
    unknown = set(spec) - {"name", "streams", "source_type", "source_name"}
    if unknown:
        return _bad(
            f"unknown settings {sorted(unknown)}; use name, streams, source_type, source_name"
        )
    if not isinstance(spec.get("streams"), list):
        return _bad("'streams' must be a list of stream names")
    try:
        return describe(standin.connections.add(**spec))
    except (TypeError, ValueError) as exc:
        return _bad(str(exc))


@router.delete("/connections/{connection_id}", response_model=None)
def delete_connection(connection_id: str, standin: StandinDep) -> dict[str, Any] | JSONResponse:
    """Delete the connection as Airbyte does: status ``deprecated``, gone from the lists."""
    try:
        return describe(standin.connections.delete(connection_id))
    except UnknownConnectionError:
        return _unknown(connection_id)


@router.post("/connections/{connection_id}/streams", response_model=None)
async def add_stream(
    connection_id: str, request: Request, standin: StandinDep
) -> dict[str, Any] | JSONResponse:
    """``{"name": stream}``: one more stream on the connection and its source."""
    spec = await json_object(request, 400)
    if set(spec) != {"name"}:
        return _bad('the body must be {"name": stream}')
    try:
        return describe(standin.connections.add_stream(connection_id, spec["name"]))
    except UnknownConnectionError:
        return _unknown(connection_id)
    except ValueError as exc:
        return _bad(str(exc))


@router.post("/reset")
def reset(standin: StandinDep) -> dict[str, bool]:
    standin.reset()
    return {"ok": True}
