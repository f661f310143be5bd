"""Serve the webhook receiver for tests and benchmarks: from a thread of this process
(``serve_receiver``), or as ``python -m webhook`` in a process of its own
(``serve_receiver_process``), each on a free loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import requests
import uvicorn

from dev.environment import REPO
from dev.processes import bound_socket, free_port, tail, wait_until
from include.receiver import WebhookSettings, create_app

#: How long a receiver process may take to answer ``/healthz``, and to exit on SIGTERM.
PROCESS_START_TIMEOUT = 60.0
PROCESS_STOP_TIMEOUT = 30.0


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


class ReceiverExited(RuntimeError):
    """The receiver process ended before it answered ``/healthz``."""


@contextmanager
def serve_receiver_process(
    env: Mapping[str, str], log_file: Path
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``python -m webhook`` as its own process on a free port, for what only a process shows
    (memory, a kill, several replicas): its settings are ``env`` over this process's
    environment (``WEBHOOK_PORT`` and ``PYTHONPATH`` set here), its output is appended to
    ``log_file``. Yields its URL once ``/healthz`` answers, and the process; terminated on
    exit."""
    port = free_port()
    with open(log_file, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "webhook"],
            cwd=REPO,
            env={**os.environ, **env, "PYTHONPATH": str(REPO), "WEBHOOK_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            raise ReceiverExited(f"{url} exited with {process.returncode}:\n{tail(log_file)}")
        try:
            return requests.get(f"{url}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(healthy, PROCESS_START_TIMEOUT, interval=0.1, what="webhook process healthy")
        yield url, process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=PROCESS_STOP_TIMEOUT)
