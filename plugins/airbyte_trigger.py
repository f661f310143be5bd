"""``AirbyteJobTrigger``: waits for an Airbyte job in the triggerer, fully asynchronously.

The trigger runs the blocking wait's own flow (``Operations.watch``) on the async client and
fires exactly one event: the job reached a terminal state, the deadline passed, or an error
that waiting cannot fix (bad credentials, unknown job), sent with its class so the worker
raises the same error as the blocking path. Its state is just the job id, the connection id
and an absolute deadline, so a restarted triggerer resumes where it was; when a user kills
the deferred task (mark failed, clear), ``on_kill`` cancels the job.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from plugins.airbyte_client.contracts import job_dict
from plugins.airbyte_client.errors import AirbyteError
from plugins.airbyte_hook import AirbyteHook

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
        """Poll until the job ends or the deadline passes: the same step as the blocking wait."""
        hook = AirbyteHook(
            self.airbyte_conn_id,
            poll_interval=self.poll_interval,
            max_poll_interval=self.max_poll_interval,
        )
        try:
            async with hook.async_client() as client:
                step = await client.watch(self.job_id, self.deadline, self.quiet_until)
        except AirbyteError as exc:  # its class travels with it: see error_from_event
            yield TriggerEvent({"status": ERROR, "job_id": self.job_id, **exc.to_event()})
            return
        job = job_dict(step.job) if step.job else None
        if step.ended:
            yield TriggerEvent({"status": TERMINAL, "job_id": self.job_id, "job": job})
        else:
            last_error = step.error.to_event() if step.error else None
            yield TriggerEvent(
                {"status": TIMEOUT, "job_id": self.job_id, "job": job, "last_error": last_error}
            )

    async def on_kill(self) -> None:
        """A user killed the deferred task: cancel the Airbyte job, like the operator does."""
        hook = AirbyteHook(self.airbyte_conn_id)
        try:
            async with hook.async_client() as client:
                await client.cancel_job(self.job_id)
        except AirbyteError as exc:
            self.log.error("Could not cancel Airbyte job %s: %s", self.job_id, exc)
