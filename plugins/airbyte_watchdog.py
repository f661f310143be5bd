"""``AirbyteSyncWatchdogOperator``: the fallback of zero-poll syncs.

In zero-poll mode a DAG starts the sync and returns at once (``AirbyteSyncOperator`` with
``wait=False``); Airbyte's success notification, confirmed by the webhook receiver, becomes
the asset events that start the downstream DAGs. Nothing polls Airbyte while it works.

The watchdog catches what that path cannot: a notification that never arrived, and jobs
that failed or were cancelled. It defers (no worker slot, no Airbyte request) until the
connection's usual sync time has passed (the median ``duration_seconds`` of the connection
asset's recent events, times 1.5, plus ``grace_seconds``; ``fallback_after_seconds`` without
history), then wakes and:

1. reads the connection asset's events since the job started (Airflow, not Airbyte): one
   naming the job means the notification arrived, so the task is skipped and emits nothing;
2. otherwise asks Airbyte for the job once: succeeded, it emits the asset events itself
   (``origin="watchdog"``) through its outlets, tables included (one more request, for the
   lineage, as the sync task would have made); failed or cancelled, it fails at once
   (no retry: the job stays failed); still running, it sleeps ``quiet_poll_interval`` and
   looks again, until ``timeout_minutes`` after the job started.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import Asset, BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from plugins.airbyte_client.config import DEFAULT_CONN_ID
from plugins.airbyte_client.contracts import ORIGIN_WATCHDOG, job_dict, job_from_dict, names_job
from plugins.airbyte_client.errors import AirbyteJobCancelledError, AirbyteJobFailedError
from plugins.airbyte_client.wait import usual_duration

if TYPE_CHECKING:
    from airflow.sdk import Context

USUAL_FACTOR = 1.5
#: How soon to read the asset events again when Airflow could not list them.
UNREADABLE_RETRY_SECONDS = 30.0


class AirbyteSyncWatchdogOperator(BaseOperator):
    """Wait, without polling, for a started sync's notification; step in if it never comes.

    :param sync_task_id: the ``AirbyteSyncOperator`` (``wait=False``) that started the job;
        its return value (the job as started) is read from XCom.
    :param announced_by: the connection's Asset, which the notification's events update.
    :param outlets: the Assets to emit when the watchdog has to (usually ``sync_outlets``).
    :param grace_seconds: how long past the usual sync time the notification may take.
    :param fallback_after_seconds: when to first look without a sync history.
    :param timeout_minutes: give up (and fail) this long after the job started.
    """

    template_fields: Sequence[str] = (
        "grace_seconds",
        "fallback_after_seconds",
        "timeout_minutes",
    )
    ui_color = "#c9c8ff"

    def __init__(
        self,
        *,
        sync_task_id: str,
        announced_by: Asset,
        grace_seconds: float = 300.0,
        fallback_after_seconds: float = 1800.0,
        timeout_minutes: float = 24 * 60.0,
        airbyte_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(inlets=[announced_by], **kwargs)
        self.sync_task_id = sync_task_id
        self.announced_by = announced_by
        self.grace_seconds = grace_seconds
        self.fallback_after_seconds = fallback_after_seconds
        self.timeout_minutes = timeout_minutes
        self.airbyte_conn_id = airbyte_conn_id

    def execute(self, context: Context) -> None:
        started = context["ti"].xcom_pull(task_ids=self.sync_task_id)
        if not started:
            raise ValueError(f"Task {self.sync_task_id} returned no Airbyte job to watch")
        job = job_from_dict(started)
        began = job.created_at.timestamp() if job.created_at else time.time()
        usual = self._usual_seconds(context)
        if usual is None:
            wait = float(self.fallback_after_seconds)
        else:
            wait = USUAL_FACTOR * usual + float(self.grace_seconds)
        self.log.info(
            "Airbyte job %s started; usual sync time %s s: first look in %.0f s, no polling "
            "until then",
            job.job_id,
            "unknown" if usual is None else f"{usual:.0f}",
            max(0.0, began + wait - time.time()),
        )
        self._sleep_until(began + wait, job.job_id, began)

    def check(
        self, context: Context, event: Any = None, *, job_id: int, began: float
    ) -> dict[str, Any] | None:
        """Woken up: did the notification arrive? If not, ask Airbyte once."""
        # The client stack and OpenLineage load when the watchdog wakes, not at DAG parse.
        from plugins.airbyte_hook import AirbyteHook
        from plugins.airbyte_lineage import record_sync

        deadline = began + float(self.timeout_minutes) * 60
        seen = self._announced(context, job_id, began)
        if seen is None and time.time() < deadline:
            self._sleep_until(time.time() + UNREADABLE_RETRY_SECONDS, job_id, began)
        if seen:
            raise AirflowSkipException(
                f"Airbyte's notification for job {job_id} arrived: its asset events exist."
            )
        hook = AirbyteHook(self.airbyte_conn_id)
        job = hook.get_job(job_id)
        self.log.info("No notification yet; Airbyte says %s", job.summary())
        if job.is_terminal:
            try:
                hook.check_outcome(job)
            except (AirbyteJobFailedError, AirbyteJobCancelledError) as exc:
                raise AirflowFailException(str(exc)) from None  # a retry cannot un-fail it
            # The events the sync task would have emitted (lineage: one more request).
            record_sync(hook, job, self.outlets, context, ORIGIN_WATCHDOG)
            self.log.warning(
                "Airbyte job %s succeeded but its notification never arrived: emitting its "
                "asset events from the watchdog",
                job_id,
            )
            return job_dict(job)
        if time.time() >= deadline:
            hook.handle_timeout(job_id, job, float(self.timeout_minutes), cancel=False)
        self._sleep_until(time.time() + hook.settings.quiet_poll_interval, job_id, began)
        return None  # pragma: no cover - _sleep_until raises TaskDeferred

    def _sleep_until(self, moment: float, job_id: int, began: float) -> None:
        self.defer(
            trigger=DateTimeTrigger(moment=datetime.fromtimestamp(max(moment, time.time()), UTC)),
            method_name="check",
            kwargs={"job_id": job_id, "began": began},
        )

    def _usual_seconds(self, context: Context) -> float | None:
        """Median duration of the connection's recent syncs, from its asset events."""
        try:
            recent = context["inlet_events"][self.announced_by].ascending(False).limit(20)
            durations = [
                float(e.extra["duration_seconds"])
                for e in recent
                if isinstance(e.extra, dict) and e.extra.get("duration_seconds") is not None
            ]
        except Exception as exc:  # history only tunes the wait; never a reason to fail
            self.log.warning("No sync history from the asset events (%s)", exc)
            return None
        return usual_duration(durations)

    def _announced(self, context: Context, job_id: int, began: float) -> bool | None:
        """Whether an event of the connection asset names the job; None if unreadable."""
        after = datetime.fromtimestamp(began - 60, UTC).isoformat()
        try:
            events = context["inlet_events"][self.announced_by].after(after).limit(100)
            return any(names_job(e.extra, job_id) for e in events)
        except Exception as exc:  # Airflow 3.3.0 fails this while a run is queued (#71360)
            self.log.warning("Cannot read the asset events now (%s); looking again soon", exc)
            return None
