"""Exactly-once Airbyte jobs across task retries and crashes, on Airflow's ``task_state_store``.

``AirbyteResumableJob`` is Airflow 3.3's ``ResumableJobMixin`` taught Airbyte. Right after
Airbyte accepts a job, and before any wait (blocking or deferred), the job id is stored in the
task's ``task_state_store``, which belongs to the task instance (DAG run, task, map index) and so
outlives its tries. A later try of the same task instance reads it back first:

- the job is still pending or running: wait for it (blocking or deferred), start nothing;
- the job succeeded: return its result at once, start nothing;
- the job failed or was cancelled, or Airbyte does not know it (404), or it belongs to another
  connection or job type: start a new job.

Once a try returns a job's result the stored id is deleted, so *clearing* a succeeded task runs
a new sync, as a user who clears it expects (the id stays in the ``airbyte_job_id`` XCom).

The second line of defence is the hook's 409-attach: a trigger that meets a running job on the
connection attaches to it. One window stays open: a crash after Airbyte created a job but before
its id reached the store (one API round-trip). The retry then finds no id; if the job is still
running it attaches through the 409, but if it already finished the retry starts a second job.
No client can close this window: "create the job and store its id" is not atomic across two
systems.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import ResumableJobMixin

from plugins.airbyte_errors import AirbyteNotFoundError

if TYPE_CHECKING:
    from airflow.sdk import Context
    from pydantic import JsonValue

    from plugins.airbyte_hook import AirbyteHook
    from plugins.airbyte_models import AirbyteJob, JobType

#: The ``task_state_store`` key of the job id. Renaming it breaks in-flight retries.
JOB_ID_STATE_KEY = "airbyte_job_id"
#: What ``get_job_status`` answers for a stored id that cannot be resumed.
NOT_RESUMABLE = "not_resumable"


class AirbyteResumableJob(ResumableJobMixin):
    """``ResumableJobMixin`` for one Airbyte job of a task; see the module docstring.

    The operator sets ``_hook``, ``_connection_id`` and ``_job_type`` and calls
    ``execute_resumable(context)``; it implements ``wait_for(job, context)``, which waits
    for the job (or defers) and returns it once it ended well, ``push_job_id`` and
    ``report(job, context)``, which makes the task's result of a finished job.
    """

    external_id_key = JOB_ID_STATE_KEY

    _hook: AirbyteHook | None
    _job: AirbyteJob | None
    _connection_id: str
    _job_type: JobType
    _delivered: dict[str, Any] | None = None

    def wait_for(self, job: AirbyteJob, context: Context) -> AirbyteJob:
        raise NotImplementedError

    def push_job_id(self, job: AirbyteJob, context: Context) -> None:
        raise NotImplementedError

    def report(self, job: AirbyteJob, context: Context) -> dict[str, Any]:
        raise NotImplementedError

    # --- ResumableJobMixin ---------------------------------------------------------------

    def submit_job(self, context: Context) -> JsonValue:
        assert self._hook is not None
        self._job = self._hook.submit_job(self._connection_id, self._job_type)
        return self._job.job_id

    def get_job_status(self, external_id: JsonValue, context: Context) -> str:
        """The stored job's status, or ``NOT_RESUMABLE`` when it cannot be this task's job."""
        assert self._hook is not None
        try:
            job_id = int(str(external_id))
            job = self._hook.get_job(job_id)
        except ValueError:
            self.log.warning("Stored Airbyte job id %r is not a job id; ignoring it", external_id)
            return NOT_RESUMABLE
        except AirbyteNotFoundError:
            self.log.warning("Airbyte no longer knows job %s of an earlier try", external_id)
            return NOT_RESUMABLE
        if job.connection_id != self._connection_id or job.job_type != self._job_type:
            self.log.warning(
                "Stored Airbyte job %s is a %s of connection %s, not a %s of %s; ignoring it",
                job.job_id,
                job.job_type,
                job.connection_id,
                self._job_type,
                self._connection_id,
            )
            return NOT_RESUMABLE
        self._job = job
        self.log.info("Airbyte job of an earlier try: %s", job.summary())
        return str(job.status)

    def is_job_active(self, status: str) -> bool:
        from plugins.airbyte_models import JobStatus

        return status in {str(s) for s in JobStatus if not s.is_terminal}

    def is_job_succeeded(self, status: str) -> bool:
        from plugins.airbyte_models import JobStatus

        return status == JobStatus.SUCCEEDED

    def poll_until_complete(self, external_id: JsonValue, context: Context) -> dict[str, Any]:
        """Wait for the job (the operator may defer here); return its result."""
        job = self._resumed(external_id, context)
        self._job = self.wait_for(job, context)
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
        self.push_job_id(self._job, context)
        return self._job

    # --- delivery ------------------------------------------------------------------------

    def deliver(self, job: AirbyteJob, context: Context) -> dict[str, Any]:
        """The task's result; the stored id is forgotten so a cleared task starts afresh."""
        store = context.get("task_state_store")
        if store is not None:
            store.delete(self.external_id_key)
        self._delivered = self.report(job, context)
        return self._delivered
