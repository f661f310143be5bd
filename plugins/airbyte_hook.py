"""``AirbyteHook``: the Airbyte client for Airflow, configured by a Connection or Variables.

The hook turns the Airflow Connection ``airbyte_default`` (type ``airbyte`` or ``http``; fields
and extras in the README) or, when it does not exist, the seed's Variables ``AIRBYTE_API_URL``,
``AIRBYTE_API_USERNAME`` and ``AIRBYTE_API_PASSWORD`` into an ``AirbyteClient`` (or, on the
event loop, an ``AsyncAirbyteClient``) and offers the seed's API on top of it. What a call
does, how it retries and what it raises is the client's (``plugins.airbyte_client``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import cached_property
from typing import Any, NoReturn

from airflow.sdk import BaseHook, Variable
from airflow.sdk.exceptions import AirflowNotFoundException
from asgiref.sync import sync_to_async

from plugins.airbyte_client.arguments import (
    OnConflict,
    RefreshMode,
    validate_connection_id,
    validate_on_conflict,
)
from plugins.airbyte_client.client import AirbyteClient, AsyncAirbyteClient
from plugins.airbyte_client.config import (
    DEFAULT_CONN_ID,
    PASSWORD_VARIABLE,
    URL_VARIABLE,
    USERNAME_VARIABLE,
    AirbyteSettings,
    settings_from_connection,
    settings_from_variables,
)
from plugins.airbyte_client.errors import AirbyteConfigError, AirbyteError
from plugins.airbyte_client.models import (
    AirbyteConnection,
    AirbyteJob,
    ConnectionDetails,
    JobType,
)
from plugins.airbyte_client.wait import check_outcome

#: How long a process trusts a connection id it found by name (``connection_id_named``).
NAME_CACHE_SECONDS = 600.0
_named_connections: dict[tuple[str, str], tuple[float, str]] = {}


def variables_settings(conn_id: str = DEFAULT_CONN_ID) -> AirbyteSettings:
    """Settings from the seed's Variables; ``AIRBYTE_API_URL`` is required."""
    url = Variable.get(URL_VARIABLE, default=None)
    if url is None:
        raise AirbyteConfigError(
            f"Airbyte is not configured: there is no Airflow Connection '{conn_id}' and no "
            f"Variable {URL_VARIABLE}. Create one, e.g. "
            f"`airflow variables set {URL_VARIABLE} http://airbyte-server:8000` (plus "
            f"{USERNAME_VARIABLE}/{PASSWORD_VARIABLE}), or the Connection "
            f"`airflow connections add {conn_id} --conn-uri http://user:pass@airbyte-server:8000`."
        )
    login = Variable.get(USERNAME_VARIABLE, default=None) or None
    secret = Variable.get(PASSWORD_VARIABLE, default=None) or None
    source = f"Airflow Variables {URL_VARIABLE}/{USERNAME_VARIABLE}/{PASSWORD_VARIABLE}"
    settings = settings_from_variables(url, login, secret, source)
    if login and not secret:
        raise AirbyteConfigError(f"{USERNAME_VARIABLE} is set but {PASSWORD_VARIABLE} is not.")
    return settings


def resolve_settings(conn_id: str) -> AirbyteSettings:
    """Settings from the Connection ``conn_id``, else from the Variables."""
    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return variables_settings(conn_id)
    return settings_from_connection(conn)


async def aresolve_settings(conn_id: str) -> AirbyteSettings:
    """``resolve_settings`` for the event loop (the triggerer): never blocks it."""
    try:
        conn = await BaseHook.aget_connection(conn_id)
    except AirflowNotFoundException:
        return await sync_to_async(variables_settings)(conn_id)
    return settings_from_connection(conn)


def connection_id_from_variables(names: str | Sequence[str]) -> str:
    """The value of the first of ``names`` that is set as an Airflow Variable.

    Several names let one setting have a preferred and a legacy spelling, e.g.
    ``AIRBYTE_STRIPE_POSTGRES_CONNECTION_ID`` then ``AIRBYTE_STRIPE_CONNECTION_ID``.
    """
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


def connection_id_given(
    connection_id: str | None, connection_id_variable: str | Sequence[str] | None
) -> str:
    """The connection id, given as itself or by the Variable(s) holding it; checked."""
    if connection_id is None:
        connection_id = connection_id_from_variables(connection_id_variable or ())
    return validate_connection_id(connection_id)


class AirbyteHook(BaseHook):
    """Client for one Airbyte server, configured by an Airflow Connection or Variables.

    :param airbyte_conn_id: Airflow Connection id; when it does not exist the Variables
        ``AIRBYTE_API_URL``/``AIRBYTE_API_USERNAME``/``AIRBYTE_API_PASSWORD`` are used.
    :param on_conflict: what a trigger does when Airbyte answers 409 (a sync is already
        running): ``attach`` to the running job, or ``fail``.
    :param overrides: tunables that win over the Connection extras, e.g. ``poll_interval``,
        ``max_poll_interval``, ``max_retries``, ``retry_min_wait``, ``read_timeout``.
    """

    conn_name_attr = "airbyte_conn_id"
    default_conn_name = DEFAULT_CONN_ID
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
        self.airbyte_conn_id = airbyte_conn_id
        self.on_conflict = validate_on_conflict(on_conflict)  # at once, before any call
        self._overrides = overrides

    @cached_property
    def settings(self) -> AirbyteSettings:
        return resolve_settings(self.airbyte_conn_id).with_overrides(**self._overrides)

    async def aload_settings(self) -> AirbyteSettings:
        """Resolve the settings without blocking the event loop (the triggerer's)."""
        if "settings" not in self.__dict__:
            resolved = await aresolve_settings(self.airbyte_conn_id)
            self.__dict__["settings"] = resolved.with_overrides(**self._overrides)
        return self.settings

    @cached_property
    def client(self) -> AirbyteClient:  # closed with the process; one per hook
        return AirbyteClient(self.settings, on_conflict=self.on_conflict, log=self.log)

    def get_conn(self) -> AirbyteClient:
        return self.client

    @asynccontextmanager
    async def async_client(self) -> AsyncIterator[AsyncAirbyteClient]:
        """An ``AsyncAirbyteClient`` for this hook's server, closed on exit."""
        settings = await self.aload_settings()
        async with AsyncAirbyteClient(
            settings, on_conflict=self.on_conflict, log=self.log
        ) as client:
            yield client

    # --- the seed's API ------------------------------------------------------------------

    def submit_job(
        self,
        connection_id: str,
        job_type: JobType | str = "sync",
        *,
        streams: Sequence[str] | None = None,
        refresh_mode: RefreshMode | None = None,
    ) -> AirbyteJob:
        """Start a sync, reset, clear or refresh job and return it; never two for one call.

        :param streams: limit a reset, clear or refresh to these streams (Configuration API).
        :param refresh_mode: a refresh's ``truncate`` or ``merge`` (Configuration API).
        """
        return self.client.submit_job(
            connection_id, job_type, streams=streams, refresh_mode=refresh_mode
        )

    def trigger_sync(self, connection_id: str) -> AirbyteJob:
        """Start a sync of the connection."""
        return self.submit_job(connection_id, "sync")

    def trigger_reset(self, connection_id: str, streams: Sequence[str] | None = None) -> AirbyteJob:
        """Reset the connection (or some streams): delete the synced data so the next sync
        starts over."""
        return self.submit_job(connection_id, "reset", streams=streams)

    def trigger_clear(self, connection_id: str, streams: Sequence[str] | None = None) -> AirbyteJob:
        """Clear the connection's (or some streams') data (the newer name of reset)."""
        return self.submit_job(connection_id, "clear", streams=streams)

    def trigger_refresh(
        self,
        connection_id: str,
        streams: Sequence[str] | None = None,
        refresh_mode: RefreshMode | None = None,
    ) -> AirbyteJob:
        """Refresh the connection (or some streams): cursors reset, every record synced
        again, into the records kept (``merge``, the default) or emptied tables
        (``truncate``)."""
        return self.submit_job(connection_id, "refresh", streams=streams, refresh_mode=refresh_mode)

    def get_job(self, job_id: int) -> AirbyteJob:
        """The job's current state and figures."""
        return self.client.get_job(job_id)

    def cancel_job(self, job_id: int) -> AirbyteJob:
        """Ask Airbyte to cancel the job; returns it as Airbyte reports it afterwards."""
        return self.client.cancel_job(job_id)

    def wait_for_job_completion(
        self,
        job_id: int,
        timeout_minutes: float = 60.0,
        *,
        cancel_on_timeout: bool = False,
        raise_on_failure: bool = True,
        quiet_until: float | None = None,
    ) -> AirbyteJob:
        """Poll the job until it ends; return it when it succeeded, else raise
        ``AirbyteJobFailedError``/``AirbyteJobCancelledError`` (unless ``raise_on_failure`` is
        false). A wait that ends otherwise (``timeout_minutes``, an error) cancels the job when
        ``cancel_on_timeout``, and its error says what became of it."""
        return self.client.wait_for_job_completion(
            job_id,
            timeout_minutes,
            cancel_on_timeout=cancel_on_timeout,
            raise_on_failure=raise_on_failure,
            quiet_until=quiet_until,
        )

    def complete(self, job: AirbyteJob) -> AirbyteJob:
        """A finished job as a poll saw it, with what polls leave out (a failure's reason):
        one full read where the API flavour's poll answer lacks it."""
        return self.client.complete(job)

    def check_outcome(self, job: AirbyteJob, *, raise_on_failure: bool = True) -> AirbyteJob:
        """Return a finished job, or raise when it failed or was cancelled."""
        return check_outcome(job, raise_on_failure=raise_on_failure)

    def abandon(self, job_id: int, error: AirbyteError, cancel: bool) -> NoReturn:
        """A wait failed before the job ended: cancel it if asked, then raise ``error``."""
        self.client.abandon(job_id, error, cancel)

    def handle_timeout(
        self,
        job_id: int,
        job: AirbyteJob | None,
        timeout_minutes: float,
        cancel: bool,
        last_error: AirbyteError | None = None,
    ) -> NoReturn:
        """The wait ran out: cancel the job if asked, then raise the matching timeout error
        (naming the last error Airbyte gave, when the last polls failed)."""
        self.client.handle_timeout(job_id, job, timeout_minutes, cancel, last_error)

    def recent_jobs(self, connection_id: str, job_type: JobType | str = "sync") -> list[AirbyteJob]:
        """The connection's latest jobs of that type, newest first."""
        return self.client.recent_jobs(connection_id, job_type)

    def quiet_until(self, job: AirbyteJob) -> float | None:
        """When to start polling ``job`` closely: at 90% of its connection's usual duration
        after it was created (epoch seconds), or None without history."""
        return self.client.quiet_until(job)

    def get_connection_info(self, connection_id: str) -> AirbyteConnection:
        """Name, status, streams and ids of the connection."""
        return self.client.get_connection_info(connection_id)

    def get_connection_details(self, connection_id: str) -> ConnectionDetails:
        """Source, destination and selected streams with their schemas, in one request."""
        return self.client.get_connection_details(connection_id)

    def list_connections(
        self, workspace_id: str | None = None, *, page_size: int = 100
    ) -> list[AirbyteConnection]:
        """Every connection visible to the credentials (all pages, all workspaces)."""
        return self.client.list_connections(workspace_id, page_size=page_size)

    def resolve_connection_id(
        self,
        connection_id: str | None = None,
        connection_id_variable: str | Sequence[str] | None = None,
        connection_name: str | None = None,
    ) -> str:
        """The connection id given one of: the id, the Variable(s) holding it, its name."""
        if connection_name is not None:
            return self.connection_id_named(connection_name)
        return connection_id_given(connection_id, connection_id_variable)

    def connection_id_named(self, name: str) -> str:
        """The id of the one connection called exactly ``name`` (as in Airbyte's UI), looked
        up on every page and remembered by this process for ``NAME_CACHE_SECONDS``."""
        key = (self.airbyte_conn_id, name)
        cached = _named_connections.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        matches = [c for c in self.list_connections() if c.name == name]
        if len(matches) != 1:
            found = "no connection" if not matches else f"{len(matches)} connections"
            raise AirbyteConfigError(
                f"Airbyte has {found} named {name!r} (names are compared exactly); rename it "
                "in Airbyte or name the connection by its id in airbyte_connections.yaml."
            )
        _named_connections[key] = (time.monotonic() + NAME_CACHE_SECONDS, matches[0].connection_id)
        return matches[0].connection_id

    def test_connection(self) -> tuple[bool, str]:
        """For the Airflow UI's Test button: reachability, health and credentials."""
        try:
            health = self.client.health()
            connections = self.client.list_connections()
        except Exception as exc:
            return False, str(exc)
        return True, (
            f"Connected to Airbyte at {self.settings.api_root} ({self.settings.flavour} API, "
            f"health={health}); {len(connections)} connections visible."
        )
