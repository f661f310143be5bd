"""Airbyte's own sync notifications, confirmed with Airbyte before anything happens.

Airbyte (self-managed and Cloud) POSTs a Slack-shaped body to the workspace's success and
failure webhooks: ``text``, ``blocks`` and a ``data`` object with ``jobId``, ``connection``
(``{id, name, url}``), figures and ``success``. It is not signed, so the body is only a hint:
the job id it names is recorded in the inbox (``include.receiver.inbox``) and answered 202 at
once; later the job is looked up with one request to Airbyte (``AsyncAirbyteClient``) and only
Airbyte's answer counts; what follows is ``include.receiver.settle``'s.

No job id (the settings page's test button sends only ``text``): 200, nothing else. A job
Airbyte does not know, or a job of another connection than the body says: a log line and the
inbox's outcome ``ignored``. A job still running is looked at again later.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from include.receiver.airflow_client import AirflowClient
from include.receiver.inbox import Inbox, Notice
from include.receiver.ledger import Ledger
from include.receiver.settle import AirbyteUnavailable, JobSettler, Outcome
from include.receiver.worker import NotFinished, NotificationWorker
from plugins.airbyte_client.contracts import ORIGIN_NOTIFICATION
from plugins.airbyte_client.errors import AirbyteError, AirbyteNotFoundError, AirbyteRequestError
from plugins.airbyte_client.models import AirbyteJob
from plugins.airbyte_hook import AirbyteHook

log = logging.getLogger("webhook.airbyte")
#: One confirmation's retries stay short: a try that fails is retried from the inbox.
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
    """Accepts notification bodies into the inbox, answering at once; processes them later
    (``include.receiver.worker``): Airflow asset events or a failure report."""

    def __init__(
        self,
        airflow: AirflowClient,
        ledger: Ledger,
        airbyte_conn_id: str,
        concurrency: int,
    ) -> None:
        self.settler = JobSettler(airflow, ledger, AirbyteHook(airbyte_conn_id, **HOOK_OVERRIDES))
        self.inbox = Inbox(ledger)
        self.worker = NotificationWorker(self.inbox, self.process, self.settler.owner, concurrency)

    async def accept(self, body: bytes) -> Outcome:
        """202 once the notification is recorded for good; 200 for a job's second one."""
        try:
            notification = Notification.model_validate_json(body)
        except ValidationError:
            return Outcome("invalid", "The body is not an Airbyte notification.", status_code=400)
        job_id = notification.job_id
        if job_id is None:
            log.info("Airbyte notification without a job id (a test message?): no action")
            return Outcome("ignored", "No job id in the notification; nothing to do.")
        notice = Notice(job_id, notification.connection_id, notification.error_message)
        if not await asyncio.to_thread(self.inbox.accept, notice):
            return Outcome("duplicate", "This job's notification was received already.", job_id)
        self.worker.wake()
        return Outcome(
            "accepted",
            "Recorded; the job is confirmed with Airbyte and acted on shortly.",
            job_id,
            status_code=202,
        )

    async def process(self, notice: Notice) -> Outcome:
        """Confirm the job with Airbyte, then settle it; ``NotFinished`` while it runs."""
        job = await self._confirm(notice.job_id)
        if job is None:
            log.warning("Airbyte does not know job %s named by a notification", notice.job_id)
            return Outcome("ignored", "Airbyte does not know this job.", notice.job_id)
        if notice.connection_id is not None and notice.connection_id != job.connection_id:
            log.warning(
                "Notification names connection %s but Airbyte job %s is of %s: no action",
                notice.connection_id,
                job.job_id,
                job.connection_id,
            )
            return Outcome("ignored", "The job belongs to another connection.", job.job_id)
        if not job.is_terminal:
            raise NotFinished(f"Airbyte says the job is {job.status}")
        return await self.settler.settle(
            job, ORIGIN_NOTIFICATION, notice.error_message, careful=notice.attempts > 0
        )

    async def status(self, job_id: int) -> dict[str, Any] | None:
        """What became of the job's notification (``Inbox.status``)."""
        return await asyncio.to_thread(self.inbox.status, job_id)

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
