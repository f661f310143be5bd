"""AirbyteHook over real loopback HTTP against the local Airbyte stand-in.

One test per job state, per auth mode, per API flavour and per injected fault. Each fault
test also counts what reached the server: retries where a retry is safe, none where it is
not, and exactly one sync job where one was asked for.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
import threading
import time

import pytest
import requests

from dev.airbyte_standin.seed import (
    HUBSPOT_CONNECTION_ID,
    SALESFORCE_CONNECTION_ID,
    SEED,
    STRIPE_CONNECTION_ID,
)
from plugins.airbyte_client.errors import (
    AirbyteAuthError,
    AirbyteConfigError,
    AirbyteConflictError,
    AirbyteJobCancelledError,
    AirbyteJobFailedError,
    AirbyteJobStuckPendingError,
    AirbyteJobTimeoutError,
    AirbyteNotFoundError,
    AirbytePermissionError,
    AirbyteResponseError,
    AirbyteTransientApiError,
    AirbyteUnreachableError,
)
from plugins.airbyte_client.models import JobStatus, JobType
from plugins.airbyte_hook import AirbyteHook
from tests.conftest import airbyte_conn_env, token_conn_env

UNKNOWN_CONNECTION_ID = "00000000-0000-4000-8000-000000000000"
STRIPE_TABLES = ("stripe_customers", "stripe_charges", "stripe_invoices")
SECRETS = ("password", "standin-secret")


@pytest.fixture(params=["config", "public"])
def flavour(request) -> str:
    return request.param


@pytest.fixture
def hook(standin, flavour, monkeypatch) -> AirbyteHook:
    airbyte_conn_env(
        monkeypatch, standin.url, login="airbyte", password="password", api_type=flavour
    )
    return AirbyteHook()


@pytest.fixture
def output(capfd, caplog):
    """Everything the code under test logged or printed so far."""
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    def read() -> str:
        captured = capfd.readouterr()
        seen.append(captured.out + captured.err)
        return "".join(seen) + caplog.text

    return read


def table_rows(standin, table: str) -> int:
    path = standin.warehouse_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        exists = db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone()
        return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] if exists else 0


def sync_jobs(standin, connection_id: str = STRIPE_CONNECTION_ID) -> list[dict]:
    return [
        j for j in standin.jobs() if j["connection_id"] == connection_id and j["job_type"] == "sync"
    ]


def requests_to(standin, fragment: str) -> int:
    return sum(1 for r in standin.requests() if fragment in r["path"])


# --- job states ------------------------------------------------------------------------


def test_sync_succeeds_and_reports_the_rows_written(hook, standin):
    before = sum(table_rows(standin, t) for t in STRIPE_TABLES)
    job = hook.trigger_sync(STRIPE_CONNECTION_ID)
    assert job.status in (JobStatus.PENDING, JobStatus.RUNNING)
    assert job.job_type is JobType.SYNC

    done = hook.wait_for_job_completion(job.job_id, timeout_minutes=1)

    assert done.status is JobStatus.SUCCEEDED
    written = sum(table_rows(standin, t) for t in STRIPE_TABLES) - before
    assert done.records == written > 0
    assert done.bytes > 0
    assert done.duration_seconds is not None
    assert len(sync_jobs(standin)) == 1


def test_each_sync_adds_new_rows(hook, standin):
    first = hook.wait_for_job_completion(hook.trigger_sync(HUBSPOT_CONNECTION_ID).job_id, 1)
    rows_after_first = table_rows(standin, "hubspot_contacts")
    second = hook.wait_for_job_completion(hook.trigger_sync(HUBSPOT_CONNECTION_ID).job_id, 1)
    assert second.job_id > first.job_id
    assert table_rows(standin, "hubspot_contacts") > rows_after_first


def test_failed_job_surfaces_the_failure_reason(hook, standin, flavour):
    standin.set_job_behaviour("fail", failure_reason="Stripe API key revoked")
    job = hook.trigger_sync(STRIPE_CONNECTION_ID)
    with pytest.raises(AirbyteJobFailedError) as err:
        hook.wait_for_job_completion(job.job_id, timeout_minutes=1)
    assert err.value.job.status is JobStatus.FAILED
    assert str(job.job_id) in str(err.value)
    if flavour == "config":  # the Public API's JobResponse carries no failure reason
        assert "Stripe API key revoked" in str(err.value)


def test_failed_job_returned_when_not_raising(hook, standin):
    standin.set_job_behaviour("fail")
    job = hook.trigger_sync(STRIPE_CONNECTION_ID)
    done = hook.wait_for_job_completion(job.job_id, timeout_minutes=1, raise_on_failure=False)
    assert done.status is JobStatus.FAILED


def test_incomplete_attempt_then_success(hook, standin, flavour):
    standin.set_job_behaviour("incomplete_then_succeed")
    job = hook.trigger_sync(SALESFORCE_CONNECTION_ID)
    done = hook.wait_for_job_completion(job.job_id, timeout_minutes=1)
    assert done.status is JobStatus.SUCCEEDED
    assert done.records > 0
    if flavour == "config":  # attempts are in the full job, not in a poll's light answer
        assert done.attempts is None
        assert hook.get_job(job.job_id).attempts == 2


def test_cancelled_from_outside(hook, standin):
    standin.set_job_behaviour("stuck_pending")
    job = hook.trigger_sync(STRIPE_CONNECTION_ID)
    requests.post(  # someone cancels it in the Airbyte UI
        f"{standin.url}/api/v1/jobs/cancel",
        json={"id": job.job_id},
        auth=("airbyte", "password"),
        timeout=5,
    ).raise_for_status()
    with pytest.raises(AirbyteJobCancelledError, match="was cancelled"):
        hook.wait_for_job_completion(job.job_id, timeout_minutes=1)


def test_stuck_pending_times_out_and_is_cancelled(hook, standin):
    standin.set_job_behaviour("stuck_pending")
    job = hook.trigger_sync(STRIPE_CONNECTION_ID)
    with pytest.raises(AirbyteJobStuckPendingError) as err:
        hook.wait_for_job_completion(job.job_id, timeout_minutes=0.005, cancel_on_timeout=True)
    message = str(err.value)
    assert "component=worker" in message
    assert "cancelled (cancel_on_timeout)" in message
    assert [j["status"] for j in sync_jobs(standin)] == ["cancelled"]


def test_running_past_the_timeout_is_left_running_unless_asked(hook, standin):
    standin.set_job_behaviour("stuck_running")
    job = hook.trigger_sync(STRIPE_CONNECTION_ID)
    with pytest.raises(AirbyteJobTimeoutError, match="Raise timeout_minutes") as err:
        hook.wait_for_job_completion(job.job_id, timeout_minutes=0.005)
    assert not isinstance(err.value, AirbyteJobStuckPendingError)
    assert "still running on Airbyte" in str(err.value)
    assert hook.get_job(job.job_id).status is JobStatus.RUNNING
    hook.cancel_job(job.job_id)
    assert hook.get_job(job.job_id).status is JobStatus.CANCELLED


def test_reset_empties_the_connection_tables(hook, standin):
    hook.wait_for_job_completion(hook.trigger_sync(STRIPE_CONNECTION_ID).job_id, 1)
    assert table_rows(standin, "stripe_charges") > 0
    reset = hook.trigger_reset(STRIPE_CONNECTION_ID)
    assert reset.job_type is JobType.RESET
    hook.wait_for_job_completion(reset.job_id, 1)
    assert all(table_rows(standin, t) == 0 for t in STRIPE_TABLES)


def test_clear_job(hook):
    job = hook.trigger_clear(SALESFORCE_CONNECTION_ID)
    assert job.job_type is JobType.CLEAR
    assert hook.wait_for_job_completion(job.job_id, 1).status is JobStatus.SUCCEEDED


# --- conflicts and lost answers: exactly one sync job ----------------------------------


def test_409_attaches_to_the_running_sync(hook, standin):
    standin.set_job_behaviour("stuck_pending")
    first = hook.trigger_sync(STRIPE_CONNECTION_ID)
    second = hook.trigger_sync(STRIPE_CONNECTION_ID)
    assert second.job_id == first.job_id
    assert len(sync_jobs(standin)) == 1
    assert any(r["status"] == 409 for r in standin.requests())
    hook.cancel_job(first.job_id)


def test_409_fails_when_attaching_is_not_allowed(standin, flavour, monkeypatch):
    airbyte_conn_env(
        monkeypatch, standin.url, login="airbyte", password="password", api_type=flavour
    )
    standin.set_job_behaviour("stuck_pending")
    first = AirbyteHook().trigger_sync(STRIPE_CONNECTION_ID)
    with pytest.raises(AirbyteConflictError, match="already running"):
        AirbyteHook(on_conflict="fail").trigger_sync(STRIPE_CONNECTION_ID)
    assert len(sync_jobs(standin)) == 1
    AirbyteHook().cancel_job(first.job_id)


def test_lost_trigger_answer_is_not_resent(hook, standin, flavour):
    path = "/api/v1/connections/sync" if flavour == "config" else "/api/public/v1/jobs"
    standin.inject("lost_response", count=1, path=path, method="POST")
    job = hook.trigger_sync(STRIPE_CONNECTION_ID)
    assert len(sync_jobs(standin)) == 1
    assert sync_jobs(standin)[0]["id"] == job.job_id
    assert hook.wait_for_job_completion(job.job_id, 1).status is JobStatus.SUCCEEDED


def test_trigger_refused_by_a_503_is_retried_once_it_is_safe(hook, standin, flavour):
    path = "/api/v1/connections/sync" if flavour == "config" else "/api/public/v1/jobs"
    standin.inject("status", status=503, count=2, path=path, method="POST")
    job = hook.trigger_sync(STRIPE_CONNECTION_ID)
    assert [j["id"] for j in sync_jobs(standin)] == [job.job_id]


# --- faults on reads -------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_burst_of_transient_errors_then_success(hook, standin, status):
    job = hook.trigger_sync(STRIPE_CONNECTION_ID)
    before = len(standin.requests())
    standin.inject("status", status=status, count=3)
    assert hook.get_job(job.job_id).job_id == job.job_id
    assert len(standin.requests()) - before == 4


def test_transient_errors_that_never_stop(hook, standin):
    standin.inject("status", status=503, count=100)
    with pytest.raises(AirbyteTransientApiError, match="HTTP 503"):
        hook.get_connection_info(STRIPE_CONNECTION_ID)
    assert len(standin.requests()) == 5  # 1 + max_retries


def test_read_timeout_then_success(hook, standin):
    standin.inject("hang", seconds=3, count=1)
    assert hook.get_connection_info(STRIPE_CONNECTION_ID).connection_id == STRIPE_CONNECTION_ID


def test_dropped_connection_then_success(hook, standin):
    standin.inject("drop", count=2)
    assert hook.get_connection_info(STRIPE_CONNECTION_ID).name.startswith("Stripe")


def test_transient_errors_while_waiting_are_ridden_out(hook, standin):
    job = hook.trigger_sync(STRIPE_CONNECTION_ID)
    standin.inject("status", status=502, count=12)
    assert hook.wait_for_job_completion(job.job_id, 1).status is JobStatus.SUCCEEDED


def test_malformed_json_names_the_endpoint(hook, standin):
    standin.inject("malformed", count=1)
    with pytest.raises(AirbyteResponseError, match="not JSON"):
        hook.get_connection_info(STRIPE_CONNECTION_ID)


def test_body_missing_required_fields(hook, standin):
    standin.inject("missing_fields", count=1)
    with pytest.raises(AirbyteResponseError, match="breaks the API contract"):
        hook.get_connection_info(STRIPE_CONNECTION_ID)


def test_unknown_connection_id_is_not_retried(hook, standin):
    with pytest.raises(AirbyteNotFoundError, match="404") as error:
        hook.trigger_sync(UNKNOWN_CONNECTION_ID)
    assert len(standin.requests()) == 1
    assert f"no connection {UNKNOWN_CONNECTION_ID}" in str(error.value)
    assert "Check the connection id" in str(error.value)


def test_unknown_job_names_the_job_not_the_connection(hook, standin):
    with pytest.raises(AirbyteNotFoundError, match="Airbyte has no job 424242") as error:
        hook.get_job(424242)
    assert "connection" not in str(error.value).split("Airbyte has no job")[1].split(".")[0]
    assert "Check the connection id" not in str(error.value)
    assert "Job History" in str(error.value)


def test_403_is_not_retried(hook, standin):
    standin.inject("status", status=403, count=1)
    with pytest.raises(AirbytePermissionError, match="403"):
        hook.get_connection_info(STRIPE_CONNECTION_ID)
    assert len(standin.requests()) == 1


def test_connection_id_that_is_not_a_uuid_never_reaches_airbyte(hook, standin):
    with pytest.raises(AirbyteConfigError, match="not an Airbyte connection id"):
        hook.trigger_sync("abc-123-def-456")
    assert standin.requests() == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_down_for_good_names_the_url(monkeypatch):
    url = f"http://127.0.0.1:{_free_port()}"
    airbyte_conn_env(monkeypatch, url, login="airbyte", password="password")
    with pytest.raises(AirbyteUnreachableError) as err:
        AirbyteHook().trigger_sync(STRIPE_CONNECTION_ID)
    message = str(err.value)
    assert f"{url}/api/v1" in message
    assert "Connection refused" in message
    assert "password" not in message


def test_connection_refused_until_the_server_starts(monkeypatch, tmp_path):
    from dev.airbyte_standin.serving import quick_config, run_standin_process

    port = _free_port()
    airbyte_conn_env(
        monkeypatch,
        f"http://127.0.0.1:{port}",
        login="airbyte",
        password="password",
        max_retries=300,
        retry_min_wait=0.05,
        retry_max_wait=0.1,
    )
    hook = AirbyteHook()
    result: dict = {}

    def call() -> None:
        try:
            result["connection"] = hook.get_connection_info(STRIPE_CONNECTION_ID)
        except Exception as exc:  # reported below
            result["error"] = exc

    # The first attempt is refused before the server exists.
    with pytest.raises(AirbyteUnreachableError):
        AirbyteHook(max_retries=0).get_connection_info(STRIPE_CONNECTION_ID)
    caller = threading.Thread(target=call)
    caller.start()
    with run_standin_process(quick_config(tmp_path, auth="basic"), port=port):
        caller.join(timeout=60)
    assert "error" not in result, result.get("error")
    assert result["connection"].connection_id == STRIPE_CONNECTION_ID


# --- auth modes ------------------------------------------------------------------------


def test_wrong_basic_password_fails_fast_without_leaking_it(standin, flavour, monkeypatch, output):
    airbyte_conn_env(
        monkeypatch, standin.url, login="airbyte", password="not-the-password", api_type=flavour
    )
    with pytest.raises(AirbyteAuthError) as err:
        AirbyteHook().trigger_sync(STRIPE_CONNECTION_ID)
    assert "Authentication failed" in str(err.value)
    assert "Airflow Connection 'airbyte_default'" in str(err.value)
    assert "not-the-password" not in str(err.value) + output()
    assert len(standin.requests()) == 1


@pytest.fixture
def token_hook(token_standin, flavour, monkeypatch) -> AirbyteHook:
    token_standin.reset()
    token_conn_env(monkeypatch, token_standin.url, api_type=flavour)
    return AirbyteHook()


def token_requests(standin) -> int:
    return sum(1 for r in standin.requests() if r["path"].endswith("/applications/token"))


def test_client_credentials_sync(token_hook, token_standin, output):
    token_hook.client.auth.exchange.invalidate()  # start without a cached token
    job = token_hook.trigger_sync(STRIPE_CONNECTION_ID)
    assert token_hook.wait_for_job_completion(job.job_id, 1).status is JobStatus.SUCCEEDED
    assert token_requests(token_standin) == 1  # one token, cached across every call
    token = token_hook.client.auth.exchange.token
    logged = output()
    assert token not in logged
    assert "standin-secret" not in logged


def test_token_expiring_mid_wait_is_refreshed_once(token_hook, token_standin):
    job = token_hook.trigger_sync(STRIPE_CONNECTION_ID)
    seen = len(token_standin.requests())
    token_standin.expire_tokens()
    assert token_hook.wait_for_job_completion(job.job_id, 1).status is JobStatus.SUCCEEDED
    after_expiry = token_standin.requests()[seen:]
    assert sum(1 for r in after_expiry if r["path"].endswith("/applications/token")) == 1
    assert sum(1 for r in after_expiry if r["status"] == 401) == 1


def test_hooks_with_the_same_credentials_share_one_token(token_hook, token_standin):
    token_hook.client.auth.exchange.invalidate()
    token_hook.get_connection_info(STRIPE_CONNECTION_ID)
    other = AirbyteHook()
    other.get_connection_info(HUBSPOT_CONNECTION_ID)
    assert other.client.auth.exchange is token_hook.client.auth.exchange
    assert token_requests(token_standin) == 1


def test_wrong_client_secret(token_standin, flavour, monkeypatch, output):
    token_standin.reset()
    airbyte_conn_env(
        monkeypatch,
        token_standin.url,
        login="standin-client",
        password="wrong-secret-value",
        auth_type="client_credentials",
        api_type=flavour,
    )
    with pytest.raises(AirbyteAuthError, match="refused the client id/secret") as err:
        AirbyteHook().get_connection_info(STRIPE_CONNECTION_ID)
    assert "wrong-secret-value" not in str(err.value) + output()
    assert len(token_standin.requests()) <= 1


def test_static_bearer_token_is_refused_when_unknown(token_standin, monkeypatch):
    token_standin.reset()
    airbyte_conn_env(
        monkeypatch, token_standin.url, password="some-stale-token", auth_type="bearer"
    )
    with pytest.raises(AirbyteAuthError, match="auth_type=bearer"):
        AirbyteHook().get_connection_info(STRIPE_CONNECTION_ID)


def test_no_auth(open_standin, flavour, monkeypatch):
    open_standin.reset()
    airbyte_conn_env(monkeypatch, open_standin.url, api_type=flavour)
    hook = AirbyteHook()
    job = hook.trigger_sync(STRIPE_CONNECTION_ID)
    assert hook.wait_for_job_completion(job.job_id, 1).status is JobStatus.SUCCEEDED


# --- connections -----------------------------------------------------------------------


def test_get_connection_info(hook):
    info = hook.get_connection_info(STRIPE_CONNECTION_ID)
    assert info.connection_id == STRIPE_CONNECTION_ID
    assert set(info.streams) == {"customers", "charges", "invoices"}
    assert info.status == "active"


def test_list_connections_reads_every_page(hook, standin, flavour):
    connections = hook.list_connections(page_size=2)
    assert {c.connection_id for c in connections} == {c.connection_id for c in SEED}
    if flavour == "public":
        assert requests_to(standin, "/api/public/v1/connections") == 2


def test_config_api_without_workspaces_list_asks_for_a_workspace_id(standin, monkeypatch):
    from dev.airbyte_standin.seed import WORKSPACE_ID

    airbyte_conn_env(monkeypatch, standin.url, login="airbyte", password="password")
    standin.inject("status", status=404, count=1, path="/api/v1/workspaces/list")
    with pytest.raises(AirbyteConfigError, match="set the extra workspace_id"):
        AirbyteHook().list_connections()
    assert len(AirbyteHook(workspace_id=WORKSPACE_ID).list_connections()) == len(SEED)


def test_test_connection(hook):
    ok, message = hook.test_connection()
    assert ok, message
    assert f"{len(SEED)} connections visible" in message


def test_test_connection_reports_bad_credentials(standin, monkeypatch):
    airbyte_conn_env(monkeypatch, standin.url, login="airbyte", password="wrong-password")
    ok, message = AirbyteHook().test_connection()
    assert not ok
    assert "Authentication failed" in message
    assert "wrong-password" not in message


def test_variables_configure_the_hook(standin, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_AIRBYTE_API_URL", standin.url)
    monkeypatch.setenv("AIRFLOW_VAR_AIRBYTE_API_USERNAME", "airbyte")
    monkeypatch.setenv("AIRFLOW_VAR_AIRBYTE_API_PASSWORD", "password")
    info = AirbyteHook("no_such_connection").get_connection_info(STRIPE_CONNECTION_ID)
    assert info.connection_id == STRIPE_CONNECTION_ID


# --- polling from the connection's history ---------------------------------------------


@pytest.fixture
def slow_standin(tmp_path, monkeypatch):
    """Jobs that run ~2.5 s, so their durations (whole seconds in the API) are history."""
    from dev.airbyte_standin.serving import quick_config, run_standin

    with run_standin(quick_config(tmp_path, auth="basic", running_seconds=2.5)) as server:
        airbyte_conn_env(
            monkeypatch,
            server.url,
            login="airbyte",
            password="password",
            poll_interval=0.02,
            max_poll_interval=0.05,
            quiet_poll_interval=0.5,
        )
        yield server


def polls_for(standin, job_id: int) -> int:
    return sum(1 for r in standin.requests() if r["path"].startswith("/api/v1/jobs/get"))


def test_history_makes_long_waits_cheap(slow_standin):
    hook = AirbyteHook()
    first = hook.trigger_sync(STRIPE_CONNECTION_ID)
    assert hook.quiet_until(first) is None  # no history yet
    hook.wait_for_job_completion(first.job_id, 1)
    close_polls = polls_for(slow_standin, first.job_id)

    second = hook.trigger_sync(STRIPE_CONNECTION_ID)
    quiet_until = hook.quiet_until(second)
    usual = hook.client.usual_duration(STRIPE_CONNECTION_ID)
    assert usual is not None
    assert usual >= 2
    # 90 % of the usual duration after the job's creation (whole seconds from the API),
    # however long this loaded machine took to ask
    assert second.created_at is not None
    assert second.created_at.timestamp() + 0.9 * usual <= quiet_until
    assert quiet_until <= time.time() + 0.9 * usual
    before = polls_for(slow_standin, second.job_id)
    done = hook.wait_for_job_completion(second.job_id, 1, quiet_until=quiet_until)
    assert done.status is JobStatus.SUCCEEDED
    assert polls_for(slow_standin, second.job_id) - before < close_polls / 2


# --- pagination that never ends ----------------------------------------------------------


def _public_connection(n: int) -> dict:
    return {
        "connectionId": f"00000000-0000-4000-8000-{n:012d}",
        "name": f"c{n}",
        "sourceId": "s",
        "destinationId": "d",
        "workspaceId": "w",
        "status": "active",
        "schedule": {"scheduleType": "manual"},
        "configurations": {"streams": []},
    }


@pytest.mark.parametrize(
    ("page", "match"),
    [
        # the same page and the same next link, forever
        (lambda offset: ([_public_connection(1)], "/connections?offset=1"), "repeats"),
        # an empty page that still has a next link
        (lambda offset: ([], f"/connections?offset={offset + 1}"), "is empty but has a next"),
        # pages that advance but never end: stopped by max_pages
        (
            lambda offset: ([_public_connection(offset)], f"/connections?offset={offset + 1}"),
            "more than max_pages=20 pages",
        ),
    ],
    ids=["next-repeats", "empty-page-with-next", "page-cap"],
)
def test_pagination_that_does_not_end_is_stopped(monkeypatch, page, match):
    from urllib.parse import parse_qs, urlsplit

    from tests.fake_http import fake_server, json_reply

    def respond(request):
        offset = int(parse_qs(urlsplit(request.path).query).get("offset", ["0"])[0])
        data, next_link = page(offset)
        return json_reply({"data": data, "next": next_link})

    with fake_server(respond) as server:
        airbyte_conn_env(monkeypatch, server.url, api_type="public", max_pages=20)
        with pytest.raises(AirbyteResponseError, match=match):
            AirbyteHook().list_connections()
        ok, message = AirbyteHook().test_connection()  # the UI's Test button returns too
    assert not ok
    assert "pagination" in message or "max_pages" in message
    assert len(server.received) <= 2 * (20 + 1) + 1
