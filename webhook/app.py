"""FastAPI app: signed events trigger a DAG; Airbyte's notifications become asset events.

``POST /events`` (signed, see ``webhook.signature``):

| status | body ``status`` | meaning |
|---|---|---|
| 202 | ``triggered`` | a new run ``webhook__<event_id>`` was created |
| 200 | ``duplicate`` | that event was delivered before; no second run (even if it was deleted) |
| 401 | | missing or wrong signature, or a timestamp outside the window |
| 409 | | the ``event_id`` was used before for a different connection or job type |
| 413 | | body larger than ``MAX_BODY_BYTES`` (refused before it is read) |
| 422 | | the payload is invalid, or Airflow refused the conf (message relayed) |
| 503 | | Airflow cannot take the run now; not acknowledged, retry after ``Retry-After`` |

``POST /airbyte/notifications/<token>``: see ``webhook.airbyte_notifications``; 404 for a
wrong token (or none configured), 403 outside ``AIRBYTE_ALLOWED_NETWORKS``, 503 with
``Retry-After`` when Airbyte or Airflow cannot be asked now.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from webhook.airflow_client import AirflowClient, AirflowRejected, AirflowUnavailable
from webhook.body import BodyTooLarge, read_limited
from webhook.ledger import Ledger
from webhook.settings import WebhookSettings
from webhook.signature import HEADER, TIMESTAMP_HEADER, Verdict, verify

log = logging.getLogger("webhook")
RUN_ID_PREFIX = "webhook__"
EVENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
NOTIFICATIONS_PATH = "/airbyte/notifications"
#: What the DAG's params default to: a conf without the key means this value.
CONF_DEFAULTS = {"job_type": "sync"}


class Event(BaseModel):
    """What a sender posts. ``event_id`` becomes part of the run id, hence its charset."""

    model_config = ConfigDict(extra="ignore")

    event_id: str = Field(
        pattern=EVENT_ID_PATTERN,
        description="Unique id of the event: 1-100 of A-Z a-z 0-9 . _ -, starting alphanumeric.",
    )
    connection_id: uuid.UUID = Field(description="Airbyte connection id (UUID).")
    job_type: Literal["sync", "reset", "clear"] = CONF_DEFAULTS["job_type"]

    @property
    def dag_run_id(self) -> str:
        return RUN_ID_PREFIX + self.event_id

    def conf(self) -> dict[str, Any]:
        return {"connection_id": str(self.connection_id), "job_type": self.job_type}

    def fingerprint(self) -> str:
        return json.dumps(self.conf(), sort_keys=True)


def same_request(event: Event, conf: dict[str, Any] | None) -> bool:
    """Whether a run's ``conf`` asks for what ``event`` asks, defaults filled in on both."""
    if conf is None:
        return True
    filled = {**CONF_DEFAULTS, **conf}
    return {key: filled.get(key) for key in event.conf()} == event.conf()


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
        app.state.ledger = Ledger(settings.ledger_path, settings.ledger_retention_seconds)
        app.state.intake = None
        if settings.airbyte_notification_token is not None:
            from webhook.airbyte_notifications import NotificationIntake

            app.state.intake = NotificationIntake(
                app.state.airflow, app.state.ledger, settings.airbyte_conn_id
            )
        try:
            yield
        finally:
            await app.state.airflow.aclose()
            app.state.ledger.close()

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

    def too_large() -> JSONResponse:
        return JSONResponse(
            status_code=413,
            content={"detail": f"Request body larger than {settings.max_body_bytes} bytes."},
            headers={"Connection": "close"},
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/events")
    async def receive_event(request: Request) -> JSONResponse:
        try:
            body = await read_limited(request, settings.max_body_bytes)
        except BodyTooLarge:
            return too_large()
        verdict = verify(
            body,
            settings.webhook_secret.get_secret_value(),
            request.headers.get(HEADER),
            request.headers.get(TIMESTAMP_HEADER),
            now=time.time(),
            tolerance=settings.signature_tolerance_seconds,
        )
        if verdict is not Verdict.OK:
            log.warning("Rejected an event: %s", verdict)
            detail = f"Missing or invalid {HEADER} signature."
            if verdict is Verdict.STALE:
                detail = (
                    f"{TIMESTAMP_HEADER} is more than {settings.signature_tolerance_seconds} s "
                    "from the receiver's clock; sign the request again with the current time."
                )
            return JSONResponse(status_code=401, content={"detail": detail})
        try:
            event = Event.model_validate_json(body)
        except ValidationError as error:
            return JSONResponse(
                status_code=422,
                content={"detail": "Invalid event payload.", "errors": _errors(error)},
            )
        airflow: AirflowClient = request.app.state.airflow
        ledger: Ledger = request.app.state.ledger
        answer = {"dag_run_id": event.dag_run_id, "dag_id": settings.dag_id}
        conflict = JSONResponse(
            status_code=409,
            content={
                "detail": f"event_id {event.event_id!r} was already used for a different "
                "connection_id or job_type; use a new event_id.",
                **answer,
            },
        )
        remembered = ledger.recall(f"event:{event.event_id}")
        if remembered is not None:
            if remembered != event.fingerprint():
                log.warning("Event id %s reused for a different event", event.event_id)
                return conflict
            run = await airflow.get_run(event.dag_run_id)
            log.info("Event %s was delivered before: duplicate", event.event_id)
            return JSONResponse(
                status_code=200,
                content={"status": "duplicate", "state": run and run.get("state"), **answer},
            )
        try:
            result = await airflow.trigger(event.dag_run_id, event.conf())
        except AirflowRejected as error:
            log.info("Airflow refused event %s: %s", event.event_id, error.status_code)
            return JSONResponse(
                status_code=422,
                content={"detail": "Airflow refused the run's conf.", "airflow": error.detail},
            )
        except AirflowUnavailable as error:
            log.warning("Event %s not processed: %s", event.event_id, error)
            return unavailable("Airflow is unavailable")
        if not result.created and not same_request(event, result.conf):
            log.warning("Event id %s reused for a different event", event.event_id)
            return conflict
        ledger.remember(f"event:{event.event_id}", event.fingerprint())
        if result.created:
            log.info("Event %s triggered run %s", event.event_id, result.dag_run_id)
            return JSONResponse(status_code=202, content={"status": "triggered", **answer})
        log.info("Event %s is a duplicate of run %s", event.event_id, result.dag_run_id)
        return JSONResponse(
            status_code=200, content={"status": "duplicate", "state": result.state, **answer}
        )

    @app.post(NOTIFICATIONS_PATH + "/{token}")
    async def airbyte_notification(token: str, request: Request) -> JSONResponse:
        from webhook.airbyte_notifications import AirbyteUnavailable

        expected = settings.airbyte_notification_token
        if expected is None or not hmac.compare_digest(
            token.encode(), expected.get_secret_value().encode()
        ):
            log.warning("Refused an Airbyte notification with a wrong token")
            return JSONResponse(status_code=404, content={"detail": "Not Found"})
        if settings.allowed_networks and not _allowed(request, settings):
            log.warning("Refused an Airbyte notification from %s", _client_host(request))
            return JSONResponse(status_code=403, content={"detail": "Source address not allowed."})
        try:
            body = await read_limited(request, settings.max_body_bytes)
        except BodyTooLarge:
            return too_large()
        try:
            outcome = await request.app.state.intake.handle(body)
        except AirbyteUnavailable:
            return unavailable("Airbyte cannot confirm the job now")
        except AirflowUnavailable as error:
            log.warning("Airbyte notification not processed: %s", error)
            return unavailable("Airflow is unavailable")
        except Exception:
            log.exception("Airbyte notification not processed")
            return unavailable("The notification could not be processed")
        return JSONResponse(status_code=outcome.status_code, content=outcome.content())

    return app


def _client_host(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _allowed(request: Request, settings: WebhookSettings) -> bool:
    try:
        address = ipaddress.ip_address(_client_host(request))
    except ValueError:
        return False
    return any(address in network for network in settings.allowed_networks)
