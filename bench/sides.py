"""Each side's operator, trigger and hook behind one small interface, so the benches are shared.

``ours``: ``plugins.airbyte_operator.AirbyteSyncOperator`` / ``AirbyteJobTrigger``.
``official``: ``airflow.providers.airbyte`` ``AirbyteTriggerSyncOperator`` /
``AirbyteSyncTrigger`` (importable only in ``bench/.venv-official``).
Imports happen inside the functions: a side's modules are loaded only in its own process.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.common import fake_context

#: Poll settings as each side ships them (seconds).
OURS_POLL, OURS_MAX_POLL, OURS_FACTOR = 2.0, 20.0, 1.5
OURS_QUIET_POLL, OURS_QUIET_SHARE = 60.0, 0.9
OFFICIAL_WAIT_SECONDS = 3.0  # AirbyteTriggerSyncOperator(wait_seconds=3), the blocking wait
OFFICIAL_TRIGGER_POLL = 60.0  # what AirbyteTriggerSyncOperator hands AirbyteSyncTrigger


def ours_extras(scale: float = 1.0, **more: Any) -> dict[str, Any]:
    """Connection extras for our hook with the default poll schedule divided by ``scale``."""
    return {
        "poll_interval": OURS_POLL / scale,
        "max_poll_interval": OURS_MAX_POLL / scale,
        "quiet_poll_interval": OURS_QUIET_POLL / scale,
        **more,
    }


def make_operator(
    side: str, conn_id: str, connection_id: str, *, deferrable: bool, scale: float = 1.0, **kw: Any
) -> Any:
    """A sync operator of ``side``; the official blocking wait polls every 3 s / ``scale``."""
    task_id = f"sync_{abs(hash((conn_id, connection_id, time.monotonic()))) % 10**8}"
    if side == "ours":
        from plugins.airbyte_operator import AirbyteSyncOperator

        return AirbyteSyncOperator(
            task_id=task_id,
            connection_id=connection_id,
            airbyte_conn_id=conn_id,
            deferrable=deferrable,
            **kw,
        )
    from airflow.providers.airbyte.operators.airbyte import AirbyteTriggerSyncOperator

    return AirbyteTriggerSyncOperator(
        task_id=task_id,
        connection_id=connection_id,
        airbyte_conn_id=conn_id,
        deferrable=deferrable,
        wait_seconds=OFFICIAL_WAIT_SECONDS / scale,
        **kw,
    )


def defer(side: str, operator: Any, *, scale: float = 1.0) -> Any:
    """Run ``execute`` of a deferrable operator up to its deferral; return the trigger.

    The official operator hard-codes a 60 s trigger poll; it is divided by ``scale`` here
    (ours reads its schedule from the Connection extras, already scaled).
    """
    from airflow.sdk.exceptions import TaskDeferred

    try:
        operator.execute(fake_context())
    except TaskDeferred as deferred:
        trigger = deferred.trigger
        if side == "official":
            trigger.poll_interval = OFFICIAL_TRIGGER_POLL / scale
        return trigger, deferred.method_name
    raise RuntimeError("the operator finished without deferring")


async def first_event(trigger: Any) -> dict[str, Any]:
    """The payload of the first event the trigger fires (what the triggerer hands back)."""
    async for event in trigger.run():
        return event.payload
    raise RuntimeError("the trigger ended without an event")


def run_trigger(trigger: Any) -> dict[str, Any]:
    return asyncio.run(first_event(trigger))


def event_ok(side: str, payload: dict[str, Any]) -> bool:
    """Whether the event says the job succeeded."""
    if side == "ours":
        return payload.get("status") == "terminal" and payload["job"].get("status") == "succeeded"
    return payload.get("status") == "success"


def make_trigger(side: str, conn_id: str, job_id: int, *, poll_interval: float | None) -> Any:
    """A trigger watching ``job_id``; ``poll_interval`` only for the official one (fixed)."""
    deadline = time.time() + 3600
    if side == "ours":
        from plugins.airbyte_trigger import AirbyteJobTrigger

        return AirbyteJobTrigger(job_id=job_id, airbyte_conn_id=conn_id, deadline=deadline)
    from airflow.providers.airbyte.triggers.airbyte import AirbyteSyncTrigger

    return AirbyteSyncTrigger(
        job_id=job_id,
        conn_id=conn_id,
        end_time=deadline,
        poll_interval=poll_interval or OFFICIAL_TRIGGER_POLL,
    )


def retryable(exc: BaseException) -> bool:
    """Whether Airflow would retry the task after ``exc`` (not an AirflowFailException)."""
    return not any(cls.__name__ == "AirflowFailException" for cls in type(exc).__mro__)
