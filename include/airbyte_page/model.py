"""What the Airbyte page says of each connection, and in which order: pure data, no I/O.

A ``Row`` is one entry of the connections file: its last sync, its last succeeded syncs (for
the charts), its drift findings and what Airbyte says of its connection. ``Sync.from_event``
reads a connection Asset event of Airflow's REST API (its ``extra`` is
``plugins.airbyte_client.contracts.job_extra``), ``Sync.from_task`` a failed Airbyte task
instance; ``drift_findings`` sorts the findings of ``airbyte_workspace_drift`` by entry.
``ordered`` puts failing connections first, then drifting ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from include.workspace import Findings, NewConnection
from plugins.airbyte_client.contracts import (
    JOB_ID_KEY,
    ORIGIN_NOTIFICATION,
    ORIGIN_RECONCILED,
    ORIGIN_TASK,
    ORIGIN_WATCHDOG,
)

N = TypeVar("N", int, float)
#: How many succeeded syncs the charts show.
HISTORY = 20
#: Who started a sync (or told Airflow of it), by the ``origin`` of its Asset event.
STARTED_BY = {
    ORIGIN_TASK: "DAG task",
    ORIGIN_NOTIFICATION: "Airbyte (its notification)",
    ORIGIN_WATCHDOG: "DAG task (its watchdog)",
    ORIGIN_RECONCILED: "found by the reconciler",
}
SUCCEEDED = "succeeded"
#: States of an Airbyte task instance that mean its sync failed (a retry may follow).
FAILED_STATES = ("failed", "up_for_retry")
FAILING, DRIFTING, HEALTHY = "failing", "drifting", "healthy"


def parse_time(value: str | None) -> datetime | None:
    """An ISO 8601 timestamp of Airflow's API (``...Z`` or ``+00:00``), or None."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Sync:
    """One sync of a connection: a succeeded Airbyte job (an Asset event) or a failed task."""

    status: str
    at: datetime
    origin: str
    job_id: int | None = None
    records: int | None = None
    bytes: int | None = None
    duration_seconds: float | None = None
    dag_id: str | None = None
    run_id: str | None = None
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATES

    @property
    def started_by(self) -> str:
        return STARTED_BY.get(self.origin, self.origin or "unknown")

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Sync | None:
        """The sync an Asset event announces; None without a timestamp."""
        at = parse_time(event.get("timestamp"))
        if at is None:
            return None
        extra = event.get("extra") if isinstance(event.get("extra"), Mapping) else {}
        dag_id = event.get("source_dag_id")
        return cls(
            status=str(extra.get("status") or SUCCEEDED),
            at=at,
            origin=str(extra.get("origin") or (ORIGIN_TASK if dag_id else "unknown")),
            job_id=_number(extra.get(JOB_ID_KEY), int),
            records=_number(extra.get("records"), int),
            bytes=_number(extra.get("bytes"), int),
            duration_seconds=_number(extra.get("duration_seconds"), float),
            dag_id=dag_id,
            run_id=event.get("source_run_id"),
        )

    @classmethod
    def from_task(cls, ti: Mapping[str, Any]) -> Sync | None:
        """The failed sync of an Airbyte task instance; None when it has not ended."""
        at = parse_time(ti.get("end_date"))
        if at is None:
            return None
        tries = f"try {ti.get('try_number')} of {(ti.get('max_tries') or 0) + 1}"
        retry = ", a retry follows" if ti.get("state") == "up_for_retry" else ""
        return cls(
            status=str(ti.get("state")),
            at=at,
            origin=ORIGIN_TASK,
            dag_id=ti.get("dag_id"),
            run_id=ti.get("dag_run_id"),
            detail=f"task {ti.get('task_id')} {ti.get('state')} ({tries}{retry})",
        )


def _number(value: Any, kind: type[N]) -> N | None:
    """``value`` as a ``kind``, or None when it is not a number (a bool is not)."""
    try:
        return None if value is None or isinstance(value, bool) else kind(value)
    except (TypeError, ValueError):
        return None


def history(events: Iterable[Mapping[str, Any]]) -> tuple[Sync, ...]:
    """The succeeded syncs of a connection's Asset events (any order), oldest first, the last
    ``HISTORY``; a job announced twice counts once."""
    syncs = sorted((s for e in events if (s := Sync.from_event(e)) is not None), key=_when)
    seen: set[int] = set()
    unique = []
    for sync in syncs:
        if sync.job_id is not None and sync.job_id in seen:
            continue
        if sync.job_id is not None:
            seen.add(sync.job_id)
        unique.append(sync)
    return tuple(unique[-HISTORY:])


def _when(sync: Sync) -> datetime:
    return sync.at


@dataclass(frozen=True)
class Finding:
    """One drift finding of an entry: ``kind`` is a kind of ``include.workspace.Findings``."""

    kind: str
    detail: str


def drift_findings(findings: Findings) -> dict[str, tuple[Finding, ...]]:
    """The drift check's findings, by entry key."""
    return {
        key: tuple(Finding(kind, detail) for kind, detail in items)
        for key, items in findings.by_entry.items()
    }


@dataclass(frozen=True)
class AirbyteSide:
    """What Airbyte said of an entry's connection: its ``status`` and ``name``, or the
    ``problem`` that makes it point at nothing; all None when Airbyte has not said."""

    connection_id: str | None = None
    status: str | None = None
    name: str | None = None
    problem: str | None = None
    url: str | None = None

    @property
    def wrong(self) -> bool:
        return self.problem is not None or self.status not in (None, "active")


@dataclass(frozen=True)
class Row:
    """One entry of the connections file, as the page shows it."""

    key: str
    label: str
    named_by: str
    last: Sync | None = None
    syncs: tuple[Sync, ...] = ()
    findings: tuple[Finding, ...] = ()
    airbyte: AirbyteSide = field(default_factory=AirbyteSide)
    dag_id: str | None = None

    @property
    def health(self) -> str:
        if self.last is not None and self.last.failed:
            return FAILING
        if self.findings or self.airbyte.wrong:
            return DRIFTING
        return HEALTHY


def last_sync(syncs: Sequence[Sync], failure: Sync | None) -> Sync | None:
    """The newer of the last succeeded sync and the last failed Airbyte task."""
    latest = syncs[-1] if syncs else None
    if failure is None or (latest is not None and latest.at >= failure.at):
        return latest
    return failure


RANK = {FAILING: 0, DRIFTING: 1, HEALTHY: 2}


def ordered(rows: Iterable[Row]) -> list[Row]:
    """Failing connections first, then drifting ones, then the rest; by label within each."""
    return sorted(rows, key=lambda row: (RANK[row.health], row.label.casefold(), row.key))


@dataclass(frozen=True)
class Page:
    """Everything the page shows; ``notes`` say what could not be read and why."""

    generated_at: datetime
    rows: tuple[Row, ...]
    new_connections: tuple[NewConnection, ...] = ()
    drift_checked_at: datetime | None = None
    drift_run: tuple[str, str] | None = None
    notes: tuple[str, ...] = ()

    def count(self, health: str) -> int:
        return sum(1 for row in self.rows if row.health == health)
