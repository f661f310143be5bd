"""Airbyte client for Airflow: trigger, watch and cancel Airbyte jobs.

``AirbyteHook`` speaks both Airbyte API flavours (Configuration API ``/api/v1``, Public API
``/api/public/v1`` or Airbyte Cloud) with basic, client-credentials, bearer or no auth, over
one HTTP stack for blocking calls and the triggerer (``plugins.airbyte_http``). It retries
only where a retry is safe (connection errors, timeouts, 5xx, 429), never re-sends a sync
blindly (it first looks for the job a lost request may have started), validates every answer
against the API contract and raises errors that say what to check, never with a secret.

Configuration: the Airflow Connection ``airbyte_default`` (type ``airbyte`` or ``http``; extras
in the README), or the Variables ``AIRBYTE_API_URL``, ``AIRBYTE_API_USERNAME`` and
``AIRBYTE_API_PASSWORD``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar

from airflow.sdk import BaseHook

from plugins.airbyte_errors import (
    AirbyteConfigError,
    AirbyteConflictError,
    AirbyteError,
    AirbyteNotFoundError,
)

if TYPE_CHECKING:
    import httpx

    from plugins.airbyte_api import ApiRequest, ConfigApi, PublicApi
    from plugins.airbyte_auth import AirbyteAuth
    from plugins.airbyte_models import AirbyteConnection, AirbyteJob, ConnectionDetails, JobType
    from plugins.airbyte_settings import AirbyteSettings
    from plugins.airbyte_wait import JobWatch

# The client's modules are imported on first use: importing the hook stays cheap.
T = TypeVar("T")
OnConflict = Literal["attach", "fail"]
RECENT_JOBS_LOOKED_AT = 10


class AirbyteHook(BaseHook):
    """Client for one Airbyte server, configured by an Airflow Connection or Variables.

    The Connection may be of type ``airbyte`` or ``http`` (fields and extras: README).

    :param airbyte_conn_id: Airflow Connection id; when it does not exist the Variables
        ``AIRBYTE_API_URL``/``AIRBYTE_API_USERNAME``/``AIRBYTE_API_PASSWORD`` are used.
    :param on_conflict: what a trigger does when Airbyte answers 409 (a sync is already
        running): ``attach`` to the running job, or ``fail``.
    :param overrides: tunables that win over the Connection extras, e.g. ``poll_interval``,
        ``max_poll_interval``, ``max_retries``, ``retry_min_wait``, ``read_timeout``.
    """

    conn_name_attr = "airbyte_conn_id"
    default_conn_name = "airbyte_default"
    conn_type = "airbyte"
    hook_name = "Airbyte"

    def __init__(
        self,
        airbyte_conn_id: str = default_conn_name,
        *,
        on_conflict: OnConflict = "attach",
        **overrides: Any,
    ) -> None:
        super().__init__()
        if on_conflict not in ("attach", "fail"):
            raise AirbyteConfigError(f"on_conflict must be 'attach' or 'fail', not {on_conflict!r}")
        self.airbyte_conn_id = airbyte_conn_id
        self.on_conflict = on_conflict
        self._overrides = overrides

    # --- configuration and clients -------------------------------------------------------

    @cached_property
    def settings(self) -> AirbyteSettings:
        from plugins.airbyte_settings import resolve_settings

        return resolve_settings(self.airbyte_conn_id).with_overrides(**self._overrides)

    @cached_property
    def api(self) -> ConfigApi | PublicApi:
        from plugins.airbyte_api import api_for

        return api_for(self.settings.flavour)

    @cached_property
    def auth(self) -> AirbyteAuth:
        """The one auth flow of both clients (basic, bearer, client credentials or none)."""
        from plugins.airbyte_auth import AirbyteAuth

        return AirbyteAuth(self.settings, token_as_form=self.api.token_as_form)

    def get_conn(self) -> httpx.Client:
        return self.client

    @cached_property
    def client(self) -> httpx.Client:  # closed with the process; one per hook
        from plugins.airbyte_http import build_client

        return build_client(self.settings, self.auth, asynchronous=False)

    # --- low-level calls -----------------------------------------------------------------

    def _call(self, request: ApiRequest) -> Any:
        """Send one request; the JSON body, or the error the answer means."""
        from plugins.airbyte_http import checked_json, send

        answer = send(self.client, request.to_httpx(self.settings.api_root), self.settings)
        return checked_json(answer, request, self.settings)

    def _request(self, request: ApiRequest, parse: Callable[[Any, ApiRequest], T]) -> T:
        """An idempotent call, retried on transient errors, parsed with ``parse``."""
        from plugins.airbyte_http import retrying

        for attempt in retrying(self.settings, request.endpoint, self.log):
            with attempt:
                return parse(self._call(request), request)
        raise AssertionError("unreachable")  # pragma: no cover

    # --- jobs ----------------------------------------------------------------------------

    def submit_job(self, connection_id: str, job_type: JobType | str = "sync") -> AirbyteJob:
        """Start a sync, reset or clear job and return it. Never re-sent blindly: before a retry
        (and on 409 with ``on_conflict='attach'``) the connection's running job is looked up and
        returned, so a trigger whose answer was lost starts one job only."""
        from plugins.airbyte_arguments import validate_connection_id, validate_job_type
        from plugins.airbyte_http import retrying

        connection_id = validate_connection_id(connection_id)
        job_type = validate_job_type(job_type)
        request = self.api.trigger(connection_id, job_type)
        started = time.time()
        try:
            for attempt in retrying(self.settings, request.endpoint, self.log):
                with attempt:
                    retry = attempt.retry_state.attempt_number > 1
                    lost = retry and self.find_running_job(connection_id, job_type, started)
                    if lost:
                        self.log.warning(
                            "Airbyte %s answer was lost but the job exists; attaching: %s",
                            request.endpoint,
                            lost.summary(),
                        )
                        return lost
                    job = self.api.parse_job(self._call(request), request)
        except AirbyteConflictError:
            if self.on_conflict == "fail":
                raise
            running = self.find_running_job(connection_id, job_type)
            if running is None:  # it ended between the 409 and the lookup: trigger once more
                return self.api.parse_job(self._call(request), request)
            self.log.info("A %s is already running; attaching: %s", job_type, running.summary())
            return running
        self.log.info("Airbyte job submitted: %s", job.summary())
        return job

    def trigger_sync(self, connection_id: str) -> AirbyteJob:
        """Start a sync of the connection."""
        return self.submit_job(connection_id, "sync")

    def trigger_reset(self, connection_id: str) -> AirbyteJob:
        """Reset the connection: delete the synced data so the next sync starts over."""
        return self.submit_job(connection_id, "reset")

    def trigger_clear(self, connection_id: str) -> AirbyteJob:
        """Clear the connection's data (the newer name of reset)."""
        return self.submit_job(connection_id, "clear")

    def get_job(self, job_id: int) -> AirbyteJob:
        """The job's current state and figures."""
        return self._request(self.api.get_job(int(job_id)), self.api.parse_job)

    def cancel_job(self, job_id: int) -> AirbyteJob:
        """Ask Airbyte to cancel the job; returns it as Airbyte reports it afterwards."""
        job = self._request(self.api.cancel_job(int(job_id)), self.api.parse_job)
        self.log.warning("Airbyte job cancelled: %s", job.summary())
        return job

    def recent_jobs(self, connection_id: str, job_type: JobType | str = "sync") -> list[AirbyteJob]:
        """The connection's latest jobs of that type, newest first."""
        from plugins.airbyte_arguments import validate_connection_id
        from plugins.airbyte_models import JobType

        request = self.api.recent_jobs(
            validate_connection_id(connection_id), JobType(job_type), RECENT_JOBS_LOOKED_AT
        )
        jobs = self._request(request, self.api.parse_jobs)
        return sorted(jobs, key=lambda j: j.job_id, reverse=True)

    def find_running_job(
        self,
        connection_id: str,
        job_type: JobType | str = "sync",
        created_since: float | None = None,
    ) -> AirbyteJob | None:
        """The connection's job that is still running, or (``created_since``, epoch s) one created
        since then even if it ended: the job a lost trigger request started."""
        from plugins.airbyte_models import running_job

        return running_job(self.recent_jobs(connection_id, job_type), created_since)

    def usual_duration(self, connection_id: str, job_type: JobType | str = "sync") -> float | None:
        """Median duration (seconds) of the connection's recent succeeded jobs of that type."""
        from plugins.airbyte_polling import usual_duration

        return usual_duration(self.recent_jobs(connection_id, job_type))

    def quiet_until(self, job: AirbyteJob) -> float | None:
        """When to start polling ``job`` closely: at 90% of its connection's usual duration
        after it was created (epoch seconds), or None without history."""
        from plugins.airbyte_polling import quiet_start

        if (usual := self.usual_duration(job.connection_id, job.job_type)) is None:
            return None
        self.log.info("Airbyte connection %s usually syncs in %.0fs", job.connection_id, usual)
        return quiet_start(job.created_at, usual)

    def watch(self, job_id: int, deadline: float, quiet_until: float | None = None) -> JobWatch:
        """The state of one wait on ``job_id`` until ``deadline`` (epoch seconds)."""
        from plugins.airbyte_wait import JobWatch

        return JobWatch.start(int(job_id), deadline, self.settings, quiet_until)

    def poll(self, job_id: int) -> tuple[AirbyteJob | None, AirbyteError | None]:
        """One attempt at reading the job: the job, or the error (the wait decides)."""
        request = self.api.get_job(int(job_id))
        try:
            return self.api.parse_job(self._call(request), request), None
        except AirbyteError as exc:
            return None, exc

    def wait_for_job_completion(
        self,
        job_id: int,
        timeout_minutes: float = 60.0,
        *,
        cancel_on_timeout: bool = False,
        raise_on_failure: bool = True,
        quiet_until: float | None = None,
    ) -> AirbyteJob:
        """Poll the job until it ends (``JobWatch`` decides after each poll); return it when
        it succeeded, else raise ``AirbyteJobFailedError``/``AirbyteJobCancelledError`` (unless
        ``raise_on_failure`` is false). A wait that ends otherwise (``timeout_minutes``, an
        error) cancels the job when ``cancel_on_timeout``, and its error says what became of it.
        """
        watch = self.watch(job_id, time.time() + float(timeout_minutes) * 60.0, quiet_until)
        try:
            while True:
                step = watch.observe(*self.poll(job_id))
                if step.delay is None:
                    break
                time.sleep(step.delay)
        except AirbyteError as exc:
            self.abandon(job_id, exc, cancel_on_timeout)
        if step.ended and step.job is not None:
            return self.check_outcome(step.job, raise_on_failure=raise_on_failure)
        self.handle_timeout(job_id, step.job, timeout_minutes, cancel_on_timeout)

    def abandon(self, job_id: int, error: AirbyteError, cancel: bool) -> NoReturn:
        """A wait failed before the job ended: cancel the job (if asked), then raise ``error``
        saying what became of the job."""
        note = "It is still running on Airbyte unless it ended (cancel_on_timeout is off)."
        if cancel:
            try:
                self.cancel_job(job_id)
                note = "It was cancelled (cancel_on_timeout), so no job runs unwatched."
            except AirbyteError as cancel_error:
                note = f"Cancelling it failed too ({cancel_error}); check it in the Airbyte UI."
        raise error.with_message(f"{error} Airbyte job {job_id}: {note}") from error

    def check_outcome(self, job: AirbyteJob, *, raise_on_failure: bool = True) -> AirbyteJob:
        """Return a finished job, or raise when it failed or was cancelled."""
        from plugins.airbyte_wait import outcome_error

        error = outcome_error(job) if raise_on_failure else None
        if error is not None:
            raise error
        return job

    def handle_timeout(
        self, job_id: int, job: AirbyteJob | None, timeout_minutes: float, cancel: bool
    ) -> NoReturn:
        """The wait ran out: cancel the job if asked, then raise the matching timeout error."""
        from plugins.airbyte_wait import timeout_error

        error = timeout_error(job_id, job, timeout_minutes, self.settings.api_root)
        self.abandon(job_id, error, cancel)

    # --- asynchronous client, for the deferrable trigger ----------------------------------

    async def aload_settings(self) -> AirbyteSettings:
        """Resolve the settings without blocking the event loop (the triggerer's)."""
        from plugins.airbyte_settings import aresolve_settings

        if "settings" not in self.__dict__:
            resolved = await aresolve_settings(self.airbyte_conn_id)
            self.__dict__["settings"] = resolved.with_overrides(**self._overrides)
        return self.settings

    @asynccontextmanager
    async def async_client(self) -> AsyncIterator[httpx.AsyncClient]:
        """An ``httpx.AsyncClient`` built like ``client``: same auth flow, TLS and limits."""
        from plugins.airbyte_http import build_client

        await self.aload_settings()
        async with build_client(self.settings, self.auth, asynchronous=True) as client:
            yield client

    async def apoll(
        self, client: httpx.AsyncClient, job_id: int
    ) -> tuple[AirbyteJob | None, AirbyteError | None]:
        """``poll`` on the event loop."""
        try:
            return await self.aget_job(client, job_id), None
        except AirbyteError as exc:
            return None, exc

    async def aget_job(self, client: httpx.AsyncClient, job_id: int) -> AirbyteJob:
        """``get_job`` on the event loop, one attempt (the trigger's loop is the retry)."""
        return await self._acall(client, self.api.get_job(int(job_id)))

    async def acancel_job(self, client: httpx.AsyncClient, job_id: int) -> AirbyteJob:
        """``cancel_job`` on the event loop."""
        job = await self._acall(client, self.api.cancel_job(int(job_id)))
        self.log.warning("Airbyte job cancelled: %s", job.summary())
        return job

    async def _acall(self, client: httpx.AsyncClient, request: ApiRequest) -> AirbyteJob:
        from plugins.airbyte_http import asend, checked_json

        answer = await asend(client, request.to_httpx(self.settings.api_root), self.settings)
        return self.api.parse_job(checked_json(answer, request, self.settings), request)

    # --- connections ---------------------------------------------------------------------

    def get_connection_info(self, connection_id: str) -> AirbyteConnection:
        """Name, status, streams and ids of the connection."""
        from plugins.airbyte_arguments import validate_connection_id

        request = self.api.get_connection(validate_connection_id(connection_id))
        return self._request(request, self.api.parse_connection)

    def get_connection_details(self, connection_id: str) -> ConnectionDetails:
        """Source, destination and selected streams with their schemas, in one request: what
        lineage needs (the Public API's connection has no connector types or schemas)."""
        from plugins.airbyte_arguments import validate_connection_id

        request = self.api.connection_details(validate_connection_id(connection_id))
        return self._request(request, self.api.parse_connection_details)

    def list_connections(
        self, workspace_id: str | None = None, *, page_size: int = 100
    ) -> list[AirbyteConnection]:
        """Every connection visible to the credentials (all pages, all workspaces)."""
        from plugins.airbyte_api import ConfigApi, read_pages

        workspace_id, api = workspace_id or self.settings.workspace_id, self.api
        if not isinstance(api, ConfigApi):
            return read_pages(
                lambda offset: self._request(
                    api.list_connections(workspace_id, offset=offset, limit=page_size),
                    api.parse_connections,
                ),
                self.settings.max_pages,
            )
        workspaces = [workspace_id] if workspace_id else self._workspace_ids(api)
        return [
            connection
            for workspace in workspaces
            for connection in self._request(api.list_connections(workspace), api.parse_connections)
        ]

    def _workspace_ids(self, api: ConfigApi) -> list[str]:
        try:
            return self._request(api.list_workspaces(), api.parse_workspaces)
        except AirbyteNotFoundError:
            raise AirbyteConfigError(
                f"This Airbyte server has no workspaces/list endpoint (removed after 1.6): set "
                f"the extra workspace_id of {self.settings.source}, or use api_type=public."
            ) from None

    def test_connection(self) -> tuple[bool, str]:
        """For the Airflow UI's Test button: reachability, health and credentials."""
        try:
            health = self._request(self.api.health, lambda body, _: body)
            connections = self.list_connections()
        except Exception as exc:
            return False, str(exc)
        return True, (
            f"Connected to Airbyte at {self.settings.api_root} ({self.settings.flavour} API, "
            f"health={health}); {len(connections)} connections visible."
        )
