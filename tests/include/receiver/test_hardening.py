"""The receiver's defences, each over real HTTP: body limits, replay window, start-up checks,
Airflow answers that are not JSON, and redeliveries that only spell out a default."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from pydantic import ValidationError

from tests.airflow_fixtures import EVENT_DAG, STRIPE, TIMEOUT
from tests.include.receiver.conftest import REPO, receiver_process, receiver_settings
from tests.include.receiver.test_receiver import new_event_id, post, signed_headers

pytestmark = pytest.mark.timeout(TIMEOUT)
LIMIT = 64 * 1024
MB = 1024 * 1024


# --- body size ------------------------------------------------------------------------------


def raw_request(url: str, head: str, body_chunks: Iterable[bytes] = ()) -> tuple[str, int]:
    """Send ``head`` then ``body_chunks`` on a raw socket until the server answers or hangs up.

    Returns the status line and how many body bytes were sent before the answer came.
    """
    host, port = url.removeprefix("http://").split(":")
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode())
        sock.setblocking(False)
        answer = b""
        for chunk in body_chunks:
            with suppress(BlockingIOError):
                answer += sock.recv(65536)
            if answer:
                break
            try:
                sock.setblocking(True)
                sock.settimeout(5)
                sock.sendall(chunk)
                sent += len(chunk)
                sock.setblocking(False)
            except OSError:  # the server refused and closed: read what it answered
                break
        sock.setblocking(True)
        sock.settimeout(30)
        while b"\r\n" not in answer:
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    return answer.split(b"\r\n", 1)[0].decode(), sent


def chunked(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """``total`` bytes of body in HTTP chunked encoding, then the last chunk."""
    piece = b"x" * size
    for _ in range(total // size):
        yield f"{size:x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


def head(path: str, headers: dict[str, str]) -> str:
    lines = [f"POST {path} HTTP/1.1", "Host: receiver", *(f"{k}: {v}" for k, v in headers.items())]
    return "\r\n".join(lines) + "\r\n\r\n"


def peak_rss_mb(pid: int) -> float:
    """``VmHWM``: the most resident memory the process ever had, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


@pytest.mark.parametrize("path", ["/events", "/airbyte/notifications/{token}"])
def test_declared_oversize_body_is_refused_before_it_is_sent(tmp_path, path):
    token = "notification-token-" + "t" * 24
    with receiver_process(tmp_path, AIRBYTE_NOTIFICATION_TOKEN=token) as (url, _):
        # Headers only: the receiver must answer without waiting for the 200 MB it announced.
        status, _ = raw_request(
            url,
            head(path.format(token=token), {"Content-Length": str(200 * MB)}),
        )
    assert status == "HTTP/1.1 413 Request Entity Too Large"


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_memory_stays_flat_under_a_200_mb_body(tmp_path, framing):
    with receiver_process(tmp_path) as (url, process):
        baseline = peak_rss_mb(process.pid)
        if framing == "chunked":
            headers, body = {"Transfer-Encoding": "chunked"}, chunked(200 * MB)
        else:
            headers = {"Content-Length": str(200 * MB)}
            body = (b"x" * (64 * 1024) for _ in range(200 * 16))
        status, sent = raw_request(url, head("/events", headers), body)
        peak = peak_rss_mb(process.pid)
    assert status == "HTTP/1.1 413 Request Entity Too Large", status
    assert sent < 20 * MB, f"the receiver kept reading: {sent / MB:.0f} MB sent"
    assert peak - baseline < 10, f"peak RSS grew {peak - baseline:.1f} MB (from {baseline:.0f})"


# --- replay window --------------------------------------------------------------------------


@pytest.mark.parametrize("skew", [-301, 301, -3600])
def test_timestamp_outside_the_window_is_401(shared, receiver, skew):
    event = {"event_id": new_event_id(), "connection_id": STRIPE}
    body = json.dumps(event).encode()
    response = requests.post(
        f"{receiver}/events",
        data=body,
        headers=signed_headers(body, at=time.time() + skew),
        timeout=30,
    )
    assert response.status_code == 401, response.text
    assert "300 s" in response.json()["detail"]
    assert shared.airflow.get_run(EVENT_DAG, f"webhook__{event['event_id']}") is None


def test_timestamp_just_inside_the_window_is_accepted(shared, receiver):
    event = {"event_id": new_event_id(), "connection_id": STRIPE, "job_type": "sync"}
    body = json.dumps(event).encode()
    response = requests.post(
        f"{receiver}/events",
        data=body,
        headers=signed_headers(body, at=time.time() - 290),
        timeout=30,
    )
    assert response.status_code == 202, response.text
    shared.airflow.wait_for_run(EVENT_DAG, f"webhook__{event['event_id']}")


def test_replay_after_the_run_was_deleted_creates_no_run(shared, receiver):
    event = {"event_id": new_event_id(), "connection_id": STRIPE, "job_type": "sync"}
    body = json.dumps(event).encode()
    headers = signed_headers(body)  # the captured request: same bytes, same headers
    run_id = f"webhook__{event['event_id']}"
    first = requests.post(f"{receiver}/events", data=body, headers=headers, timeout=30)
    assert first.status_code == 202, first.text
    shared.airflow.wait_for_run(EVENT_DAG, run_id)
    deleted = shared.airflow.api("DELETE", f"/dags/{EVENT_DAG}/dagRuns/{run_id}")
    assert deleted.status_code == 204, deleted.text
    assert shared.airflow.get_run(EVENT_DAG, run_id) is None

    replay = requests.post(f"{receiver}/events", data=body, headers=headers, timeout=30)
    assert replay.status_code == 200, replay.text
    assert replay.json()["status"] == "duplicate"
    assert shared.airflow.get_run(EVENT_DAG, run_id) is None


def test_event_ids_survive_a_restart_of_the_receiver(shared, make_receiver, tmp_path):
    ledger = str(tmp_path / "ledger.db")
    event = {"event_id": new_event_id(), "connection_id": STRIPE, "job_type": "sync"}
    run_id = f"webhook__{event['event_id']}"
    first = post(make_receiver(shared.airflow.url, ledger_path=ledger), event)
    assert first.status_code == 202, first.text
    shared.airflow.wait_for_run(EVENT_DAG, run_id)
    assert shared.airflow.api("DELETE", f"/dags/{EVENT_DAG}/dagRuns/{run_id}").status_code == 204
    restarted = make_receiver(shared.airflow.url, ledger_path=ledger)
    assert post(restarted, event).json()["status"] == "duplicate"
    assert shared.airflow.get_run(EVENT_DAG, run_id) is None


# --- start-up checks ------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["", " " * 24, "\t\n" * 12, " padded-secret-0123456789 "])
def test_empty_whitespace_or_padded_secret_is_refused(secret):
    with pytest.raises(ValidationError, match="WEBHOOK_SECRET"):
        receiver_settings("http://127.0.0.1:1", webhook_secret=secret)


def test_receiver_does_not_start_with_a_whitespace_secret():
    done = subprocess.run(
        [sys.executable, "-m", "webhook"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "WEBHOOK_SECRET": " " * 32},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "WEBHOOK_SECRET is empty or whitespace" in done.stderr


@pytest.mark.parametrize("token", [" " * 30, "short-token"])
def test_weak_notification_token_is_refused(token):
    with pytest.raises(ValidationError, match="AIRBYTE_NOTIFICATION_TOKEN"):
        receiver_settings("http://127.0.0.1:1", airbyte_notification_token=token)


# --- Airflow answers that are not JSON ------------------------------------------------------

SSO_PAGE = b"<!doctype html><html><body><form>Sign in with your company account</form></html>"


@contextmanager
def fake_airflow(token_is_json: bool, status: int = 200) -> Iterator[str]:
    """A real HTTP server in front of "Airflow" that answers with an HTML login page."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/auth/token" and token_is_json:
                body, kind, code = b'{"access_token": "a.b.c"}', "application/json", 201
            else:
                body, kind, code = SSO_PAGE, "text/html", status
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("case", "token_is_json", "status"),
    [
        ("login page instead of a token", False, 200),
        ("login page instead of the run", True, 200),
        ("proxy error page with 400", True, 400),
    ],
)
def test_non_json_airflow_answer_is_503_with_retry_after(
    make_receiver, case, token_is_json, status
):
    with fake_airflow(token_is_json, status) as airflow_url:
        receiver = make_receiver(airflow_url)
        response = post(receiver, {"event_id": new_event_id(), "connection_id": STRIPE})
    assert response.status_code == 503, (case, response.text)
    assert response.headers["Retry-After"] == "7"
    assert "Sign in" not in response.text


# --- redeliveries that spell out a default --------------------------------------------------


@pytest.mark.parametrize("same_receiver", [True, False])
def test_redelivery_adding_a_default_value_is_a_duplicate(
    shared, receiver, make_receiver, same_receiver
):
    event_id = new_event_id()
    first = post(receiver, {"event_id": event_id, "connection_id": STRIPE})
    assert first.status_code == 202, first.text
    # The same event with the DAG's default job type spelled out; a second receiver has
    # not seen the event, so Airflow's run conf is what it compares against.
    other = receiver if same_receiver else make_receiver(shared.airflow.url)
    again = post(other, {"event_id": event_id, "connection_id": STRIPE, "job_type": "sync"})
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "duplicate"
    conflict = post(other, {"event_id": event_id, "connection_id": STRIPE, "job_type": "reset"})
    assert conflict.status_code == 409
    assert len([r for r in shared.airflow.list_runs(EVENT_DAG) if event_id in r["dag_run_id"]]) == 1
    shared.airflow.wait_for_run(EVENT_DAG, f"webhook__{event_id}")
