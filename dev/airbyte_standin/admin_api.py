"""Admin API (``/_standin``, never behind auth): faults, job behaviours, logs, reset."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from dev.airbyte_standin.faults import Fault
from dev.airbyte_standin.job_model import BehaviourRule
from dev.airbyte_standin.seed import SEED
from dev.airbyte_standin.state import Standin, get_standin, json_object

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
    """``{"pending_seconds": s, "running_seconds": s}`` (either); jobs in flight follow."""
    spec = await json_object(request, 400)
    unknown = set(spec) - {"pending_seconds", "running_seconds"}
    if unknown:
        return _bad(f"unknown settings {sorted(unknown)}; use pending_seconds, running_seconds")
    try:
        standin.jobs.set_durations(**spec)
    except (TypeError, ValueError) as exc:
        return _bad(str(exc))
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
        "auth": config.auth,
        "warehouse_url": config.warehouse_url,
        "validate_contract": config.validate_contract,
        "connections": [
            {"connection_id": c.connection_id, "name": c.name, "tables": list(c.table_names)}
            for c in SEED
        ],
    }


@router.post("/reset")
def reset(standin: StandinDep) -> dict[str, bool]:
    standin.reset()
    return {"ok": True}
