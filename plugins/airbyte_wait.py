"""Waiting for an Airbyte job: one "poll once and decide" step for both the wait and the trigger.

``JobWatch.observe`` takes what one poll gave (the job, or the error it raised) and decides:
the job ended, the deadline passed, or poll again after a delay from ``PollSchedule``.

* Transient errors (unreachable, 5xx, 429) are ridden out until the deadline.
* Unreadable answers (an empty or HTML 200, an unknown status, a broken gzip body, an answer
  over the size caps) are ridden out too, up to ``max_unreadable_polls`` in a row: one odd
  answer from a proxy does not end a wait, a server that only sends garbage does.
* Anything else (bad credentials, unknown job) ends the wait at once.

The drivers are a few lines each: ``AirbyteHook.wait_for_job_completion`` sleeps between
polls, ``AirbyteJobTrigger.run`` awaits.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from plugins.airbyte_errors import (
    TRANSIENT_ERRORS,
    AirbyteError,
    AirbyteJobCancelledError,
    AirbyteJobFailedError,
    AirbyteJobStuckPendingError,
    AirbyteJobTimeoutError,
    AirbyteResponseError,
    AirbyteUnreachableError,
)
from plugins.airbyte_models import AirbyteJob, JobStatus
from plugins.airbyte_polling import PollSchedule
from plugins.airbyte_settings import AirbyteSettings

log = logging.getLogger(__name__)


@dataclass
class Step:
    """What to do after a poll: stop (``delay`` is None) or poll again in ``delay`` s."""

    delay: float | None
    job: AirbyteJob | None

    @property
    def ended(self) -> bool:
        """The job reached a terminal state (otherwise a stop means the deadline passed)."""
        return self.job is not None and self.job.is_terminal


@dataclass
class JobWatch:
    """The state of one wait: last job seen, deadline (epoch s), run of unreadable answers."""

    job_id: int
    deadline: float
    schedule: PollSchedule
    max_unreadable: int = 5
    quiet_until: float | None = None
    job: AirbyteJob | None = None
    unreadable: int = 0
    polls: int = 0
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def start(
        cls, job_id: int, deadline: float, settings: AirbyteSettings, quiet_until: float | None
    ) -> JobWatch:
        """A wait with the poll schedule and unreadable-answer budget of ``settings``."""
        schedule = PollSchedule(
            settings.poll_interval,
            settings.max_poll_interval,
            quiet_interval=settings.quiet_poll_interval,
        )
        return cls(job_id, deadline, schedule, settings.max_unreadable_polls, quiet_until)

    def observe(self, job: AirbyteJob | None, error: AirbyteError | None = None) -> Step:
        """Decide after one poll; raises the error when waiting cannot fix it."""
        changed = False
        if error is not None:
            self._bear(error)
        elif job is not None:
            self.polls += 1
            self.unreadable = 0
            changed = self.job is None or job.status is not self.job.status
            self.job = job
            if changed:
                log.info(
                    "Airbyte job_id=%s connection_id=%s status=%s attempts=%s elapsed=%.1fs",
                    job.job_id,
                    job.connection_id,
                    job.status,
                    job.attempts,
                    time.monotonic() - self.started,
                )
            if job.is_terminal:
                log.info("Airbyte job finished after %d polls: %s", self.polls, job.summary())
                return Step(None, job)
        remaining = self.deadline - time.time()
        if remaining <= 0:
            return Step(None, self.job)
        quiet_for = (self.quiet_until - time.time()) if self.quiet_until else 0.0
        delay = self.schedule.next_delay(
            status_changed=changed, remaining=remaining, quiet_for=quiet_for
        )
        return Step(delay, self.job)

    def _bear(self, error: AirbyteError) -> None:
        """Ride out a transient error or a short run of unreadable answers; raise otherwise."""
        if isinstance(error, AirbyteResponseError):
            self.unreadable += 1
            if self.unreadable > self.max_unreadable:
                raise error.with_message(
                    f"{error} Gave up after {self.unreadable} unreadable answers in a row "
                    f"(max_unreadable_polls={self.max_unreadable})."
                )
        elif not isinstance(error, TRANSIENT_ERRORS):
            raise error
        log.warning("Polling Airbyte job %s failed (%s); still waiting", self.job_id, error)


def outcome_error(job: AirbyteJob) -> AirbyteError | None:
    """The error a finished job's status means (None when it succeeded)."""
    where = f"Airbyte job {job.job_id} on connection {job.connection_id}"
    if job.status is JobStatus.FAILED:
        reason = (
            job.failure_reason or "Airbyte gave no reason; see the job's logs in the Airbyte UI"
        )
        return AirbyteJobFailedError(f"{where} failed: {reason}", job)
    if job.status is JobStatus.CANCELLED:
        return AirbyteJobCancelledError(f"{where} was cancelled.", job)
    return None


def timeout_error(
    job_id: int, job: AirbyteJob | None, timeout_minutes: float, api_root: str
) -> AirbyteError:
    """The error of a wait that ran out: stuck pending, still running, or never answered."""
    if job is None:
        return AirbyteUnreachableError(
            api_root, f"no answer about job {job_id} within {timeout_minutes} min"
        )
    if job.status.is_waiting_for_capacity:
        return AirbyteJobStuckPendingError(
            f"Airbyte job {job_id} stayed {job.status} for {timeout_minutes} min: no Airbyte "
            "worker picked it up. Check that workers are available "
            "(kubectl get pods -n integration -l app=airbyte,component=worker) and that the "
            "cluster has CPU/memory for them.",
            job,
        )
    return AirbyteJobTimeoutError(
        f"Job timed out: Airbyte job {job_id} had not finished after {timeout_minutes} min. "
        "Raise timeout_minutes or check the Airbyte workers' resources.",
        job,
    )
