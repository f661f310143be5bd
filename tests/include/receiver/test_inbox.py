"""The receivers' inbox on SQLite and on a real PostgreSQL: a job's notification is accepted
once, each due row is taken by exactly one of many replicas, a lease that ran out is taken
over, and the worker gives a try that cannot finish back for later."""

from __future__ import annotations

import asyncio
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from itertools import count

import pytest

from include.receiver import inbox as inbox_module
from include.receiver import worker as worker_module
from include.receiver.airflow_client import AirflowUnavailable
from include.receiver.inbox import DONE, DROPPED, LEASE_SECONDS, MAX_AGE_SECONDS, Inbox, Notice
from include.receiver.ledger import Ledger
from include.receiver.settle import Outcome
from include.receiver.worker import NotFinished, NotificationWorker, backoff

JOB_IDS = count(1)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("postgres_url")


def later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The inbox's clock ``seconds`` ahead (its module's ``time`` only)."""
    ahead = time.time() + seconds
    monkeypatch.setattr(inbox_module, "time", types.SimpleNamespace(time=lambda: ahead))


def test_a_jobs_notification_is_accepted_once(url):
    inbox = Inbox(Ledger(url))
    job = next(JOB_IDS)
    assert inbox.accept(Notice(job, "c-1", "boom" * 10_000)) is True
    assert inbox.accept(Notice(job, "c-1")) is False
    assert inbox.status(job) | {"received": 0} == {
        "job_id": job,
        "state": "pending",
        "attempts": 0,
        "received": 0,
        "outcome": None,
    }
    [taken] = [n for n in inbox.take("a", 1000) if n.job_id == job]
    assert len(taken.error_message) == inbox_module.MAX_ERROR_CHARS
    assert inbox.status(next(JOB_IDS)) is None


def test_of_twenty_workers_taking_at_once_each_row_goes_to_exactly_one(url):
    inboxes = [Inbox(Ledger(url)) for _ in range(4)]  # four replicas' engines
    jobs = [next(JOB_IDS) for _ in range(30)]
    for job in jobs:
        inboxes[0].accept(Notice(job))
    start = threading.Barrier(20)

    def take(n: int) -> list[int]:
        start.wait()
        return [x.job_id for x in inboxes[n % 4].take(f"worker-{n}", 5) if x.job_id in jobs]

    with ThreadPoolExecutor(20) as pool:
        taken = [job for batch in pool.map(take, range(20)) for job in batch]
    leftover = [x.job_id for x in inboxes[0].take("late", 1000) if x.job_id in jobs]
    assert sorted(taken + leftover) == sorted(jobs)  # each once, none twice


def test_a_row_is_due_again_after_its_delay_and_a_lapsed_lease_is_taken_over(url, monkeypatch):
    inbox = Inbox(Ledger(url))
    job = next(JOB_IDS)
    inbox.accept(Notice(job))
    assert [n.job_id for n in inbox.take("a", 1000) if n.job_id == job] == [job]
    assert [n for n in inbox.take("b", 1000) if n.job_id == job] == []  # a's lease
    inbox.retry(job, "a", 30.0, {"status": "retrying", "detail": "Airflow away"})
    assert [n for n in inbox.take("b", 1000) if n.job_id == job] == []  # not due yet
    later(monkeypatch, 31)
    [again] = [n for n in inbox.take("b", 1000) if n.job_id == job]
    assert again.attempts == 1
    later(monkeypatch, 31 + LEASE_SECONDS + 1)  # b died holding it
    [taken_over] = [n for n in inbox.take("c", 1000) if n.job_id == job]
    assert taken_over.attempts == 2  # may have done part of the work: a careful try
    inbox.finish(job, "b", {"status": "late"})  # b's late word changes nothing
    inbox.finish(job, "c", {"status": "asset_events"})
    assert inbox.status(job)["state"] == DONE
    assert inbox.status(job)["outcome"] == {"status": "asset_events"}
    assert [n for n in inbox.take("d", 1000) if n.job_id == job] == []


def test_done_rows_are_forgotten_after_the_ledgers_memory(url, monkeypatch):
    inbox = Inbox(Ledger(url))
    job, pending = next(JOB_IDS), next(JOB_IDS)
    for n in (job, pending):
        inbox.accept(Notice(n))
    inbox.take("a", 1000)
    inbox.finish(job, "a", {"status": "ignored"})
    inbox.retry(pending, "a", 0.0, {"status": "retrying"})
    later(monkeypatch, inbox_module.JOB_MEMORY_SECONDS + 1)
    assert inbox.forget_old() >= 1
    assert inbox.status(job) is None
    assert inbox.status(pending)["state"] == "pending"  # never forgotten before it is done


def run_worker(inbox: Inbox, process) -> None:
    worker = NotificationWorker(inbox, process, "w", concurrency=1000)
    asyncio.run(worker.run_once())


def test_the_worker_gives_back_a_try_that_cannot_finish_and_finishes_the_next(url, monkeypatch):
    inbox = Inbox(Ledger(url))
    job = next(JOB_IDS)
    inbox.accept(Notice(job))
    answers = [AirflowUnavailable("Airflow answered 503"), NotFinished("the job is running")]

    async def process(notice: Notice) -> Outcome:
        if notice.job_id != job:
            return Outcome("ignored", "another test's row")
        if answers:
            raise answers.pop(0)
        return Outcome("asset_events", "Asset events created.", job)

    run_worker(inbox, process)
    status = inbox.status(job)
    assert (status["state"], status["attempts"]) == ("pending", 1)
    assert status["outcome"]["detail"] == "AirflowUnavailable: Airflow answered 503"
    run_worker(inbox, process)
    assert inbox.status(job)["attempts"] == 1  # not due before backoff(0)
    later(monkeypatch, backoff(0) + 1)
    run_worker(inbox, process)
    assert inbox.status(job)["outcome"]["detail"] == "NotFinished: the job is running"
    later(monkeypatch, backoff(0) + backoff(1) + 2)
    run_worker(inbox, process)
    done = inbox.status(job)
    assert (done["state"], done["attempts"]) == (DONE, 2)
    assert done["outcome"] == {
        "status": "asset_events",
        "detail": "Asset events created.",
        "job_id": job,
    }


def test_a_notification_retried_for_a_day_is_dropped(url, monkeypatch):
    inbox = Inbox(Ledger(url))
    job = next(JOB_IDS)
    inbox.accept(Notice(job))

    async def process(notice: Notice) -> Outcome:
        raise AirflowUnavailable("still away")

    later(monkeypatch, MAX_AGE_SECONDS + 1)
    monkeypatch.setattr(worker_module, "time", inbox_module.time)
    run_worker(inbox, process)
    dropped = inbox.status(job)
    assert (dropped["state"], dropped["outcome"]["status"]) == (DROPPED, "dropped")


def test_backoff_doubles_up_to_five_minutes():
    assert [backoff(n) for n in range(8)] == [5, 10, 20, 40, 80, 160, 300, 300]
