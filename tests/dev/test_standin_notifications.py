"""The stand-in POSTs Airbyte's sync notifications, once per ended sync, to a real server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dev.airbyte_standin import STRIPE_CONNECTION_ID
from dev.airbyte_standin.admin_client import RunningStandin
from dev.processes import wait_until
from tests.dev.test_standin_jobs import start, wait_status


class Inbox:
    """A real HTTP server that records every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                inbox.bodies.append(
                    json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def for_job(self, job_id: int) -> list[dict]:
        return [b for b in self.bodies if b.get("data", {}).get("jobId") == job_id]


@pytest.fixture
def inbox(standin: RunningStandin) -> Iterator[Inbox]:
    inbox = Inbox()
    thread = threading.Thread(target=inbox.server.serve_forever, daemon=True)
    thread.start()
    standin.notify_to(inbox.url)
    try:
        yield inbox
    finally:
        standin.notify_to(None)
        inbox.server.shutdown()
        inbox.server.server_close()


def test_a_succeeded_sync_is_notified_once_with_airbytes_body(api, standin, inbox):
    job_id = start(api, standin, STRIPE_CONNECTION_ID)
    wait_status(api, standin, job_id, "succeeded")
    [body] = wait_until(lambda: inbox.for_job(job_id), what="notification")
    data = body["data"]
    assert set(body) == {"text", "blocks", "data"}
    assert data["connection"]["id"] == STRIPE_CONNECTION_ID
    assert data["connection"]["name"] == "Stripe → Postgres"
    assert {"workspace", "source", "destination"} <= set(data)
    assert data["success"] is True
    assert data["errorMessage"] is None
    assert data["recordsCommitted"] == 60  # 3 streams x 20 rows
    assert data["bytesEmitted"] > 0
    assert isinstance(data["durationInSeconds"], int)
    assert data["startedAt"] <= data["finishedAt"]
    # A later job's notification proves the sender moved on without repeating this one.
    second = start(api, standin, STRIPE_CONNECTION_ID)
    wait_until(lambda: inbox.for_job(second), what="second notification")
    assert len(inbox.for_job(job_id)) == 1


def test_a_failed_sync_is_notified_with_the_error(api, standin, inbox):
    standin.set_job_behaviour("fail", STRIPE_CONNECTION_ID, failure_reason="Stripe said 401")
    job_id = start(api, standin, STRIPE_CONNECTION_ID)
    wait_status(api, standin, job_id, "failed")
    [body] = wait_until(lambda: inbox.for_job(job_id), what="notification")
    assert body["data"]["success"] is False
    assert body["data"]["errorMessage"] == "Stripe said 401"


def test_resets_are_not_notified_and_dropped_ones_are_lost(api, standin, inbox):
    reset = start(api, standin, STRIPE_CONNECTION_ID, "reset")
    wait_status(api, standin, reset, "succeeded")
    standin.notify_to(inbox.url, drop=1)
    lost = start(api, standin, STRIPE_CONNECTION_ID)
    wait_status(api, standin, lost, "succeeded")
    after = start(api, standin, STRIPE_CONNECTION_ID)
    wait_until(lambda: inbox.for_job(after), what="the notification after the lost one")
    assert inbox.for_job(reset) == []
    assert inbox.for_job(lost) == []
    sent = {r["job_id"]: r["status"] for r in standin.notifications_sent()}
    assert sent[lost] == "dropped"
    assert sent[after] == 200
    assert reset not in sent
