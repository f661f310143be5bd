"""Where the stand-in keeps its jobs across restarts: one JSON row per job, any SQLAlchemy URL.

Like Airbyte's own database, it lets a restarted server answer for the jobs it ran before (same
ids, same history) and carry on with the ones it left running. Without a state URL the jobs
live in memory only.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict

import sqlalchemy as sa

from dev.airbyte_standin.job_model import Attempt, Job
from dev.airbyte_standin.warehouse import StreamResult, ensure_sqlite_dir

_metadata = sa.MetaData()
JOBS = sa.Table(
    "standin_jobs",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("body", sa.Text, nullable=False),
)


class JobJournal:
    """Saves jobs as they change and loads them back at start."""

    def __init__(self, url: str) -> None:
        ensure_sqlite_dir(url)
        self.engine = sa.create_engine(url, future=True)
        _metadata.create_all(self.engine)

    def save(self, job: Job) -> None:
        body = asdict(job)
        body.pop("phase_started")  # a monotonic clock reading means nothing to another process
        with self.engine.begin() as db:
            db.execute(JOBS.delete().where(JOBS.c.id == job.id))
            db.execute(JOBS.insert().values(id=job.id, body=json.dumps(body)))

    def load(self) -> list[Job]:
        """Every saved job; a job's current phase goes on from when it began."""
        with self.engine.connect() as db:
            rows = db.execute(sa.select(JOBS.c.body).order_by(JOBS.c.id)).scalars().all()
        jobs = []
        for row in rows:
            body = json.loads(row)
            attempts = [
                Attempt(**{**a, "streams": [StreamResult(**s) for s in a["streams"]]})
                for a in body.pop("attempts")
            ]
            phase_age = max(0.0, time.time() - body["updated_at"])
            jobs.append(Job(**body, attempts=attempts, phase_started=time.monotonic() - phase_age))
        return jobs

    def clear(self) -> None:
        with self.engine.begin() as db:
            db.execute(JOBS.delete())

    def dispose(self) -> None:
        self.engine.dispose()
