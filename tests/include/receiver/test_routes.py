"""The order of the routes' checks, in process: a request is refused by the first check it
fails, and the body is read only once the checks before it passed."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from include.receiver import create_app
from include.receiver.airflow_client import AirflowClient
from tests.include.receiver.conftest import TOKEN, receiver_settings

OVERSIZE = b"x" * (64 * 1024 + 1)
#: Over the notification route's own cap (Airbyte's failure bodies carry stack traces).
NOTIFICATION_OVERSIZE = b"x" * (1024 * 1024 + 1)


def no_airflow(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"Airflow was asked: {request.method} {request.url}")


def post(path: str, body: bytes, **settings) -> httpx.Response:
    settings = receiver_settings("http://airflow.invalid:8080", **settings)
    client = AirflowClient(settings, transport=httpx.MockTransport(no_airflow))
    app = create_app(settings, client=client)

    async def call() -> httpx.Response:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://receiver"
            ) as http,
        ):
            return await http.post(path, content=body)

    return asyncio.run(call())


@pytest.mark.parametrize(
    ("case", "path", "settings", "status"),
    [
        ("size before signature", "/events", {}, 413),
        ("token before size", f"/airbyte/notifications/{TOKEN}x", {}, 404),
        ("no token configured", f"/airbyte/notifications/{TOKEN}", {}, 404),
        (
            "network before size",
            f"/airbyte/notifications/{TOKEN}",
            {"airbyte_allowed_networks": "10.0.0.0/8"},
            403,
        ),
        ("size once allowed", f"/airbyte/notifications/{TOKEN}", {}, 413),
    ],
)
def test_the_first_failed_check_answers(case, path, settings, status):
    if case != "no token configured":
        settings = {"airbyte_notification_token": TOKEN, **settings}
    body = OVERSIZE if path == "/events" else NOTIFICATION_OVERSIZE
    assert post(path, body, **settings).status_code == status, case


@pytest.mark.parametrize("job_id", ["true", "1.0", '"1"', "0", "-3"])
def test_a_job_id_that_is_not_a_positive_integer_is_400(job_id):
    body = f'{{"text": "Sync succeeded", "data": {{"jobId": {job_id}}}}}'.encode()
    response = post(f"/airbyte/notifications/{TOKEN}", body, airbyte_notification_token=TOKEN)
    assert response.status_code == 400
    assert response.json()["status"] == "invalid"


def test_an_unsigned_event_is_401_before_airflow_is_asked():
    response = post("/events", b'{"event_id": "e1"}')
    assert response.status_code == 401
    assert response.json() == {"detail": "Missing or invalid X-Signature-256 signature."}
