"""What the receiver has already acted on, kept in a SQLite file so a restart remembers it.

Two uses, both keyed by a string:

- signed events: ``event:<event_id>`` with the fingerprint of the run it asked for, kept for
  at least the signature window, so a captured request is a duplicate (never a second run)
  even after its DAG run was deleted, and a reused id with another payload is a conflict;
- Airbyte notifications: ``asset:<job_id>:<uri>`` once an asset event was created for a job
  and ``failure:<job_id>`` once a failed job was reported, kept ``JOB_MEMORY_SECONDS``, so a
  redelivered notification creates no second event and does not page people twice.

Entries are pruned once their time to live has passed. One receiver
process owns the file; several replicas need one ledger each and stay correct because the
Airflow side is idempotent too (run ids, job ids in asset events), but each replica may then
report a failure once.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

SCHEMA = "CREATE TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY, value TEXT, expires REAL)"
#: How long what was done for an Airbyte job is remembered: longer than any redelivery.
JOB_MEMORY_SECONDS = 30 * 24 * 3600.0


class Ledger:
    """``remember(key, value)`` once; ``recall(key)`` until it expires (``retention`` seconds
    after it was remembered unless ``remember`` says otherwise)."""

    def __init__(self, path: str | Path, retention: float) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(SCHEMA)
        self._lock = threading.Lock()
        self.retention = retention

    def recall(self, key: str) -> str | None:
        """The value remembered under ``key`` within the retention, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM seen WHERE key = ? AND expires >= ?", (key, time.time())
            ).fetchone()
        return None if row is None else row[0]

    def remember(self, key: str, value: str = "", ttl: float | None = None) -> str | None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (default: the retention) unless a
        live entry exists; return that entry's value."""
        now = time.time()
        with self._lock:
            self._db.execute("DELETE FROM seen WHERE expires < ?", (now,))
            row = self._db.execute("SELECT value FROM seen WHERE key = ?", (key,)).fetchone()
            if row is not None:
                return row[0]
            expires = now + (self.retention if ttl is None else ttl)
            self._db.execute("INSERT INTO seen VALUES (?, ?, ?)", (key, value, expires))
        return None

    def close(self) -> None:
        with self._lock:
            self._db.close()
