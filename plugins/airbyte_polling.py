"""Adaptive poll interval for waiting on Airbyte jobs, shared by the blocking wait and the trigger.

Polls start fast (a short job is noticed quickly), back off geometrically while nothing
changes (a long job costs few requests) and snap back to the minimum when the job's status
changes (the end of a job tends to follow a change).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PollSchedule:
    """Next-poll delays: ``minimum``, growing by ``factor`` up to ``maximum``."""

    minimum: float = 2.0
    maximum: float = 20.0
    factor: float = 1.5
    current: float = 0.0

    def __post_init__(self) -> None:
        self.maximum = max(self.maximum, self.minimum)
        self.current = self.current or self.minimum

    def next_delay(self, *, status_changed: bool, remaining: float | None = None) -> float:
        """The delay before the next poll; never past ``remaining`` seconds."""
        if status_changed:
            self.current = self.minimum
        delay = self.current
        self.current = min(self.current * self.factor, self.maximum)
        if remaining is not None:
            delay = max(min(delay, remaining), 0.0)
        return delay
