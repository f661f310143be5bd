"""The sans-I/O operations, driven by hand: which requests a flow asks for, which pauses it
takes and what it decides, for scripted answers and errors.

``Script`` is the whole driver: it answers each request with the next scripted reply (a body
is sent back, an error is thrown in, as ``AirbyteClient.run`` does for a real answer) and
records the requests and the pauses instead of sending and sleeping.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from plugins.airbyte_client.api.config import ConfigApi
from plugins.airbyte_client.api.public import PublicApi
from plugins.airbyte_client.config import AirbyteSettings, ApiFlavour
from plugins.airbyte_client.core import Operations
from plugins.airbyte_client.errors import (
    AirbyteAuthError,
    AirbyteConfigError,
    AirbyteConflictError,
    AirbyteJobStuckPendingError,
    AirbyteJobTimeoutError,
    AirbyteNotFoundError,
    AirbyteResponseError,
    AirbyteTransientApiError,
    AirbyteUnreachableError,
)
from plugins.airbyte_client.flows import Sleep, backoff
from plugins.airbyte_client.models import JobStatus
from plugins.airbyte_client.transport import ApiRequest
from plugins.airbyte_client.wait import JobWatch

CONNECTION_ID = "2a6f1c2e-8b1d-4c3a-9f0e-1d2c3b4a5f60"
ROOT = "http://airbyte-server:8000/api/v1"
CONFIG = AirbyteSettings(
    api_root=ROOT,
    flavour=ApiFlavour.CONFIG,
    source="test settings",
    max_retries=4,
    retry_min_wait=1.0,
    retry_max_wait=5.0,
)
PUBLIC = AirbyteSettings(
    api_root="http://airbyte-server:8000/api/public/v1",
    flavour=ApiFlavour.PUBLIC,
    source="test settings",
    max_pages=3,
)
TRIGGER, JOBS_LIST, GET_JOB = "POST /connections/sync", "POST /jobs/list", "POST /jobs/get"
POLL_JOB = "POST /jobs/get_light"


class Script:
    """Answers a flow's requests from ``replies`` in order; records requests and sleeps."""

    def __init__(self, *replies: Any) -> None:
        self.replies = list(replies)
        self.requests: list[ApiRequest] = []
        self.sleeps: list[float] = []

    @property
    def endpoints(self) -> list[str]:
        return [r.endpoint for r in self.requests]

    def run(self, flow):
        try:
            step = next(flow)
            while True:
                if isinstance(step, Sleep):
                    self.sleeps.append(step.seconds)
                    step = flow.send(None)
                    continue
                self.requests.append(step)
                reply = self.replies.pop(0)
                step = flow.throw(reply) if isinstance(reply, Exception) else flow.send(reply)
        except StopIteration as stop:
            assert self.replies == [], "the flow ended before every scripted reply was used"
            return stop.value


def config_job(job_id: int, status: str, created_at: float | None = None) -> dict:
    created = int(time.time()) if created_at is None else int(created_at)
    return {
        "id": job_id,
        "configType": "sync",
        "configId": CONNECTION_ID,
        "createdAt": created,
        "updatedAt": created,
        "status": status,
    }


def job_info(job_id: int, status: str, created_at: float | None = None) -> dict:
    return {"job": config_job(job_id, status, created_at), "attempts": []}


def job_list(*jobs: dict) -> dict:
    return {"jobs": [{"job": j, "attempts": []} for j in jobs]}


def unreachable() -> AirbyteUnreachableError:
    return AirbyteUnreachableError(ROOT, "Connection refused")


def transient() -> AirbyteTransientApiError:
    return AirbyteTransientApiError("HTTP 503", status_code=503, endpoint=GET_JOB)


# --- retries ---------------------------------------------------------------------------


def test_get_job_retries_transient_errors_with_growing_bounded_backoff_then_raises():
    errors = [transient() if n % 2 else unreachable() for n in range(CONFIG.max_retries + 1)]
    script = Script(*errors)
    with pytest.raises(AirbyteUnreachableError) as err:
        script.run(Operations(CONFIG).get_job(42))
    assert err.value is errors[-1]
    assert script.endpoints == [GET_JOB] * 5  # max_retries + 1 attempts
    assert script.requests[0].json == {"id": 42}
    # 1 s, 2 s, 4 s, 8 s from retry_min_wait, each plus up to 1 s of jitter, capped at 5 s
    low, high = [1, 2, 4, 5], [2, 3, 5, 5]
    assert all(lo <= s <= hi for lo, s, hi in zip(low, script.sleeps, high, strict=True))
    assert script.sleeps == sorted(script.sleeps)


def test_retry_waits_at_least_what_retry_after_asked():
    asked = AirbyteTransientApiError("HTTP 429", status_code=429, retry_after=4.5)
    script = Script(asked, job_info(42, "running"))
    script.run(Operations(CONFIG).get_job(42))
    assert script.sleeps == [4.5]  # not the first backoff of 1-2 s


def test_watch_polls_again_no_sooner_than_retry_after():
    asked = AirbyteTransientApiError("HTTP 503", status_code=503, retry_after=3.0)
    script = Script(asked, job_info(42, "succeeded"))
    script.run(Operations(CONFIG).watch(42, deadline=time.time() + 600))
    assert script.sleeps == [3.0]  # the poll interval would be 2 s


def test_backoff_never_exceeds_retry_max_wait_nor_goes_negative():
    capped = AirbyteSettings(ROOT, ApiFlavour.CONFIG, "s", retry_min_wait=0, retry_max_wait=0.5)
    assert all(0 <= backoff(capped, n) <= 0.5 for n in range(1, 30))
    assert all(backoff(CONFIG, n) == 5.0 for n in range(4, 30))


def test_a_transient_error_then_an_answer_returns_the_job():
    script = Script(unreachable(), job_info(42, "running"))
    job = script.run(Operations(CONFIG).get_job(42))
    assert (job.job_id, job.status) == (42, JobStatus.RUNNING)
    assert len(script.sleeps) == 1


@pytest.mark.parametrize(
    "error",
    [
        AirbyteAuthError("401", status_code=401),
        AirbyteNotFoundError("404", status_code=404),
        AirbyteResponseError("not JSON", status_code=200),
    ],
    ids=["auth", "not-found", "unreadable"],
)
def test_errors_a_retry_cannot_fix_are_raised_at_once(error):
    script = Script(error)
    with pytest.raises(type(error)) as err:
        script.run(Operations(CONFIG).get_job(42))
    assert err.value is error
    assert (script.endpoints, script.sleeps) == ([GET_JOB], [])


# --- triggering ------------------------------------------------------------------------


def test_lost_trigger_answer_attaches_to_the_job_it_started_instead_of_triggering_again():
    script = Script(unreachable(), job_list(config_job(7, "running")))
    job = script.run(Operations(CONFIG).submit_job(CONNECTION_ID))
    assert (job.job_id, job.status) == (7, JobStatus.RUNNING)
    assert script.endpoints == [TRIGGER, JOBS_LIST]
    assert script.requests[0].json == {"connectionId": CONNECTION_ID}
    assert script.requests[1].json["configId"] == CONNECTION_ID
    assert script.requests[1].json["configTypes"] == ["sync"]


def test_lost_trigger_answer_of_a_job_that_already_ended_is_found_by_its_creation_time():
    ended = config_job(8, "succeeded", created_at=time.time() + 1)
    script = Script(unreachable(), job_list(ended))
    assert script.run(Operations(CONFIG).submit_job(CONNECTION_ID)).job_id == 8
    assert script.endpoints == [TRIGGER, JOBS_LIST]


def test_trigger_is_sent_again_when_no_job_was_started():
    older = config_job(6, "succeeded", created_at=time.time() - 3600)
    script = Script(unreachable(), job_list(older), job_info(9, "pending"))
    assert script.run(Operations(CONFIG).submit_job(CONNECTION_ID)).job_id == 9
    assert script.endpoints == [TRIGGER, JOBS_LIST, TRIGGER]


def test_conflict_attaches_to_the_running_job():
    conflict = AirbyteConflictError("409", status_code=409, endpoint=TRIGGER)
    script = Script(conflict, job_list(config_job(5, "running")))
    job = script.run(Operations(CONFIG, on_conflict="attach").submit_job(CONNECTION_ID))
    assert job.job_id == 5
    assert script.endpoints == [TRIGGER, JOBS_LIST]
    assert script.sleeps == []  # a 409 is an answer, not a reason to back off


def test_conflict_whose_job_ended_meanwhile_triggers_once_more():
    conflict = AirbyteConflictError("409", status_code=409, endpoint=TRIGGER)
    script = Script(conflict, job_list(config_job(5, "succeeded")), job_info(6, "pending"))
    assert script.run(Operations(CONFIG).submit_job(CONNECTION_ID)).job_id == 6
    assert script.endpoints == [TRIGGER, JOBS_LIST, TRIGGER]


def test_conflict_fails_when_attaching_is_not_allowed():
    conflict = AirbyteConflictError("409", status_code=409, endpoint=TRIGGER)
    script = Script(conflict)
    with pytest.raises(AirbyteConflictError):
        script.run(Operations(CONFIG, on_conflict="fail").submit_job(CONNECTION_ID))
    assert script.endpoints == [TRIGGER]


def test_bad_arguments_are_refused_before_any_request():
    with pytest.raises(AirbyteConfigError, match="not an Airbyte connection id"):
        Script().run(Operations(CONFIG).submit_job("stripe"))
    with pytest.raises(AirbyteConfigError, match="job_type 'drop'"):
        Script().run(Operations(CONFIG).submit_job(CONNECTION_ID, "drop"))
    with pytest.raises(AirbyteConfigError, match="on_conflict"):
        Operations(CONFIG, on_conflict="wait")
    with pytest.raises(AirbyteConfigError, match="streams are for reset, clear, refresh jobs"):
        Script().run(Operations(CONFIG).submit_job(CONNECTION_ID, "sync", streams=["charges"]))
    with pytest.raises(AirbyteConfigError, match="refresh_mode is for refresh jobs"):
        Script().run(Operations(CONFIG).submit_job(CONNECTION_ID, "clear", refresh_mode="merge"))
    with pytest.raises(AirbyteConfigError, match="refresh_mode 'wipe' is not one of"):
        Script().run(Operations(CONFIG).submit_job(CONNECTION_ID, "refresh", refresh_mode="wipe"))


@pytest.mark.parametrize(
    ("job_type", "streams", "mode", "path", "body"),
    [
        (
            "clear",
            ["charges"],
            None,
            "/connections/clear/stream",
            {"streams": [{"streamName": "charges"}]},
        ),
        (
            "reset",
            "charges,invoices",
            None,
            "/connections/reset/stream",
            {"streams": [{"streamName": "charges"}, {"streamName": "invoices"}]},
        ),
        ("refresh", None, None, "/connections/refresh", {"refreshMode": "Merge"}),
        (
            "refresh",
            '["charges"]',
            "truncate",
            "/connections/refresh",
            {"refreshMode": "Truncate", "streams": [{"streamName": "charges"}]},
        ),
    ],
    ids=[
        "clear-stream",
        "reset-streams-from-a-template",
        "refresh-merges",
        "refresh-truncates-a-stream",
    ],
)
def test_per_stream_jobs_and_refreshes_on_the_configuration_api(
    job_type, streams, mode, path, body
):
    job = config_job(7, "pending") | {
        "configType": {"reset": "reset_connection"}.get(job_type, job_type)
    }
    script = Script({"job": job})
    started = script.run(
        Operations(CONFIG).submit_job(CONNECTION_ID, job_type, streams=streams, refresh_mode=mode)
    )
    [request] = script.requests
    assert (request.path, request.json) == (path, {"connectionId": CONNECTION_ID, **body})
    assert started.job_type == job_type


@pytest.mark.parametrize(
    ("streams", "mode"), [(["charges"], None), (None, "truncate")], ids=["streams", "mode"]
)
def test_the_public_api_refuses_per_stream_jobs_and_modes_before_any_request(streams, mode):
    with pytest.raises(AirbyteConfigError, match="needs the Configuration API") as err:
        Script().run(
            Operations(PUBLIC).submit_job(
                CONNECTION_ID, "refresh", streams=streams, refresh_mode=mode
            )
        )
    assert "api_type=config" in str(err.value)


# --- waiting ---------------------------------------------------------------------------


def test_watch_rides_out_transient_errors_and_stops_on_a_terminal_job():
    script = Script(job_info(42, "running"), unreachable(), transient(), job_info(42, "succeeded"))
    step = script.run(Operations(CONFIG).watch(42, deadline=time.time() + 600))
    assert step.ended
    assert step.job.status is JobStatus.SUCCEEDED
    assert script.endpoints == [POLL_JOB] * 4  # one attempt per poll: the wait is the retry
    assert len(script.sleeps) == 3
    assert all(0 < s <= CONFIG.max_poll_interval for s in script.sleeps)


def test_watch_stops_at_once_on_an_error_waiting_cannot_fix():
    script = Script(job_info(42, "running"), AirbyteAuthError("401", status_code=401))
    with pytest.raises(AirbyteAuthError):
        script.run(Operations(CONFIG).watch(42, deadline=time.time() + 600))
    assert len(script.requests) == 2


def test_watch_gives_up_after_max_unreadable_polls_in_a_row():
    settings = AirbyteSettings(ROOT, ApiFlavour.CONFIG, "s", max_unreadable_polls=2)
    unreadable = [AirbyteResponseError("empty body", status_code=200) for _ in range(3)]
    script = Script(*unreadable)
    with pytest.raises(AirbyteResponseError, match="Gave up after 3 unreadable answers"):
        script.run(Operations(settings).watch(42, deadline=time.time() + 600))


@pytest.mark.parametrize(
    ("status", "error", "cancelled"),
    [("running", AirbyteJobTimeoutError, True), ("pending", AirbyteJobStuckPendingError, False)],
)
def test_wait_past_its_deadline_raises_what_became_of_the_job(status, error, cancelled):
    replies = [job_info(42, status)] + ([job_info(42, "cancelled")] if cancelled else [])
    script = Script(*replies)
    flow = Operations(CONFIG).wait_for_job_completion(42, 0, cancel_on_timeout=cancelled)
    with pytest.raises(error) as err:
        script.run(flow)
    assert type(err.value) is error
    expected = [POLL_JOB, "POST /jobs/cancel"] if cancelled else [POLL_JOB]
    assert script.endpoints == expected
    note = "It was cancelled" if cancelled else "It is still running on Airbyte"
    assert note in str(err.value)


@pytest.mark.parametrize("seen", [False, True], ids=["never-answered", "answered-then-errors"])
def test_wait_that_gives_up_names_the_last_error_airbyte_gave(seen):
    """A persistent 503 with Airbyte's message is reported as that, not as an unreachable
    server; a job seen before the errors keeps its timeout error and names the error too."""
    airbyte_says = AirbyteTransientApiError(
        "Airbyte answered HTTP 503 to POST /jobs/get. Airbyte says: temporal is down",
        status_code=503,
        endpoint=GET_JOB,
    )
    watch = JobWatch.start(42, time.time() + 600, CONFIG, None)
    if seen:
        watch.observe(Operations(CONFIG).api.parse_job(job_info(42, "running"), None))
    watch.observe(None, airbyte_says)
    watch.deadline = time.time() - 1  # the wait runs out on the next failed poll
    step = watch.observe(None, airbyte_says)
    assert step.delay is None
    assert step.error is airbyte_says
    expected = AirbyteJobTimeoutError if seen else AirbyteTransientApiError
    with pytest.raises(expected) as err:
        Script().run(Operations(CONFIG).handle_timeout(42, step.job, 1.0, False, step.error))
    assert type(err.value) is expected
    assert "temporal is down" in str(err.value)
    assert "Connection refused" not in str(err.value)
    assert err.value.retry_after is None


def light(job_id: int, status: str, streams: bool = True) -> dict:
    """A ``/jobs/get_light`` answer: the job, without attempts."""
    job = config_job(job_id, status)
    if streams:
        job["streamAggregatedStats"] = [
            {"streamName": "charges", "recordsEmitted": 5, "recordsCommitted": 5}
        ]
    return {"job": job}


def failed_attempt(reason: str) -> dict:
    return {
        "attempt": {
            "id": 0,
            "status": "failed",
            "createdAt": 1,
            "updatedAt": 2,
            "failureSummary": {
                "failures": [{"failureOrigin": "source", "externalMessage": reason}]
            },
        }
    }


def test_a_failed_job_is_read_in_full_once_for_its_reason():
    full = job_info(42, "failed") | {"attempts": [failed_attempt("Stripe API key revoked")]}
    script = Script(light(42, "running"), light(42, "failed"), full)
    flow = Operations(CONFIG).wait_for_job_completion(42, 1, raise_on_failure=False)
    job = script.run(flow)
    assert script.endpoints == [POLL_JOB, POLL_JOB, GET_JOB]
    assert (job.status, job.failure_reason, job.attempts) == (
        JobStatus.FAILED,
        "Stripe API key revoked",
        1,
    )


@pytest.mark.parametrize(
    ("polled", "full_read"),
    [
        (light(42, "succeeded"), False),
        (light(42, "cancelled"), False),
        (light(42, "succeeded", streams=False), True),  # a server without per-stream totals
    ],
    ids=["succeeded", "cancelled", "succeeded-without-stream-totals"],
)
def test_a_finished_job_is_read_in_full_only_when_the_poll_lacks_something(polled, full_read):
    replies = [polled] + ([job_info(42, polled["job"]["status"])] if full_read else [])
    script = Script(*replies)
    script.run(Operations(CONFIG).wait_for_job_completion(42, 1, raise_on_failure=False))
    assert script.endpoints == [POLL_JOB] + ([GET_JOB] if full_read else [])


def test_a_full_read_that_fails_keeps_the_polled_outcome():
    script = Script(AirbyteAuthError("401", status_code=401))
    job = script.run(
        Operations(CONFIG).complete(ConfigApi().parse_polled_job(light(42, "failed"), None))
    )
    assert job.status is JobStatus.FAILED
    assert job.failure_reason is None


def test_the_public_api_polls_the_whole_job():
    api = PublicApi()
    assert api.poll_job(42) == api.get_job(42)
    finished = api.parse_job(
        {
            "jobId": 42,
            "status": "failed",
            "jobType": "sync",
            "connectionId": CONNECTION_ID,
            "startTime": "2026-01-01T00:00:00Z",
        },
        None,
    )
    assert not api.needs_full_read(finished)


def test_a_job_retried_thousands_of_times_is_read_from_its_newest_attempts():
    attempts = [failed_attempt(f"reason {n}") for n in range(5000)]
    job = ConfigApi().parse_job(job_info(42, "failed") | {"attempts": attempts}, None)
    assert (job.attempts, job.failure_reason) == (5000, "reason 4999")


# --- listing ---------------------------------------------------------------------------


def public_connection(n: int) -> dict:
    return {
        "connectionId": f"00000000-0000-4000-8000-00000000000{n}",
        "name": f"connection {n}",
        "sourceId": "s",
        "destinationId": "d",
        "workspaceId": "w",
        "status": "active",
        "schedule": {"scheduleType": "manual"},
        "configurations": {"streams": [{"name": "charges"}]},
    }


def page(*numbers: int, next_link: str | None = None) -> dict:
    return {"data": [public_connection(n) for n in numbers], "next": next_link}


def offsets(script: Script) -> list[int]:
    return [r.params["offset"] for r in script.requests]


def test_list_connections_reads_pages_until_there_is_no_next_link():
    script = Script(page(1, 2, next_link="/connections?offset=2"), page(3))
    found = script.run(Operations(PUBLIC).list_connections(page_size=2))
    assert [c.name for c in found] == ["connection 1", "connection 2", "connection 3"]
    assert offsets(script) == [0, 2]
    assert all(r.params["limit"] == 2 for r in script.requests)


def test_list_connections_stops_on_a_repeating_next_link():
    link = "/connections?offset=2"
    script = Script(page(1, 2, next_link=link), page(3, 4, next_link=link))
    with pytest.raises(AirbyteResponseError, match="page 2 repeats an earlier next link"):
        script.run(Operations(PUBLIC).list_connections(page_size=2))
    assert offsets(script) == [0, 2]


def test_list_connections_stops_on_an_empty_page_with_a_next_link():
    script = Script(page(next_link="/connections?offset=0"))
    with pytest.raises(AirbyteResponseError, match="is empty but has a next link"):
        script.run(Operations(PUBLIC).list_connections())


def test_list_connections_stops_past_max_pages():
    script = Script(*(page(n, next_link=f"/connections?offset={n}") for n in range(1, 4)))
    with pytest.raises(AirbyteResponseError, match="more than max_pages=3 pages"):
        script.run(Operations(PUBLIC).list_connections(page_size=1))
    assert offsets(script) == [0, 1, 2]
