"""The one HTTP stack over real loopback HTTP, each rule in both modes.

``blocking`` reads through the hook's ``httpx.Client`` (what a worker does), ``deferred``
through its ``httpx.AsyncClient`` (what the triggerer does): redirects and credentials,
TLS with a private CA, size and time limits, non-ASCII passwords.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from dev.airbyte_standin.seed import STRIPE_CONNECTION_ID
from dev.airbyte_standin.serving import quick_config, run_standin
from plugins.airbyte_client.errors import (
    AirbyteConfigError,
    AirbyteError,
    AirbyteResponseError,
    AirbyteUnreachableError,
)
from plugins.airbyte_client.models import AirbyteJob, JobStatus
from plugins.airbyte_client.transport import CA_BUNDLE_VARIABLES
from plugins.airbyte_hook import AirbyteHook
from tests.conftest import airbyte_conn_env, token_conn_env
from tests.fake_http import fake_server, json_reply
from tests.tls import private_ca

GET_JOB = "/api/v1/jobs/get"
TOKEN = "/api/v1/applications/token"


@pytest.fixture(params=["blocking", "deferred"])
def mode(request) -> str:
    return request.param


def read_job(hook: AirbyteHook, job_id: int, mode: str) -> AirbyteJob:
    """One read of the job (no retry, as a poll), by the worker's client or the triggerer's."""
    if mode == "blocking":
        ops = hook.client.ops
        return hook.client.run(ops.once(ops.api.get_job(job_id), ops.api.parse_job))

    async def apoll() -> AirbyteJob:
        async with hook.async_client() as client:
            ops = client.ops
            return await client.run(ops.once(ops.api.get_job(job_id), ops.api.parse_job))

    return asyncio.run(apoll())


@pytest.fixture
def started(airbyte_conn) -> int:
    """A stuck-running job on the basic-auth stand-in; cancelled after the test."""
    airbyte_conn.set_job_behaviour("stuck_running")
    job = AirbyteHook().trigger_sync(STRIPE_CONNECTION_ID)
    yield job.job_id
    AirbyteHook().cancel_job(job.job_id)


# --- 1. credentials stay with the configured origin ------------------------------------


def test_token_request_never_follows_a_redirect(token_conn, mode):
    job = AirbyteHook().trigger_sync(STRIPE_CONNECTION_ID)
    with fake_server() as foreign:
        token_conn.inject("redirect", path=TOKEN, location=f"{foreign.url}/token")
        hook = AirbyteHook()
        hook.client.auth.exchange.invalidate()
        with pytest.raises(AirbyteConfigError, match="never follows a redirect") as err:
            read_job(hook, job.job_id, mode)
    assert foreign.received == []  # neither the client secret nor a token went there
    assert "standin-secret" not in str(err.value)


def test_api_redirect_to_another_origin_is_refused(airbyte_conn, started, mode):
    with fake_server() as foreign:
        airbyte_conn.inject("redirect", path=GET_JOB, location=f"{foreign.url}{GET_JOB}")
        with pytest.raises(AirbyteConfigError, match="leaves the configured server"):
            read_job(AirbyteHook(), started, mode)
    assert foreign.received == []


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_same_origin_redirect_is_followed_with_method_and_body(airbyte_conn, started, mode, status):
    """A moved POST endpoint keeps its method and body (not a bodiless GET and a 405)."""
    location = f"{airbyte_conn.url}{GET_JOB}"
    airbyte_conn.inject("redirect", path=GET_JOB, location=location, status=status)
    assert read_job(AirbyteHook(), started, mode).job_id == started
    last_two = airbyte_conn.requests()[-2:]
    assert [(r["method"], r["status"]) for r in last_two] == [("POST", status), ("POST", 200)]


def test_303_on_a_post_is_refused_with_the_redirect(airbyte_conn, started, mode):
    location = f"{airbyte_conn.url}{GET_JOB}"
    airbyte_conn.inject("redirect", path=GET_JOB, location=location, status=303)
    with pytest.raises(AirbyteConfigError, match=r"redirect \(HTTP 303\) .* turn the POST"):
        read_job(AirbyteHook(), started, mode)
    assert [r["status"] for r in airbyte_conn.requests()[-1:]] == [303]


# --- 2. TLS with a company CA ----------------------------------------------------------


@pytest.fixture(scope="module")
def tls_standin(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    with run_standin(quick_config(directory, auth="basic"), tls=private_ca(directory)) as server:
        yield server


@pytest.mark.parametrize("how", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "ca_bundle"])
def test_private_ca_is_trusted_in_both_modes(tls_standin, monkeypatch, mode, how):
    tls_standin.reset()
    ca = tls_standin.verify
    extra = {"ca_bundle": ca} if how == "ca_bundle" else {}
    for variable in CA_BUNDLE_VARIABLES:  # this machine's own bundle must not mask the test's
        monkeypatch.delenv(variable, raising=False)
    if how != "ca_bundle":
        monkeypatch.setenv(how, ca)
    airbyte_conn_env(monkeypatch, tls_standin.url, login="airbyte", password="password", **extra)
    job = AirbyteHook().trigger_sync(STRIPE_CONNECTION_ID)
    assert read_job(AirbyteHook(), job.job_id, mode).job_id == job.job_id


def test_unknown_ca_is_refused_and_verify_false_is_explicit(tls_standin, monkeypatch, mode):
    tls_standin.reset()
    for variable in CA_BUNDLE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    airbyte_conn_env(monkeypatch, tls_standin.url, login="airbyte", password="password")
    with pytest.raises(AirbyteConfigError, match=r"CERTIFICATE_VERIFY_FAILED.*extra ca_bundle"):
        read_job(AirbyteHook(), 1, mode)
    airbyte_conn_env(
        monkeypatch, tls_standin.url, login="airbyte", password="password", verify="false"
    )
    job = AirbyteHook().trigger_sync(STRIPE_CONNECTION_ID)
    assert read_job(AirbyteHook(), job.job_id, mode).job_id == job.job_id


def test_unreadable_ca_bundle_is_a_config_error(tls_standin, monkeypatch, tmp_path):
    missing = tmp_path / "no-such-ca.pem"
    airbyte_conn_env(monkeypatch, tls_standin.url, ca_bundle=str(missing))
    with pytest.raises(AirbyteConfigError, match="cannot be loaded"):
        AirbyteHook().get_job(1)


# --- 5./6. passwords that are not ASCII, credentials in the host URL -------------------

PASSWORD = "pä$$wörd€:@/"


@pytest.fixture(scope="module")
def unicode_standin(tmp_path_factory):
    config = quick_config(
        tmp_path_factory.mktemp("unicode"), auth="basic", username="ünï", password=PASSWORD
    )
    with run_standin(config) as server:
        yield server


@pytest.mark.parametrize("where", ["fields", "host_url"])
def test_non_ascii_password_reaches_the_server_as_utf8(unicode_standin, monkeypatch, mode, where):
    unicode_standin.reset()
    if where == "fields":
        airbyte_conn_env(monkeypatch, unicode_standin.url, login="ünï", password=PASSWORD)
    else:  # percent-encoded inside the host, as a conn URI or a pasted URL has it
        host = unicode_standin.url.replace(
            "://", "://%C3%BCn%C3%AF:p%C3%A4$$w%C3%B6rd%E2%82%AC%3A%40%2F@"
        )
        airbyte_conn_env(monkeypatch, host)
    job = AirbyteHook().trigger_sync(STRIPE_CONNECTION_ID)
    assert read_job(AirbyteHook(), job.job_id, mode).job_id == job.job_id
    assert all(r["status"] != 401 for r in unicode_standin.requests())


# --- 9. limits: size on the wire and decompressed, whole-request deadline --------------


def test_gzip_bomb_stops_at_the_decompressed_cap(airbyte_conn, started, mode):
    airbyte_conn.inject("gzip_bomb", path=GET_JOB, size=32 * 1024 * 1024)
    hook = AirbyteHook(max_decompressed_bytes=1024 * 1024)
    with pytest.raises(AirbyteResponseError, match="larger than max_decompressed_bytes=1048576"):
        read_job(hook, started, mode)


def test_answer_over_the_wire_cap_is_not_read(airbyte_conn, started, mode):
    with pytest.raises(AirbyteResponseError, match="larger than max_response_bytes=64"):
        read_job(AirbyteHook(max_response_bytes=64), started, mode)


def test_broken_gzip_is_an_unreadable_answer(airbyte_conn, started, mode):
    airbyte_conn.inject("broken_gzip", path=GET_JOB)
    with pytest.raises(AirbyteResponseError, match="does not decompress"):
        read_job(AirbyteHook(), started, mode)


@pytest.mark.parametrize("fault", ["trickle", "hang"])
def test_slow_answer_is_cut_at_the_total_timeout(airbyte_conn, started, mode, fault):
    """A trickle (a piece every 0.25 s, ~5 s in all) never trips the 5 s read timeout, and a
    3 s silence does not either; the whole-request deadline of 1 s stops both."""
    airbyte_conn.inject(fault, path=GET_JOB, seconds=0.25 if fault == "trickle" else 3)
    began = time.monotonic()
    with pytest.raises(AirbyteUnreachableError) as err:
        read_job(AirbyteHook(read_timeout=5, total_timeout=1), started, mode)
    assert time.monotonic() - began < 2.5
    assert "timed out" in str(err.value) or "total_timeout" in str(err.value)


def test_a_poll_is_clipped_to_the_time_left_on_its_wait(airbyte_conn, started, mode):
    """A trickle (a piece every 0.4 s, 8 s in all) against total_timeout=6: the wait's
    deadline, 1.5 s away, ends the poll, not the 6 s of one request."""
    airbyte_conn.inject("trickle", path=GET_JOB, seconds=0.4, count=10)
    hook = AirbyteHook(read_timeout=5, total_timeout=6)
    deadline = time.time() + 1.5
    began = time.monotonic()
    if mode == "blocking":
        step = hook.client.watch(started, deadline)
    else:

        async def watch():
            async with hook.async_client() as client:
                return await client.watch(started, deadline)

        step = asyncio.run(watch())
    assert time.monotonic() - began < 4.0
    assert not step.ended
    assert isinstance(step.error, AirbyteUnreachableError)


@pytest.mark.parametrize(("asked", "waited_at_least"), [("1.5", 1.5), ("3600", 2.0)])
def test_retry_after_is_honoured_up_to_retry_max_wait(monkeypatch, mode, asked, waited_at_least):
    """A 429 with ``Retry-After``: the retry comes no sooner (1.5 s, not the 0.01 s backoff),
    and no later than ``retry_max_wait`` (2 s, not an hour)."""
    sent: list[float] = []

    def respond(request):
        sent.append(time.monotonic())
        if len(sent) == 1:
            return 429, {"Retry-After": asked, "Content-Type": "application/json"}, b"{}"
        job = {
            "id": 7,
            "configType": "sync",
            "configId": STRIPE_CONNECTION_ID,
            "createdAt": 1,
            "updatedAt": 2,
            "status": "running",
        }
        return json_reply({"job": job, "attempts": []})

    with fake_server(respond) as server:
        airbyte_conn_env(monkeypatch, server.url, retry_min_wait=0.01, retry_max_wait=2)
        if mode == "blocking":
            job = AirbyteHook().get_job(7)
        else:

            async def get() -> AirbyteJob:
                async with AirbyteHook().async_client() as client:
                    return await client.get_job(7)

            job = asyncio.run(get())
    assert job.job_id == 7
    gap = sent[1] - sent[0]
    # max(backoff of 0.01 s plus up to 1 s of jitter, Retry-After capped at 2 s)
    assert waited_at_least <= gap < 2 + 1.0  # 1 s of slack for a busy machine


def test_every_error_names_no_secret(airbyte_conn, started, mode):
    airbyte_conn.inject("html", path=GET_JOB)
    with pytest.raises(AirbyteError) as err:
        read_job(AirbyteHook(), started, mode)
    assert "HTML" in str(err.value)
    assert "password" not in str(err.value)


def test_fresh_token_hook_works_in_both_modes(token_standin, monkeypatch, mode):
    token_standin.reset()
    token_conn_env(monkeypatch, token_standin.url)
    hook = AirbyteHook()
    hook.client.auth.exchange.invalidate()
    job = hook.trigger_sync(STRIPE_CONNECTION_ID)
    hook.client.auth.exchange.invalidate()
    assert read_job(AirbyteHook(), job.job_id, mode).status in set(JobStatus)
    AirbyteHook().cancel_job(job.job_id)
