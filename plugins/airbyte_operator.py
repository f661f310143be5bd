"""``AirbyteSyncOperator``: start an Airbyte sync, reset or clear job and wait for it.

A thin layer over ``AirbyteHook``. The connection id is given directly (templated, e.g.
from ``dag_run.conf``) or named by Airflow Variables that are read when the task runs,
never when the DAG file is parsed. The hook, its models and the trigger are imported when
the task runs too: DAG files import this module, and parsing them should stay cheap.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.configuration import conf

from plugins.airbyte_arguments import (
    JobArguments,
    validate_connection_id,
    validate_flag,
    validate_job_type,
    validate_timeout_minutes,
)
from plugins.airbyte_errors import AirbyteConfigError, AirbyteError, error_from_event
from plugins.airbyte_links import AirbyteConnectionLink, AirbyteJobLink
from plugins.airbyte_resumable import AirbyteResumableJob
from plugins.airbyte_xcom import JOB_ID_XCOM_KEY

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

    from plugins.airbyte_hook import AirbyteHook, OnConflict
    from plugins.airbyte_lineage import SyncLineage
    from plugins.airbyte_models import AirbyteJob

DEFAULT_CONN_ID = "airbyte_default"


def connection_id_from_variables(names: str | Sequence[str]) -> str:
    """The value of the first of ``names`` that is set as an Airflow Variable.

    Several names let one setting have a preferred and a legacy spelling, e.g.
    ``AIRBYTE_STRIPE_POSTGRES_CONNECTION_ID`` then ``AIRBYTE_STRIPE_CONNECTION_ID``.
    """
    from airflow.sdk import Variable

    candidates = [names] if isinstance(names, str) else list(names)
    for name in candidates:
        value = Variable.get(name, default=None)
        if value not in (None, ""):
            return str(value).strip()
    shown = " or ".join(candidates)
    raise AirbyteConfigError(
        f"The Airflow Variable {shown} is not set; it must hold the Airbyte connection id (a "
        f"UUID). Set it with `airflow variables set {candidates[0]} <connection-id>` or in the UI "
        "(Admin → Variables); find the id in the Airbyte UI's connection URL or with "
        "AirbyteHook().list_connections()."
    )


class AirbyteSyncOperator(AirbyteResumableJob, BaseOperator):
    """Run one Airbyte job on a connection and (by default) wait for it to finish.

    Exactly once across retries and crashes: the job id is kept in the task's
    ``task_state_store``, so a retry waits for the job of an earlier try, or returns its
    result if it succeeded, and starts a new job only after a failure (see
    ``plugins.airbyte_resumable``).

    :param connection_id: the Airbyte connection id (templated).
    :param connection_id_variable: Variable name(s) holding the connection id, read at run
        time; give this or ``connection_id``.
    :param job_type: ``sync`` (default), ``reset`` or ``clear`` (templated).
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
    :return: the finished job as a dict (job id, status, rows, bytes, duration...); the job
        id is also pushed to XCom as ``airbyte_job_id``.

    Lineage: the job's source streams and destination tables go to OpenLineage
    (``get_openlineage_facets_on_complete``) and into the ``extra`` of the task's Asset
    events; an ``AssetAlias`` outlet gets one event per destination table
    (``plugins.airbyte_lineage``). The task links to its Airbyte job and connection.
    """

    template_fields: Sequence[str] = ("connection_id", "job_type", "timeout_minutes", "wait")
    ui_color = "#615eff"
    operator_extra_links = (AirbyteJobLink(), AirbyteConnectionLink())

    def __init__(
        self,
        *,
        connection_id: str | None = None,
        connection_id_variable: str | Sequence[str] | None = None,
        job_type: str = "sync",
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
        if (connection_id is None) == (connection_id_variable is None):
            raise ValueError("Give exactly one of connection_id and connection_id_variable")
        self.connection_id = connection_id
        self.connection_id_variable = connection_id_variable
        self.job_type = job_type
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
        self._lineage: SyncLineage | None = None
        #: Airbyte web app URLs of the job and connection, for the extra links.
        self.airbyte_urls: dict[str, str] = {}

    def execute(self, context: Context) -> dict[str, Any]:
        from plugins.airbyte_hook import AirbyteHook

        self._arguments = self.checked_arguments()  # before any API call
        self._hook = AirbyteHook(self.airbyte_conn_id, on_conflict=self.on_conflict)
        self._connection_id = self._arguments.connection_id
        self._job_type = self._arguments.job_type
        return self.execute_resumable(context)

    def checked_arguments(self) -> JobArguments:
        """The rendered arguments, checked; ``AirbyteConfigError`` (no retries) if one is bad."""
        connection_id = self.connection_id
        if connection_id is None:
            connection_id = connection_id_from_variables(self.connection_id_variable or ())
        return JobArguments(
            connection_id=validate_connection_id(connection_id),
            job_type=validate_job_type(self.job_type),
            timeout_minutes=validate_timeout_minutes(self.timeout_minutes),
            wait=validate_flag("wait", self.wait),
        )

    # --- what AirbyteResumableJob needs: publish the job id, wait for the job -------------

    def push_job_id(self, job: AirbyteJob, context: Context) -> None:
        context["ti"].xcom_push(key=JOB_ID_XCOM_KEY, value=job.job_id)

    def wait_for(self, job: AirbyteJob, context: Context) -> AirbyteJob:
        """Wait for ``job`` here or in the triggerer; return it once it ended well."""
        assert self._hook is not None
        arguments = self._arguments or self.checked_arguments()
        if not arguments.wait or job.is_terminal:
            return self._hook.check_outcome(job, raise_on_failure=arguments.wait)
        quiet_until = self._quiet_until()
        if self.deferrable:
            from plugins.airbyte_trigger import AirbyteJobTrigger

            self.defer(
                trigger=AirbyteJobTrigger(
                    job_id=job.job_id,
                    airbyte_conn_id=self.airbyte_conn_id,
                    deadline=time.time() + arguments.timeout_minutes * 60,
                    quiet_until=quiet_until,
                ),
                method_name="execute_complete",
            )
        return self._hook.wait_for_job_completion(
            job.job_id,
            timeout_minutes=arguments.timeout_minutes,
            cancel_on_timeout=self.cancel_on_timeout,
            quiet_until=quiet_until,
        )

    def _quiet_until(self) -> float | None:
        """When to start polling closely, from the connection's history (None: right away)."""
        if not self.poll_from_history or self._hook is None or self._job is None:
            return None
        try:
            return self._hook.quiet_until(self._job)
        except AirbyteError as exc:  # the history is an optimisation, never a reason to fail
            self.log.warning("No Airbyte job history (%s); polling closely from the start", exc)
            return None

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Back from the triggerer: the same outcomes and error classes as the blocking wait;
        a wait that ended without the job ending cancels it (``cancel_on_timeout``)."""
        from plugins.airbyte_hook import AirbyteHook
        from plugins.airbyte_models import AirbyteJob
        from plugins.airbyte_trigger import TERMINAL, TIMEOUT

        hook = self._hook = AirbyteHook(self.airbyte_conn_id, on_conflict=self.on_conflict)
        job = AirbyteJob.model_validate(event["job"]) if event.get("job") else None
        if event.get("status") == TERMINAL and job is not None:
            hook.log.info("Airbyte job finished: %s", job.summary())
            return self.deliver(hook.check_outcome(job), context)
        job_id = int(event["job_id"])
        if event.get("status") == TIMEOUT:
            minutes = validate_timeout_minutes(self.timeout_minutes)
            hook.handle_timeout(job_id, job, minutes, self.cancel_on_timeout)
        hook.abandon(job_id, error_from_event(event), self.cancel_on_timeout)

    def report(self, job: AirbyteJob, context: Context) -> dict[str, Any]:
        """The task's result (``AirbyteResumableJob.deliver`` calls this once per try)."""
        assert self._hook is not None
        if not job.is_terminal:
            return self._started_only(job)
        return self._report(context, self._hook, job)

    def _started_only(self, job: AirbyteJob) -> dict[str, Any]:
        """``wait=False`` and the job runs on: what it read and wrote is not known yet, so no
        lineage request; its end is announced by Airbyte's notification or the zero-poll
        watchdog. Links come from the Connection's ``workspace_id`` extra, if set."""
        from plugins.airbyte_links import job_urls

        if self._hook is not None:
            self.airbyte_urls = job_urls(self._hook, job, None)
        return job.to_xcom()

    def _report(self, context: Context, hook: AirbyteHook, job: AirbyteJob) -> dict[str, Any]:
        """Record the job's lineage, Asset events and links; return the job for XCom."""
        from plugins.airbyte_lineage import record_sync

        self._lineage, self.airbyte_urls = record_sync(hook, job, self.outlets, context)
        return job.to_xcom()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        """OpenLineage inputs (source streams) and outputs (destination tables) of the job."""
        from plugins.airbyte_lineage import operator_lineage

        return operator_lineage(self._lineage) if self._lineage else None

    def on_kill(self) -> None:
        """The task was killed or marked failed: cancel the Airbyte job it started."""
        if self._hook is None or self._job is None or self._job.is_terminal:
            return
        try:
            self._hook.cancel_job(self._job.job_id)
        except AirbyteError as exc:
            self.log.error("Could not cancel Airbyte job %s: %s", self._job.job_id, exc)
