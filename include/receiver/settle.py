"""What happens once Airbyte has confirmed a finished job, for the receiver and the
reconciler alike: the Asset events of a succeeded sync (the connection's and each table's),
or one report of a failed or cancelled job.

- A succeeded sync: one Airflow asset event on the connection's Asset
  (``include.assets.connection_asset``) and one on each destination table's Asset, named as
  the sync task's lineage names them (``plugins.airbyte_client.lineage``; the connection's
  details are cached ``DETAILS_TTL_SECONDS``), ``extra`` holding the job id, records, bytes,
  duration and ``origin``. Each event is claimed in the shared ledger first
  (``include.receiver.ledger``), so of several receivers (and the reconciler) given the same
  job one creates it, and a replay creates nothing, for good. A job a task announced already
  (the sync task's outlets, the zero-poll watchdog's) is left alone: one listing of the
  connection asset's events since the job was created. Airflow 3.3.0 answers 500 to that
  listing while a run an event created is still queued (apache/airflow#71360); the ledger
  then decides alone; a task that could not name the tables announced the connection only,
  and the tables' events are created. Once a task announced a job, or every event of it
  exists and its tables were named from details read after the job began, the job is marked
  in the ledger (``sync:<connection_id>:<job_id>``): a later look at it makes no request.
- A failed or cancelled job: a message with the job id and Airbyte's error to the entry's
  channels (else ``AIRBYTE_NOTIFY_CHANNELS``; ``include.notifications``), once per job.
- A job still running, a reset or clear, a sync that moved nothing, a connection the
  connections file does not list: nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from include.assets import connection_asset
from include.connections import ConnectionEntry, load_connections
from include.notifications import SyncMessage, channels_named
from include.receiver.airflow_client import PAGE_SIZE, AirflowClient, AirflowUnavailable
from include.receiver.ledger import SETTLED, Ledger
from plugins.airbyte_client.client import AsyncAirbyteClient
from plugins.airbyte_client.contracts import (
    TABLES_KEY,
    job_extra,
    names_job,
    sync_stats,
    table_extra,
)
from plugins.airbyte_client.errors import AirbyteConfigError, AirbyteError
from plugins.airbyte_client.lineage import SyncLineage, sync_lineage
from plugins.airbyte_client.models import AirbyteJob, ConnectionDetails, JobStatus, JobType
from plugins.airbyte_hook import AirbyteHook, connection_id_given

log = logging.getLogger("webhook.airbyte")
#: How much of a notification's ``errorMessage`` (often a stack trace) a report quotes.
MAX_REASON_CHARS = 2000
#: How far the events since a job began are looked through for the job's (an asset's events
#: since one sync began are usually that sync's and the next few syncs').
MAX_LISTED_PAGES = 10
#: How long a connection's details (its tables' names) are reused before being asked again.
DETAILS_TTL_SECONDS = 3600.0


class AirbyteUnavailable(Exception):
    """Airbyte could not answer now (unreachable, 5xx, credentials refused)."""


class ClaimHeld(Exception):
    """Another receiver (or the reconciler) is settling this job at this moment."""


@dataclass
class Outcome:
    """What the receiver answers Airbyte."""

    status: str
    detail: str
    job_id: int | None = None
    status_code: int = 200
    assets: dict[str, list[str]] = field(default_factory=dict)

    def content(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "detail": self.detail}
        if self.job_id is not None:
            body["job_id"] = self.job_id
        return {**body, **self.assets}


def job_event(
    events: list[dict[str, Any]], job_id: int, *, by_task: bool = False
) -> dict[str, Any] | None:
    """The first of ``events`` (REST API shapes) created for Airbyte job ``job_id`` (``by_task``:
    by a task's outlets, not through the REST API as a receiver does), or None."""
    return next(
        (
            e
            for e in events
            if names_job(e.get("extra"), job_id) and (not by_task or e.get("source_task_id"))
        ),
        None,
    )


def entry_of(connection_id: str, name: str | None = None) -> ConnectionEntry | None:
    """The entry of the connections file naming ``connection_id``: by id, through its
    Variable(s), or (when ``name`` is given) by the connection's name in Airbyte."""
    for entry in load_connections().connections.values():
        if entry.connection_name is not None:
            if entry.connection_name == name:
                return entry
            continue
        try:
            given = connection_id_given(entry.connection_id, entry.connection_variable)
        except AirbyteConfigError:
            continue
        if given == connection_id:
            return entry
    return None


class _Details(NamedTuple):
    """A connection's details and when they were read."""

    monotonic: float
    read_at: datetime
    details: ConnectionDetails


class JobSettler:
    """Settles confirmed Airbyte jobs: Asset events or a failure report, once for good."""

    def __init__(self, airflow: AirflowClient, ledger: Ledger, hook: AirbyteHook) -> None:
        self._airflow = airflow
        self._ledger = ledger
        #: Who holds this process's claims in the shared ledger.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._hook = hook
        self._client: AsyncAirbyteClient | None = None
        self._locks: dict[int, asyncio.Lock] = {}
        self._details: dict[str, _Details] = {}

    async def settle(
        self,
        job: AirbyteJob,
        origin: str,
        error_message: str | None = None,
        *,
        careful: bool = False,
    ) -> Outcome:
        """Act on ``job`` as Airbyte reported it; ``origin`` goes into the events' ``extra``,
        ``error_message`` (a notification's) into a failure report when Airbyte gives none.
        ``careful``: an earlier try may have created events and lost Airflow's answer, so each
        asset's events are looked at before one is created.

        Raises ``ClaimHeld`` when another process is settling the job now (try later),
        ``AirflowUnavailable`` and ``AirbyteUnavailable`` (nothing half done stays claimed)."""
        if not job.is_terminal:
            log.info("Airbyte job %s is %s, not finished: no action", job.job_id, job.status)
            return Outcome("ignored", f"The job is {job.status}, not finished.", job.job_id)
        if job.status is not JobStatus.SUCCEEDED:
            return await self._report_failure(job, error_message)
        if job.job_type is not JobType.SYNC:
            log.info("Airbyte %s job %s succeeded: no asset events", job.job_type, job.job_id)
            return Outcome("ignored", f"A {job.job_type} job updates no asset.", job.job_id)
        if job.records == 0 and job.bytes == 0:  # also how Airbyte records some launch failures
            log.warning(
                "Airbyte job %s succeeded having moved nothing: no asset events", job.job_id
            )
            return Outcome("ignored", "The job moved no data: no asset was updated.", job.job_id)
        if await asyncio.to_thread(self._ledger.recall, _sync_key(job)) is not None:
            return Outcome("duplicate", "The job's asset events exist.", job.job_id)
        source = await self._entry(job.connection_id)
        if source is None:
            log.info("Airbyte connection %s is not one of ours: no action", job.connection_id)
            return Outcome("ignored", "No DAG here syncs this connection.", job.job_id)
        async with self._locks.setdefault(job.job_id, asyncio.Lock()):
            try:
                return await self._emit(job, source, origin, careful)
            finally:
                self._locks.pop(job.job_id, None)

    async def airbyte(self) -> AsyncAirbyteClient:
        """The receiver's one Airbyte client, made on first use (settings read then)."""
        if self._client is None:
            # Outside a task Airflow's secrets are read the blocking way: once, in a thread.
            settings = await asyncio.to_thread(lambda: self._hook.settings)
            self._client = AsyncAirbyteClient(settings, log=log)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _entry(self, connection_id: str) -> ConnectionEntry | None:
        """The connection's entry in the connections file; its name is asked of Airbyte
        only when no entry names it otherwise and some entry names a connection by name."""
        entry = await asyncio.to_thread(entry_of, connection_id)
        by_name = any(e.connection_name for e in load_connections().connections.values())
        if entry is not None or not by_name:
            return entry
        try:
            details = await self._details_of(connection_id)
        except AirbyteError as error:
            log.error("Cannot read the name of Airbyte connection %s: %s", connection_id, error)
            raise AirbyteUnavailable(str(error)) from None
        return entry_of(connection_id, details.name)

    async def _details_of(self, connection_id: str) -> ConnectionDetails:
        """The connection's details, asked of Airbyte at most every ``DETAILS_TTL_SECONDS``."""
        cached = self._details.get(connection_id)
        if cached is None or time.monotonic() - cached.monotonic > DETAILS_TTL_SECONDS:
            details = await (await self.airbyte()).get_connection_details(connection_id)
            cached = _Details(time.monotonic(), datetime.now(UTC), details)
            self._details[connection_id] = cached
        return cached.details

    def _read_since_start(self, job: AirbyteJob) -> bool:
        """Whether the job's connection details were read after the job was created (so a
        stream added before the sync is in them)."""
        cached, created = self._details.get(job.connection_id), job.created_at
        if cached is None or created is None:
            return False
        return cached.read_at >= (created if created.tzinfo else created.replace(tzinfo=UTC))

    async def _lineage(self, job: AirbyteJob) -> SyncLineage | None:
        """The tables the job wrote, from the connection's (cached) details; None if unknown."""
        try:
            details = await self._details_of(job.connection_id)
        except AirbyteError as error:
            log.warning("No table names for job %s: %s", job.job_id, error)
            return None
        try:
            return sync_lineage(job, details)
        except Exception:  # naming is best effort; the connection's event is what counts
            log.exception("No table names for job %s", job.job_id)
            return None

    async def _emit(
        self, job: AirbyteJob, source: ConnectionEntry, origin: str, careful: bool
    ) -> Outcome:
        connection_uri = connection_asset(source).uri
        announced = await self._announcement(job, connection_uri)
        if announced is not None and TABLES_KEY in (announced.get("extra") or {}):
            await asyncio.to_thread(self._ledger.mark, _sync_key(job), "announced")
            log.info("Airbyte job %s succeeded: a task announced it already", job.job_id)
            return Outcome("duplicate", "A task announced the job's asset events.", job.job_id)
        lineage = await self._lineage(job)
        tag = {"source": source.key}
        targets = []
        if announced is None:  # else the task could not name the tables: theirs are missing
            targets.append((connection_uri, {**job_extra(job, lineage, origin), **tag}))
        for out in lineage.outputs if lineage else ():
            targets.append((out.uri, {**table_extra(job, out, origin), **tag}))
        assets: dict[str, list[str]] = {"created": [], "existing": [], "undeclared": []}
        for uri, extra in targets:
            outcome = await self._emit_one(job, uri, extra, careful)
            assets[outcome].append(uri)
        created, existing, undeclared = assets.values()
        if undeclared:
            log.warning("No DAG declares the assets %s; no event for them", undeclared)
        elif lineage is not None and self._read_since_start(job):  # every event there, for good
            await asyncio.to_thread(self._ledger.mark, _sync_key(job), str(len(targets)))
        log.info(
            "Airbyte job %s succeeded: asset events created %s, already there %s",
            job.job_id,
            created,
            existing,
        )
        if created:
            return Outcome("asset_events", "Asset events created.", job.job_id, assets=assets)
        return Outcome("duplicate", "The job's asset events exist.", job.job_id, assets=assets)

    async def _announcement(self, job: AirbyteJob, connection_uri: str) -> dict[str, Any] | None:
        """The connection asset's event of a task (the sync's own, the watchdog) that
        announced the job already: its outlets' events, the connection's among them, are
        created together, and its ``extra`` has ``tables`` when the task could name them (a
        receiver's or the reconciler's own event does not count: a try that failed midway
        made only some). One listing of the connection asset's events since the job was
        created; None when Airflow cannot say (apache/airflow#71360): the ledger then decides
        alone."""
        asset_id = await self._airflow.asset_id(connection_uri)
        return None if asset_id is None else await self._listed(asset_id, job, by_task=True)

    async def _emit_one(
        self, job: AirbyteJob, uri: str, extra: dict[str, Any], careful: bool
    ) -> str:
        """The event of ``uri`` for the job: ``created``, ``existing`` or ``undeclared``.

        The ledger's claim makes this the only process creating it, for good. Its own
        listing is asked only when an earlier try may have created the event and lost the
        answer (``careful``, or a claim taken over from a receiver that died)."""
        asset_id = await self._airflow.asset_id(uri)
        if asset_id is None:
            return "undeclared"
        key = f"asset:{job.job_id}:{uri}"
        claim = await asyncio.to_thread(self._ledger.claim, key, self.owner)
        if not claim.ours:
            if claim.state == SETTLED:
                return "existing"
            raise ClaimHeld(f"the event of {uri} for job {job.job_id} is being created elsewhere")
        try:
            listed = (careful or claim.taken_over) and (
                await self._listed(asset_id, job) is not None
            )
            if not listed:
                await self._airflow.create_asset_event(asset_id, extra)
        except BaseException:
            await asyncio.to_thread(self._ledger.release, key, self.owner)
            raise
        await asyncio.to_thread(self._ledger.settle, key, str(asset_id))
        return "existing" if listed else "created"

    async def _listed(
        self, asset_id: int, job: AirbyteJob, *, by_task: bool = False
    ) -> dict[str, Any] | None:
        """The first of the asset's events since the job was created that names it (oldest
        first, at most ``MAX_LISTED_PAGES`` pages; ``by_task``: one a task created); None
        when there is none or Airflow cannot say."""
        for page in range(MAX_LISTED_PAGES):
            try:
                events = await self._airflow.asset_events(
                    asset_id, since=job.created_at, offset=page * PAGE_SIZE
                )
            except AirflowUnavailable as error:
                log.warning("Cannot list asset %s events (%s); the ledger decides", asset_id, error)
                return None
            if (found := job_event(events, job.job_id, by_task=by_task)) is not None:
                return found
            if len(events) < PAGE_SIZE:
                return None
        log.warning(
            "Asset %s: over %s events since job %s began; the ledger decides",
            asset_id,
            MAX_LISTED_PAGES * PAGE_SIZE,
            job.job_id,
        )
        return None

    async def _report_failure(self, job: AirbyteJob, notified: str | None) -> Outcome:
        """Report a confirmed failure once; the reason is Airbyte's API's, else the one the
        notification gave (the Public API has none), said to come from there."""
        key = f"failure:{job.connection_id}:{job.job_id}"
        claim = await asyncio.to_thread(self._ledger.claim, key, self.owner)
        if not claim.ours:
            if claim.state == SETTLED:
                return Outcome("duplicate", "This failure was reported already.", job.job_id)
            raise ClaimHeld(f"the failure of job {job.job_id} is being reported elsewhere")
        reason = job.failure_reason or (
            f"{notified[:MAX_REASON_CHARS]} (from Airbyte's notification)"
            if notified
            else "Airbyte gave no reason; see the job's logs in Airbyte."
        )
        message = SyncMessage(
            subject=f"Airbyte job {job.job_id} {job.status}: connection {job.connection_id}",
            body="\n".join(
                [
                    f"Airbyte job: {job.job_id}",
                    f"Connection: {job.connection_id}",
                    f"Status: {job.status}",
                    f"Error: {reason}",
                ]
            ),
            dag_id="airbyte",
            run_id=f"airbyte_job_{job.job_id}",
            task_id=None,
            state=str(job.status),
            airbyte_job_id=job.job_id,
            stats=dict(sync_stats(job)),
        )
        entry = await self._entry(job.connection_id)
        try:
            await asyncio.to_thread(_send, message, entry.notify if entry else None)
        except BaseException:
            await asyncio.to_thread(self._ledger.release, key, self.owner)
            raise
        await asyncio.to_thread(self._ledger.settle, key, str(job.status))
        log.warning("Airbyte job %s %s: reported (%s)", job.job_id, job.status, reason)
        return Outcome("failure_reported", f"The job {job.status}; reported.", job.job_id)


def _sync_key(job: AirbyteJob) -> str:
    """The ledger's mark of a succeeded sync whose every Asset event exists (job ids are one
    Airbyte's; connection ids are unique across Airbytes)."""
    return f"sync:{job.connection_id}:{job.job_id}"


def _send(message: SyncMessage, channels: tuple[str, ...] | None) -> None:
    for channel in channels_named(channels):
        channel.send(message)
