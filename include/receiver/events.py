"""Signed events: the payload a sender posts and ``EventIntake``, which turns one verified
event into a run of the event DAG.

The run id is ``webhook__<event_id>``, and each accepted ``event_id`` is kept in the ledger
with the fingerprint of what it asked for, so a redelivery is a ``duplicate`` (even after its
run was deleted) and a reused id with another payload a conflict. Answers: 202 ``triggered``,
200 ``duplicate``, 409 for a reused id, 422 for an invalid payload or a conf Airflow refused;
``AirflowUnavailable`` is raised to the caller (nothing was done, the sender should retry).
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from include.receiver.airflow_client import AirflowClient, AirflowRejected, AirflowUnavailable
from include.receiver.ledger import Ledger

log = logging.getLogger("webhook")
RUN_ID_PREFIX = "webhook__"
EVENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
#: What the DAG's params default to: a conf without the key means this value.
CONF_DEFAULTS: dict[str, Any] = {"job_type": "sync", "streams": [], "refresh_mode": None}


class Event(BaseModel):
    """What a sender posts. ``event_id`` becomes part of the run id, hence its charset."""

    model_config = ConfigDict(extra="ignore")

    event_id: str = Field(
        pattern=EVENT_ID_PATTERN,
        description="Unique id of the event: 1-100 of A-Z a-z 0-9 . _ -, starting alphanumeric.",
    )
    connection_id: uuid.UUID = Field(description="Airbyte connection id (UUID).")
    job_type: Literal["sync", "reset", "clear", "refresh"] = CONF_DEFAULTS["job_type"]
    streams: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="A reset, clear or refresh of these streams only (Configuration API).",
    )
    refresh_mode: Literal["merge", "truncate"] | None = CONF_DEFAULTS["refresh_mode"]

    @property
    def dag_run_id(self) -> str:
        return RUN_ID_PREFIX + self.event_id

    @property
    def ledger_key(self) -> str:
        return f"event:{self.event_id}"

    def conf(self) -> dict[str, Any]:
        """The run's conf: the keys the sender gave beyond the defaults are the only extras."""
        conf: dict[str, Any] = {"connection_id": str(self.connection_id), "job_type": self.job_type}
        if self.streams:
            conf["streams"] = self.streams
        if self.refresh_mode:
            conf["refresh_mode"] = self.refresh_mode
        return conf

    def fingerprint(self) -> str:
        return json.dumps(self.conf(), sort_keys=True)


def same_request(event: Event, conf: dict[str, Any] | None) -> bool:
    """Whether a run's ``conf`` asks for what ``event`` asks, defaults filled in on both."""
    if conf is None:
        return True
    keys = ("connection_id", *CONF_DEFAULTS)

    def filled(asked: dict[str, Any]) -> dict[str, Any]:
        return {key: {**CONF_DEFAULTS, **asked}.get(key) for key in keys}

    return filled(conf) == filled(event.conf())


def _errors(error: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors without the submitted values (they are the sender's data)."""
    return [
        {"field": ".".join(str(part) for part in e["loc"]) or "body", "message": e["msg"]}
        for e in error.errors(include_url=False, include_input=False)
    ]


@dataclass(frozen=True)
class Answer:
    """What the receiver answers the sender."""

    status_code: int
    body: dict[str, Any]

    def content(self) -> dict[str, Any]:
        return self.body


class EventIntake:
    """Turns one verified event body into a DAG run of ``dag_id``, or says why not."""

    def __init__(self, airflow: AirflowClient, ledger: Ledger, dag_id: str) -> None:
        self._airflow = airflow
        self._ledger = ledger
        self._dag_id = dag_id

    async def handle(self, body: bytes) -> Answer:
        """The answer to ``body`` (already verified); ``AirflowUnavailable`` when Airflow
        cannot take the run now."""
        try:
            event = Event.model_validate_json(body)
        except ValidationError as error:
            return Answer(422, {"detail": "Invalid event payload.", "errors": _errors(error)})
        remembered = self._ledger.recall(event.ledger_key)
        if remembered is not None:
            return await self._redelivered(event, remembered)
        try:
            result = await self._airflow.trigger(event.dag_run_id, event.conf())
        except AirflowRejected as error:
            log.info("Airflow refused event %s: %s", event.event_id, error.status_code)
            return Answer(
                422, {"detail": "Airflow refused the run's conf.", "airflow": error.detail}
            )
        except AirflowUnavailable as error:
            log.warning("Event %s not processed: %s", event.event_id, error)
            raise
        if not result.created and not same_request(event, result.conf):
            return self._conflict(event)
        self._ledger.remember(event.ledger_key, event.fingerprint())
        if result.created:
            log.info("Event %s triggered run %s", event.event_id, result.dag_run_id)
            return Answer(202, {"status": "triggered", **self._names(event)})
        log.info("Event %s is a duplicate of run %s", event.event_id, result.dag_run_id)
        return Answer(200, {"status": "duplicate", "state": result.state, **self._names(event)})

    async def _redelivered(self, event: Event, fingerprint: str) -> Answer:
        """An event id the ledger knows: the same event again, or a conflict."""
        if fingerprint != event.fingerprint():
            return self._conflict(event)
        run = await self._airflow.get_run(event.dag_run_id)
        log.info("Event %s was delivered before: duplicate", event.event_id)
        state = run and run.get("state")
        return Answer(200, {"status": "duplicate", "state": state, **self._names(event)})

    def _conflict(self, event: Event) -> Answer:
        log.warning("Event id %s reused for a different event", event.event_id)
        detail = (
            f"event_id {event.event_id!r} was already used for a different "
            "connection_id or job_type; use a new event_id."
        )
        return Answer(409, {"detail": detail, **self._names(event)})

    def _names(self, event: Event) -> dict[str, str]:
        return {"dag_run_id": event.dag_run_id, "dag_id": self._dag_id}
