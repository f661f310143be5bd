"""``AirbyteClient`` and ``AsyncAirbyteClient`` drive the same flows over real HTTP to the
stand-in: the same calls give the same results and send the same requests, and the async
client's pauses are the event loop's (it never blocks it)."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from dev.airbyte_standin.seed import (
    HUBSPOT_CONNECTION_ID,
    SEED,
    STRIPE_CONNECTION_ID,
)
from plugins.airbyte_client.client import AirbyteClient, AsyncAirbyteClient
from plugins.airbyte_client.config import AirbyteSettings, ApiFlavour, AuthType
from plugins.airbyte_client.errors import AirbyteNotFoundError
from plugins.airbyte_client.flows import Sleep
from plugins.airbyte_client.models import JobStatus

FAST = {
    "poll_interval": 0.02,
    "max_poll_interval": 0.1,
    "retry_min_wait": 0.01,
    "retry_max_wait": 0.05,
    "max_retries": 4,
    "connect_timeout": 1.0,
    "read_timeout": 2.0,
    "total_timeout": 3.0,
}


@pytest.fixture(params=["config", "public"])
def flavour(request) -> str:
    return request.param


def settings_for(standin, flavour: str = "config", **overrides) -> AirbyteSettings:
    root = standin.config_api_url if flavour == "config" else standin.public_api_url
    return AirbyteSettings(
        api_root=root,
        flavour=ApiFlavour(flavour),
        source="test",
        auth_type=AuthType.BASIC,
        login="airbyte",
        secret="password",
        **{**FAST, **overrides},
    )


def endpoints(log: list[dict]) -> list[tuple[str, str, int]]:
    return [(r["method"], r["path"], r["status"]) for r in log]


def moved(job) -> tuple:
    """What a finished sync did, whichever job id it had (the stand-in's rows differ in size
    from one sync to the next, not in number)."""
    streams = sorted((s.name, s.namespace, s.records) for s in job.streams)
    return job.connection_id, job.job_type, job.status, job.records, job.bytes > 0, streams


def test_both_drivers_give_the_same_results(standin, flavour):
    settings = settings_for(standin, flavour)
    with AirbyteClient(settings) as client:
        started = client.submit_job(STRIPE_CONNECTION_ID)
        done = client.wait_for_job_completion(started.job_id, 1)
        before = len(standin.requests())
        reads = (
            client.get_job(done.job_id),
            client.list_connections(),
            client.get_connection_details(STRIPE_CONNECTION_ID),
        )
        blocking_log = endpoints(standin.requests()[before:])

    async def drive():
        async with AsyncAirbyteClient(settings) as client:
            started = await client.submit_job(STRIPE_CONNECTION_ID)
            finished = await client.wait_for_job_completion(started.job_id, 1)
            before = len(standin.requests())
            reads = (
                await client.get_job(done.job_id),
                await client.list_connections(),
                await client.get_connection_details(STRIPE_CONNECTION_ID),
            )
            return started, finished, reads, endpoints(standin.requests()[before:])

    async_started, async_done, async_reads, async_log = asyncio.run(drive())
    assert done.status is JobStatus.SUCCEEDED
    assert async_started.job_id != started.job_id  # a new job, not the first one again
    assert moved(async_done) == moved(done)
    assert async_reads == reads
    assert async_log == blocking_log  # the same endpoints, in the same order
    assert {c.connection_id for c in reads[1]} == {c.connection_id for c in SEED}


def test_both_drivers_retry_and_fail_alike(standin, flavour):
    settings = settings_for(standin, flavour)
    with AirbyteClient(settings) as client:
        job = client.submit_job(STRIPE_CONNECTION_ID)
    get_job = "/api/v1/jobs/get" if flavour == "config" else f"/api/public/v1/jobs/{job.job_id}"

    def read_through_faults(read):
        standin.inject("status", path=get_job, status=503, count=2)
        before = len(standin.requests())
        found = read()
        return found, [r["status"] for r in standin.requests()[before:]]

    async def aread():
        async with AsyncAirbyteClient(settings) as client:
            return await client.get_job(job.job_id)

    with AirbyteClient(settings) as client:
        blocking = read_through_faults(lambda: client.get_job(job.job_id))
    deferred = read_through_faults(lambda: asyncio.run(aread()))
    assert blocking[0].job_id == deferred[0].job_id == job.job_id
    assert blocking[1] == deferred[1] == [503, 503, 200]

    missing = 10**9
    with AirbyteClient(settings) as client, pytest.raises(AirbyteNotFoundError) as sync_err:
        client.get_job(missing)

    async def amissing():
        async with AsyncAirbyteClient(settings) as client:
            await client.get_job(missing)

    with pytest.raises(AirbyteNotFoundError) as async_err:
        asyncio.run(amissing())
    assert str(async_err.value) == str(sync_err.value)
    assert f"job {missing}" in str(sync_err.value)


def pauses(*seconds: float):
    """A flow that only pauses, then says how many pauses it took."""
    for s in seconds:
        yield Sleep(s)
    return len(seconds)


def test_async_run_pauses_on_the_event_loop():
    """Two flows pausing 3 x 0.2 s at once take about 0.6 s, not the 1.2 s of one after the
    other; the blocking client really waits its pauses too. (No request is sent.)"""
    settings = AirbyteSettings("http://127.0.0.1:9/api/v1", ApiFlavour.CONFIG, "test")

    async def both() -> tuple[list[int], float]:
        async with AsyncAirbyteClient(settings) as client:
            began = time.monotonic()
            results = await asyncio.gather(
                client.run(pauses(0.2, 0.2, 0.2)), client.run(pauses(0.2, 0.2, 0.2))
            )
            return results, time.monotonic() - began

    results, elapsed = asyncio.run(both())
    assert results == [3, 3]
    assert 0.55 <= elapsed < 1.0
    with AirbyteClient(settings) as client:
        began = time.monotonic()
        assert client.run(pauses(0.1, 0.1)) == 2
        assert time.monotonic() - began >= 0.19


def test_concurrent_waits_keep_the_event_loop_responsive(standin):
    """Two real waits (polls 0.4 s apart) run side by side while a ticker every 10 ms keeps
    ticking: a pause that blocked the loop would leave a gap of at least 0.4 s."""
    settings = settings_for(standin, poll_interval=0.4, max_poll_interval=0.4)
    standin.set_durations(running_seconds=0.8)
    try:

        async def waits() -> tuple[list, float, float]:
            async with AsyncAirbyteClient(settings) as client:
                stripe = await client.submit_job(STRIPE_CONNECTION_ID)
                hubspot = await client.submit_job(HUBSPOT_CONNECTION_ID)
                ticks: list[float] = []

                async def ticker() -> None:
                    while True:
                        ticks.append(time.monotonic())
                        await asyncio.sleep(0.01)

                ticking = asyncio.create_task(ticker())
                began = time.monotonic()
                done = await asyncio.gather(
                    client.wait_for_job_completion(stripe.job_id, 1),
                    client.wait_for_job_completion(hubspot.job_id, 1),
                )
                elapsed = time.monotonic() - began
                ticking.cancel()
                gap = max(b - a for a, b in itertools.pairwise(ticks))
                return done, elapsed, gap

        done, elapsed, gap = asyncio.run(waits())
    finally:
        standin.set_durations(
            pending_seconds=standin.config.pending_seconds,
            running_seconds=standin.config.running_seconds,
        )
    assert [j.status for j in done] == [JobStatus.SUCCEEDED, JobStatus.SUCCEEDED]
    assert 0.5 <= elapsed < 2.0  # about one job's time: the two waits overlapped
    assert gap < 0.3
