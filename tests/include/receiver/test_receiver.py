"""The webhook receiver over real HTTP against a real Airflow 3 API server and scheduler."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import uuid

import httpx
import pytest
import requests

from dev.processes import free_port
from include.receiver import create_app
from include.receiver.airflow_client import AirflowClient
from include.receiver.signature import sign
from tests.airflow_fixtures import EVENT_DAG, STRIPE, TIMEOUT, SharedAirflow
from tests.include.receiver.conftest import SECRET, receiver_settings

pytestmark = pytest.mark.timeout(TIMEOUT)
HUBSPOT = "7c9e4b1a-3d2f-4e5a-8b6c-0f1e2d3c4b5a"
SALESFORCE = "d41e7f3b-6a5c-4b8d-9e2f-3a4b5c6d7e8f"


def new_event_id() -> str:
    return f"evt-{uuid.uuid4().hex[:12]}"


def signed_headers(body: bytes, *, secret: str = SECRET, at: float | None = None) -> dict:
    timestamp = int(time.time() if at is None else at)
    return {
        "Content-Type": "application/json",
        "X-Signature-Timestamp": str(timestamp),
        "X-Signature-256": sign(body, secret, timestamp),
    }


def post(receiver: str, payload: object, *, secret: str = SECRET, signature: str | None = None):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = signed_headers(body, secret=secret)
    if signature is not None:
        headers["X-Signature-256"] = signature
    if signature == "":
        del headers["X-Signature-256"]
    return requests.post(f"{receiver}/events", data=body, headers=headers, timeout=30)


def runs_with_id(shared: SharedAirflow, run_id: str) -> list[dict]:
    return [r for r in shared.airflow.list_runs(EVENT_DAG) if r["dag_run_id"] == run_id]


def test_event_triggers_one_run_that_succeeds_and_replays_are_duplicates(shared, receiver):
    event = {"event_id": new_event_id(), "connection_id": STRIPE, "job_type": "sync"}
    run_id = f"webhook__{event['event_id']}"
    jobs_before = {job["id"] for job in shared.standin.jobs()}

    first = post(receiver, event)
    assert first.status_code == 202, first.text
    assert first.json() == {"status": "triggered", "dag_run_id": run_id, "dag_id": EVENT_DAG}
    run = shared.airflow.get_run(EVENT_DAG, run_id)
    assert run is not None
    assert run["conf"] == {"connection_id": STRIPE, "job_type": "sync"}

    again = post(receiver, event)  # a sender retrying right away
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "duplicate"
    assert again.json()["dag_run_id"] == run_id

    finished = shared.airflow.wait_for_run(EVENT_DAG, run_id, timeout=120)
    assert finished["state"] == "success"
    tasks = {t["task_id"]: t["state"] for t in shared.airflow.task_instances(EVENT_DAG, run_id)}
    assert tasks == {"run_airbyte_job": "success", "validate": "success", "notify": "success"}
    jobs = [j for j in shared.standin.jobs() if j["id"] not in jobs_before]
    # One Airbyte sync for the event and its two replays.
    assert [(j["connection_id"], j["job_type"]) for j in jobs] == [(STRIPE, "sync")], jobs

    replay = post(receiver, event)  # a replay after the run finished
    assert replay.status_code == 200
    assert replay.json() == {
        "status": "duplicate",
        "state": "success",
        "dag_run_id": run_id,
        "dag_id": EVENT_DAG,
    }
    assert len(runs_with_id(shared, run_id)) == 1


def test_reused_event_id_with_another_payload_is_a_conflict(shared, receiver):
    event_id = new_event_id()
    first = post(receiver, {"event_id": event_id, "connection_id": SALESFORCE, "job_type": "clear"})
    assert first.status_code == 202, first.text
    clash = post(receiver, {"event_id": event_id, "connection_id": HUBSPOT})
    assert clash.status_code == 409, clash.text
    assert "already used" in clash.json()["detail"]
    run = shared.airflow.get_run(EVENT_DAG, f"webhook__{event_id}")
    assert run["conf"] == {"connection_id": SALESFORCE, "job_type": "clear"}


def test_a_refresh_of_some_streams_reaches_the_run_conf(shared, receiver):
    event_id = new_event_id()
    event = {
        "event_id": event_id,
        "connection_id": SALESFORCE,
        "job_type": "refresh",
        "streams": ["accounts"],
        "refresh_mode": "truncate",
        "wait": False,
    }
    first = post(receiver, event)
    assert first.status_code == 202, first.text
    run = shared.airflow.get_run(EVENT_DAG, f"webhook__{event_id}")
    assert run["conf"] == {
        "connection_id": SALESFORCE,
        "job_type": "refresh",
        "streams": ["accounts"],
        "refresh_mode": "truncate",
    }
    assert post(receiver, event).status_code == 200  # the same again: a duplicate
    other = post(receiver, {**event, "streams": ["opportunities"]})
    assert other.status_code == 409, other.text


@pytest.mark.parametrize(
    ("case", "signature"),
    [
        ("missing header", ""),
        ("wrong secret", "wrong-secret"),
        ("not sha256=", "md5"),
        ("tampered body", "tampered"),
        ("timestamp not the signed one", "other-time"),
    ],
)
def test_bad_signature_is_401_and_creates_no_run(shared, receiver, case, signature):
    event = {"event_id": new_event_id(), "connection_id": STRIPE}
    body = json.dumps(event).encode()
    now = int(time.time())
    header = {
        "": "",
        "wrong-secret": sign(body, "another-secret-0123456789", now),
        "md5": "md5=" + sign(body, SECRET, now).removeprefix("sha256="),
        "tampered": sign(body.replace(b"}", b', "job_type": "reset"}'), SECRET, now),
        "other-time": sign(body, SECRET, now - 1),
    }[signature]
    response = post(receiver, body, signature=header)
    assert response.status_code == 401, case
    assert response.json() == {"detail": "Missing or invalid X-Signature-256 signature."}
    assert SECRET not in response.text
    assert shared.airflow.get_run(EVENT_DAG, f"webhook__{event['event_id']}") is None


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"event_id": "e-no-connection"}, "connection_id"),
        ({"event_id": "e-not-uuid", "connection_id": "stripe"}, "connection_id"),
        ({"event_id": "bad id/../x", "connection_id": STRIPE}, "event_id"),
        ({"event_id": "x" * 101, "connection_id": STRIPE}, "event_id"),
        ({"connection_id": STRIPE}, "event_id"),
        ({"event_id": "e-bad-type", "connection_id": STRIPE, "job_type": "drop"}, "job_type"),
        (b"not json", "body"),
        ([1, 2], "body"),
    ],
)
def test_bad_payload_is_422_with_the_field_and_creates_no_run(shared, receiver, payload, field):
    before = len(shared.airflow.list_runs(EVENT_DAG))
    response = post(receiver, payload)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["detail"] == "Invalid event payload."
    fields = [e["field"] for e in body["errors"]]
    assert any(f == field or f.startswith(field) for f in fields) or field == "body", fields
    assert len(shared.airflow.list_runs(EVENT_DAG)) == before


def test_airflow_unreachable_is_503_with_retry_after(make_receiver):
    receiver = make_receiver(f"http://127.0.0.1:{free_port()}")
    response = post(receiver, {"event_id": new_event_id(), "connection_id": STRIPE})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "7"
    assert "retry" in response.json()["detail"]


def test_airflow_refusing_the_receivers_credentials_is_503(shared, make_receiver):
    receiver = make_receiver(shared.airflow.url, airflow_password="not-the-password")
    event = {"event_id": new_event_id(), "connection_id": STRIPE}
    response = post(receiver, event)
    assert response.status_code == 503
    assert "not-the-password" not in response.text
    assert shared.airflow.get_run(EVENT_DAG, f"webhook__{event['event_id']}") is None


def test_conf_refused_by_airflow_is_relayed_as_422():
    """Airflow's 400 (params validation) as Airflow words it; faked at the HTTP layer."""
    detail = "Invalid input for param connection_id: 'x' does not match '^[0-9a-f-]+$'"

    def airflow(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/token":
            return httpx.Response(201, json={"access_token": "a.eyJleHAiOjk5OTk5OTk5OTl9.c"})
        return httpx.Response(400, json={"detail": detail})

    settings = receiver_settings("http://airflow.invalid:8080")
    client = AirflowClient(settings, transport=httpx.MockTransport(airflow))
    app = create_app(settings, client=client)
    event = json.dumps({"event_id": "e1", "connection_id": STRIPE}).encode()

    async def call() -> httpx.Response:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://receiver"
            ) as http,
        ):
            return await http.post("/events", content=event, headers=signed_headers(event))

    response = asyncio.run(call())
    assert response.status_code == 422
    assert response.json() == {"detail": "Airflow refused the run's conf.", "airflow": detail}


def test_signature_matches_openssl_as_documented():
    openssl = shutil.which("openssl")
    assert openssl, "openssl not found: run `make system-deps` or apt-get install -y openssl"
    body = b'{"event_id": "e1", "connection_id": "2a6f1c2e-8b1d-4c3a-9f0e-1d2c3b4a5f60"}'
    out = subprocess.run(
        [openssl, "dgst", "-sha256", "-hmac", SECRET, "-r"],
        input=b"1767225600." + body,
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert sign(body, SECRET, 1767225600) == "sha256=" + out.split()[0]


def test_settings_never_show_secrets():
    settings = receiver_settings("http://127.0.0.1:1", airflow_password="pa55-word-xyz")
    shown = repr(settings) + str(settings) + json.dumps(settings.model_dump(mode="json"))
    assert SECRET not in shown
    assert "pa55-word-xyz" not in shown
