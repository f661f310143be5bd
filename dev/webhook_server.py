"""Serve the webhook receiver from a thread on a free loopback port (tests and benchmarks)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from dev.processes import bound_socket, wait_until
from include.receiver import WebhookSettings, create_app


@contextmanager
def serve_receiver(settings: WebhookSettings) -> Iterator[str]:
    """Serve the receiver with uvicorn from a thread on a free loopback port; yield its URL."""
    sock = bound_socket("127.0.0.1")
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
