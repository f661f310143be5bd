"""The connections one stand-in serves: its seed, and what the admin API changed since.

Each server has its own ``ConnectionRegistry``, built from ``seed.build_seed`` for the
configured number of extra connections. The admin API adds connections, deletes them and adds
streams at run time; ``restore`` brings back the seed. A deleted connection stays, with status
``deprecated``, as in Airbyte: the lists leave it out, a get still answers for it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import replace

from dev.airbyte_standin.seed import SOURCE_TYPES, SeedConnection, extra_id

DELETED = "deprecated"
STREAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")


class UnknownConnectionError(KeyError):
    """No connection with that id."""


def _check_streams(streams: Iterable[str]) -> tuple[str, ...]:
    names = tuple(streams)
    for name in names:
        if not isinstance(name, str) or not STREAM_NAME.fullmatch(name):
            raise ValueError(f"a stream name is letters, digits and _ (40 at most), not {name!r}")
    if not names or len(set(names)) != len(names):
        raise ValueError(f"streams must be a non-empty list of distinct names, not {names!r}")
    return names


class ConnectionRegistry:
    """The workspace's connections in list order (the seed, then those added), thread-safe."""

    def __init__(self, seed: Iterable[SeedConnection]) -> None:
        self.seed = tuple(seed)
        self._lock = threading.Lock()
        self._added = 0  # never reset, so an added connection's tables are never reused
        self._by_id: dict[str, SeedConnection] = {}
        self.restore()

    def restore(self) -> None:
        """Back to the seed: forget added connections, deletions and added streams."""
        with self._lock:
            self._by_id = {conn.connection_id: conn for conn in self.seed}

    def listed(self, include_deleted: bool = False) -> list[SeedConnection]:
        """Connections in list order; deleted ones only if ``include_deleted``."""
        with self._lock:
            return [c for c in self._by_id.values() if include_deleted or c.status != DELETED]

    def find(self, connection_id: str) -> SeedConnection | None:
        """The connection (deleted ones too), or None."""
        with self._lock:
            return self._by_id.get(connection_id)

    def get(self, connection_id: str) -> SeedConnection:
        """The connection (deleted ones too), or UnknownConnectionError."""
        found = self.find(connection_id)
        if found is None:
            raise UnknownConnectionError(connection_id)
        return found

    def by_source(self, source_id: str) -> SeedConnection | None:
        """The connection whose source is ``source_id`` (each connection has its own)."""
        with self._lock:
            return next((c for c in self._by_id.values() if c.source_id == source_id), None)

    def add(
        self,
        name: str,
        streams: Iterable[str],
        source_type: str = "faker",
        source_name: str | None = None,
    ) -> SeedConnection:
        """A new active connection, listed last, with a source of its own; ValueError if a
        setting is wrong. Its ids and tables (``added_0001_...``) follow the count of adds."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"name must be a non-empty string, not {name!r}")
        if source_type not in SOURCE_TYPES:
            raise ValueError(f"unknown source_type {source_type!r}; use one of {[*SOURCE_TYPES]}")
        if source_name is not None and not isinstance(source_name, str):
            raise ValueError(f"source_name must be a string, not {source_name!r}")
        names = _check_streams(streams)
        with self._lock:
            self._added += 1
            number = self._added
            conn = SeedConnection(
                connection_id=extra_id("added-connection", number),
                name=name,
                source=source_type,
                source_id=extra_id("added-source", number),
                streams=names,
                source_title=source_name or name.split(" → ")[0],
                slug=f"added_{number:04d}",
            )
            self._by_id[conn.connection_id] = conn
            return conn

    def delete(self, connection_id: str) -> SeedConnection:
        """Mark the connection deleted (``deprecated``); UnknownConnectionError if unknown."""
        with self._lock:
            if connection_id not in self._by_id:
                raise UnknownConnectionError(connection_id)
            conn = replace(self._by_id[connection_id], status=DELETED)
            self._by_id[connection_id] = conn
            return conn

    def add_stream(self, connection_id: str, stream: str) -> SeedConnection:
        """Add ``stream`` to the connection's (and its source's) streams, synced last;
        UnknownConnectionError, or ValueError for a bad or known name or a deleted connection."""
        with self._lock:
            if connection_id not in self._by_id:
                raise UnknownConnectionError(connection_id)
            conn = self._by_id[connection_id]
            if conn.status == DELETED:
                raise ValueError(f"connection {connection_id} is deleted")
            conn = replace(conn, streams=_check_streams((*conn.streams, stream)))
            self._by_id[connection_id] = conn
            return conn
