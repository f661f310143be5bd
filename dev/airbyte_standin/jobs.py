"""The job store: creation, lifecycle (pending -> running -> terminal), behaviours, the ticker.

The jobs themselves are ``job_model``; with a ``journal`` they outlive the process.
"""

from __future__ import annotations

import logging
import threading
import time

from dev.airbyte_standin.job_model import (
    BEHAVIOURS,
    DEFAULT_FAILURE,
    Attempt,
    BehaviourRule,
    Job,
    JobType,
)
from dev.airbyte_standin.journal import JobJournal
from dev.airbyte_standin.warehouse import StreamResult, Warehouse
from dev.airbyte_standin.workspace import DELETED, ConnectionRegistry

log = logging.getLogger(__name__)


class ConflictError(Exception):
    """A job is already running on the connection, or the connection is deleted."""


class UnknownJobError(KeyError):
    """No job with that id."""


class JobStore:
    """All jobs, guarded by one lock; ``tick`` advances them in time.

    With a ``journal`` every change of a job is saved, and the saved jobs are loaded at start.
    """

    def __init__(
        self,
        warehouse: Warehouse,
        connections: ConnectionRegistry,
        pending_seconds: float,
        running_seconds: float,
        rows_per_stream: int,
        journal: JobJournal | None = None,
    ) -> None:
        self.warehouse = warehouse
        self.connections = connections
        self.pending_seconds = pending_seconds
        self.running_seconds = running_seconds
        #: ``running_seconds`` of the jobs of one connection, where set.
        self.running_by_connection: dict[str, float] = {}
        self.rows_per_stream = rows_per_stream
        self.journal = journal
        self.lock = threading.RLock()
        self.jobs: dict[int, Job] = {job.id: job for job in journal.load()} if journal else {}
        self.rules: list[BehaviourRule] = []
        self._next_id = max(self.jobs, default=0) + 1

    def _save(self, job: Job) -> None:
        if self.journal is not None:
            self.journal.save(job)

    # -- commands -------------------------------------------------------------------------
    def create(
        self,
        connection_id: str,
        job_type: JobType,
        streams: list[str] | None = None,
        refresh_mode: str | None = None,
    ) -> Job:
        """Queue a new job (``streams``: of a per-stream or refresh job, else all of the
        connection's, recorded as Airbyte records the streams to reset); ConflictError if the
        connection is deleted or has a non-terminal job."""
        connection = self.connections.get(connection_id)
        if connection.status == DELETED:
            raise ConflictError(
                f"The connection manager workflow for connection {connection_id} is deleted, "
                "so no further operations can be performed on it."
            )
        if streams is None and job_type != "sync":
            streams = list(connection.streams)
        with self.lock:
            running = [
                j for j in self.jobs.values() if j.connection_id == connection_id and not j.terminal
            ]
            if running:
                raise ConflictError(
                    f"A sync is already running for connection {connection_id} "
                    f"(job {running[0].id}, status {running[0].status})."
                )
            now = time.time()
            job = Job(
                id=self._next_id,
                connection_id=connection_id,
                job_type=job_type,
                created_at=now,
                updated_at=now,
                streams_selected=streams,
                refresh_mode=refresh_mode,
            )
            self._apply_rule(job)
            self._next_id += 1
            self.jobs[job.id] = job
            self._save(job)
            return job

    def get(self, job_id: int) -> Job:
        """The job, or UnknownJobError."""
        with self.lock:
            if job_id not in self.jobs:
                raise UnknownJobError(job_id)
            return self.jobs[job_id]

    def cancel(self, job_id: int) -> Job:
        """Cancel a non-terminal job; a terminal job is returned unchanged."""
        with self.lock:
            job = self.get(job_id)
            if job.terminal:
                return job
            now = time.time()
            for attempt in job.attempts:
                if attempt.status == "running":
                    attempt.status, attempt.ended_at, attempt.updated_at = "failed", now, now
                    attempt.failure_reason = "Job was cancelled."
            job.status, job.updated_at = "cancelled", now
            self._save(job)
            return job

    def list(self) -> list[Job]:
        """Every job, oldest first."""
        with self.lock:
            return sorted(self.jobs.values(), key=lambda j: j.id)

    def add_rule(self, rule: BehaviourRule) -> None:
        """Queue a behaviour for the next matching jobs."""
        if rule.behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {rule.behaviour!r}; use one of {BEHAVIOURS}")
        with self.lock:
            self.rules.append(rule)

    def set_durations(
        self,
        pending_seconds: float | None = None,
        running_seconds: float | None = None,
        connection_id: str | None = None,
    ) -> None:
        """Change how long jobs stay pending and running (``connection_id``: how long that
        connection's jobs run, ahead of the general setting, which they follow again when
        ``running_seconds`` is None); jobs in flight follow at once."""
        for value in (pending_seconds, running_seconds):
            if value is not None and (isinstance(value, bool) or not value >= 0):
                raise ValueError(f"a duration must be a number of seconds >= 0, not {value!r}")
        if connection_id is not None:
            if pending_seconds is not None:
                raise ValueError("for one connection, give running_seconds only")
            self.connections.get(connection_id)  # unknown: UnknownConnectionError
        with self.lock:
            if connection_id is not None:
                if running_seconds is None:
                    self.running_by_connection.pop(connection_id, None)
                else:
                    self.running_by_connection[connection_id] = float(running_seconds)
                return
            if pending_seconds is not None:
                self.pending_seconds = float(pending_seconds)
            if running_seconds is not None:
                self.running_seconds = float(running_seconds)

    def reset(self) -> None:
        """Forget jobs, behaviours and per-connection durations (job ids keep increasing)."""
        with self.lock:
            self.jobs.clear()
            self.rules.clear()
            self.running_by_connection.clear()
            if self.journal is not None:
                self.journal.clear()

    # -- time -----------------------------------------------------------------------------
    def tick(self) -> None:
        """Advance every non-terminal job whose current phase is over."""
        with self.lock:
            for job in list(self.jobs.values()):
                if not job.terminal:
                    before = (job.status, len(job.attempts))
                    self._advance(job, time.monotonic())
                    if (job.status, len(job.attempts)) != before:
                        self._save(job)

    def _advance(self, job: Job, mono: float) -> None:
        elapsed = mono - job.phase_started
        running = self.running_by_connection.get(job.connection_id, self.running_seconds)
        if job.status == "pending" and job.behaviour == "stuck_pending":
            return
        if (job.status == "pending" and elapsed >= self.pending_seconds) or (
            job.status == "incomplete" and elapsed >= running
        ):
            self._start_attempt(job, mono)
        elif job.status == "running" and elapsed >= running and job.behaviour != "stuck_running":
            self._finish_attempt(job, mono)

    def _start_attempt(self, job: Job, mono: float) -> None:
        now = time.time()
        job.attempts.append(Attempt(number=len(job.attempts), created_at=now, updated_at=now))
        job.status, job.updated_at, job.phase_started = "running", now, mono
        job.started_at = job.started_at or now

    def _finish_attempt(self, job: Job, mono: float) -> None:
        attempt = job.attempts[-1]
        retry = job.behaviour == "incomplete_then_succeed" and len(job.attempts) == 1
        if job.behaviour == "fail" or retry:
            self._fail_attempt(
                job, attempt, job.failure_reason, "incomplete" if retry else "failed"
            )
        else:
            try:
                attempt.streams = [] if job.behaviour == "empty_success" else self._perform(job)
            except Exception as exc:  # the destination failed: the job fails like in Airbyte
                log.exception("job %s failed writing to the warehouse", job.id)
                self._fail_attempt(job, attempt, f"Destination write failed: {exc}", "failed")
                return
            now = time.time()
            attempt.status, attempt.ended_at, attempt.updated_at = "succeeded", now, now
            job.status, job.updated_at = "succeeded", now
        job.phase_started = mono

    @staticmethod
    def _fail_attempt(job: Job, attempt: Attempt, reason: str, job_status: str) -> None:
        now = time.time()
        attempt.status, attempt.ended_at, attempt.updated_at = "failed", now, now
        attempt.failure_reason = reason
        job.status, job.updated_at = job_status, now

    def _perform(self, job: Job) -> list[StreamResult]:
        connection = self.connections.get(job.connection_id)
        streams = job.streams_selected or list(connection.streams)
        if job.job_type == "sync":
            return self.warehouse.sync(connection, self.rows_per_stream)
        if job.job_type == "refresh":
            mode = job.refresh_mode or "truncate"
            return self.warehouse.sync(connection, self.rows_per_stream, streams, refresh=mode)
        self.warehouse.clear(connection, streams)
        return [StreamResult(stream=s, records=0, bytes=0) for s in streams]

    def _apply_rule(self, job: Job) -> None:
        for rule in self.rules:
            if rule.count > 0 and rule.connection_id in (None, job.connection_id):
                rule.count -= 1
                job.behaviour = rule.behaviour
                job.failure_reason = rule.failure_reason or DEFAULT_FAILURE
                break
        self.rules = [r for r in self.rules if r.count > 0]


class Ticker:
    """Background thread calling ``JobStore.tick`` every ``interval`` seconds."""

    def __init__(self, store: JobStore, interval: float) -> None:
        self.store = store
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="standin-ticker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.store.tick()
            except Exception:  # keep ticking whatever one job did
                log.exception("ticker failed")
