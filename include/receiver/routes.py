"""The receiver's routers, thin adapters between HTTP and the intakes.

- ``health``: ``GET /healthz``.
- ``events``: ``POST /events``, a signed event for ``include.receiver.events.EventIntake``.
- ``notifications``: ``POST /airbyte/notifications/<token>``, an Airbyte notification for
  ``include.receiver.airbyte_notifications.NotificationIntake`` (202 once recorded), and
  ``GET /airbyte/notifications/<token>/jobs/<job_id>``, what became of it.

The checks before a body is handled are dependencies (``include.receiver.dependencies``); what the
routes add is the 503 with ``Retry-After`` when nothing could be done or recorded now.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from include.receiver.airflow_client import AirflowUnavailable
from include.receiver.dependencies import (
    Events,
    NotificationBody,
    Notifications,
    Settings,
    SignedBody,
    allowed_source,
    known_token,
)
from include.receiver.settings import WebhookSettings

log = logging.getLogger("webhook")
NOTIFICATIONS_PATH = "/airbyte/notifications"

health = APIRouter()
events = APIRouter()
notifications = APIRouter(
    prefix=NOTIFICATIONS_PATH, dependencies=[Depends(known_token), Depends(allowed_source)]
)


def unavailable(settings: WebhookSettings, message: str) -> JSONResponse:
    """503: nothing was done; the same request may be sent again after ``Retry-After``."""
    return JSONResponse(
        status_code=503,
        headers={"Retry-After": str(settings.retry_after_seconds)},
        content={
            "status": "error",
            "detail": f"{message}. The event was not processed; "
            f"retry the same request in {settings.retry_after_seconds} s.",
        },
    )


@health.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@events.post("/events")
async def receive_event(body: SignedBody, intake: Events, settings: Settings) -> JSONResponse:
    try:
        answer = await intake.handle(body)
    except AirflowUnavailable:
        return unavailable(settings, "Airflow is unavailable")
    return JSONResponse(status_code=answer.status_code, content=answer.content())


@notifications.post("/{token}")
async def airbyte_notification(
    body: NotificationBody, intake: Notifications, settings: Settings
) -> JSONResponse:
    try:
        outcome = await intake.accept(body)
    except SQLAlchemyError as error:
        log.error("Airbyte notification not recorded: ledger: %s", type(error).__name__)
        return unavailable(settings, "The receiver's ledger cannot record it now")
    return JSONResponse(status_code=outcome.status_code, content=outcome.content())


@notifications.get("/{token}/jobs/{job_id}")
async def notification_status(job_id: int, intake: Notifications) -> JSONResponse:
    """What became of the job's notification: ``pending``, ``working``, ``done`` (with
    ``outcome``) or ``dropped``; 404 when none was received."""
    status = await intake.status(job_id)
    if status is None:
        return JSONResponse(status_code=404, content={"detail": "No notification of this job."})
    return JSONResponse(content=status)
