"""The stand-in's job model: jobs, their attempts and the behaviour rules that shape them.

Plain data shared by the job store (``jobs``), which changes jobs, and the journal
(``journal``), which saves and loads them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from dev.airbyte_standin.warehouse import StreamResult

JobType = Literal["sync", "reset", "clear", "refresh"]
JOB_TYPES: tuple[str, ...] = ("sync", "reset", "clear", "refresh")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
#: ``empty_success``: succeeds having moved nothing, as Airbyte records some launch failures
#: (airbytehq/airbyte#85355).
BEHAVIOURS = (
    "normal",
    "stuck_pending",
    "stuck_running",
    "fail",
    "incomplete_then_succeed",
    "empty_success",
)
DEFAULT_FAILURE = "Simulated failure: source connector exited with code 1"


@dataclass
class Attempt:
    """One try at running a job."""

    number: int
    created_at: float
    updated_at: float
    status: str = "running"
    ended_at: float | None = None
    streams: list[StreamResult] = field(default_factory=list)
    failure_reason: str | None = None

    @property
    def records(self) -> int:
        return sum(s.records for s in self.streams)

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.streams)


@dataclass
class Job:
    """A sync/reset/clear/refresh job of a connection."""

    id: int
    connection_id: str
    job_type: JobType
    created_at: float
    updated_at: float
    behaviour: str = "normal"
    failure_reason: str = DEFAULT_FAILURE
    status: str = "pending"
    started_at: float | None = None
    attempts: list[Attempt] = field(default_factory=list)
    #: The streams a per-stream clear/reset or a refresh is about (None: all of them).
    streams_selected: list[str] | None = None
    #: A refresh's mode: ``truncate`` (empty, then sync from scratch) or ``merge`` (sync
    #: from scratch into the existing rows).
    refresh_mode: str | None = None
    phase_started: float = field(default_factory=time.monotonic)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def streams(self) -> list[StreamResult]:
        """Per-stream results of the succeeded attempt (empty otherwise)."""
        return next((a.streams for a in self.attempts if a.status == "succeeded"), [])

    @property
    def records(self) -> int:
        return sum(s.records for s in self.streams)

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.streams)

    def summary(self) -> dict:
        """Compact description for the admin API."""
        return {
            "id": self.id,
            "connection_id": self.connection_id,
            "job_type": self.job_type,
            "status": self.status,
            "attempts": len(self.attempts),
            "behaviour": self.behaviour,
            "records": self.records,
            "updated_at": self.updated_at,
        }


@dataclass
class BehaviourRule:
    """``behaviour`` for the next ``count`` jobs (on ``connection_id`` if set)."""

    behaviour: str
    count: int = 1
    connection_id: str | None = None
    failure_reason: str | None = None
