"""Waiting for an Airbyte job: the poll schedule and one "poll once and decide" step.

``JobWatch.observe`` takes what one poll gave (the job, or the error it raised) and decides:
the job ended, the deadline passed, or poll again after a delay from ``PollSchedule``.

Polls start fast (a short job is noticed quickly), back off geometrically while nothing
changes (a long job costs few requests) and snap back to the minimum when the job's status
changes. When the connection's usual sync time is known (``usual_duration``), the wait is
*quiet* until shortly before the job is expected to end: one poll per ``quiet_interval``
(a failure is still noticed within it), then the close polling above.

* Transient errors (unreachable, 5xx, 429) are ridden out until the deadline.
* Unreadable answers (an empty or HTML 200, an unknown status, a broken gzip body, an answer
  over the size caps) are ridden out too, up to ``max_unreadable_polls`` in a row: one odd
  answer from a proxy does not end a wait, a server that only sends garbage does.
* Anything else (bad credentials, unknown job) ends the wait at once.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from plugins.airbyte_client.config import AirbyteSettings
from plugins.airbyte_client.errors import (
    TRANSIENT_ERRORS,
    AirbyteError,
    AirbyteJobCancelledError,
    AirbyteJobFailedError,
    AirbyteJobStuckPendingError,
    AirbyteJobTimeoutError,
    AirbyteResponseError,
    AirbyteUnreachableError,
)
from plugins.airbyte_client.models import AirbyteJob, JobStatus

log = logging.getLogger(__name__)

#: How many recent durations make a connection's usual duration, and the share of it
#: waited quietly before polling closely.
HISTORY_SIZE = 5
QUIET_SHARE = 0.9


def usual_duration(durations: Iterable[float | None]) -> float | None:
    """Median of the newest ``HISTORY_SIZE`` known durations (s), given newest first."""
    known = [d for d in durations if d][:HISTORY_SIZE]
    return statistics.median(known) if known else None


def quiet_start(created_at: datetime | None, usual: float) -> float:
    """When to poll closely (epoch s): ``QUIET_SHARE`` of the usual duration after creation."""
    now = time.time()
    started = created_at.timestamp() if created_at else now
    if now - started < 1:  # the API gives whole seconds; a job of this second began now
        started = now
    return started + QUIET_SHARE * usual


@dataclass
class PollSchedule:
    """Next-poll delays: ``minimum``, growing by ``factor`` up to ``maximum``."""

    minimum: float = 2.0
    maximum: float = 20.0
    factor: float = 1.5
    quiet_interval: float = 60.0
    current: float = 0.0

    def __post_init__(self) -> None:
        self.maximum = max(self.maximum, self.minimum)
        self.current = self.current or self.minimum

    def next_delay(
        self, *, status_changed: bool, remaining: float | None = None, quiet_for: float = 0.0
    ) -> float:
        """The delay before the next poll; never past ``remaining`` seconds.

        ``quiet_for``: seconds left until the job is expected to be nearly done; while
        positive, polls are ``quiet_interval`` apart (and close polling restarts after).
        """
        if quiet_for > 0:
            self.current = self.minimum
            delay = min(self.quiet_interval, quiet_for)
        else:
            if status_changed:
                self.current = self.minimum
            delay = self.current
            self.current = min(self.current * self.factor, self.maximum)
        if remaining is not None:
            delay = max(min(delay, remaining), 0.0)
        return delay


@dataclass
class Step:
    """What to do after a poll: stop (``delay`` is None) or poll again in ``delay`` s."""

    delay: float | None
    job: AirbyteJob | None
    #: The last error since the last readable answer: what a wait that gives up names.
    error: AirbyteError | None = None

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
    last_error: AirbyteError | None = None
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
            self.last_error = error
        elif job is not None:
            self.polls += 1
            self.unreadable, self.last_error = 0, None
            changed = self.job is None or job.status is not self.job.status
            self.job = job
            if changed:
                log.info(
                    "Airbyte job_id=%s connection_id=%s status=%s elapsed=%.1fs",
                    job.job_id,
                    job.connection_id,
                    job.status,
                    time.monotonic() - self.started,
                )
            if job.is_terminal:
                log.info("Airbyte job finished after %d polls: %s", self.polls, job.summary())
                return Step(None, job)
        remaining = self.deadline - time.time()
        if remaining <= 0:
            return Step(None, self.job, self.last_error)
        quiet_for = (self.quiet_until - time.time()) if self.quiet_until else 0.0
        delay = self.schedule.next_delay(
            status_changed=changed, remaining=remaining, quiet_for=quiet_for
        )
        if error is not None and error.retry_after:  # the server said when to come back
            delay = min(max(delay, error.retry_after), remaining)
        return Step(delay, self.job, self.last_error)

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


def check_outcome(job: AirbyteJob, *, raise_on_failure: bool = True) -> AirbyteJob:
    """Return a finished job, or raise when it failed or was cancelled (if asked to)."""
    error = outcome_error(job) if raise_on_failure else None
    if error is not None:
        raise error
    return job


def timeout_error(
    job_id: int,
    job: AirbyteJob | None,
    timeout_minutes: float,
    api_root: str,
    last_error: AirbyteError | None = None,
) -> AirbyteError:
    """The error of a wait that ran out: stuck pending, still running, or never answered
    (then the last error Airbyte gave, with its class: a persistent 503 with Airbyte's own
    message is not reported as an unreachable server)."""
    if job is None and last_error is not None:
        return last_error.with_message(
            f"{last_error} No readable answer about Airbyte job {job_id} within "
            f"{timeout_minutes} min; that was the last error."
        )
    if job is None:
        return AirbyteUnreachableError(
            api_root, f"no answer about job {job_id} within {timeout_minutes} min"
        )
    if last_error is not None:
        job_error = timeout_error(job_id, job, timeout_minutes, api_root)
        return job_error.with_message(f"{job_error} The last polls failed: {last_error}")
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
