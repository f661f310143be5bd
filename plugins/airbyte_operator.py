"""``AirbyteSyncOperator``: run one Airbyte job (sync, reset, clear, refresh) exactly once.

Exactly once across task retries and crashes, on Airflow 3.3's ``ResumableJobMixin``: right
after Airbyte accepts a job, and before any wait (blocking or deferred), the job id is stored
in the task's ``task_state_store``, which belongs to the task instance and so outlives its
tries. A later try reads it back first:

- the job is still pending or running: wait for it (blocking or deferred), start nothing;
- the job succeeded: return its result at once, start nothing;
- the job failed or was cancelled, or Airbyte does not know it (404), or it belongs to another
  connection or job type: start a new job.

Once a try returns a job's result the stored id is deleted, so *clearing* a succeeded task runs
a new sync, as a user who clears it expects (the id stays in the ``airbyte_job_id`` XCom).
The second line of defence is the client's 409-attach. One window stays open: a crash after
Airbyte created a job but before its id reached the store (one API round-trip); if that job
already finished when the retry runs, the retry starts a second one. No client can close it:
"create the job and store its id" is not atomic across two systems.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, ResumableJobMixin
from airflow.sdk.configuration import conf

from plugins.airbyte_client.arguments import (
    JobArguments,
    OnConflict,
    validate_flag,
    validate_job_type,
    validate_refresh_mode,
    validate_streams,
    validate_timeout_minutes,
)
from plugins.airbyte_client.config import DEFAULT_CONN_ID
from plugins.airbyte_client.contracts import JOB_ID_KEY, job_dict, job_from_dict
from plugins.airbyte_client.errors import AirbyteError, AirbyteNotFoundError, error_from_event
from plugins.airbyte_client.models import AirbyteJob, JobStatus
from plugins.airbyte_links import AirbyteConnectionLink, AirbyteJobLink, job_urls

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context
    from pydantic import JsonValue

    from plugins.airbyte_client.lineage import SyncLineage
    from plugins.airbyte_hook import AirbyteHook

#: What ``get_job_status`` answers for a stored id that cannot be resumed.
NOT_RESUMABLE = "not_resumable"
_ACTIVE = frozenset(str(s) for s in JobStatus if not s.is_terminal)


class AirbyteSyncOperator(ResumableJobMixin, BaseOperator):
    """Run one Airbyte job on a connection and (by default) wait for it to finish.

    :param connection_id: the Airbyte connection id (templated).
    :param connection_id_variable: Variable name(s) holding the connection id, read at run
        time.
    :param connection_name: the connection's name in Airbyte, looked up at run time (give
        exactly one of ``connection_id``, ``connection_id_variable`` and ``connection_name``).
    :param job_type: ``sync`` (default), ``reset``, ``clear`` or ``refresh`` (templated).
    :param streams: limit a reset, clear or refresh to these streams (templated; the
        Configuration API's per-stream jobs).
    :param refresh_mode: a refresh's ``merge`` (default) or ``truncate`` (templated;
        Configuration API).
    :param wait: wait for the job to end; if false, return as soon as it is started (templated).
    :param timeout_minutes: how long to wait before giving up (templated).
    :param cancel_on_timeout: cancel the Airbyte job when the wait times out.
    :param on_conflict: when a job is already running on the connection: ``attach`` to it
        (also what catches a job whose id an earlier try could not store) or ``fail``.
    :param airbyte_conn_id: the Airflow Connection of the Airbyte server.
    :param poll_from_history: poll sparsely (``quiet_poll_interval``, 60 s by default) until
        90% of the connection's usual sync time, then closely: far fewer API calls on long
        syncs, and the end still noticed within seconds. Costs one request for the history.
    :param deferrable: hand the wait to the triggerer (``AirbyteJobTrigger``) so no worker
        slot is held while Airbyte works; defaults to Airflow's
        ``[operators] default_deferrable``.
    :param durable: keep the job id across tries (default); false starts a job on every try.
    :return: the finished job as a dict (``contracts.job_dict``); the job id is also pushed to
        XCom as ``airbyte_job_id`` as soon as the job exists.

    Lineage: the job's source streams and destination tables go to OpenLineage and into the
    ``extra`` of the task's Asset events (``plugins.airbyte_lineage``). The task links to its
    Airbyte job and connection.
    """

    template_fields: Sequence[str] = (
        "connection_id",
        "connection_name",
        "job_type",
        "streams",
        "refresh_mode",
        "timeout_minutes",
        "wait",
    )
    ui_color = "#615eff"
    operator_extra_links = (AirbyteJobLink(), AirbyteConnectionLink())
    external_id_key = JOB_ID_KEY

    def __init__(
        self,
        *,
        connection_id: str | None = None,
        connection_id_variable: str | Sequence[str] | None = None,
        connection_name: str | None = None,
        job_type: str = "sync",
        streams: Sequence[str] | str | None = None,
        refresh_mode: str | None = None,
        wait: bool | str = True,
        timeout_minutes: float = 60.0,
        cancel_on_timeout: bool = True,
        on_conflict: OnConflict = "attach",
        airbyte_conn_id: str = DEFAULT_CONN_ID,
        poll_from_history: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        named = [connection_id, connection_id_variable, connection_name]
        if sum(given is not None for given in named) != 1:
            raise ValueError(
                "Give exactly one of connection_id, connection_id_variable and connection_name"
            )
        self.connection_id = connection_id
        self.connection_id_variable = connection_id_variable
        self.connection_name = connection_name
        self.job_type = job_type
        self.streams = streams
        self.refresh_mode = refresh_mode
        self.wait = wait
        self.timeout_minutes = timeout_minutes
        self.cancel_on_timeout = cancel_on_timeout
        self.on_conflict = on_conflict
        self.airbyte_conn_id = airbyte_conn_id
        self.deferrable = deferrable
        self.poll_from_history = poll_from_history
        self._hook: AirbyteHook | None = None
        self._arguments: JobArguments | None = None
        self._job: AirbyteJob | None = None
        self._delivered: dict[str, Any] | None = None
        self._lineage: SyncLineage | None = None
        #: Airbyte web app URLs of the job and connection, for the extra links.
        self.airbyte_urls: dict[str, str] = {}

    @property
    def hook(self) -> AirbyteHook:
        # The client stack costs ~30 ms to import: loaded when the task runs, not at parse.
        from plugins.airbyte_hook import AirbyteHook

        if self._hook is None:
            self._hook = AirbyteHook(self.airbyte_conn_id, on_conflict=self.on_conflict)
        return self._hook

    def execute(self, context: Context) -> dict[str, Any]:
        self._arguments = self.checked_arguments()  # before any API call
        self._job = self._delivered = None
        return self.execute_resumable(context)

    def checked_arguments(self) -> JobArguments:
        """The rendered arguments, checked; ``AirbyteConfigError`` (no retries) if one is bad."""
        connection_id = self.hook.resolve_connection_id(
            self.connection_id, self.connection_id_variable, self.connection_name
        )
        job_type = validate_job_type(self.job_type)
        return JobArguments(
            connection_id=connection_id,
            job_type=job_type,
            timeout_minutes=validate_timeout_minutes(self.timeout_minutes),
            wait=validate_flag("wait", self.wait),
            streams=validate_streams(self.streams, job_type),
            refresh_mode=validate_refresh_mode(self.refresh_mode, job_type),
        )

    @property
    def arguments(self) -> JobArguments:
        if self._arguments is None:
            self._arguments = self.checked_arguments()
        return self._arguments

    # --- ResumableJobMixin ---------------------------------------------------------------

    def submit_job(self, context: Context) -> JsonValue:
        wanted = self.arguments
        self._job = self.hook.submit_job(
            wanted.connection_id,
            wanted.job_type,
            streams=wanted.streams,
            refresh_mode=wanted.refresh_mode,
        )
        return self._job.job_id

    def get_job_status(self, external_id: JsonValue, context: Context) -> str:
        """The stored job's status, or ``NOT_RESUMABLE`` when it cannot be this task's job."""
        try:
            job = self.hook.get_job(int(str(external_id)))
        except ValueError:
            self.log.warning("Stored Airbyte job id %r is not a job id; ignoring it", external_id)
            return NOT_RESUMABLE
        except AirbyteNotFoundError:
            self.log.warning("Airbyte no longer knows job %s of an earlier try", external_id)
            return NOT_RESUMABLE
        wanted = self.arguments
        if job.connection_id != wanted.connection_id or job.job_type != wanted.job_type:
            self.log.warning(
                "Stored Airbyte job %s is a %s of connection %s, not a %s of %s; ignoring it",
                job.job_id,
                job.job_type,
                job.connection_id,
                wanted.job_type,
                wanted.connection_id,
            )
            return NOT_RESUMABLE
        self._job = job
        self.log.info("Airbyte job of an earlier try: %s", job.summary())
        return str(job.status)

    def is_job_active(self, status: str) -> bool:
        return status in _ACTIVE

    def is_job_succeeded(self, status: str) -> bool:
        return status == JobStatus.SUCCEEDED

    def poll_until_complete(self, external_id: JsonValue, context: Context) -> dict[str, Any]:
        """Wait for the job (deferring, in deferrable mode); return its result."""
        job = self._resumed(external_id, context)
        self._job = self.wait_for(job)
        return self.deliver(self._job, context)

    def get_job_result(self, external_id: JsonValue, context: Context) -> dict[str, Any]:
        """The result of a job that ended, delivered once per try."""
        job = self._resumed(external_id, context)
        if self._delivered is not None:
            return self._delivered
        return self.deliver(job, context)

    def _resumed(self, external_id: JsonValue, context: Context) -> AirbyteJob:
        """This try's job (set by ``submit_job`` or ``get_job_status``), its id in XCom."""
        if self._job is None or self._job.job_id != external_id:
            raise AssertionError(f"Airbyte job {external_id} was neither submitted nor looked up")
        context["ti"].xcom_push(key=JOB_ID_KEY, value=self._job.job_id)
        return self._job

    # --- waiting -------------------------------------------------------------------------

    def wait_for(self, job: AirbyteJob) -> AirbyteJob:
        """Wait for ``job`` here or in the triggerer; return it once it ended well."""
        arguments = self.arguments
        if not arguments.wait or job.is_terminal:
            return self.hook.check_outcome(job, raise_on_failure=arguments.wait)
        quiet_until = self._quiet_until(job)
        if self.deferrable:
            from plugins.airbyte_trigger import AirbyteJobTrigger  # see ``hook``

            self.defer(
                trigger=AirbyteJobTrigger(
                    job_id=job.job_id,
                    airbyte_conn_id=self.airbyte_conn_id,
                    deadline=time.time() + arguments.timeout_minutes * 60,
                    quiet_until=quiet_until,
                ),
                method_name="execute_complete",
            )
        return self.hook.wait_for_job_completion(
            job.job_id,
            timeout_minutes=arguments.timeout_minutes,
            cancel_on_timeout=self.cancel_on_timeout,
            quiet_until=quiet_until,
        )

    def _quiet_until(self, job: AirbyteJob) -> float | None:
        """When to start polling closely, from the connection's history (None: right away)."""
        if not self.poll_from_history:
            return None
        try:
            return self.hook.quiet_until(job)
        except AirbyteError as exc:  # the history is an optimisation, never a reason to fail
            self.log.warning("No Airbyte job history (%s); polling closely from the start", exc)
            return None

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Back from the triggerer: the same outcomes and error classes as the blocking wait;
        a wait that ended without the job ending cancels it (``cancel_on_timeout``)."""
        from plugins.airbyte_trigger import TERMINAL, TIMEOUT  # see ``hook``

        job = job_from_dict(event["job"]) if event.get("job") else None
        if event.get("status") == TERMINAL and job is not None:
            job = self.hook.complete(job)  # here, not in the triggerer: a full read is large
            self.log.info("Airbyte job finished: %s", job.summary())
            return self.deliver(self.hook.check_outcome(job), context)
        job_id = int(event["job_id"])
        if event.get("status") == TIMEOUT:
            minutes = validate_timeout_minutes(self.timeout_minutes)
            last = event.get("last_error")
            last_error = error_from_event(last) if last else None
            self.hook.handle_timeout(job_id, job, minutes, self.cancel_on_timeout, last_error)
        self.hook.abandon(job_id, error_from_event(event), self.cancel_on_timeout)

    # --- the result ----------------------------------------------------------------------

    def deliver(self, job: AirbyteJob, context: Context) -> dict[str, Any]:
        """The task's result; the stored id is forgotten so a cleared task starts afresh."""
        store = context.get("task_state_store")
        if store is not None:
            store.delete(self.external_id_key)
        self._delivered = self._report(job, context)
        return self._delivered

    def _report(self, job: AirbyteJob, context: Context) -> dict[str, Any]:
        """A finished job's lineage, Asset events and links. A job still running
        (``wait=False``) gets its links only (from the Connection's ``workspace_id`` extra):
        what it read and wrote is not known yet, and its end is announced by Airbyte's
        notification or the zero-poll watchdog."""
        workspace_id = None
        if job.is_terminal:
            from plugins.airbyte_lineage import record_sync  # OpenLineage: ~0.4 s to import

            wanted = self.arguments
            self._lineage, details = record_sync(
                self.hook,
                job,
                self.outlets,
                context,
                streams=wanted.streams,
                refresh_mode=wanted.refresh_mode,
            )
            workspace_id = details.workspace_id if details else None
        self.airbyte_urls = job_urls(self.hook.settings, job, workspace_id)
        return job_dict(job)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        """OpenLineage inputs (source streams) and outputs (destination tables) of the job."""
        if self._lineage is None:
            return None
        from plugins.airbyte_lineage import operator_lineage  # see ``_report``

        return operator_lineage(self._lineage)

    def on_kill(self) -> None:
        """The task was killed or marked failed: cancel the Airbyte job it started."""
        if self._hook is None or self._job is None or self._job.is_terminal:
            return
        try:
            self._hook.cancel_job(self._job.job_id)
        except AirbyteError as exc:
            self.log.error("Could not cancel Airbyte job %s: %s", self._job.job_id, exc)
