"""The work behind an accepted notification, after the receiver has answered: one loop per
receiver takes due rows of the inbox (``include.receiver.inbox``) and has each processed
(``NotificationIntake.process``), a few at a time.

A try that cannot finish now (Airflow or Airbyte unavailable, the job not finished yet,
another process settling the job, no answer within ``TRY_TIMEOUT_SECONDS``) gives its row back
due again after ``backoff(attempts)``; after ``inbox.MAX_AGE_SECONDS`` the row is dropped,
with an error in the log. The loop wakes when the receiver accepts a notification, and every
``POLL_SECONDS`` for retries and for rows a dead replica left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from include.receiver.airflow_client import AirflowUnavailable
from include.receiver.inbox import LEASE_SECONDS, MAX_AGE_SECONDS, Inbox, Notice
from include.receiver.settle import AirbyteUnavailable, ClaimHeld, Outcome

log = logging.getLogger("webhook.worker")
#: How often the inbox is looked at without being woken.
POLL_SECONDS = 2.0
#: One try's limit, within the row's lease.
TRY_TIMEOUT_SECONDS = LEASE_SECONDS * 0.75
#: How often done rows older than the ledger's memory are deleted.
FORGET_EVERY_SECONDS = 3600.0


class NotFinished(Exception):
    """Airbyte says the job is still pending or running: look again later."""


#: What makes a try give its row back rather than finish it.
TRANSIENT = (AirflowUnavailable, AirbyteUnavailable, ClaimHeld, NotFinished, TimeoutError)


def backoff(attempts: int) -> float:
    """Seconds before try ``attempts + 1``: 5, 10, 20, ... at most 5 minutes."""
    return min(300.0, 5.0 * 2**attempts)


class NotificationWorker:
    """Processes the inbox's due notifications, ``concurrency`` at a time."""

    def __init__(
        self,
        inbox: Inbox,
        process: Callable[[Notice], Awaitable[Outcome]],
        owner: str,
        concurrency: int,
    ) -> None:
        self._inbox = inbox
        self._process = process
        self._owner = owner
        self._concurrency = concurrency
        self._wake = asyncio.Event()
        self._forgotten_at = 0.0

    def wake(self) -> None:
        """A notification was accepted: look at the inbox now."""
        self._wake.set()

    async def run(self) -> None:
        """Until cancelled."""
        while True:
            try:
                busy = await self.run_once()
            except Exception:  # the ledger's database away: keep the loop, try again later
                log.exception("Cannot read the receiver's inbox")
                busy = False
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
                self._wake.clear()

    async def run_once(self) -> bool:
        """Process the due rows it can take now; whether more may be due."""
        if time.time() - self._forgotten_at > FORGET_EVERY_SECONDS:
            await asyncio.to_thread(self._inbox.forget_old)
            self._forgotten_at = time.time()
        notices = await asyncio.to_thread(self._inbox.take, self._owner, self._concurrency)
        await asyncio.gather(*(self._try(notice) for notice in notices))
        return len(notices) == self._concurrency

    async def _try(self, notice: Notice) -> None:
        try:
            async with asyncio.timeout(TRY_TIMEOUT_SECONDS):
                outcome = await self._process(notice)
        except TRANSIENT as error:
            await self._later(notice, f"{type(error).__name__}: {error}")
        except Exception as error:  # a bug or an answer nobody expected: logged, tried again
            log.exception("Airbyte job %s: processing its notification failed", notice.job_id)
            await self._later(notice, f"{type(error).__name__}: {error}")
        else:
            await asyncio.to_thread(
                self._inbox.finish, notice.job_id, self._owner, outcome.content()
            )

    async def _later(self, notice: Notice, why: str) -> None:
        """Give the row back for a later try, or drop it once it is too old."""
        outcome = {"status": "retrying", "detail": why[:500]}
        if time.time() - notice.received > MAX_AGE_SECONDS:
            log.error(
                "Airbyte job %s: notification dropped after %s tries (%s); the reconciler "
                "settles a succeeded sync within its lookback",
                notice.job_id,
                notice.attempts + 1,
                why,
            )
            outcome["status"] = "dropped"
            await asyncio.to_thread(
                self._inbox.finish, notice.job_id, self._owner, outcome, dropped=True
            )
            return
        delay = backoff(notice.attempts)
        log.warning("Airbyte job %s: %s; trying again in %s s", notice.job_id, why, delay)
        await asyncio.to_thread(self._inbox.retry, notice.job_id, self._owner, delay, outcome)
