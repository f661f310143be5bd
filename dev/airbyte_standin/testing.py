"""Run the stand-in for tests: in a background thread or as a subprocess, with admin helpers."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import requests
import uvicorn

from dev.airbyte_standin.app import create_app
from dev.airbyte_standin.config import StandinConfig

REPO_ROOT = Path(__file__).resolve().parents[2]


START_TIMEOUT = 20.0
QUICK = {"pending_seconds": 0.05, "running_seconds": 0.15, "rows_per_stream": 20}
ADMIN_TIMEOUT = 10.0


def quick_config(directory: Path, **overrides: Any) -> StandinConfig:
    """A fast-cycling config (0.05 s pending, 0.15 s running, 20 rows) with a SQLite warehouse
    at ``directory/warehouse.db``; ``overrides`` replace any setting."""
    settings = {**QUICK, "warehouse_url": f"sqlite:///{directory / 'warehouse.db'}", **overrides}
    return StandinConfig(**settings)


@dataclass
class RunningStandin:
    """A started stand-in; every helper talks to it over real HTTP."""

    url: str
    config: StandinConfig
    process: subprocess.Popen | None = field(default=None, repr=False)
    log_file: Path | None = field(default=None, repr=False)
    #: What admin calls verify the server's certificate against (its CA bundle under TLS).
    verify: str | bool = True

    @property
    def warehouse_url(self) -> str:
        return self.config.warehouse_url

    @property
    def config_api_url(self) -> str:
        """Base of the Configuration API, e.g. ``http://127.0.0.1:PORT/api/v1``."""
        return f"{self.url}/api/v1"

    @property
    def public_api_url(self) -> str:
        """Base of the Public API, e.g. ``http://127.0.0.1:PORT/api/public/v1``."""
        return f"{self.url}/api/public/v1"

    def _admin(self, method: str, path: str, payload: dict | None = None) -> Any:
        response = requests.request(
            method,
            f"{self.url}/_standin{path}",
            json=payload,
            timeout=ADMIN_TIMEOUT,
            verify=self.verify,
        )
        response.raise_for_status()
        return response.json()

    def inject(self, kind: str, **settings: Any) -> list[dict[str, Any]]:
        """Queue a fault (status/hang/drop/lost_response/malformed/missing_fields)."""
        return self._admin("POST", "/faults", {"kind": kind, **settings})["faults"]

    def set_job_behaviour(
        self,
        behaviour: str,
        connection_id: str | None = None,
        count: int = 1,
        failure_reason: str | None = None,
    ) -> None:
        """Make the next ``count`` jobs (on ``connection_id`` if given) behave so."""
        self._admin(
            "POST",
            "/job-behaviour",
            {
                "behaviour": behaviour,
                "connection_id": connection_id,
                "count": count,
                "failure_reason": failure_reason,
            },
        )

    def clear_faults(self) -> int:
        """Drop every queued fault; returns how many there were."""
        return self._admin("DELETE", "/faults")["cleared"]

    def set_durations(
        self, pending_seconds: float | None = None, running_seconds: float | None = None
    ) -> dict[str, float]:
        """Change how long jobs stay pending and running (jobs in flight too)."""
        settings = {"pending_seconds": pending_seconds, "running_seconds": running_seconds}
        given = {key: value for key, value in settings.items() if value is not None}
        return self._admin("POST", "/durations", given)

    def expire_tokens(self) -> int:
        """Expire every issued bearer token now."""
        return self._admin("POST", "/tokens/expire")["expired"]

    def requests(self) -> list[dict[str, Any]]:
        """``{method, path, status, fault}`` of every API request served since the last reset."""
        return self._admin("GET", "/requests")

    def jobs(self) -> list[dict[str, Any]]:
        """Summaries of all jobs: id, connection_id, job_type, status, attempts, ..."""
        return self._admin("GET", "/jobs")

    def contract_violations(self, clear: bool = False) -> list[dict[str, Any]]:
        """Contract violations found so far (and forget them if ``clear``)."""
        return self._admin("GET", f"/contract-violations?clear={str(clear).lower()}")

    def take_contract_violations(self) -> list[dict[str, Any]]:
        """Violations found so far, forgetting them (for tests that send bad requests)."""
        return self.contract_violations(clear=True)

    def notify_to(self, url: str | None, drop: int = 0) -> dict[str, Any]:
        """POST sync notifications to ``url`` from now on, losing the next ``drop`` of them."""
        return self._admin("PUT", "/notifications", {"url": url, "drop": drop})

    def notifications_sent(self) -> list[dict[str, Any]]:
        """``{job_id, success, status}`` of every notification sent (or dropped)."""
        return self._admin("GET", "/notifications")

    def reset(self) -> None:
        """Clear faults, behaviours, the request log, violations and jobs (not the warehouse)."""
        self._admin("POST", "/reset")

    def auth_headers(self) -> dict[str, str]:
        """An Authorization header valid for the configured auth mode (fetches a token)."""
        cfg = self.config
        if cfg.auth == "basic":
            raw = base64.b64encode(f"{cfg.username}:{cfg.password}".encode()).decode()
            return {"Authorization": f"Basic {raw}"}
        if cfg.auth == "token":
            response = requests.post(
                f"{self.config_api_url}/applications/token",
                json={"client_id": cfg.client_id, "client_secret": cfg.client_secret},
                timeout=ADMIN_TIMEOUT,
            )
            response.raise_for_status()
            return {"Authorization": f"Bearer {response.json()['access_token']}"}
        return {}

    def assert_contract_kept(self) -> None:
        """Raise AssertionError listing every contract violation found so far."""
        violations = self.contract_violations()
        if violations:
            lines = [
                f"{v['side']} {v['method']} {v['path']} -> {v['status']}: {v['message']}"
                for v in violations
            ]
            raise AssertionError("Airbyte contract violated:\n" + "\n".join(lines))


def wait_until(
    predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02, what: str = ""
) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned), or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s: {what or predicate!r}")
        time.sleep(interval)


def wait_until_healthy(
    url: str,
    timeout: float = START_TIMEOUT,
    process: subprocess.Popen | None = None,
    verify: str | bool = True,
) -> None:
    """Poll ``GET /api/v1/health`` until it answers 200, or raise TimeoutError (StandinExited
    if ``process`` ends first). ``verify``: the CA bundle of a TLS stand-in."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise StandinExited(f"the stand-in at {url} exited with {process.returncode}")
        try:
            if requests.get(f"{url}/api/v1/health", timeout=1, verify=verify).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"stand-in at {url} not healthy after {timeout} s")
        time.sleep(0.02)


def _bound_socket(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


@contextmanager
def run_standin(
    config: StandinConfig | None = None, tls: tuple[Path, Path, Path] | None = None
) -> Iterator[RunningStandin]:
    """Serve the stand-in from a background thread on a free loopback port.

    ``tls``: (certificate, key, CA bundle) files to serve HTTPS with. On exit the server stops
    and, if contract validation is on and the body did not raise, an AssertionError lists any
    contract violation.
    """
    sock = _bound_socket((config or StandinConfig()).host)
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
        *([f"--state-url={config.state_url}"] if config.state_url else []),
        "--validate-contract" if config.validate_contract else "--no-validate-contract",
    ]
    if config.notification_url:
        args.append(f"--notification-url={config.notification_url}")
    return args + [f"--fault={json.dumps(fault)}" for fault in config.faults]


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now (may race with other processes; fine on loopback in tests)."""
    with _bound_socket(host) as sock:
        return sock.getsockname()[1]


@contextmanager
def run_standin_process(
    config: StandinConfig | None = None, port: int | None = None, log_file: Path | None = None
) -> Iterator[RunningStandin]:
    """Run ``python -m dev.airbyte_standin`` in its own process group; kill the group on exit.

    Listens on ``port`` (a free one if None; pass the old port to restart "the same server").
    ``running.process`` is the Popen, so a test may kill the server on purpose. Its output goes
    to ``log_file`` (appended; a temporary file if None), whose tail a failed start shows.
    """
    config = replace(config or StandinConfig(), port=port or free_port())
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    if log_file is None:
        handle, name = tempfile.mkstemp(prefix="standin-", suffix=".log")
        os.close(handle)
        log_file = Path(name)
    with open(log_file, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "dev.airbyte_standin", *cli_args(config)],
            cwd=REPO_ROOT,
            env=env,
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    running = RunningStandin(
        url=f"http://{config.host}:{config.port}",
        config=config,
        process=process,
        log_file=log_file,
    )
    try:
        try:
            wait_until_healthy(running.url, process=process)
        except (TimeoutError, StandinExited) as error:
            raise StandinStartError(f"{error}; its output:\n{tail(log_file)}") from None
        yield running
        if config.validate_contract and process.poll() is None:
            running.assert_contract_kept()
    finally:
        _stop_group(process)


class StandinExited(RuntimeError):
    """The stand-in process ended while it was expected to serve."""


class StandinStartError(RuntimeError):
    """The stand-in process did not come up; the message ends with its output."""


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file ("" if it cannot be read)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop_group(process: subprocess.Popen) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
