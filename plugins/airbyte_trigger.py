"""``AirbyteJobTrigger``: waits for an Airbyte job in the triggerer, fully asynchronously.

The trigger polls with the same adaptive interval as the blocking wait, rides out transient
errors (5xx, 429, timeouts, dropped connections, an expired token) until its deadline, and
fires exactly one event: the job reached a terminal state, the deadline passed, or an error
that waiting cannot fix (bad credentials, unknown job). Its state is just the job id, the
connection id and an absolute deadline, so a restarted triggerer resumes where it was; when a
user kills the deferred task (mark failed, clear), ``on_kill`` cancels the Airbyte job.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from plugins.airbyte_errors import AirbyteError
from plugins.airbyte_hook import TRANSIENT_ERRORS, AirbyteHook
from plugins.airbyte_models import AirbyteJob
from plugins.airbyte_polling import PollSchedule

#: Event statuses the operator's ``execute_complete`` handles.
TERMINAL, TIMEOUT, ERROR = "terminal", "timeout", "error"


class AirbyteJobTrigger(BaseTrigger):
    """Fire when Airbyte job ``job_id`` ends, or when ``deadline`` (epoch seconds) passes.

    :param job_id: the Airbyte job to watch.
    :param airbyte_conn_id: Airflow Connection of the Airbyte server.
    :param deadline: absolute time (``time.time()``) after which the trigger gives up.
    :param poll_interval: first delay between polls; ``None`` uses the Connection's setting.
    :param max_poll_interval: longest delay between polls; ``None`` uses the Connection's.
    :param quiet_until: epoch seconds before which polls are ``quiet_poll_interval`` apart
        (the job is not expected to end before; see ``AirbyteHook.quiet_until``).
    """

    def __init__(
        self,
        job_id: int,
        airbyte_conn_id: str,
        deadline: float,
        poll_interval: float | None = None,
        max_poll_interval: float | None = None,
        quiet_until: float | None = None,
    ) -> None:
        super().__init__()
        self.job_id = int(job_id)
        self.airbyte_conn_id = airbyte_conn_id
        self.deadline = float(deadline)
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.quiet_until = quiet_until

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "airbyte_conn_id": self.airbyte_conn_id,
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "max_poll_interval": self.max_poll_interval,
                "quiet_until": self.quiet_until,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = AirbyteHook(
            self.airbyte_conn_id,
            poll_interval=self.poll_interval,
            max_poll_interval=self.max_poll_interval,
        )
        try:
            settings = await hook.aload_settings()
        except AirbyteError as exc:
            yield TriggerEvent({"status": ERROR, "job_id": self.job_id, "message": str(exc)})
            return
        schedule = PollSchedule(
            settings.poll_interval,
            settings.max_poll_interval,
            quiet_interval=settings.quiet_poll_interval,
        )
        job: AirbyteJob | None = None
        async with hook.async_client() as client:
            while True:
                changed = False
                try:
                    seen = await hook.aget_job(client, self.job_id)
                    changed = job is None or seen.status != job.status
                    job = seen
                except TRANSIENT_ERRORS as exc:
                    self.log.warning(
                        "Polling Airbyte job %s failed (%s); still waiting", self.job_id, exc
                    )
                except AirbyteError as exc:
                    yield TriggerEvent(
                        {"status": ERROR, "job_id": self.job_id, "message": str(exc)}
                    )
                    return
                if changed and job is not None:
                    self.log.info("Airbyte %s", job.summary())
                if job is not None and job.is_terminal:
                    yield TriggerEvent({"status": TERMINAL, "job": job.to_xcom()})
                    return
                remaining = self.deadline - time.time()
                if remaining <= 0:
                    yield TriggerEvent(
                        {
                            "status": TIMEOUT,
                            "job_id": self.job_id,
                            "job": job.to_xcom() if job else None,
                        }
                    )
                    return
                quiet_for = (self.quiet_until - time.time()) if self.quiet_until else 0.0
                await asyncio.sleep(
                    schedule.next_delay(
                        status_changed=changed, remaining=remaining, quiet_for=quiet_for
                    )
                )

    async def on_kill(self) -> None:
        """A user killed the deferred task: cancel the Airbyte job, like the operator does."""
        hook = AirbyteHook(self.airbyte_conn_id)
        async with hook.async_client() as client:
            try:
                await hook.acancel_job(client, self.job_id)
            except AirbyteError as exc:
                self.log.error("Could not cancel Airbyte job %s: %s", self.job_id, exc)
