"""What the receivers have acted on, in a database named by a SQLAlchemy URL (PostgreSQL for
several replicas, a SQLite file for one), so a restart or another replica knows it.

Four uses, each keyed by a string:

- signed events: ``event:<event_id>`` with the fingerprint of the run it asked for, kept for
  at least the signature window (``remember``), so a captured request is a duplicate (never a
  second run) even after its DAG run was deleted, and a reused id with another payload is a
  conflict;
- a failed Airbyte job reported: ``failure:<connection_id>:<job_id>``, claimed and settled
  as the Asset events are (job ids are one Airbyte's; connection ids are unique across them);
- the Asset event of asset X for Airbyte job J: ``asset:<job_id>:<uri>``, **claimed** by one
  receiver before it creates the event and **settled** once the event exists, kept for good:
  the claim is one insert on the primary key, so of any number of receivers given the same
  notification at the same moment exactly one creates the event, and a replay months later
  finds it settled. A claim left unsettled (its receiver died between the claim and the event)
  may be taken over after ``STALE_CLAIM_SECONDS``;
- a succeeded sync all of whose Asset events exist: ``sync:<connection_id>:<job_id>``,
  **marked** for good, so a later look at the job (the reconciler's next runs, a replay) needs
  no request at all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

#: How long what was done for an Airbyte job is remembered: longer than any redelivery.
JOB_MEMORY_SECONDS = 30 * 24 * 3600.0
#: A claim older than this, never settled, belongs to a receiver that died: take it over
#: (a receiver's try gives its claims back within 45 s, ``include.receiver.worker``; the
#: taker looks at the asset's events first, so a slow holder costs no second event).
STALE_CLAIM_SECONDS = 60.0
CLAIMED, SETTLED = "claimed", "settled"

METADATA = sa.MetaData()
ENTRIES = sa.Table(
    "airbyte_receiver_ledger",
    METADATA,
    sa.Column("key", sa.String(1024), primary_key=True),
    sa.Column("value", sa.Text, nullable=False, default=""),
    #: ``claimed``/``settled`` for claims; empty for remembered keys.
    sa.Column("state", sa.String(16), nullable=False, default=""),
    sa.Column("updated", sa.Float, nullable=False),
    #: Epoch seconds after which the entry is forgotten; NULL: kept for good.
    sa.Column("expires", sa.Float, nullable=True),
)
_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


@dataclass(frozen=True)
class Claim:
    """The answer to ``claim``: ``ours`` to act on, else ``state`` of the other's claim."""

    ours: bool
    state: str = ""
    value: str = ""
    #: Ours, taken from a receiver that died holding it: its work may be half done.
    taken_over: bool = False


class Ledger:
    """``remember``/``recall`` keys for a while; ``claim``/``settle`` or ``mark`` keys for good."""

    def __init__(self, url: str, retention: float = 600.0) -> None:
        backend = sa.engine.make_url(url).get_backend_name()
        if backend not in _INSERTS:
            raise ValueError(f"LEDGER_URL must be PostgreSQL or SQLite, not {backend}")
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            with self.engine.begin() as db:
                db.exec_driver_sql("PRAGMA journal_mode=WAL")
        self.create(ENTRIES)
        self.retention = retention

    def create(self, table: sa.Table) -> None:
        """Create ``table`` (of ``METADATA``) in the ledger's database unless it exists."""
        try:
            table.create(self.engine, checkfirst=True)
        except sa.exc.DatabaseError:  # another replica created it at the same moment
            if not sa.inspect(self.engine).has_table(table.name):
                raise

    def insert_statement(self, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
        """An insert into ``table`` that can skip a row whose key exists
        (``.on_conflict_do_nothing()``), in the database's dialect."""
        return _INSERTS[self.engine.dialect.name](table)

    def _insert(self, **row: object) -> bool:
        """Insert ``row`` unless its key exists (atomically); whether it was inserted."""
        statement = self.insert_statement(ENTRIES).values(**row)
        with self.engine.begin() as db:
            return db.execute(statement.on_conflict_do_nothing()).rowcount == 1

    def _row(self, key: str) -> sa.Row | None:
        with self.engine.connect() as db:
            return db.execute(sa.select(ENTRIES).where(ENTRIES.c.key == key)).first()

    def recall(self, key: str) -> str | None:
        """The value remembered or settled under ``key`` and not expired, or None."""
        row = self._row(key)
        if row is None or row.state == CLAIMED or (row.expires and row.expires < time.time()):
            return None
        return row.value

    def remember(self, key: str, value: str = "", ttl: float | None = None) -> str | None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (default: the retention) unless
        a live entry exists; return that entry's value (None when this call stored it)."""
        now = time.time()
        with self.engine.begin() as db:
            db.execute(sa.delete(ENTRIES).where(ENTRIES.c.expires < now))
        expires = now + (self.retention if ttl is None else ttl)
        if self._insert(key=key, value=value, state="", updated=now, expires=expires):
            return None
        row = self._row(key)
        return None if row is None else row.value

    def claim(self, key: str, owner: str) -> Claim:
        """Take ``key`` for ``owner`` unless another holds a live claim or it is settled."""
        now = time.time()
        if self._insert(key=key, value=owner, state=CLAIMED, updated=now, expires=None):
            return Claim(ours=True)
        row = self._row(key)
        if row is None or row.state != CLAIMED or now - row.updated < STALE_CLAIM_SECONDS:
            return Claim(False, row.state if row else "", row.value if row else "")
        with self.engine.begin() as db:  # a dead receiver's claim: one taker wins
            taken = db.execute(
                sa.update(ENTRIES)
                .where(ENTRIES.c.key == key, ENTRIES.c.updated == row.updated)
                .values(value=owner, updated=now)
            ).rowcount
        return Claim(ours=taken == 1, state=CLAIMED, value=row.value, taken_over=taken == 1)

    def settle(self, key: str, value: str) -> None:
        """The claimed work is done: ``key`` holds ``value`` for good."""
        with self.engine.begin() as db:
            db.execute(
                sa.update(ENTRIES)
                .where(ENTRIES.c.key == key)
                .values(state=SETTLED, value=value, updated=time.time())
            )

    def mark(self, key: str, value: str) -> None:
        """``key`` holds ``value`` for good, settled without a claim (what it records is done;
        a mark that exists stays as it is)."""
        self._insert(key=key, value=value, state=SETTLED, updated=time.time(), expires=None)

    def release(self, key: str, owner: str) -> None:
        """Give up ``owner``'s claim (the work failed): another try may claim it at once."""
        with self.engine.begin() as db:
            db.execute(
                sa.delete(ENTRIES).where(
                    ENTRIES.c.key == key, ENTRIES.c.state == CLAIMED, ENTRIES.c.value == owner
                )
            )

    def close(self) -> None:
        self.engine.dispose()
