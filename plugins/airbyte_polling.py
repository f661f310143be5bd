"""Adaptive poll interval for waiting on Airbyte jobs, shared by the blocking wait and the trigger.

Polls start fast (a short job is noticed quickly), back off geometrically while nothing
changes (a long job costs few requests) and snap back to the minimum when the job's status
changes (the end of a job tends to follow a change).

When the connection's usual sync time is known, the wait is *quiet* until shortly before the
job is expected to end: one poll per ``quiet_interval`` (a failure is still noticed within
it), then the close polling above. A 10-minute sync then costs about 15 polls, not 40.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plugins.airbyte_models import AirbyteJob

#: How many recent succeeded jobs make a connection's usual duration, and the share of it
#: waited quietly before polling closely.
HISTORY_SIZE = 5
QUIET_SHARE = 0.9


def usual_duration(recent_jobs: Iterable[AirbyteJob]) -> float | None:
    """Median duration (s) of the newest ``HISTORY_SIZE`` succeeded jobs (newest first)."""
    durations = [
        job.duration_seconds
        for job in recent_jobs
        if job.status == "succeeded" and job.duration_seconds
    ][:HISTORY_SIZE]
    return statistics.median(durations) if durations else None


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
