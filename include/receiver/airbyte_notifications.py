"""Airbyte's own sync notifications, confirmed with Airbyte before anything happens.

Airbyte (self-managed and Cloud) POSTs a Slack-shaped body to the workspace's success and
failure webhooks: ``text``, ``blocks`` and a ``data`` object with ``jobId``, ``connection``
(``{id, name, url}``), figures and ``success``. It is not signed, so the body is only a hint:
the job id it names is looked up with one request to Airbyte (``AsyncAirbyteClient``) and
only Airbyte's answer counts; what follows is ``include.receiver.settle``'s.

No job id (the settings page's test button sends only ``text``), a job Airbyte does not know
or a job of another connection than the body says: 200, a log line, nothing else.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from include.receiver.airflow_client import AirflowClient
from include.receiver.ledger import Ledger
from include.receiver.settle import AirbyteUnavailable, JobSettler, Outcome
from plugins.airbyte_client.contracts import ORIGIN_NOTIFICATION
from plugins.airbyte_client.errors import AirbyteError, AirbyteNotFoundError, AirbyteRequestError
from plugins.airbyte_client.models import AirbyteJob
from plugins.airbyte_hook import AirbyteHook

log = logging.getLogger("webhook.airbyte")
#: A confirmation must answer quickly: Airbyte waits for the webhook's answer.
HOOK_OVERRIDES = {"max_retries": 1, "retry_min_wait": 0.5, "retry_max_wait": 2.0}


class _Ref(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str | None = None
    name: str | None = None


class _Summary(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    #: Strictly an integer: a JSON ``true``, ``1.0`` or ``"1"`` is not a job id.
    job_id: int | None = Field(default=None, alias="jobId", ge=1, strict=True)
    connection: _Ref | None = None
    #: Airbyte's own words on a failure: the only reason the Public API flavour has.
    error_message: str | None = Field(default=None, alias="errorMessage")


class Notification(BaseModel):
    """The part of Airbyte's body used as a hint; everything else is ignored."""

    model_config = ConfigDict(extra="ignore")
    text: str | None = None
    data: _Summary | None = None

    @property
    def job_id(self) -> int | None:
        return self.data.job_id if self.data else None

    @property
    def connection_id(self) -> str | None:
        return self.data.connection.id if self.data and self.data.connection else None

    @property
    def error_message(self) -> str | None:
        return self.data.error_message if self.data else None


class NotificationIntake:
    """Turns one notification body into Airflow asset events or a failure message."""

    def __init__(self, airflow: AirflowClient, ledger: Ledger, airbyte_conn_id: str) -> None:
        self.settler = JobSettler(airflow, ledger, AirbyteHook(airbyte_conn_id, **HOOK_OVERRIDES))

    async def handle(self, body: bytes) -> Outcome:
        try:
            notification = Notification.model_validate_json(body)
        except ValidationError:
            return Outcome("invalid", "The body is not an Airbyte notification.", status_code=400)
        job_id = notification.job_id
        if job_id is None:
            log.info("Airbyte notification without a job id (a test message?): no action")
            return Outcome("ignored", "No job id in the notification; nothing to do.")
        job = await self._confirm(job_id)
        if job is None:
            log.warning("Airbyte does not know job %s named by a notification: no action", job_id)
            return Outcome("ignored", "Airbyte does not know this job.", job_id)
        claimed = notification.connection_id
        if claimed is not None and claimed != job.connection_id:
            log.warning(
                "Notification names connection %s but Airbyte job %s is of %s: no action",
                claimed,
                job_id,
                job.connection_id,
            )
            return Outcome("ignored", "The job belongs to another connection.", job_id)
        return await self.settler.settle(job, ORIGIN_NOTIFICATION, notification.error_message)

    async def aclose(self) -> None:
        await self.settler.aclose()

    async def _confirm(self, job_id: int) -> AirbyteJob | None:
        """Airbyte's own view of the job (one request), or None when it does not exist."""
        try:
            return await (await self.settler.airbyte()).get_job(job_id)
        except (AirbyteNotFoundError, AirbyteRequestError):
            return None
        except AirbyteError as error:
            log.error("Could not confirm Airbyte job %s: %s", job_id, error)
            raise AirbyteUnavailable(str(error)) from None
