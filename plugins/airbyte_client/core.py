"""The client's operations, written once for blocking and asynchronous use (sans-I/O).

Each operation of ``Operations`` is a ``Flow`` (``plugins.airbyte_client.flows``);
``AirbyteClient`` and ``AsyncAirbyteClient`` (``plugins.airbyte_client.client``) drive the same
flows, so both sides have the same endpoints, retries and decisions.

A trigger is never re-sent blindly: before a retry (and on a 409 when attaching is allowed)
the connection's running job is looked up and returned, so a trigger whose answer was lost
starts one job only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, NoReturn

from plugins.airbyte_client.answers import answering
from plugins.airbyte_client.api.config import ConfigApi
from plugins.airbyte_client.api.public import PublicApi
from plugins.airbyte_client.arguments import (
    OnConflict,
    RefreshMode,
    validate_connection_id,
    validate_job_type,
    validate_on_conflict,
    validate_refresh_mode,
    validate_streams,
)
from plugins.airbyte_client.config import AirbyteSettings
from plugins.airbyte_client.errors import (
    AirbyteConfigError,
    AirbyteConflictError,
    AirbyteError,
    AirbyteNotFoundError,
    AirbyteResponseError,
)
from plugins.airbyte_client.flows import Flow, Requests, Sleep
from plugins.airbyte_client.models import (
    AirbyteConnection,
    AirbyteJob,
    ConnectionDetails,
    JobStatus,
    JobType,
    running_job,
)
from plugins.airbyte_client.transport import ApiRequest
from plugins.airbyte_client.wait import (
    JobWatch,
    Step,
    check_outcome,
    quiet_start,
    timeout_error,
    usual_duration,
)

#: How many of a connection's latest jobs are read to find a running one or its history.
RECENT_JOBS_LOOKED_AT = 10


class Operations(Requests):
    """What the client can do on one Airbyte server, as flows (see the module docstring).

    :param on_conflict: when Airbyte answers 409 to a trigger (a job is already running):
        ``attach`` to the running job, or ``fail``.
    """

    def __init__(
        self,
        settings: AirbyteSettings,
        *,
        on_conflict: OnConflict = "attach",
        log: logging.Logger | None = None,
    ) -> None:
        super().__init__(settings, log=log or logging.getLogger(__name__))
        self.on_conflict = validate_on_conflict(on_conflict)

    # --- jobs ----------------------------------------------------------------------------

    def submit_job(
        self,
        connection_id: str,
        job_type: JobType | str = "sync",
        *,
        streams: Sequence[str] | None = None,
        refresh_mode: RefreshMode | None = None,
    ) -> Flow[AirbyteJob]:
        """Start a sync, reset, clear or refresh job (``streams``: of those only, where the
        flavour can); never two for one call (module docstring)."""
        connection_id = validate_connection_id(connection_id)
        job_type = validate_job_type(job_type)
        request = self.api.trigger(
            connection_id,
            job_type,
            validate_streams(streams, job_type),
            validate_refresh_mode(refresh_mode, job_type),
        )
        started = time.time()
        parse = self.job_answer(connection_id=connection_id, polled=True)

        def started_anyway(answer: str) -> Flow[AirbyteJob | None]:
            """The job this request started although its answer was lost or unreadable."""
            job = yield from self.find_running_job(connection_id, job_type, started)
            if job is not None:
                self.log.warning(
                    "Airbyte's answer to %s %s but the job exists; attaching: %s",
                    request.endpoint,
                    answer,
                    job.summary(),
                )
            return job

        def attempt(number: int) -> Flow[AirbyteJob]:
            if number > 1 and (lost := (yield from started_anyway("was lost"))):
                return lost
            try:
                return (yield from self.once(request, parse))
            except AirbyteResponseError as unreadable:  # the job may exist all the same
                found = yield from started_anyway(f"was unreadable ({unreadable})")
                if found is None:
                    raise
                return found

        try:
            job = yield from self.retrying(attempt, request.endpoint)
        except AirbyteConflictError:
            if self.on_conflict == "fail":
                raise
            running = yield from self.find_running_job(connection_id, job_type)
            if running is None:  # it ended between the 409 and the lookup: trigger once more
                return (yield from self.once(request, parse))
            self.log.info("A %s is already running; attaching: %s", job_type, running.summary())
            return running
        self.log.info("Airbyte job submitted: %s", job.summary())
        return job

    def get_job(self, job_id: int) -> Flow[AirbyteJob]:
        """The job's current state and figures."""
        job_id = int(job_id)
        return (yield from self.retried(self.api.get_job(job_id), self.job_answer(job_id=job_id)))

    def cancel_job(self, job_id: int) -> Flow[AirbyteJob]:
        """Ask Airbyte to cancel the job; the job as Airbyte reports it afterwards."""
        job_id = int(job_id)
        job = yield from self.retried(self.api.cancel_job(job_id), self.job_answer(job_id=job_id))
        self.log.warning("Airbyte job cancelled: %s", job.summary())
        return job

    def recent_jobs(
        self, connection_id: str, job_type: JobType | str = "sync"
    ) -> Flow[list[AirbyteJob]]:
        """The connection's latest jobs of that type, newest first."""
        connection_id = validate_connection_id(connection_id)
        request = self.api.recent_jobs(connection_id, JobType(job_type), RECENT_JOBS_LOOKED_AT)

        def parse(body: Any, request: ApiRequest) -> list[AirbyteJob]:
            jobs = self.api.parse_jobs(body, request)
            return [answering(j, request, connection_id=connection_id) for j in jobs]

        jobs = yield from self.retried(request, parse)
        return sorted(jobs, key=lambda j: j.job_id, reverse=True)

    def find_running_job(
        self,
        connection_id: str,
        job_type: JobType | str = "sync",
        created_since: float | None = None,
    ) -> Flow[AirbyteJob | None]:
        """The connection's job still running, or (``created_since``, epoch s) one created since
        then even if it ended: the job a lost trigger request started."""
        return running_job((yield from self.recent_jobs(connection_id, job_type)), created_since)

    def usual_duration(
        self, connection_id: str, job_type: JobType | str = "sync"
    ) -> Flow[float | None]:
        """Median duration (s) of the connection's recent succeeded jobs of that type."""
        jobs = yield from self.recent_jobs(connection_id, job_type)
        return usual_duration(j.duration_seconds for j in jobs if j.status is JobStatus.SUCCEEDED)

    def quiet_until(self, job: AirbyteJob) -> Flow[float | None]:
        """When to start polling ``job`` closely (epoch s), from its connection's history."""
        usual = yield from self.usual_duration(job.connection_id, job.job_type)
        if usual is None:
            return None
        self.log.info("Airbyte connection %s usually syncs in %.0fs", job.connection_id, usual)
        return quiet_start(job.created_at, usual)

    # --- waiting -------------------------------------------------------------------------

    def watch(self, job_id: int, deadline: float, quiet_until: float | None = None) -> Flow[Step]:
        """Poll the job (one attempt per poll: the wait is the retry) until it ends or
        ``deadline`` (epoch s) passes; raises what waiting cannot fix."""
        job_id = int(job_id)
        watch = JobWatch.start(job_id, deadline, self.settings, quiet_until)
        # each poll is clipped to the time left: a trickling answer cannot overshoot the wait
        request = replace(self.api.poll_job(job_id), deadline=deadline)
        parse = self.job_answer(job_id=job_id, polled=True)
        while True:
            try:
                job, error = (yield from self.once(request, parse)), None
            except AirbyteError as exc:
                job, error = None, exc
            step = watch.observe(job, error)
            if step.delay is None:
                return step
            yield Sleep(step.delay)

    def wait_for_job_completion(
        self,
        job_id: int,
        timeout_minutes: float = 60.0,
        *,
        cancel_on_timeout: bool = False,
        raise_on_failure: bool = True,
        quiet_until: float | None = None,
    ) -> Flow[AirbyteJob]:
        """Wait until the job ends; return it when it succeeded, else raise
        ``AirbyteJobFailedError``/``AirbyteJobCancelledError`` (unless ``raise_on_failure`` is
        false). A wait that ends otherwise (``timeout_minutes``, an error) cancels the job when
        ``cancel_on_timeout``, and its error says what became of it."""
        deadline = time.time() + float(timeout_minutes) * 60.0
        try:
            step = yield from self.watch(job_id, deadline, quiet_until)
        except AirbyteError as exc:
            yield from self.abandon(job_id, exc, cancel_on_timeout)
        if step.ended and step.job is not None:
            job = yield from self.complete(step.job)
            return check_outcome(job, raise_on_failure=raise_on_failure)
        yield from self.handle_timeout(
            job_id, step.job, timeout_minutes, cancel_on_timeout, step.error
        )

    def complete(self, job: AirbyteJob) -> Flow[AirbyteJob]:
        """A finished job as polled, with what a poll leaves out (a failure's reason, the
        attempts): one full read where the flavour's poll answer lacks it. A full read that
        fails keeps the polled job: its outcome is known."""
        if not self.api.needs_full_read(job):
            return job
        try:
            return (yield from self.get_job(job.job_id))
        except AirbyteError as exc:
            self.log.warning(
                "Could not read Airbyte job %s in full (%s); using what its last poll said",
                job.job_id,
                exc,
            )
            return job

    def abandon(self, job_id: int, error: AirbyteError, cancel: bool) -> Flow[NoReturn]:
        """A wait failed before the job ended: cancel the job (if asked), then raise ``error``
        saying what became of the job."""
        note = "It is still running on Airbyte unless it ended (cancel_on_timeout is off)."
        if cancel:
            try:
                yield from self.cancel_job(job_id)
                note = "It was cancelled (cancel_on_timeout), so no job runs unwatched."
            except AirbyteError as cancel_error:
                note = f"Cancelling it failed too ({cancel_error}); check it in the Airbyte UI."
        raise error.with_message(f"{error} Airbyte job {job_id}: {note}") from error

    def handle_timeout(
        self,
        job_id: int,
        job: AirbyteJob | None,
        timeout_minutes: float,
        cancel: bool,
        last_error: AirbyteError | None = None,
    ) -> Flow[NoReturn]:
        """The wait ran out: cancel the job if asked, then raise the matching timeout error
        (naming ``last_error``, the last error Airbyte gave, if the last polls failed)."""
        error = timeout_error(job_id, job, timeout_minutes, self.settings.api_root, last_error)
        yield from self.abandon(job_id, error, cancel)

    # --- connections ---------------------------------------------------------------------

    def get_connection_info(self, connection_id: str) -> Flow[AirbyteConnection]:
        """Name, status, streams and ids of the connection."""
        request = self.api.get_connection(validate_connection_id(connection_id))
        return (yield from self.retried(request, self.api.parse_connection))

    def get_connection_details(self, connection_id: str) -> Flow[ConnectionDetails]:
        """Source, destination and selected streams with their schemas: what lineage needs."""
        request = self.api.connection_details(validate_connection_id(connection_id))
        details = yield from self.retried(request, self.api.parse_connection_details)
        if isinstance(self.api, PublicApi):
            details = yield from self._public_connectors(details)
        return details

    def _public_connectors(self, details: ConnectionDetails) -> Flow[ConnectionDetails]:
        """The Public API's connection names its source and destination by id only: their
        types and locations take a request each, the streams' fields one more (best effort:
        without them the tables are still named)."""
        api = self.api
        assert isinstance(api, PublicApi)
        source = yield from self.retried(api.get_source(details.source.actor_id), api.parse_source)
        destination_request = api.get_destination(details.destination.actor_id)
        destination = yield from self.retried(destination_request, api.parse_destination)
        fields: dict[str, tuple[tuple[str, str], ...]] = {}
        try:
            request = api.streams(source.actor_id, destination.actor_id)
            fields = yield from self.retried(request, api.parse_stream_fields)
        except AirbyteError as exc:
            self.log.warning(
                "No stream fields for the lineage of %s: %s", details.connection_id, exc
            )
        streams = tuple(
            s.model_copy(update={"fields": fields.get(s.name, s.fields)}) for s in details.streams
        )
        update = {"source": source, "destination": destination, "streams": streams}
        return details.model_copy(update=update)

    def list_connections(
        self, workspace_id: str | None = None, *, page_size: int = 100
    ) -> Flow[list[AirbyteConnection]]:
        """Every connection visible to the credentials (all pages, all workspaces)."""
        workspace_id, api = workspace_id or self.settings.workspace_id, self.api
        if isinstance(api, PublicApi):
            return (yield from self._pages(workspace_id, page_size))
        if workspace_id:
            workspaces = [workspace_id]
        else:
            workspaces = yield from self._workspace_ids(api)
        found: list[AirbyteConnection] = []
        for workspace in workspaces:
            request = api.list_connections(workspace)
            found += yield from self.retried(request, api.parse_connections)
        return found

    def _workspace_ids(self, api: ConfigApi) -> Flow[list[str]]:
        try:
            return (yield from self.retried(api.list_workspaces(), api.parse_workspaces))
        except AirbyteNotFoundError:
            raise AirbyteConfigError(
                f"This Airbyte server has no workspaces/list endpoint (removed after 1.6): set "
                f"the extra workspace_id of {self.settings.source}, or use api_type=public."
            ) from None

    def _pages(self, workspace_id: str | None, page_size: int) -> Flow[list[AirbyteConnection]]:
        """Every page of the Public API's list. Stops with ``AirbyteResponseError`` when
        ``next`` repeats, when a page is empty but has a ``next``, or past ``max_pages``: a
        server whose pagination never ends cannot hang a task or the UI's Test button."""
        api, found, seen = self.api, [], set()
        assert isinstance(api, PublicApi)
        for number in range(1, self.settings.max_pages + 1):
            request = api.list_connections(workspace_id, offset=len(found), limit=page_size)
            page, next_link = yield from self.retried(request, api.parse_connections)
            found.extend(page)
            if not next_link:
                return found
            if next_link in seen or not page:
                what = "repeats an earlier next link" if page else "is empty but has a next link"
                raise AirbyteResponseError(
                    f"Airbyte's list does not advance: page {number} {what} (after {len(found)} "
                    "items). Stopped reading; the server's pagination is broken."
                )
            seen.add(next_link)
        raise AirbyteResponseError(
            f"Airbyte's list had more than max_pages={self.settings.max_pages} pages "
            f"({len(found)} items so far). Stopped reading; raise the Connection extra "
            "max_pages if there really are that many."
        )

    def health(self) -> Flow[Any]:
        """The server's health answer (reachability and credentials, for the Test button)."""
        return (yield from self.retried(self.api.health, lambda body, _: body))
