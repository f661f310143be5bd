"""What Airbyte says of the connections file's entries, asked at most once per ``TTL_SECONDS``
per Airbyte server and shared by every page view of the API server process.

One answer is the server's connection list (``AirbyteHook.list_connections``: one request per
100 connections, so never more than one per connection), matched to the entries the way the
drift check does (``include.workspace.locate``: by id, by the id a Variable holds, or by
name). A page view waits ``WAIT_SECONDS`` at most: a slower answer fills the cache for the
next view, and a failed one keeps what Airbyte said last, with the error, until the next try.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from include.connections import ConnectionEntry, ConnectionsFile
from include.workspace import Target, airflow_variables, locate, resolve_variables
from plugins.airbyte_hook import AirbyteHook

log = logging.getLogger(__name__)
TTL_SECONDS = 300.0
WAIT_SECONDS = 0.8
#: A page is no place for long retries: one try, short timeouts.
CLIENT_OVERRIDES = {
    "max_retries": 0,
    "connect_timeout": 2.0,
    "read_timeout": 5.0,
    "total_timeout": 10.0,
}


@dataclass(frozen=True)
class ServerView:
    """What one Airbyte server (the Airflow Connection ``conn_id``) said last: what each entry
    points at, by key; ``error`` when the last try failed, or it has not answered yet."""

    conn_id: str
    entries: tuple[ConnectionEntry, ...] = ()
    targets: Mapping[str, Target] = field(default_factory=dict)
    api_root: str | None = None
    workspace_id: str | None = None
    answered_at: float | None = None
    error: str | None = None


class AirbyteStatus:
    """The cache: one ``ServerView`` per Airbyte server, refreshed every ``TTL_SECONDS``."""

    def __init__(self) -> None:
        self._views: dict[str, ServerView] = {}
        self._asked: dict[str, float] = {}
        self._asking: dict[str, asyncio.Task[None]] = {}

    async def views(self, file: ConnectionsFile) -> dict[str, ServerView]:
        """Every server's view, asking the servers that are due (waiting ``WAIT_SECONDS`` at
        most: an answer still on its way is kept for the next call)."""
        servers = file.by_server()
        now = time.monotonic()
        for conn_id, entries in servers.items():
            if self._due(conn_id, tuple(entries), now):
                self._asked[conn_id] = now
                task = asyncio.create_task(self._ask(conn_id, tuple(entries), file.workspace_id))
                self._asking[conn_id] = task
                task.add_done_callback(lambda _, c=conn_id: self._asking.pop(c, None))
        pending = [self._asking[c] for c in servers if c in self._asking]
        if pending:
            await asyncio.wait(pending, timeout=WAIT_SECONDS)
        return {
            conn_id: self._views.get(conn_id)
            or ServerView(conn_id, error="Airbyte has not answered yet")
            for conn_id in servers
        }

    def _due(self, conn_id: str, entries: tuple[ConnectionEntry, ...], now: float) -> bool:
        if conn_id in self._asking:
            return False
        view = self._views.get(conn_id)
        if view is not None and view.entries != entries:
            return True  # the connections file changed
        return conn_id not in self._asked or now - self._asked[conn_id] >= TTL_SECONDS

    async def _ask(
        self, conn_id: str, entries: Sequence[ConnectionEntry], workspace_id: str | None
    ) -> None:
        hook = AirbyteHook(conn_id, **CLIENT_OVERRIDES)
        try:
            async with hook.async_client() as client:
                connections = await client.list_connections(workspace_id)
            variable_ids = await asyncio.to_thread(resolve_variables, entries, airflow_variables)
        except Exception as error:  # whatever went wrong, the page shows it and goes on
            log.warning("Airbyte (%s) did not answer the Airbyte page: %s", conn_id, error)
            message = f"{type(error).__name__}: {error}"
            previous = self._views.get(conn_id) or ServerView(conn_id, tuple(entries))
            self._views[conn_id] = replace(previous, error=message[:500])
            return
        self._views[conn_id] = ServerView(
            conn_id,
            tuple(entries),
            {t.key: t for t in locate(entries, connections, variable_ids)},
            hook.settings.api_root,
            hook.settings.workspace_id,
            answered_at=time.time(),
        )
