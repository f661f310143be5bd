"""The notifications a receiver has accepted and not yet processed, in the ledger's database
(``include.receiver.ledger``), so that an accepted notification outlives the receiver that
accepted it.

One row per Airbyte job, inserted when a notification is accepted (a second notification of
the job finds the row: a duplicate). A replica's worker (``include.receiver.worker``) takes
the due rows, one replica per row at a time: taking is a conditional update, and a row a
worker took is taken over when its lease ran out (that worker died or hung). Each row ends
``done`` (with what was done) or, after ``MAX_AGE_SECONDS`` of retries, ``dropped`` (the
reconciler still finds a succeeded sync within its lookback).

Done rows are deleted after ``JOB_MEMORY_SECONDS``; a replay after that is confirmed and
processed again, and creates nothing: the Asset events' claims are kept for good.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from include.receiver.ledger import JOB_MEMORY_SECONDS, METADATA, Ledger

#: States of a row.
PENDING, WORKING, DONE, DROPPED = "pending", "working", "done", "dropped"
#: How long a worker holds a row it took; after that another worker may take it.
LEASE_SECONDS = 60.0
#: How long a notification is retried before it is dropped.
MAX_AGE_SECONDS = 24 * 3600.0
#: How much of a notification's ``errorMessage`` is kept (a report quotes less).
MAX_ERROR_CHARS = 4000

INBOX = sa.Table(
    "airbyte_receiver_inbox",
    METADATA,
    sa.Column("job_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("connection_id", sa.String(64), nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(128), nullable=False, default=""),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("received", sa.Float, nullable=False),
    #: Epoch seconds: when a pending row is due, or when a working row's lease runs out.
    sa.Column("due", sa.Float, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False, default=""),
    sa.Index("airbyte_receiver_inbox_due", "state", "due"),
)


@dataclass(frozen=True)
class Notice:
    """An accepted notification: the job it names and the hints that came with it."""

    job_id: int
    connection_id: str | None = None
    error_message: str | None = None
    attempts: int = 0
    received: float = 0.0


class Inbox:
    """``accept`` a job's notification once; ``take`` due ones; ``finish``/``retry`` them."""

    def __init__(self, ledger: Ledger) -> None:
        ledger.create(INBOX)
        self.engine = ledger.engine
        self._insert = ledger.insert_statement(INBOX)

    def accept(self, notice: Notice) -> bool:
        """Record ``notice`` as due now; False when the job's notification was accepted before."""
        now = time.time()
        message = notice.error_message[:MAX_ERROR_CHARS] if notice.error_message else None
        row = {
            "job_id": notice.job_id,
            "connection_id": notice.connection_id,
            "error_message": message,
            "state": PENDING,
            "owner": "",
            "attempts": 0,
            "received": now,
            "due": now,
            "outcome": "",
        }
        with self.engine.begin() as db:
            return db.execute(self._insert.values(**row).on_conflict_do_nothing()).rowcount == 1

    def take(self, owner: str, limit: int) -> list[Notice]:
        """Up to ``limit`` due rows, now ``owner``'s for ``LEASE_SECONDS``: pending ones whose
        time has come, and working ones whose lease ran out."""
        now = time.time()
        due = sa.and_(INBOX.c.state.in_((PENDING, WORKING)), INBOX.c.due <= now)
        with self.engine.connect() as db:
            candidates = db.execute(
                sa.select(INBOX).where(due).order_by(INBOX.c.due).limit(limit)
            ).all()
        taken = []
        for row in candidates:
            # A lease that ran out counts as a try: it may have done part of the work.
            attempts = row.attempts + (row.state == WORKING)
            with self.engine.begin() as db:  # one taker per row: the update's condition
                won = db.execute(
                    sa.update(INBOX)
                    .where(INBOX.c.job_id == row.job_id, INBOX.c.state == row.state, due)
                    .where(INBOX.c.owner == row.owner, INBOX.c.due == row.due)
                    .values(state=WORKING, owner=owner, due=now + LEASE_SECONDS, attempts=attempts)
                ).rowcount
            if won == 1:
                hints = (row.connection_id, row.error_message)
                taken.append(Notice(row.job_id, *hints, attempts=attempts, received=row.received))
        return taken

    def finish(
        self, job_id: int, owner: str, outcome: dict[str, Any], *, dropped: bool = False
    ) -> None:
        """``owner`` is done with the job: what was done is kept with the row."""
        self._update(job_id, owner, state=DROPPED if dropped else DONE, outcome=json.dumps(outcome))

    def retry(self, job_id: int, owner: str, delay: float, outcome: dict[str, Any]) -> None:
        """Give the row back, due in ``delay`` seconds; ``outcome`` says why."""
        self._update(
            job_id,
            owner,
            state=PENDING,
            owner="",
            due=time.time() + delay,
            attempts=INBOX.c.attempts + 1,
            outcome=json.dumps(outcome),
        )

    def _update(self, job_id: int, holder: str, **values: Any) -> None:
        with self.engine.begin() as db:  # a row another worker took over stays theirs
            db.execute(
                sa.update(INBOX)
                .where(INBOX.c.job_id == job_id, INBOX.c.owner == holder)
                .values(**values)
            )

    def status(self, job_id: int) -> dict[str, Any] | None:
        """What became of the job's notification, or None when none was accepted."""
        with self.engine.connect() as db:
            row = db.execute(sa.select(INBOX).where(INBOX.c.job_id == job_id)).first()
        if row is None:
            return None
        return {
            "job_id": row.job_id,
            "state": row.state,
            "attempts": row.attempts,
            "received": row.received,
            "outcome": json.loads(row.outcome) if row.outcome else None,
        }

    def forget_old(self) -> int:
        """Delete done and dropped rows older than ``JOB_MEMORY_SECONDS``; how many."""
        before = time.time() - JOB_MEMORY_SECONDS
        with self.engine.begin() as db:
            return db.execute(
                sa.delete(INBOX).where(
                    INBOX.c.state.in_((DONE, DROPPED)), INBOX.c.received < before
                )
            ).rowcount
