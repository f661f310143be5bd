"""The fault matrix: how an Airbyte task behaves when things go wrong, over real HTTP.

Every scenario runs ``AirbyteSyncOperator`` (blocking, and deferrable where the wait is
what is being tested) against the stand-in with a fault injected, then checks the same four
things: the task's outcome, how many sync jobs Airbyte was asked to create, that no job was
left running, and that no secret reached the logs or the error. docs/fault-matrix.md lists
every scenario with what the user sees.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from dev.airbyte_standin.faults import OTHER_CONNECTION_ID
from dev.airbyte_standin.seed import STRIPE_CONNECTION_ID
from dev.processes import free_port, wait_until
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
from plugins.airbyte_hook import AirbyteHook
from plugins.airbyte_operator import AirbyteSyncOperator
from tests.conftest import (
    FAST_EXTRAS,
    RecordingTaskInstance,
    resume_deferred,
)
from tests.conftest import airbyte_conn_env as conn_env

#: What must never be printed: a wrong password, the client secret, the basic-auth header value.
SECRETS = ("hunter2-wrong", "standin-secret", "YWlyYnl0ZTpwYXNzd29yZA==", "kLm9Q")


@dataclass(frozen=True)
class Api:
    """An API flavour and where its calls go, as fault targets (``path``, ``method``)."""

    name: str
    sync: dict
    poll: dict
    jobs_list: dict

    def polled(self, request: dict) -> bool:
        """Whether a logged request of the stand-in is a poll of a job."""
        path, method = self.poll["path"], self.poll.get("method", request["method"])
        return request["path"].startswith(path) and request["method"] == method


CONFIG = Api(
    "config",
    sync={"path": "/api/v1/connections/sync"},
    poll={"path": "/api/v1/jobs/get"},  # and /jobs/get_light
    jobs_list={"path": "/api/v1/jobs/list"},
)
PUBLIC = Api(
    "public",
    sync={"path": "/api/public/v1/jobs", "method": "POST", "exact": True},
    poll={"path": "/api/public/v1/jobs/", "method": "GET"},
    jobs_list={"path": "/api/public/v1/jobs", "method": "GET", "exact": True},
)
UNKNOWN = "00000000-0000-4000-8000-000000000000"
ODD_ANSWERS = ("empty", "html", "unknown_status", "broken_gzip", "other_job")


@dataclass(frozen=True)
class Scenario:
    """A fault, how to run the task, and what must come out."""

    id: str
    #: ``inject(standin, api)``: queue the faults, with ``api``'s targets (``Api``).
    inject: Callable = lambda standin, api: None
    operator: dict = field(default_factory=dict)
    raises: type[Exception] | None = None
    match: str | None = None
    sync_jobs: int = 1
    auth: str = "basic"
    deferrable: bool = False
    max_requests: int | None = None
    #: Asserts what else must hold, or returns False when it does not.
    check: Callable | None = None
    #: The wait ended before the job did, so the job must have been cancelled.
    cancels: bool = False
    #: What the error says on the Public API where it differs (``match`` otherwise).
    public_match: str | None = None


def both_modes(scenario: Scenario) -> list[Scenario]:
    """The scenario blocking, and deferrable (id ``<id>-deferred``)."""
    return [scenario, replace(scenario, id=f"{scenario.id}-deferred", deferrable=True)]


def odd_answers_mid_wait(standin, api: Api) -> None:
    """One of each unreadable answer a proxy or a broken server gives, mid-wait."""
    standin.set_job_behaviour("incomplete_then_succeed")
    for kind in ODD_ANSWERS:
        standin.inject(kind, count=1, **api.poll)


def one_of_each_odd_answer(standin) -> None:
    kinds = {r["fault"] for r in standin.requests()}
    assert set(ODD_ANSWERS) <= kinds, kinds


def followed_with_its_method(standin, status: int) -> bool:
    """The one redirected request was sent again to the same path with the same method."""
    log = standin.requests()
    [i] = [i for i, r in enumerate(log) if r["status"] == status]
    return (log[i + 1]["method"], log[i + 1]["path"]) == (log[i]["method"], log[i]["path"])


def one_401(standin) -> None:
    """The expired token cost one 401 and one refresh, not a failure."""
    assert sum(1 for r in standin.requests() if r["status"] == 401) == 1


def cancel_from_outside(standin, api: Api) -> None:
    """Someone cancels the job in the Airbyte UI as soon as it exists."""
    standin.set_job_behaviour("stuck_running")

    def cancel_when_started() -> None:
        job = wait_until(lambda: [j for j in standin.jobs() if j["status"] == "running"], 10)[0]
        AirbyteHook().cancel_job(job["id"])

    threading.Thread(target=cancel_when_started, daemon=True).start()


def expire_tokens_mid_wait(standin, api: Api) -> None:
    standin.set_job_behaviour("incomplete_then_succeed")  # a longer job: the expiry lands mid-wait

    def expire_when_polled() -> None:
        wait_until(lambda: any(api.polled(r) for r in standin.requests()), 10)
        standin.expire_tokens()

    threading.Thread(target=expire_when_polled, daemon=True).start()


SCENARIOS = [
    Scenario(
        "5xx-burst-on-trigger", lambda s, api: s.inject("status", status=503, count=3, **api.sync)
    ),
    Scenario(
        "5xx-burst-while-waiting",
        lambda s, api: s.inject("status", status=500, count=6, **api.poll),
    ),
    Scenario(
        "5xx-burst-while-deferred",
        lambda s, api: s.inject("status", status=502, count=6, **api.poll),
        deferrable=True,
    ),
    Scenario("429-rate-limited", lambda s, api: s.inject("status", status=429, count=2)),
    Scenario(
        "read-timeout-then-success", lambda s, api: s.inject("hang", seconds=3, count=1, **api.poll)
    ),
    Scenario(
        "dropped-connection-mid-response", lambda s, api: s.inject("drop", count=2, **api.poll)
    ),
    Scenario(
        "dropped-while-deferred",
        lambda s, api: s.inject("drop", count=2, **api.poll),
        deferrable=True,
    ),
    Scenario(
        "lost-trigger-response", lambda s, api: s.inject("lost_response", count=1, **api.sync)
    ),
    Scenario(
        "409-attaches",
        lambda s, api: (
            s.set_job_behaviour("incomplete_then_succeed"),  # still running when the task starts
            AirbyteHook().trigger_sync(STRIPE_CONNECTION_ID),
        ),
        check=lambda s: any(r["status"] == 409 for r in s.requests()),
    ),
    Scenario(
        "409-job-list-about-another-connection",
        lambda s, api: (
            s.set_job_behaviour("stuck_running"),
            AirbyteHook().trigger_sync(STRIPE_CONNECTION_ID),
            s.inject("other_job", count=1, **api.jobs_list),
        ),
        raises=AirbyteResponseError,
        match=f"of connection {OTHER_CONNECTION_ID}: an answer to another question",
    ),
    Scenario(
        "409-fails-when-asked",
        lambda s, api: (
            s.set_job_behaviour("stuck_running"),
            AirbyteHook().trigger_sync(STRIPE_CONNECTION_ID),
        ),
        operator={"on_conflict": "fail"},
        raises=AirbyteConflictError,
        match="already running",
    ),
    Scenario("token-expiry-mid-wait", expire_tokens_mid_wait, auth="token", check=one_401),
    Scenario(
        "token-expiry-while-deferred",
        expire_tokens_mid_wait,
        auth="token",
        deferrable=True,
        check=one_401,
    ),
    Scenario(
        "wrong-credentials-no-retry-storm",
        operator={"airbyte_conn_id": "wrong_password"},
        raises=AirbyteAuthError,
        match="Authentication failed",
        sync_jobs=0,
        max_requests=1,
    ),
    Scenario(
        "403-forbidden",
        lambda s, api: s.inject("status", status=403, count=1),
        raises=AirbytePermissionError,
        sync_jobs=0,
        max_requests=1,
    ),
    Scenario(
        "404-unknown-connection",
        operator={"connection_id": UNKNOWN},
        raises=AirbyteNotFoundError,
        match="Airbyte has no connection",
        sync_jobs=0,
        max_requests=1,
    ),
    Scenario(
        "stuck-pending-past-timeout",
        lambda s, api: s.set_job_behaviour("stuck_pending"),
        operator={"timeout_minutes": 0.005},
        raises=AirbyteJobStuckPendingError,
        match="component=worker",
    ),
    Scenario(
        "stuck-pending-past-timeout-deferred",
        lambda s, api: s.set_job_behaviour("stuck_pending"),
        operator={"timeout_minutes": 0.005},
        raises=AirbyteJobStuckPendingError,
        deferrable=True,
    ),
    Scenario(
        "running-past-timeout",
        lambda s, api: s.set_job_behaviour("stuck_running"),
        operator={"timeout_minutes": 0.005},
        raises=AirbyteJobTimeoutError,
        match="Raise timeout_minutes",
    ),
    Scenario(
        "incomplete-then-succeeded", lambda s, api: s.set_job_behaviour("incomplete_then_succeed")
    ),
    Scenario(
        "failed-with-reason",
        lambda s, api: s.set_job_behaviour("fail", failure_reason="Stripe API key revoked"),
        raises=AirbyteJobFailedError,
        match="Stripe API key revoked",
        public_match="Airbyte gave no reason; see the job's logs",  # no reasons there
    ),
    Scenario(
        "failed-with-reason-deferred",
        lambda s, api: s.set_job_behaviour("fail", failure_reason="Stripe API key revoked"),
        raises=AirbyteJobFailedError,
        match="Stripe API key revoked",
        public_match="Airbyte gave no reason; see the job's logs",
        deferrable=True,
    ),
    Scenario("cancelled-from-outside", cancel_from_outside, raises=AirbyteJobCancelledError),
    Scenario(
        "malformed-json",
        lambda s, api: s.inject("malformed", count=1, **api.sync),
        raises=AirbyteResponseError,
        match="not JSON",
        sync_jobs=0,
    ),
    Scenario(
        "body-missing-required-fields",
        lambda s, api: s.inject("missing_fields", count=1, **api.poll),
        check=lambda s: any(r["fault"] == "missing_fields" for r in s.requests()),
    ),
    Scenario(
        "server-down-for-good",
        operator={"airbyte_conn_id": "closed_port"},
        raises=AirbyteUnreachableError,
        match="Connection refused",
        sync_jobs=0,
    ),
    *both_modes(
        Scenario(
            "raw-slash-in-the-url-password",
            operator={"airbyte_conn_id": "slash_in_password"},
            raises=AirbyteConfigError,
            match="not percent-encoded",
            sync_jobs=0,
            max_requests=0,
        )
    ),
    Scenario(
        "missing-connection-and-variables",
        operator={"airbyte_conn_id": "not_defined_anywhere"},
        raises=AirbyteConfigError,
        match="airflow variables set AIRBYTE_API_URL",
        sync_jobs=0,
    ),
    Scenario(
        "missing-variable",
        operator={"connection_id": None, "connection_id_variable": "AIRBYTE_NOT_SET_ID"},
        raises=AirbyteConfigError,
        match="airflow variables set AIRBYTE_NOT_SET_ID",
        sync_jobs=0,
    ),
    Scenario(
        "connection-id-not-a-uuid",
        operator={"connection_id": "abc-123-def-456"},
        raises=AirbyteConfigError,
        match="not an Airbyte connection id",
        sync_jobs=0,
    ),
    # Issue 11: hostile answers and bad settings, each blocking and deferred.
    *both_modes(
        Scenario("odd-answers-mid-wait", odd_answers_mid_wait, check=one_of_each_odd_answer)
    ),
    *both_modes(
        Scenario(
            "unreadable-answers-for-good",
            lambda s, api: s.inject("html", count=50, **api.poll),
            raises=AirbyteResponseError,
            match="Gave up after 6 unreadable answers in a row",
            cancels=True,
        )
    ),
    *both_modes(
        Scenario(
            "answers-about-another-job-for-good",
            lambda s, api: s.inject("other_job", count=50, **api.poll),
            raises=AirbyteResponseError,
            match=f"of connection {OTHER_CONNECTION_ID}: an answer to another question",
            cancels=True,
        )
    ),
    *both_modes(
        Scenario(
            "trigger-answered-about-another-connection",
            lambda s, api: s.inject("other_job", count=1, **api.sync),
            check=lambda s: any(r["fault"] == "other_job" for r in s.requests()),
        )
    ),
    *both_modes(
        Scenario(
            "5xx-for-good-past-timeout",
            lambda s, api: s.inject("status", status=503, count=1000, **api.poll),
            operator={"timeout_minutes": 0.02},
            raises=AirbyteTransientApiError,
            match="Airbyte says: Injected fault: HTTP 503. No readable answer about Airbyte job",
            cancels=True,
        )
    ),
    *(
        scenario
        for status, target in ((302, "sync"), (301, "poll"))
        for scenario in both_modes(
            Scenario(
                f"{status}-within-origin-on-{target}",
                lambda s, api, status=status, target=target: s.inject(
                    "redirect", status=status, location="", **getattr(api, target)
                ),
                check=lambda s, status=status: followed_with_its_method(s, status),
            )
        )
    ),
    *both_modes(
        Scenario(
            "trickling-answer-mid-wait",
            lambda s, api: s.inject("trickle", seconds=0.3, count=1, **api.poll),
            check=lambda s: any(r["fault"] == "trickle" for r in s.requests()),
        )
    ),
    *both_modes(
        Scenario(
            "credentials-refused-mid-wait",
            lambda s, api: s.inject("status", status=401, count=50, **api.poll),
            raises=AirbyteAuthError,
            match="It was cancelled",
            cancels=True,
        )
    ),
    *(
        scenario
        for value in ("abc", "", 0, -5, "nan", None)
        for scenario in both_modes(
            Scenario(
                f"timeout-minutes-{value!r}",
                operator={"timeout_minutes": value},
                raises=AirbyteConfigError,
                match="timeout_minutes",
                sync_jobs=0,
                max_requests=0,
            )
        )
    ),
    *both_modes(
        Scenario(
            "wait-not-a-boolean",
            operator={"wait": "maybe"},
            raises=AirbyteConfigError,
            match="wait 'maybe' is not true or false",
            sync_jobs=0,
            max_requests=0,
        )
    ),
    *both_modes(
        Scenario(
            "job-type-unknown",
            operator={"job_type": "drop"},
            raises=AirbyteConfigError,
            match="is not one of sync, reset, clear, refresh",
            sync_jobs=0,
            max_requests=0,
        )
    ),
]


@pytest.fixture(params=[PUBLIC, CONFIG], ids=lambda api: api.name)
def api(request) -> Api:
    """The API flavour the scenario runs on: each runs on both."""
    return request.param


@pytest.fixture
def env(monkeypatch, basic_standin, token_standin, api):
    """The Connections every scenario may use, as AIRFLOW_CONN_* variables, on ``api``."""

    def airbyte_conn_env(*args, **kwargs):
        conn_env(*args, api_type=api.name, **kwargs)

    airbyte_conn_env(monkeypatch, basic_standin.url, login="airbyte", password="password")
    airbyte_conn_env(
        monkeypatch,
        basic_standin.url,
        conn_id="wrong_password",
        login="airbyte",
        password="hunter2-wrong",
    )
    airbyte_conn_env(  # the password "1234/kLm9Q" not percent-encoded: the host is unclear
        monkeypatch,
        f"http://airbyte:1234/kLm9Q@{basic_standin.url.removeprefix('http://')}",
        conn_id="slash_in_password",
    )
    airbyte_conn_env(
        monkeypatch,
        f"http://127.0.0.1:{free_port()}",
        conn_id="closed_port",
        login="a",
        password="password",
    )
    airbyte_conn_env(
        monkeypatch,
        token_standin.url,
        conn_id="token_auth",
        login="standin-client",
        password="standin-secret",
        auth_type="client_credentials",
    )
    monkeypatch.delenv("AIRFLOW_VAR_AIRBYTE_API_URL", raising=False)


def run_task(op: AirbyteSyncOperator, deferrable: bool) -> dict:
    context = {"ti": RecordingTaskInstance()}
    if not deferrable:
        return op.execute(context)
    try:
        return op.execute(context)
    except TaskDeferred as deferred:
        return resume_deferred(op, context, deferred)


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_fault(scenario: Scenario, api: Api, basic_standin, token_standin, monkeypatch, capfd):
    standin = token_standin if scenario.auth == "token" else basic_standin
    standin.reset()
    if scenario.auth == "token":
        monkeypatch.setenv("AIRFLOW_CONN_AIRBYTE_DEFAULT", os.environ["AIRFLOW_CONN_TOKEN_AUTH"])
        # The shared token may be one an earlier test expired.
        AirbyteHook().client.auth.exchange.invalidate()
    scenario.inject(standin, api)
    already = len([j for j in standin.jobs() if j["job_type"] == "sync"])
    kwargs = {"connection_id": STRIPE_CONNECTION_ID, "deferrable": scenario.deferrable}
    kwargs |= scenario.operator
    if kwargs.get("connection_id") is None:
        kwargs.pop("connection_id")
    op = AirbyteSyncOperator(task_id="sync", **kwargs)

    error: Exception | None = None
    try:
        result = run_task(op, scenario.deferrable)
    except Exception as exc:
        error = exc
    # 1. the task's outcome
    if scenario.raises is None:
        assert error is None, f"{type(error).__name__}: {error}"
        assert result["status"] == "succeeded"
        ours = {j["id"] for j in standin.jobs() if j["connection_id"] == STRIPE_CONNECTION_ID}
        assert result["job_id"] in ours, "the task reported a job that is not its own"
    else:
        assert isinstance(error, scenario.raises), f"{type(error).__name__}: {error}"
        match = scenario.public_match if api is PUBLIC else None
        if match or scenario.match:
            assert (match or scenario.match) in str(error)
    # 2. sync jobs created on the Airbyte side (one asked for: exactly one)
    jobs = [j for j in standin.jobs() if j["job_type"] == "sync"]
    assert len(jobs) == max(scenario.sync_jobs, already), jobs
    if scenario.max_requests is not None:
        assert len(standin.requests()) <= scenario.max_requests
    # 3. nothing left running on Airbyte, except a job someone else started
    leftover = [j for j in jobs if j["status"] in ("pending", "running", "incomplete")]
    if scenario.cancels or scenario.raises in (AirbyteJobStuckPendingError, AirbyteJobTimeoutError):
        assert leftover == [], "a wait that ends before the job must cancel it"
    if isinstance(error, AirbyteAuthError | AirbyteConfigError):
        assert isinstance(error, AirflowFailException), "must fail without spending retries"
    for job in leftover:
        AirbyteHook().cancel_job(job["id"])
    # 4. no secret in the logs or the error
    seen = capfd.readouterr()
    text = seen.out + seen.err + (str(error) if error else "")
    for secret in SECRETS:
        assert secret not in text
    if scenario.check:  # a check asserts, or returns whether it holds
        assert scenario.check(standin) is not False, f"the check of {scenario.id} failed"
    standin.assert_contract_kept()


def test_worker_killed_mid_wait_then_retry_reattaches(basic_standin, monkeypatch):
    """SIGKILL gives on_kill no chance; the retry attaches to the job instead of starting one."""
    basic_standin.reset()
    basic_standin.set_job_behaviour("stuck_running")
    conn = {
        "conn_type": "airbyte",
        "host": basic_standin.url,
        "login": "airbyte",
        "password": "password",
        "extra": FAST_EXTRAS,
    }
    env = {**os.environ, "AIRFLOW_CONN_AIRBYTE_DEFAULT": json.dumps(conn)}
    script = (
        "from plugins.airbyte_operator import AirbyteSyncOperator\n"
        "class TI:\n    stats_tags = {}\n    def xcom_push(self, key, value): pass\n"
        f"AirbyteSyncOperator(task_id='sync', connection_id='{STRIPE_CONNECTION_ID}')"
        ".execute({'ti': TI()})\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True)
    try:
        wait_until(  # its job exists and is polled (not a late request of an earlier test)
            lambda: (
                basic_standin.jobs() and any(CONFIG.polled(r) for r in basic_standin.requests())
            ),
            30,
            what="the wait",
        )
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    [job] = basic_standin.jobs()
    assert job["status"] in ("pending", "running")  # the worker died; the sync goes on

    monkeypatch.setenv("AIRFLOW_CONN_AIRBYTE_DEFAULT", json.dumps(conn))
    retry = AirbyteSyncOperator(task_id="sync", connection_id=STRIPE_CONNECTION_ID, wait=False)
    attached = retry.execute({"ti": RecordingTaskInstance()})
    assert attached["job_id"] == job["id"]
    assert len(basic_standin.jobs()) == 1
    retry.on_kill()  # the retry is stopped too: nothing may be left running
    assert [j["status"] for j in basic_standin.jobs()] == ["cancelled"]
