"""Serve the stand-in for tests, benchmarks and ``make airflow``/``make demo``.

``run_standin`` serves it from a background thread of this process; ``run_standin_process``
runs ``python -m dev.airbyte_standin`` in its own process group (stopped with the group on
exit). Both wait until it is healthy and yield a ``RunningStandin`` (``admin_client``).
``quick_config`` is a fast-cycling configuration for them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import requests
import uvicorn

from dev.airbyte_standin.admin_client import RunningStandin
from dev.airbyte_standin.app import create_app
from dev.airbyte_standin.config import StandinConfig
from dev.processes import bound_socket, free_port, stop_process_groups, tail

REPO_ROOT = Path(__file__).resolve().parents[2]


START_TIMEOUT = 20.0
#: Free ports tried when the one picked is taken before the stand-in binds it.
PORT_TRIES = 3
STOP_TIMEOUT = 10.0
QUICK = {"pending_seconds": 0.05, "running_seconds": 0.15, "rows_per_stream": 20}


class StandinExited(RuntimeError):
    """The stand-in process ended while it was expected to serve."""


class StandinStartError(RuntimeError):
    """The stand-in process did not come up; the message ends with its output."""


def quick_config(directory: Path, **overrides: Any) -> StandinConfig:
    """A fast-cycling config (0.05 s pending, 0.15 s running, 20 rows) with a SQLite warehouse
    at ``directory/warehouse.db``; ``overrides`` replace any setting."""
    settings = {**QUICK, "warehouse_url": f"sqlite:///{directory / 'warehouse.db'}", **overrides}
    return StandinConfig(**settings)


def wait_until_healthy(
    url: str,
    timeout: float = START_TIMEOUT,
    process: subprocess.Popen | None = None,
    verify: str | bool = True,
) -> None:
    """Poll ``GET /api/v1/health`` until it answers 200, and when ``process`` is given until
    the answer comes from that process (another stand-in may hold the port it was given), or
    raise TimeoutError (StandinExited if ``process`` ends first). ``verify``: the CA bundle of
    a TLS stand-in."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise StandinExited(f"the stand-in at {url} exited with {process.returncode}")
        try:
            healthy = requests.get(f"{url}/api/v1/health", timeout=1, verify=verify).ok
            if healthy and (process is None or _pid(url, verify) == process.pid):
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"stand-in at {url} not healthy after {timeout} s")
        time.sleep(0.02)


def _pid(url: str, verify: str | bool) -> int | None:
    """The process id of the stand-in answering at ``url``."""
    return requests.get(f"{url}/_standin/info", timeout=1, verify=verify).json().get("pid")


@contextmanager
def run_standin(
    config: StandinConfig | None = None, tls: tuple[Path, Path, Path] | None = None
) -> Iterator[RunningStandin]:
    """Serve the stand-in from a background thread on a free loopback port.

    ``tls``: (certificate, key, CA bundle) files to serve HTTPS with. On exit the server stops
    and, if contract validation is on and the body did not raise, an AssertionError lists any
    contract violation.
    """
    sock = bound_socket((config or StandinConfig()).host)
    port = sock.getsockname()[1]
    config = replace(config or StandinConfig(), port=port)
    app, _ = create_app(config)
    certs = {"ssl_certfile": str(tls[0]), "ssl_keyfile": str(tls[1])} if tls else {}
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", **certs))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="standin", daemon=True
    )
    thread.start()
    scheme = "https" if tls else "http"
    verify = str(tls[2]) if tls else True
    running = RunningStandin(url=f"{scheme}://{config.host}:{port}", config=config, verify=verify)
    try:
        wait_until_healthy(running.url, verify=verify)
        yield running
        if config.validate_contract:
            running.assert_contract_kept()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _start(config: StandinConfig, log_file: Path) -> RunningStandin:
    """Start ``python -m dev.airbyte_standin`` with ``config``, its output appended to
    ``log_file``."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    with open(log_file, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "dev.airbyte_standin", *cli_args(config)],
            cwd=REPO_ROOT,
            env=env,
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return RunningStandin(
        url=f"http://{config.host}:{config.port}", config=config, process=process, log_file=log_file
    )


def cli_args(config: StandinConfig) -> list[str]:
    """Command-line arguments reproducing ``config`` for ``python -m dev.airbyte_standin``."""
    args = [
        f"--host={config.host}",
        f"--port={config.port}",
        f"--auth={config.auth}",
        f"--username={config.username}",
        f"--password={config.password}",
        f"--client-id={config.client_id}",
        f"--client-secret={config.client_secret}",
        f"--token-expires-in={config.token_expires_in}",
        f"--pending-seconds={config.pending_seconds}",
        f"--running-seconds={config.running_seconds}",
        f"--rows-per-stream={config.rows_per_stream}",
        f"--warehouse-url={config.warehouse_url}",
        f"--tick-seconds={config.tick_seconds}",
        f"--connections={config.extra_connections}",
        *([f"--state-url={config.state_url}"] if config.state_url else []),
        "--validate-contract" if config.validate_contract else "--no-validate-contract",
    ]
    if config.notification_url:
        args.append(f"--notification-url={config.notification_url}")
    return args + [f"--fault={json.dumps(fault)}" for fault in config.faults]


@contextmanager
def run_standin_process(
    config: StandinConfig | None = None, port: int | None = None, log_file: Path | None = None
) -> Iterator[RunningStandin]:
    """Run ``python -m dev.airbyte_standin`` in its own process group; kill the group on exit.

    Listens on ``port`` (a free one if None; pass the old port to restart "the same server").
    ``running.process`` is the Popen, so a test may kill the server on purpose. Its output goes
    to ``log_file`` (appended; a temporary file if None), whose tail a failed start shows.
    """
    if log_file is None:
        handle, name = tempfile.mkstemp(prefix="standin-", suffix=".log")
        os.close(handle)
        log_file = Path(name)
    # A free port may be taken by another starting server before this one binds it: then the
    # process exits, and another free port is tried.
    for tries_left in reversed(range(1 if port else PORT_TRIES)):
        running = _start(replace(config or StandinConfig(), port=port or free_port()), log_file)
        try:
            wait_until_healthy(running.url, process=running.process)
            break
        except StandinExited as error:
            if not tries_left:
                raise StandinStartError(f"{error}; its output:\n{tail(log_file)}") from None
        except TimeoutError as error:
            stop_process_groups([running.process], timeout=STOP_TIMEOUT)
            raise StandinStartError(f"{error}; its output:\n{tail(log_file)}") from None
    config, process = running.config, running.process
    try:
        yield running
        if config.validate_contract and process.poll() is None:
            running.assert_contract_kept()
    finally:
        stop_process_groups([process], timeout=STOP_TIMEOUT)
