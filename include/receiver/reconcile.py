"""Making Airflow's and Airbyte's views agree: the work of the DAG ``airbyte_reconcile``.

For every entry of the connections file, the connection's latest jobs (one request per
connection, ``RECENT_JOBS_LOOKED_AT`` jobs) that ended within ``lookback``, but at least
``settle_after`` ago (until then the job's notification or the task waiting for it creates
its events), are settled as a notification would settle them (``include.receiver.settle``,
origin ``airbyte_reconciled``): the Asset events of a succeeded sync that no receiver or task
created (a lost notification), the report of a failure nobody reported. The ledger the
receivers share decides what exists, so a job is never settled twice, whoever saw it first.
A job Airflow or Airbyte does not answer for is left to the next try (``unsettled``); the
others go on.

Then the orphans: Airbyte jobs an ``AirbyteSyncOperator`` started whose task instance has
failed for good (its retries spent, or marked failed while deferred, before any triggerer ran
its trigger) are cancelled when still running. The job ids come from the task instances'
``task_state_store``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from airflow.sdk.observability.stats import Stats

from include.connections import ConnectionEntry, ConnectionsFile
from include.receiver.airflow_client import AirflowClient, AirflowUnavailable
from include.receiver.ledger import Ledger
from include.receiver.settings import AirflowSettings
from include.receiver.settle import AirbyteUnavailable, ClaimHeld, JobSettler
from plugins.airbyte_client.client import AsyncAirbyteClient
from plugins.airbyte_client.contracts import JOB_ID_KEY, ORIGIN_RECONCILED
from plugins.airbyte_client.errors import AirbyteConfigError, AirbyteError
from plugins.airbyte_hook import AirbyteHook

log = logging.getLogger("airbyte.reconcile")
OPERATOR = "AirbyteSyncOperator"


@dataclass
class Reconciled:
    """What one reconciliation did, by Airbyte job id."""

    events_created: dict[int, list[str]] = field(default_factory=dict)
    failures_reported: list[int] = field(default_factory=list)
    orphans_cancelled: list[int] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    #: Jobs left half done because Airflow or Airbyte did not answer: the next try's.
    unsettled: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "events_created": {str(k): v for k, v in self.events_created.items()},
            "failures_reported": self.failures_reported,
            "orphans_cancelled": self.orphans_cancelled,
            "unreadable": self.unreadable,
            "unsettled": self.unsettled,
        }


def count(done: Reconciled) -> None:
    """Airflow metrics (StatsD) of a run, sent even when 0: ``airbyte.reconcile.events_created``
    (syncs whose notification was lost), ``airbyte.reconcile.failures_reported`` and
    ``airbyte.reconcile.orphans_cancelled``."""
    Stats.incr("airbyte.reconcile.events_created", len(done.events_created))
    Stats.incr("airbyte.reconcile.failures_reported", len(done.failures_reported))
    Stats.incr("airbyte.reconcile.orphans_cancelled", len(done.orphans_cancelled))


async def reconcile(
    connections: ConnectionsFile,
    settings: AirflowSettings,
    lookback: timedelta,
    settle_after: timedelta,
) -> Reconciled:
    """One reconciliation of every entry's jobs and of the orphaned ones."""
    done = Reconciled()
    now = datetime.now(UTC)
    window = (now - lookback, now - settle_after)
    airflow = AirflowClient(settings)
    ledger = await asyncio.to_thread(Ledger, settings.ledger_database)
    try:
        for conn_id, entries in connections.by_server().items():
            hook = AirbyteHook(conn_id)  # one Connection lookup per server, not per entry
            settler = JobSettler(airflow, ledger, hook)
            try:
                for entry in entries:
                    await _settle_entry(settler, hook, entry, window, done)
            finally:
                await settler.aclose()
        await _cancel_orphans(airflow, window[0], done)
    finally:
        await airflow.aclose()
        ledger.close()
    return done


async def _settle_entry(
    settler: JobSettler,
    hook: AirbyteHook,
    entry: ConnectionEntry,
    window: tuple[datetime, datetime],
    done: Reconciled,
) -> None:
    """Settle the jobs of ``entry`` (on ``hook``'s server) that ended within ``window``."""
    airbyte = await settler.airbyte()
    try:
        connection_id = await asyncio.to_thread(hook.resolve_connection_id, **entry.connection)
        jobs = await airbyte.recent_jobs(connection_id)
    except (AirbyteConfigError, AirbyteError) as error:
        log.warning("Cannot read the jobs of %s: %s", entry.key, error)
        done.unreadable.append(entry.key)
        return
    for job in jobs:
        ended = job.updated_at
        if not job.is_terminal or ended is None or not window[0] <= ended <= window[1]:
            continue
        try:  # careful: a receiver may have created events and lost Airflow's answer
            outcome = await settler.settle(job, ORIGIN_RECONCILED, careful=True)
        except ClaimHeld as busy:
            log.info("Job %s of %s: %s; left to it", job.job_id, entry.key, busy)
            continue
        except (AirflowUnavailable, AirbyteUnavailable) as error:  # the other jobs go on
            log.warning("Job %s of %s: %s; left to the next try", job.job_id, entry.key, error)
            done.unsettled.append(job.job_id)
            continue
        if outcome.status == "asset_events":
            done.events_created[job.job_id] = outcome.assets["created"]
            log.warning(
                "Job %s of %s: created its lost events %s",
                job.job_id,
                entry.key,
                outcome.assets["created"],
            )
        elif outcome.status == "failure_reported":
            done.failures_reported.append(job.job_id)


async def _cancel_orphans(airflow: AirflowClient, since: datetime, done: Reconciled) -> None:
    """Cancel the running jobs of failed Airbyte tasks (on ``airbyte_default``: the state
    store keeps a task's job id, not its Connection)."""
    hook = AirbyteHook()
    settings = await asyncio.to_thread(lambda: hook.settings)
    async with AsyncAirbyteClient(settings, log=log) as airbyte:
        for ti in await airflow.failed_tasks(OPERATOR, since.isoformat()):
            job_id = await airflow.stored_value(ti, JOB_ID_KEY)
            where = f"{ti['dag_id']}.{ti['task_id']} (run {ti['dag_run_id']})"
            try:
                job = None if job_id is None else await airbyte.get_job(int(job_id))
                if job is None or job.is_terminal:
                    continue
                await airbyte.cancel_job(job.job_id)
            except (AirbyteError, ValueError) as error:
                log.warning("Cannot settle job %r of the failed task %s: %s", job_id, where, error)
                continue
            done.orphans_cancelled.append(job.job_id)
            log.warning("Cancelled Airbyte job %s: its task %s failed, nobody waits", job_id, where)
