"""What an answer means: each error status as its error class with what to check, and a body
that is not JSON named by its shape. Answers are built directly: these are pure functions."""

from __future__ import annotations

import email.utils
import json
import time

import httpx
import pytest

from plugins.airbyte_client.answers import answering, checked_json, raise_for_status, retry_after
from plugins.airbyte_client.config import settings_from_connection
from plugins.airbyte_client.errors import (
    AirbyteApiError,
    AirbyteAuthError,
    AirbyteConflictError,
    AirbyteNotFoundError,
    AirbytePermissionError,
    AirbyteRequestError,
    AirbyteResponseError,
    AirbyteTransientApiError,
)
from plugins.airbyte_client.models import AirbyteJob, JobStatus, JobType
from plugins.airbyte_client.transport import Answer, ApiRequest

CONNECTION_ID = "2a6f1c2e-8b1d-4c3a-9f0e-1d2c3b4a5f60"
PASSWORD = "s3cr3t-pässword"
GET_JOB = ApiRequest("POST", "/jobs/get", {"id": 42}, subject="job 42")
TRIGGER = ApiRequest(
    "POST",
    "/connections/sync",
    {"connectionId": CONNECTION_ID},
    subject=f"connection {CONNECTION_ID}",
)
HEALTH = ApiRequest("GET", "/health")


class Conn:
    """An Airflow Connection's fields, as ``settings_from_connection`` reads them."""

    conn_id = "airbyte_default"
    host = "http://airbyte-server:8000"
    port = None
    schema = None
    login = "airbyte"
    password = PASSWORD
    extra_dejson: dict = {}


SETTINGS = settings_from_connection(Conn())


def answer(status: int, body: bytes | dict | str = b"", ctype: str = "application/json") -> Answer:
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    return Answer(status, httpx.Headers({"Content-Type": ctype}), body)


def raised(status: int, request: ApiRequest = GET_JOB, body: bytes | dict = b"") -> Exception:
    with pytest.raises(AirbyteApiError) as err:
        raise_for_status(answer(status, body), request, SETTINGS)
    return err.value


@pytest.mark.parametrize("status", [200, 201, 204, 304])
def test_success_and_redirect_statuses_raise_nothing(status):
    assert raise_for_status(answer(status), GET_JOB, SETTINGS) is None


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, AirbyteAuthError),
        (403, AirbytePermissionError),
        (404, AirbyteNotFoundError),
        (409, AirbyteConflictError),
        (429, AirbyteTransientApiError),
        (500, AirbyteTransientApiError),
        (502, AirbyteTransientApiError),
        (503, AirbyteTransientApiError),
        (504, AirbyteTransientApiError),
        (400, AirbyteRequestError),
        (422, AirbyteRequestError),
        (418, AirbyteApiError),
    ],
)
def test_status_maps_to_its_error_class_naming_the_endpoint(status, cls):
    body = {"message": f"Injected fault: HTTP {status}."}
    error = raised(status, GET_JOB, body)
    assert type(error) is cls
    assert (error.status_code, error.endpoint) == (status, "POST /jobs/get")
    assert "POST /jobs/get" in str(error)
    assert PASSWORD not in str(error)
    assert "airbyte:" not in str(error)


def test_401_says_where_the_credentials_come_from_and_never_echoes_the_body():
    body = {"message": f"Invalid username or password: airbyte/{PASSWORD}"}
    error = raised(401, GET_JOB, body)
    assert "Authentication failed" in str(error)
    assert "Airflow Connection 'airbyte_default'" in str(error)
    assert "auth_type=basic" in str(error)
    assert PASSWORD not in str(error)
    assert "Airbyte says" not in str(error)


def test_404_of_a_job_points_at_the_instance_that_ran_it():
    error = raised(404, GET_JOB)
    assert "Airbyte has no job 42 on http://airbyte-server:8000/api/v1" in str(error)
    assert "Job History" in str(error)


def test_404_of_a_connection_points_at_its_id():
    error = raised(404, TRIGGER)
    assert f"Airbyte has no connection {CONNECTION_ID}" in str(error)
    assert "list_connections()" in str(error)
    assert "Job History" not in str(error)


def test_404_without_a_subject_points_at_host_and_flavour():
    error = raised(404, HEALTH)
    assert "no such resource on http://airbyte-server:8000/api/v1" in str(error)
    assert "API flavour" in str(error)


def test_409_and_422_say_what_they_mean():
    assert "a job is already running on this connection" in str(raised(409, TRIGGER))
    assert "rejecting it as invalid" in str(raised(422, TRIGGER))


@pytest.mark.parametrize("key", ["detail", "message", "title"])
def test_servers_own_explanation_is_quoted(key):
    error = raised(403, GET_JOB, {key: "workspace is read-only"})
    assert str(error).endswith("Airbyte says: workspace is read-only")


def test_servers_explanation_is_clipped_and_an_odd_body_ignored():
    long = raised(500, GET_JOB, {"message": "x" * 5000})
    assert "Airbyte says: " + "x" * 300 in str(long)
    assert "x" * 301 not in str(long)
    for body in (b"<html>Bad gateway</html>", b"[1, 2]", b"\xff\xfe", b""):
        assert "Airbyte says" not in str(raised(502, GET_JOB, body))


def test_checked_json_returns_the_body():
    body = {"job": {"id": 42}, "attempts": []}
    assert checked_json(answer(200, body), GET_JOB, SETTINGS) == body
    assert checked_json(answer(200, b"null"), GET_JOB, SETTINGS) is None


def test_checked_json_raises_the_status_error_first():
    with pytest.raises(AirbyteNotFoundError):
        checked_json(answer(404, b"<html>not found</html>", "text/html"), GET_JOB, SETTINGS)


@pytest.mark.parametrize(
    ("body", "shape"),
    [
        (b"<!doctype html><html><body>Airbyte</body></html>", "HTML"),
        (b"\n   <html>proxy error</html>", "HTML"),
        (b"", "empty"),
        (b"  \r\n ", "empty"),
        (b"OK then", "7 bytes"),
        (b"\xff\xfe\x00{", "4 bytes"),
        (b'{"job": ', "8 bytes"),
    ],
)
def test_checked_json_on_a_body_that_is_not_json_names_its_shape(body, shape):
    with pytest.raises(AirbyteResponseError) as err:
        checked_json(answer(200, body, "text/html"), GET_JOB, SETTINGS)
    message = str(err.value)
    assert f"({shape})" in message
    assert "Airbyte answered POST /jobs/get with HTTP 200" in message
    assert (err.value.status_code, err.value.endpoint) == (200, "POST /jobs/get")
    assert "web app or a proxy error page" in message


# --- answers checked against their question -----------------------------------------------

OTHER_CONNECTION_ID = "9b9b9b9b-8b1d-4c3a-9f0e-1d2c3b4a5f60"


def job(job_id: int, connection_id: str) -> AirbyteJob:
    return AirbyteJob(
        job_id=job_id, connection_id=connection_id, job_type=JobType.SYNC, status=JobStatus.RUNNING
    )


def test_the_job_asked_about_is_taken():
    ours = job(42, CONNECTION_ID)
    assert answering(ours, GET_JOB, job_id=42) is ours
    assert answering(ours, TRIGGER, connection_id=CONNECTION_ID) is ours


@pytest.mark.parametrize(
    ("request_", "asked", "answer", "named"),
    [
        (GET_JOB, {"job_id": 42}, job(43, OTHER_CONNECTION_ID), "about job 42 with job 43"),
        (GET_JOB, {"job_id": 42}, job(43, CONNECTION_ID), "about job 42 with job 43"),
        (
            TRIGGER,
            {"connection_id": CONNECTION_ID},
            job(7, OTHER_CONNECTION_ID),
            f"about connection {CONNECTION_ID} with job 7 of connection {OTHER_CONNECTION_ID}",
        ),
    ],
    ids=["other-job", "other-job-same-connection", "other-connection"],
)
def test_an_answer_about_something_else_is_unreadable(request_, asked, answer, named):
    with pytest.raises(AirbyteResponseError, match=named) as err:
        answering(answer, request_, **asked)
    assert err.value.endpoint == request_.endpoint


# --- Retry-After ---------------------------------------------------------------------------


def with_retry_after(value: str) -> Answer:
    return Answer(503, httpx.Headers({"Retry-After": value}), b"")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("7", 7.0), ("0", 0.0), ("3600", SETTINGS.retry_max_wait), ("-5", None), ("soon", None)],
)
def test_retry_after_in_seconds_is_capped_at_retry_max_wait(value, seconds):
    assert retry_after(with_retry_after(value), SETTINGS) == seconds


def test_retry_after_as_an_http_date():
    in_five = email.utils.formatdate(time.time() + 5, usegmt=True)
    assert 3 <= retry_after(with_retry_after(in_five), SETTINGS) <= 5


def test_a_transient_error_carries_the_retry_after_it_was_given():
    error = raised(429, body=b"")
    assert error.retry_after is None
    with pytest.raises(AirbyteTransientApiError) as err:
        raise_for_status(with_retry_after("2"), GET_JOB, SETTINGS)
    assert err.value.retry_after == 2.0
