"""FastAPI app: ``POST /events`` verifies the signature, validates, triggers the DAG.

Answers:

| status | body ``status`` | meaning |
|---|---|---|
| 202 | ``triggered`` | a new run ``webhook__<event_id>`` was created |
| 200 | ``duplicate`` | that event was delivered before; its run exists, no second run |
| 401 | | missing or wrong ``X-Signature-256`` |
| 409 | | the ``event_id`` was used before for a different connection or job type |
| 413 | | body larger than ``MAX_BODY_BYTES`` |
| 422 | | the payload is invalid, or Airflow refused the conf (message relayed) |
| 503 | | Airflow cannot take the run now; not acknowledged, retry after ``Retry-After`` |
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from webhook.airflow_client import AirflowClient, AirflowRejected, AirflowUnavailable
from webhook.settings import WebhookSettings
from webhook.signature import HEADER, verify

log = logging.getLogger("webhook")
RUN_ID_PREFIX = "webhook__"
EVENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


class Event(BaseModel):
    """What a sender posts. ``event_id`` becomes part of the run id, hence its charset."""

    model_config = ConfigDict(extra="ignore")

    event_id: str = Field(
        pattern=EVENT_ID_PATTERN,
        description="Unique id of the event: 1-100 of A-Z a-z 0-9 . _ -, starting alphanumeric.",
    )
    connection_id: uuid.UUID = Field(description="Airbyte connection id (UUID).")
    job_type: Literal["sync", "reset", "clear"] | None = None

    @property
    def dag_run_id(self) -> str:
        return RUN_ID_PREFIX + self.event_id

    def conf(self) -> dict[str, Any]:
        conf: dict[str, Any] = {"connection_id": str(self.connection_id)}
        if self.job_type is not None:
            conf["job_type"] = self.job_type
        return conf


def _errors(error: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors without the submitted values (they are the sender's data)."""
    return [
        {"field": ".".join(str(part) for part in e["loc"]) or "body", "message": e["msg"]}
        for e in error.errors(include_url=False, include_input=False)
    ]


def create_app(
    settings: WebhookSettings | None = None, *, client: AirflowClient | None = None
) -> FastAPI:
    """The receiver app; ``settings`` default to the environment variables."""
    settings = settings or WebhookSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.airflow = client or AirflowClient(settings)
        try:
            yield
        finally:
            await app.state.airflow.aclose()

    app = FastAPI(title="Airbyte event webhook", lifespan=lifespan, docs_url=None, redoc_url=None)

    def unavailable(message: str) -> JSONResponse:
        return JSONResponse(
            status_code=503,
            headers={"Retry-After": str(settings.retry_after_seconds)},
            content={
                "status": "error",
                "detail": f"{message}. The event was not processed; "
                f"retry the same request in {settings.retry_after_seconds} s.",
            },
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/events")
    async def receive_event(request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > settings.max_body_bytes:
            return JSONResponse(status_code=413, content={"detail": "Request body too large."})
        secret = settings.webhook_secret.get_secret_value()
        if not verify(body, secret, request.headers.get(HEADER)):
            log.warning("Rejected an event with a missing or invalid %s header", HEADER)
            return JSONResponse(
                status_code=401,
                content={"detail": f"Missing or invalid {HEADER} signature."},
            )
        try:
            event = Event.model_validate_json(body)
        except ValidationError as error:
            return JSONResponse(
                status_code=422,
                content={"detail": "Invalid event payload.", "errors": _errors(error)},
            )
        try:
            result = await request.app.state.airflow.trigger(event.dag_run_id, event.conf())
        except AirflowRejected as error:
            log.info("Airflow refused event %s: %s", event.event_id, error.status_code)
            return JSONResponse(
                status_code=422,
                content={"detail": "Airflow refused the run's conf.", "airflow": error.detail},
            )
        except AirflowUnavailable as error:
            log.warning("Event %s not processed: %s", event.event_id, error)
            return unavailable("Airflow is unavailable")
        answer = {"dag_run_id": result.dag_run_id, "dag_id": settings.dag_id}
        if result.created:
            log.info("Event %s triggered run %s", event.event_id, result.dag_run_id)
            return JSONResponse(status_code=202, content={"status": "triggered", **answer})
        if result.conf is not None and {k: result.conf.get(k) for k in event.conf()} != (
            event.conf()
        ):
            log.warning("Event id %s reused for a different event", event.event_id)
            return JSONResponse(
                status_code=409,
                content={
                    "detail": f"event_id {event.event_id!r} was already used for a different "
                    "connection_id or job_type; use a new event_id.",
                    **answer,
                },
            )
        log.info("Event %s is a duplicate of run %s", event.event_id, result.dag_run_id)
        return JSONResponse(
            status_code=200, content={"status": "duplicate", "state": result.state, **answer}
        )

    return app
