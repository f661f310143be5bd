"""AirbyteJobTrigger in an event loop against the stand-in, as the triggerer runs it."""

from __future__ import annotations

import asyncio
import time

import pytest
from airflow.sdk.module_loading import import_string

from dev.airbyte_standin.seed import STRIPE_CONNECTION_ID
from dev.processes import wait_until
from plugins.airbyte_client.contracts import job_from_dict
from plugins.airbyte_hook import AirbyteHook
from plugins.airbyte_trigger import ERROR, TERMINAL, TIMEOUT, AirbyteJobTrigger
from tests.conftest import airbyte_conn_env, next_trigger_event, token_conn_env, trigger_event


@pytest.fixture(params=["public", "config"])
def standin(request, token_standin, monkeypatch):
    """The client-credentials stand-in, ``airbyte_default`` on each API flavour in turn."""
    token_standin.reset()
    token_conn_env(monkeypatch, token_standin.url, api_type=request.param)
    yield token_standin
    token_standin.assert_contract_kept()


def polled(standin) -> bool:
    """Whether a job has been polled (either flavour's poll)."""
    return any(
        r["path"].startswith("/api/v1/jobs/get") or r["path"].startswith("/api/public/v1/jobs/")
        for r in standin.requests()
    )


def trigger_for(job_id: int, seconds: float = 30.0) -> AirbyteJobTrigger:
    return AirbyteJobTrigger(job_id, "airbyte_default", deadline=time.time() + seconds)


def test_serialize_round_trip():
    trigger = AirbyteJobTrigger(
        12, "airbyte_default", deadline=1_900_000_000.5, poll_interval=3, quiet_until=1_899_999_000
    )
    classpath, kwargs = trigger.serialize()
    rebuilt = import_string(classpath)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert classpath == "plugins.airbyte_trigger.AirbyteJobTrigger"


def test_fires_once_the_job_succeeds(standin):
    job = AirbyteHook().trigger_sync(STRIPE_CONNECTION_ID)
    event = trigger_event(trigger_for(job.job_id))
    assert event["status"] == TERMINAL
    assert event["job"]["status"] == "succeeded"
    assert event["job"]["records"] > 0


def test_fires_on_failure_with_light_polls_only(standin):
    """The triggerer polls small answers (the Configuration API's light job: no attempts, no
    logs, whatever the job's history); a failure's reason, which only the Configuration
    API's full job has, is read in the worker (``hook.complete``)."""
    standin.set_job_behaviour("fail", failure_reason="source unreachable")
    hook = AirbyteHook()
    job = hook.trigger_sync(STRIPE_CONNECTION_ID)
    event = trigger_event(trigger_for(job.job_id))
    assert event["job"]["status"] == "failed"
    assert event["job"]["failure_reason"] is None
    config = hook.settings.flavour == "config"
    polls = {(r["method"], r["path"]) for r in standin.requests() if "/jobs/" in r["path"]}
    if config:
        assert polls == {("POST", "/api/v1/jobs/get_light")}
    else:
        assert polls == {("GET", f"/api/public/v1/jobs/{job.job_id}")}
    completed = hook.complete(job_from_dict(event["job"]))
    assert completed.failure_reason == ("source unreachable" if config else None)


def test_rides_out_transient_errors(standin):
    job = AirbyteHook().trigger_sync(STRIPE_CONNECTION_ID)
    standin.inject("status", status=503, count=4)
    standin.inject("drop", count=2)
    event = trigger_event(trigger_for(job.job_id))
    assert event["job"]["status"] == "succeeded"
    assert sum(1 for r in standin.requests() if r["status"] == 503) == 4


def test_deadline_passes_while_pending(standin):
    standin.set_job_behaviour("stuck_pending")
    job = AirbyteHook().trigger_sync(STRIPE_CONNECTION_ID)
    event = trigger_event(trigger_for(job.job_id, seconds=0.3))
    assert event["status"] == TIMEOUT
    assert event["job"]["status"] == "pending"
    AirbyteHook().cancel_job(job.job_id)


def test_unknown_job_is_an_error_not_a_wait(standin):
    event = trigger_event(trigger_for(987654))
    assert event["status"] == ERROR
    assert "404" in event["message"]
    assert "Airbyte has no job 987654" in event["message"]
    assert "connection id" not in event["message"]


def test_restarted_triggerer_resumes_from_serialized_state(standin):
    standin.set_job_behaviour("stuck_running")
    job = AirbyteHook().trigger_sync(STRIPE_CONNECTION_ID)
    trigger = trigger_for(job.job_id)

    async def run_until_killed() -> None:
        task = asyncio.create_task(anext(trigger.run()))
        await asyncio.to_thread(
            wait_until,
            lambda: polled(standin),
            10,
            what="the first poll",
        )
        task.cancel()  # the triggerer process dies mid-wait
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run_until_killed())
    AirbyteHook().cancel_job(job.job_id)  # the job ends while no triggerer watches it
    classpath, kwargs = trigger.serialize()
    event = trigger_event(import_string(classpath)(**kwargs))
    assert event["status"] == TERMINAL
    assert event["job"]["status"] == "cancelled"


def test_token_expiring_mid_wait_is_refreshed(token_conn):
    token_conn.set_job_behaviour("stuck_running")
    job = AirbyteHook().trigger_sync(STRIPE_CONNECTION_ID)
    trigger = trigger_for(job.job_id)

    async def scenario() -> dict:
        waiting = asyncio.create_task(anext(trigger.run()))
        await asyncio.to_thread(
            wait_until, lambda: any("/jobs/get" in r["path"] for r in token_conn.requests()), 10
        )
        await asyncio.to_thread(token_conn.expire_tokens)
        await asyncio.to_thread(
            wait_until, lambda: any(r["status"] == 401 for r in token_conn.requests()), 10
        )
        await asyncio.to_thread(AirbyteHook().cancel_job, job.job_id)
        return (await waiting).payload

    event = asyncio.run(scenario())
    assert event["status"] == TERMINAL
    assert event["job"]["status"] == "cancelled"
    assert sum(1 for r in token_conn.requests() if r["status"] == 401) == 1


def test_wrong_client_secret_is_an_error(token_conn, monkeypatch, capfd):
    airbyte_conn_env(
        monkeypatch,
        token_conn.url,
        login="standin-client",
        password="wrong-secret-value",
        auth_type="client_credentials",
    )
    event = trigger_event(trigger_for(1))
    assert event["status"] == ERROR
    assert "refused the client id/secret" in event["message"]
    assert "wrong-secret-value" not in event["message"] + capfd.readouterr().out


def test_user_killing_the_deferred_task_cancels_the_job(standin):
    standin.set_job_behaviour("stuck_running")
    job = AirbyteHook().trigger_sync(STRIPE_CONNECTION_ID)
    asyncio.run(trigger_for(job.job_id).on_kill())
    assert AirbyteHook().get_job(job.job_id).status == "cancelled"


def test_many_triggers_in_one_loop_fetch_one_token(token_conn):
    token_conn.set_job_behaviour("stuck_running")
    hook = AirbyteHook()
    job = hook.trigger_sync(STRIPE_CONNECTION_ID)
    hook.client.auth.exchange.invalidate()  # no cached token: the triggers must fetch one
    triggers = [trigger_for(job.job_id, seconds=0.5) for _ in range(25)]

    async def run_all() -> list[dict]:
        return await asyncio.gather(*(next_trigger_event(t) for t in triggers))

    events = asyncio.run(run_all())
    assert {e["status"] for e in events} == {TIMEOUT}
    assert sum(1 for r in token_conn.requests() if r["path"].endswith("/applications/token")) == 1
    hook.cancel_job(job.job_id)


def test_quiet_until_the_expected_end_costs_fewer_polls(tmp_path, monkeypatch):
    from dev.airbyte_standin.serving import quick_config, run_standin

    with run_standin(quick_config(tmp_path, running_seconds=2.0)) as slow:
        token_conn_env(
            monkeypatch,
            slow.url,
            poll_interval=0.02,
            max_poll_interval=0.05,
            quiet_poll_interval=0.5,
        )
        polls = []
        for quiet in (False, True):
            job = AirbyteHook().trigger_sync(STRIPE_CONNECTION_ID)
            before = len(slow.requests())
            trigger = AirbyteJobTrigger(
                job.job_id,
                "airbyte_default",
                deadline=time.time() + 30,
                quiet_until=time.time() + 1.8 if quiet else None,
            )
            assert trigger_event(trigger)["job"]["status"] == "succeeded"
            polls.append(len(slow.requests()) - before)
    close, quiet = polls
    assert quiet < close / 2
