"""Airbyte client for Airflow: trigger, watch and cancel Airbyte jobs.

``AirbyteHook`` speaks both Airbyte API flavours (Configuration API ``/api/v1`` and Public API
``/api/public/v1`` or Airbyte Cloud) with basic, client-credentials, bearer or no auth. It
retries with exponential backoff and jitter only where a retry is safe (connection errors,
timeouts, 5xx, 429), never re-sends a sync blindly (it first looks for the job the lost
request may have started), validates every answer against the API contract and raises
exceptions whose messages say what to check. No password, client secret or token ever
reaches a log line or an exception text.

Configuration: the Airflow Connection ``airbyte_default`` (host, login, password; extras
``api_type``, ``auth_type``, ``workspace_id``, timeouts, retry and poll tunables), or the
Variables ``AIRBYTE_API_URL``, ``AIRBYTE_API_USERNAME`` and ``AIRBYTE_API_PASSWORD``.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import cached_property
from typing import Any, Literal, TypeVar

import httpx
import requests
import tenacity
from airflow.providers.http.hooks.http import HttpHook
from requests.auth import AuthBase, HTTPBasicAuth

from plugins.airbyte_api import TOKEN_PATH, ApiFlavour, ApiRequest, ConfigApi, PublicApi, api_for
from plugins.airbyte_auth import (
    AsyncClientCredentialsAuth,
    BearerAuth,
    ClientCredentialsAuth,
    TokenExchange,
    shared_ssl_context,
)
from plugins.airbyte_errors import (
    AirbyteApiError,
    AirbyteAuthError,
    AirbyteConfigError,
    AirbyteConflictError,
    AirbyteJobCancelledError,
    AirbyteJobFailedError,
    AirbyteJobStuckPendingError,
    AirbyteJobTimeoutError,
    AirbyteNotFoundError,
    AirbytePermissionError,
    AirbyteRequestError,
    AirbyteResponseError,
    AirbyteTransientApiError,
    AirbyteUnreachableError,
)
from plugins.airbyte_models import (
    AirbyteConnection,
    AirbyteJob,
    ConnectionDetails,
    JobStatus,
    JobType,
)
from plugins.airbyte_polling import PollSchedule
from plugins.airbyte_settings import (
    AirbyteSettings,
    AuthType,
    aresolve_settings,
    resolve_settings,
)

T = TypeVar("T")
OnConflict = Literal["attach", "fail"]

#: Errors worth another try: the request may succeed if sent again a little later.
TRANSIENT_ERRORS = (AirbyteUnreachableError, AirbyteTransientApiError)
RECENT_JOBS_LOOKED_AT = 10
#: How many recent succeeded jobs make a connection's usual duration, and the share of it
#: waited quietly before polling closely.
HISTORY_SIZE = 5
QUIET_SHARE = 0.9
#: What ``requests`` raises when the server cannot be reached or the answer is cut short.
CONNECTION_FAILURES = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


class AirbyteHook(HttpHook):
    """Client for one Airbyte server, configured by an Airflow Connection or Variables.

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
        super().__init__(method="POST", http_conn_id=airbyte_conn_id)
        if on_conflict not in ("attach", "fail"):
            raise AirbyteConfigError(f"on_conflict must be 'attach' or 'fail', not {on_conflict!r}")
        self.airbyte_conn_id = airbyte_conn_id
        self.on_conflict = on_conflict
        self._overrides = overrides

    # --- configuration and session ------------------------------------------------------

    @cached_property
    def settings(self) -> AirbyteSettings:
        return resolve_settings(self.airbyte_conn_id).with_overrides(**self._overrides)

    @cached_property
    def api(self) -> ConfigApi | PublicApi:
        return api_for(self.settings.flavour)

    @cached_property
    def _auth(self) -> AuthBase | None:
        s = self.settings
        if s.auth_type is AuthType.BASIC:
            return HTTPBasicAuth(s.login or "", s.secret or "")
        if s.auth_type is AuthType.BEARER:
            return BearerAuth(s.secret or "")
        if s.auth_type is AuthType.CLIENT_CREDENTIALS:
            return ClientCredentialsAuth(
                self._token_exchange(), (s.connect_timeout, s.read_timeout)
            )
        return None

    def _token_exchange(self) -> TokenExchange:
        s = self.settings
        return TokenExchange.shared(
            s.api_root + TOKEN_PATH,
            s.login or "",
            s.secret or "",
            as_form=self.api.token_as_form,
            source=s.source,
        )

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """A ``requests`` session with auth, keep-alive and JSON headers set.

        The HTTP hook's own ``get_conn`` would turn Connection extras into request headers;
        ours hold settings (some secret), so the session is built here instead.
        """
        session = requests.Session()
        self.base_url = self.settings.api_root
        session.auth = self._auth
        session.headers.update({"Accept": "application/json", "User-Agent": "airflow-airbyte"})
        session.headers.update(headers or {})
        return self._configure_session_from_mount_adapters(session)

    @cached_property
    def session(self) -> requests.Session:
        return self.get_conn()

    # --- low-level calls -----------------------------------------------------------------

    def _call(self, request: ApiRequest) -> Any:
        """Send one request (replaying it once after a token refresh on 401); parse JSON."""
        s = self.settings
        for replay in (False, True):
            try:
                response = self.session.request(
                    request.method,
                    s.api_root + request.path,
                    json=request.json,
                    params=request.params,
                    timeout=(s.connect_timeout, s.read_timeout),
                )
            except CONNECTION_FAILURES as exc:
                raise AirbyteUnreachableError(s.api_root, _describe(exc)) from None
            if (
                response.status_code == 401
                and not replay
                and isinstance(self._auth, ClientCredentialsAuth)
            ):
                self.log.info("Airbyte answered 401 to %s; refreshing the token", request.endpoint)
                used = response.request.headers.get("Authorization", "")
                self._auth.invalidate(used.removeprefix("Bearer "))
                continue
            break
        return self._checked_json(response, request)

    def _checked_json(
        self, response: requests.Response | httpx.Response, request: ApiRequest
    ) -> Any:
        """The JSON body of a successful answer; an error named after the endpoint otherwise."""
        self._raise_for_status(response, request)
        try:
            return response.json()
        except ValueError:
            raise AirbyteResponseError(
                f"Airbyte answered {request.endpoint} with HTTP {response.status_code} and a body "
                "that is not JSON. Check that the API URL points at the Airbyte server API "
                "and not at its web app or a proxy error page.",
                status_code=response.status_code,
                endpoint=request.endpoint,
            ) from None

    def _raise_for_status(
        self, response: requests.Response | httpx.Response, request: ApiRequest
    ) -> None:
        status = response.status_code
        if status < 400:
            return
        endpoint = request.endpoint
        detail = _error_detail(response) if status != 401 else ""
        kwargs = {"status_code": status, "endpoint": endpoint}
        if status == 401:
            raise AirbyteAuthError(
                f"Authentication failed: Airbyte answered 401 to {endpoint}. Check the "
                f"credentials in {self.settings.source} (auth_type={self.settings.auth_type}), "
                "e.g. AIRBYTE_API_USERNAME and AIRBYTE_API_PASSWORD in External Secrets.",
                **kwargs,
            )
        if status == 403:
            raise AirbytePermissionError(
                f"Airbyte answered 403 to {endpoint}: the credentials in {self.settings.source} "
                f"may not do this.{detail}",
                **kwargs,
            )
        if status == 404:
            raise AirbyteNotFoundError(
                f"Airbyte answered 404 to {endpoint}: {_not_found(request, self.settings.api_root)}"
                f"{detail}",
                **kwargs,
            )
        if status == 409:
            raise AirbyteConflictError(
                f"Airbyte answered 409 to {endpoint}: a job is already running on this "
                f"connection.{detail}",
                **kwargs,
            )
        if status == 429 or status >= 500:
            raise AirbyteTransientApiError(
                f"Airbyte answered HTTP {status} to {endpoint}.{detail}",
                **kwargs,
            )
        if status in (400, 422):
            raise AirbyteRequestError(
                f"Airbyte rejected {endpoint} as invalid (HTTP {status}).{detail}", **kwargs
            )
        raise AirbyteApiError(f"Airbyte answered HTTP {status} to {endpoint}.{detail}", **kwargs)

    def _retrying(self, what: str) -> tenacity.Retrying:
        s = self.settings
        return tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(TRANSIENT_ERRORS),
            stop=tenacity.stop_after_attempt(s.max_retries + 1),
            wait=tenacity.wait_exponential_jitter(initial=s.retry_min_wait, max=s.retry_max_wait),
            before_sleep=lambda state: self.log.warning(
                "Airbyte %s failed (attempt=%d/%d): %s; retrying in %.2fs",
                what,
                state.attempt_number,
                s.max_retries + 1,
                state.outcome.exception() if state.outcome else "?",
                state.next_action.sleep if state.next_action else 0.0,
            ),
            reraise=True,
        )

    def _request(self, request: ApiRequest, parse: Callable[[Any, ApiRequest], T]) -> T:
        """An idempotent call, retried on transient errors, parsed with ``parse``."""
        for attempt in self._retrying(request.endpoint):
            with attempt:
                return parse(self._call(request), request)
        raise AssertionError("unreachable")  # pragma: no cover

    # --- jobs ----------------------------------------------------------------------------

    def submit_job(self, connection_id: str, job_type: JobType | str = JobType.SYNC) -> AirbyteJob:
        """Start a sync, reset or clear job on the connection and return it.

        A trigger is never re-sent blindly: before each retry (and on 409 when
        ``on_conflict='attach'``) the connection's running job is looked up and returned
        instead, so a request that reached Airbyte but lost its answer starts one job only.
        """
        connection_id = validate_connection_id(connection_id)
        job_type = JobType(job_type)
        request = self.api.trigger(connection_id, job_type)
        started = time.time()
        first = True

        def attempt_trigger() -> AirbyteJob:
            nonlocal first
            if not first:
                existing = self.find_running_job(connection_id, job_type, created_since=started)
                if existing is not None:
                    self.log.warning(
                        "Airbyte %s answer was lost but the job exists; attaching: %s",
                        request.endpoint,
                        existing.summary(),
                    )
                    return existing
            first = False
            return self.api.parse_job(self._call(request), request)

        try:
            for attempt in self._retrying(request.endpoint):
                with attempt:
                    job = attempt_trigger()
        except AirbyteConflictError:
            if self.on_conflict == "fail":
                raise
            running = self.find_running_job(connection_id, job_type)
            if running is None:
                raise
            self.log.info("A %s is already running; attaching: %s", job_type, running.summary())
            return running
        self.log.info("Airbyte job submitted: %s", job.summary())
        return job

    def trigger_sync(self, connection_id: str) -> AirbyteJob:
        """Start a sync of the connection."""
        return self.submit_job(connection_id, JobType.SYNC)

    def trigger_reset(self, connection_id: str) -> AirbyteJob:
        """Reset the connection: delete the synced data so the next sync starts over."""
        return self.submit_job(connection_id, JobType.RESET)

    def trigger_clear(self, connection_id: str) -> AirbyteJob:
        """Clear the connection's data (the newer name of reset)."""
        return self.submit_job(connection_id, JobType.CLEAR)

    def get_job(self, job_id: int) -> AirbyteJob:
        """The job's current state and figures."""
        return self._request(self.api.get_job(int(job_id)), self.api.parse_job)

    def cancel_job(self, job_id: int) -> AirbyteJob:
        """Ask Airbyte to cancel the job; returns it as Airbyte reports it afterwards."""
        job = self._request(self.api.cancel_job(int(job_id)), self.api.parse_job)
        self.log.warning("Airbyte job cancelled: %s", job.summary())
        return job

    def recent_jobs(
        self, connection_id: str, job_type: JobType | str = JobType.SYNC
    ) -> list[AirbyteJob]:
        """The connection's latest jobs of that type, newest first."""
        request = self.api.recent_jobs(
            validate_connection_id(connection_id), JobType(job_type), RECENT_JOBS_LOOKED_AT
        )
        jobs = self._request(request, self.api.parse_jobs)
        return sorted(jobs, key=lambda j: j.job_id, reverse=True)

    def find_running_job(
        self,
        connection_id: str,
        job_type: JobType | str = JobType.SYNC,
        *,
        created_since: float | None = None,
    ) -> AirbyteJob | None:
        """The connection's job that is still running, if any.

        With ``created_since`` (epoch seconds), a job created since then counts too even if it
        already finished: it is the job a lost trigger request started.
        """
        for job in self.recent_jobs(connection_id, job_type):
            if not job.is_terminal:
                return job
            if (
                created_since is not None
                and job.created_at is not None
                and job.created_at.timestamp() >= int(created_since)
            ):
                return job
        return None

    def usual_duration(
        self, connection_id: str, job_type: JobType | str = JobType.SYNC
    ) -> float | None:
        """Median duration (seconds) of the connection's recent succeeded jobs of that type."""
        durations = [
            job.duration_seconds
            for job in self.recent_jobs(connection_id, job_type)  # newest first
            if job.status is JobStatus.SUCCEEDED and job.duration_seconds
        ][:HISTORY_SIZE]
        return statistics.median(durations) if durations else None

    def quiet_until(self, job: AirbyteJob) -> float | None:
        """When to start polling ``job`` closely: at 90% of its connection's usual duration
        after it was created (epoch seconds), or None without history."""
        usual = self.usual_duration(job.connection_id, job.job_type)
        if usual is None:
            return None
        now = time.time()
        started = job.created_at.timestamp() if job.created_at else now
        if now - started < 1:  # the API gives whole seconds; a job of this second began now
            started = now
        self.log.info("Airbyte connection %s usually syncs in %.0fs", job.connection_id, usual)
        return started + QUIET_SHARE * usual

    def wait_for_job_completion(
        self,
        job_id: int,
        timeout_minutes: float = 60.0,
        *,
        cancel_on_timeout: bool = False,
        raise_on_failure: bool = True,
        quiet_until: float | None = None,
    ) -> AirbyteJob:
        """Poll the job until it ends; return it when it succeeded.

        The poll interval adapts (``poll_interval`` growing to ``max_poll_interval``) and
        transient API errors are ridden out until the deadline. Before ``quiet_until`` (epoch
        seconds, e.g. from ``quiet_until()``) polls are ``quiet_poll_interval`` apart. Raises
        ``AirbyteJobFailedError``/``AirbyteJobCancelledError`` when the job ends badly (unless
        ``raise_on_failure`` is false), ``AirbyteJobStuckPendingError`` when it never left
        ``pending`` and ``AirbyteJobTimeoutError`` when it ran past ``timeout_minutes``
        (cancelling it first when ``cancel_on_timeout``).
        """
        s = self.settings
        schedule = PollSchedule(
            s.poll_interval, s.max_poll_interval, quiet_interval=s.quiet_poll_interval
        )
        start = time.monotonic()
        deadline = start + timeout_minutes * 60.0
        job: AirbyteJob | None = None
        last_status: JobStatus | None = None
        polls = 0
        while True:
            try:
                job = self.get_job(job_id)
                polls += 1
            except TRANSIENT_ERRORS as exc:
                if job is None and time.monotonic() >= deadline:
                    raise
                self.log.warning("Polling Airbyte job %s failed (%s); still waiting", job_id, exc)
            elapsed = time.monotonic() - start
            changed = job is not None and job.status != last_status
            if changed and job is not None:
                self.log.info(
                    "Airbyte job_id=%s connection_id=%s status=%s attempts=%s elapsed=%.1fs",
                    job.job_id,
                    job.connection_id,
                    job.status,
                    job.attempts,
                    elapsed,
                )
                last_status = job.status
            if job is not None and job.is_terminal:
                self.log.info("Airbyte job finished after %d polls: %s", polls, job.summary())
                return self.check_outcome(job, raise_on_failure=raise_on_failure)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            quiet_for = (quiet_until - time.time()) if quiet_until else 0.0
            time.sleep(
                schedule.next_delay(
                    status_changed=changed, remaining=remaining, quiet_for=quiet_for
                )
            )
        return self.handle_timeout(job_id, job, timeout_minutes, cancel_on_timeout)

    def check_outcome(self, job: AirbyteJob, *, raise_on_failure: bool = True) -> AirbyteJob:
        """Return a finished job, or raise when it failed or was cancelled."""
        if raise_on_failure and job.status is JobStatus.FAILED:
            reason = (
                job.failure_reason or "Airbyte gave no reason; see the job's logs in the Airbyte UI"
            )
            raise AirbyteJobFailedError(
                f"Airbyte job {job.job_id} on connection {job.connection_id} failed: {reason}", job
            )
        if raise_on_failure and job.status is JobStatus.CANCELLED:
            raise AirbyteJobCancelledError(
                f"Airbyte job {job.job_id} on connection {job.connection_id} was cancelled.", job
            )
        return job

    def handle_timeout(
        self, job_id: int, job: AirbyteJob | None, timeout_minutes: float, cancel: bool
    ) -> AirbyteJob:
        """The wait ran out: cancel the job if asked, then raise the matching timeout error."""
        if job is None:
            raise AirbyteUnreachableError(
                self.settings.api_root, f"no answer about job {job_id} within {timeout_minutes} min"
            )
        action = "It is still running on Airbyte."
        never_started = job.status.is_waiting_for_capacity
        if cancel:
            job = self.cancel_job(job_id)
            action = "It was cancelled (cancel_on_timeout)."
        if never_started:
            raise AirbyteJobStuckPendingError(
                f"Airbyte job {job_id} stayed {job.status} for {timeout_minutes} min: no Airbyte "
                "worker picked it up. Check that workers are available "
                "(kubectl get pods -n integration -l app=airbyte,component=worker) and that the "
                f"cluster has CPU/memory for them. {action}",
                job,
            )
        raise AirbyteJobTimeoutError(
            f"Job timed out: Airbyte job {job_id} had not finished after {timeout_minutes} "
            f"min. Raise timeout_minutes or check the Airbyte workers' resources. {action}",
            job,
        )

    # --- asynchronous client, for the deferrable trigger ----------------------------------

    async def aload_settings(self) -> AirbyteSettings:
        """Resolve the settings without blocking the event loop (the triggerer's)."""
        if "settings" not in self.__dict__:
            resolved = await aresolve_settings(self.airbyte_conn_id)
            self.__dict__["settings"] = resolved.with_overrides(**self._overrides)
        return self.settings

    @asynccontextmanager
    async def async_client(self) -> AsyncIterator[httpx.AsyncClient]:
        """An ``httpx`` client with the same auth, timeouts and headers as the session."""
        s = await self.aload_settings()
        headers = {"Accept": "application/json", "User-Agent": "airflow-airbyte"}
        auth: httpx.Auth | None = None
        if s.auth_type is AuthType.BASIC:
            auth = httpx.BasicAuth(s.login or "", s.secret or "")
        elif s.auth_type is AuthType.BEARER:
            headers["Authorization"] = f"Bearer {s.secret}"
        elif s.auth_type is AuthType.CLIENT_CREDENTIALS:
            auth = AsyncClientCredentialsAuth(self._token_exchange())
        timeout = httpx.Timeout(s.read_timeout, connect=s.connect_timeout)
        async with httpx.AsyncClient(
            auth=auth, headers=headers, timeout=timeout, verify=shared_ssl_context()
        ) as client:
            yield client

    async def aget_job(self, client: httpx.AsyncClient, job_id: int) -> AirbyteJob:
        """``get_job`` on the event loop; one attempt (the trigger's loop is the retry)."""
        return await self._acall(client, self.api.get_job(int(job_id)))

    async def acancel_job(self, client: httpx.AsyncClient, job_id: int) -> AirbyteJob:
        """``cancel_job`` on the event loop."""
        job = await self._acall(client, self.api.cancel_job(int(job_id)))
        self.log.warning("Airbyte job cancelled: %s", job.summary())
        return job

    async def _acall(self, client: httpx.AsyncClient, request: ApiRequest) -> AirbyteJob:
        try:
            response = await client.request(
                request.method,
                self.settings.api_root + request.path,
                json=request.json,
                params=request.params,
            )
        except httpx.TransportError as exc:
            raise AirbyteUnreachableError(self.settings.api_root, type(exc).__name__) from None
        return self.api.parse_job(self._checked_json(response, request), request)

    # --- connections ---------------------------------------------------------------------

    def get_connection_info(self, connection_id: str) -> AirbyteConnection:
        """Name, status, streams and ids of the connection."""
        request = self.api.get_connection(validate_connection_id(connection_id))
        return self._request(request, self.api.parse_connection)

    def get_connection_details(self, connection_id: str) -> ConnectionDetails:
        """Source, destination and selected streams with their schemas, in one request.

        What lineage needs. The Configuration API answers it fully; the Public API's
        connection has no connector types, locations or stream schemas.
        """
        request = self.api.connection_details(validate_connection_id(connection_id))
        return self._request(request, self.api.parse_connection_details)

    def list_connections(
        self, workspace_id: str | None = None, *, page_size: int = 100
    ) -> list[AirbyteConnection]:
        """Every connection visible to the credentials (all pages, all workspaces)."""
        workspace_id = workspace_id or self.settings.workspace_id
        api = self.api
        if isinstance(api, PublicApi):
            found: list[AirbyteConnection] = []
            while True:
                page, more = self._request(
                    api.list_connections(workspace_id, offset=len(found), limit=page_size),
                    api.parse_connections,
                )
                found.extend(page)
                if not more or not page:
                    return found
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


def validate_connection_id(connection_id: Any) -> str:
    """Airbyte connection ids are UUIDs; refuse anything else before calling the API."""
    text = str(connection_id or "").strip()
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise AirbyteConfigError(
            f"{text!r} is not an Airbyte connection id (a UUID such as "
            "'9e1a6d0c-2f6e-4c1a-9a55-0d9d5c2b7e11'). Copy it from the connection's URL in the "
            "Airbyte UI or from list_connections()."
        ) from None


def _not_found(request: ApiRequest, api_root: str) -> str:
    """What a 404 means for the thing ``request`` is about, and where to look."""
    subject = request.subject
    if subject.startswith("job "):
        return (
            f"Airbyte has no {subject} on {api_root}. A job id is only valid on the Airbyte "
            "instance that ran it: check that the Connection points at that instance, and the "
            "id in the connection's Job History in the Airbyte UI."
        )
    if subject.startswith("connection "):
        return (
            f"Airbyte has no {subject} on {api_root}. Check the connection id (Airbyte UI URL, "
            "or list them with the hook's list_connections())."
        )
    return f"no such resource on {api_root}. Check the Connection's host and API flavour."


def _describe(exc: Exception) -> str:
    if isinstance(exc, requests.Timeout):
        return "timed out"
    text = str(exc)
    for marker in (
        "Connection refused",
        "Name or service not known",
        "Connection reset",
        "RemoteDisconnected",
        "IncompleteRead",
        "Connection aborted",
    ):
        if marker in text:
            return marker
    return type(exc).__name__


def _error_detail(response: requests.Response | httpx.Response) -> str:
    """The server's own explanation, from a problem body or a config-API error body."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    text = body.get("detail") or body.get("message") or body.get("title")
    return f" Airbyte says: {str(text)[:300]}" if text else ""


__all__ = ["AirbyteHook", "ApiFlavour", "validate_connection_id"]
