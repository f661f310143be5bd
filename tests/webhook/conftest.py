"""The session's real Airflow (shared with tests/e2e, see tests/airflow_fixtures.py) and
webhook receivers served over real HTTP on loopback."""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from dev.airbyte_standin.testing import wait_until
from tests.airflow_fixtures import SharedAirflow, shared_airflow
from webhook import WebhookSettings, create_app

SECRET = "test-webhook-secret-0123456789"


@pytest.fixture(scope="session")
def shared(request: pytest.FixtureRequest) -> SharedAirflow:
    return shared_airflow(request.config)


@contextmanager
def serve_receiver(settings: WebhookSettings) -> Iterator[str]:
    """Serve the receiver with uvicorn from a thread on a free loopback port; yield its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=10, what="webhook receiver started")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def receiver_settings(airflow_url: str, **overrides) -> WebhookSettings:
    """Settings for a test receiver; each gets its own ledger file unless one is given."""
    settings = {
        "ledger_path": str(Path(tempfile.mkdtemp(prefix="webhook-ledger-")) / "ledger.db"),
        "webhook_secret": SECRET,
        "airflow_api_url": airflow_url,
        "airflow_username": "admin",
        "airflow_password": "admin",
        "airflow_timeout_seconds": 5,
        "retry_after_seconds": 7,
        **overrides,
    }
    return WebhookSettings(**settings)


@pytest.fixture(scope="module")
def receiver(shared: SharedAirflow) -> Iterator[str]:
    """A receiver wired to the session's Airflow."""
    with serve_receiver(receiver_settings(shared.airflow.url)) as url:
        yield url


@pytest.fixture
def make_receiver() -> Iterator[Callable[..., str]]:
    """Start extra receivers with other settings for one test."""
    with contextlib.ExitStack() as stack:
        yield lambda airflow_url, **kw: stack.enter_context(
            serve_receiver(receiver_settings(airflow_url, **kw))
        )
