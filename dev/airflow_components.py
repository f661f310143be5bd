"""A real local Airflow 3 on loopback: the session Airflow of the tests, run by ``make airflow``.

``run_airflow(environment, executor=...)`` migrates the SQLite metadata database of the
Airflow home in ``environment`` and starts the Airflow 3 components (``dev.airflow_settings``:
``api-server`` on 127.0.0.1, ``scheduler``, ``dag-processor``, ``triggerer`` and whatever the
executor needs) as separate processes, each in its own process group, so stopping kills the
whole group (task supervisors and executor workers included) with
``dev.processes.stop_process_groups``: nothing is left running and no port stays bound. A
triggerer always runs, so operators defer by default.

``AirflowServer`` is the handle: REST API v2 helpers (a JWT from ``POST /auth/token``) and the
components' processes (start, kill, restart the dead ones, give up on one that keeps dying).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from dev.airflow_settings import (
    DEFAULT_EXECUTOR,
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    component_args,
    server_environment,
)
from dev.environment import REPO
from dev.processes import free_port, stop_process_groups, tail, wait_until
from include.connections import FILE_VARIABLE, Pool, load_connections
from include.receiver.airflow_client import jwt_expiry

#: A component restarted this often within RESTART_WINDOW seconds is given up on.
MAX_RESTARTS = 5
RESTART_WINDOW = 120.0
MIGRATE_TIMEOUT = 180.0
START_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0
REQUEST_TIMEOUT = 30.0
TERMINAL_RUN_STATES = {"success", "failed"}


class AirflowStartError(RuntimeError):
    """An Airflow component died or did not become healthy in time."""


@dataclass
class AirflowServer:
    """A running local Airflow; every helper talks to its REST API v2 over real HTTP."""

    url: str
    username: str
    password: str
    home: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)
    log_files: dict[str, Path] = field(default_factory=dict, repr=False)
    #: Each component's command line and the environment it runs in.
    commands: dict[str, list[str]] = field(default_factory=dict, repr=False)
    env: dict[str, str] = field(default_factory=dict, repr=False)
    restarts: dict[str, list[float]] = field(default_factory=dict, repr=False)
    _token: str | None = field(default=None, repr=False)
    _token_expiry: float = field(default=0.0, repr=False)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def token(self) -> str:
        """A JWT from ``POST /auth/token``, cached until a minute before it expires."""
        if self._token is None or time.time() > self._token_expiry - 60:
            response = requests.post(
                f"{self.url}/auth/token",
                json={"username": self.username, "password": self.password},
                timeout=REQUEST_TIMEOUT,
            )
            response.raise_for_status()
            self._token = response.json()["access_token"]
            self._token_expiry = jwt_expiry(self._token)
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call ``{url}/api/v2{path}`` with a bearer token; the response is returned as is."""
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        timeout = kwargs.pop("timeout", REQUEST_TIMEOUT)
        url = f"{self.url}/api/v2{path}"
        return requests.request(method, url, headers=headers, timeout=timeout, **kwargs)

    def _ok(self, response: requests.Response) -> dict[str, Any]:
        if response.status_code >= 400:
            raise RuntimeError(
                f"Airflow {response.request.method} {response.url} -> "
                f"{response.status_code}: {response.text[:500]}"
            )
        return response.json()

    def health(self) -> dict[str, Any]:
        """``GET /api/v2/monitor/health`` (no auth needed)."""
        response = requests.get(f"{self.url}/api/v2/monitor/health", timeout=5)
        response.raise_for_status()
        return response.json()

    def wait_for_dag(self, dag_id: str, timeout: float = 90.0) -> dict[str, Any]:
        """Wait until the dag-processor has parsed ``dag_id``; returns the DAG."""
        return wait_until(
            lambda: (r := self.api("GET", f"/dags/{dag_id}")).status_code == 200 and r.json(),
            timeout=timeout,
            interval=0.5,
            what=f"DAG {dag_id} parsed",
        )

    def unpause(self, dag_id: str) -> dict[str, Any]:
        """Unpause ``dag_id`` (waiting for it to be parsed first)."""
        self.wait_for_dag(dag_id)
        return self._ok(self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False}))

    def trigger(
        self, dag_id: str, conf: dict[str, Any] | None = None, dag_run_id: str | None = None
    ) -> dict[str, Any]:
        """Create a manual run of ``dag_id`` with ``conf``; returns the DAG run."""
        body: dict[str, Any] = {"logical_date": None, "conf": conf or {}}
        if dag_run_id is not None:
            body["dag_run_id"] = dag_run_id
        return self._ok(self.api("POST", f"/dags/{dag_id}/dagRuns", json=body))

    def get_run(self, dag_id: str, run_id: str) -> dict[str, Any] | None:
        """The DAG run, or None if it does not exist."""
        response = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
        if response.status_code == 404:
            return None
        return self._ok(response)

    def list_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self._ok(self.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100}))[
            "dag_runs"
        ]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        return self._ok(self.api("GET", path))["task_instances"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until the run is ``success`` or ``failed``; returns it (raises TimeoutError)."""

        def finished() -> dict[str, Any] | None:
            run = self.get_run(dag_id, run_id)
            return run if run and run["state"] in TERMINAL_RUN_STATES else None

        try:
            return wait_until(finished, timeout=timeout, interval=0.5, what=f"{dag_id} {run_id}")
        except TimeoutError as error:
            states = {t["task_id"]: t["state"] for t in self.task_instances(dag_id, run_id)}
            raise TimeoutError(f"{error}; task states {states}") from None

    def set_pool(self, pool: Pool) -> dict[str, Any]:
        """Create or resize ``pool``, counting deferred tasks (``include_deferred``)."""
        body = {
            "name": pool.name,
            "slots": pool.slots,
            "description": pool.description,
            "include_deferred": True,
        }
        response = self.api("PATCH", f"/pools/{pool.name}", json=body)
        if response.status_code == 404:
            response = self.api("POST", "/pools", json=body)
        return self._ok(response)

    def stop(self) -> None:
        """Stop every component's process group (idempotent)."""
        stop_process_groups(self.processes.values(), timeout=STOP_TIMEOUT)

    # --- components ------------------------------------------------------------------------

    def start_component(self, name: str) -> subprocess.Popen:
        """Start component ``name`` in its own process group, its output appended to its log."""
        log_file = self.home / "processes" / f"{name}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "ab") as log:
            process = subprocess.Popen(
                self.commands[name],
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes[name], self.log_files[name] = process, log_file
        return process

    def kill_component(self, name: str, signum: int = signal.SIGKILL) -> None:
        """Send ``signum`` to component ``name``'s process group; wait until it is gone."""
        stop_process_groups([self.processes[name]], timeout=STOP_TIMEOUT, first_signal=signum)

    def dead_components(self) -> dict[str, int]:
        """The components whose process has exited, with their exit codes."""
        return {name: code for name, p in self.processes.items() if (code := p.poll()) is not None}

    def restart_dead(self, log: Callable[[str], object] = print) -> list[str]:
        """Restart every component that exited (saying so through ``log``); returns their names.

        Raises AirflowStartError, with the component's output, when one has been restarted
        ``MAX_RESTARTS`` times within ``RESTART_WINDOW`` seconds: it will not get better.
        """
        restarted = []
        for name, code in self.dead_components().items():
            what, log_file = f"airflow {name}", self.log_files[name]
            self.restarts[name] = note_restart(self.restarts.get(name, []), what, code, log_file)
            # its task processes too
            stop_process_groups([self.processes[name]], timeout=STOP_TIMEOUT)
            log(f"==> {what} exited with {code}; restarting it (log {log_file})")
            self.start_component(name)
            restarted.append(name)
        return restarted


def note_restart(history: list[float], what: str, code: int, log_file: Path) -> list[float]:
    """``history`` of restarts plus one now; AirflowStartError (with the output in
    ``log_file``) once ``what`` has died ``MAX_RESTARTS`` times within ``RESTART_WINDOW``."""
    now = time.monotonic()
    recent = [t for t in history if now - t < RESTART_WINDOW]
    if len(recent) >= MAX_RESTARTS:
        raise AirflowStartError(
            f"{what} exited with {code} {len(recent) + 1} times within "
            f"{RESTART_WINDOW:.0f} s; giving up. Its output:\n{tail(log_file)}"
        )
    return [*recent, now]


def _wait_healthy(server: AirflowServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        for name, process in server.processes.items():
            if process.poll() is not None:
                raise AirflowStartError(
                    f"airflow {name} exited with {process.returncode}:\n"
                    + tail(server.log_files[name])
                )
        try:
            last = server.health()
            statuses = [last.get(part, {}).get("status") for part in last]
            if statuses and all(status == "healthy" for status in statuses):
                return
        except (requests.RequestException, ValueError, AttributeError):
            pass
        time.sleep(0.5)
    raise AirflowStartError(f"Airflow at {server.url} not healthy after {timeout} s: {last}")


@contextlib.contextmanager
def run_airflow(
    environment: dict[str, str],
    *,
    port: int | None = None,
    executor: str = DEFAULT_EXECUTOR,
    overrides: dict[str, str] | None = None,
    username: str = DEFAULT_USERNAME,
    password: str = DEFAULT_PASSWORD,
    start_timeout: float = START_TIMEOUT,
) -> Iterator[AirflowServer]:
    """Migrate the metadata DB, start the components, yield when all are healthy.

    ``environment`` comes from ``dev.environment.airflow_environment``; the process's own
    environment is the base (PATH and the like), less its ``AIRFLOW_*``/``AIRBYTE_*`` keys.
    ``executor`` names an entry of ``dev.airflow_settings.EXECUTORS``; ``overrides``
    (``AIRFLOW__*`` settings) win over every other setting. On exit every component's process
    group is stopped, whatever happened in the body.
    """
    port = port or free_port()
    settings = server_environment(
        environment,
        port,
        executor=executor,
        overrides=overrides,
        username=username,
        password=password,
    )
    env = {**_inherited_environment(), **settings}
    _migrate_metadata_db(env)
    components = component_args(executor)
    server = AirflowServer(
        url=f"http://127.0.0.1:{port}",
        username=username,
        password=password,
        home=Path(settings["AIRFLOW_HOME"]),
        commands={
            name: [sys.executable, "-m", "airflow", *args(port)]
            for name, args in components.items()
        },
        env=env,
    )
    try:
        for name in components:
            server.start_component(name)
        _wait_healthy(server, start_timeout)
        file = env.get(FILE_VARIABLE)  # the connections file the components read
        server.set_pool(load_connections(Path(file) if file else None).pool)
        yield server
    finally:
        server.stop()


def _inherited_environment() -> dict[str, str]:
    """This process's environment (PATH and the like) less its Airflow/Airbyte settings: a
    test session's, say, must not leak into the components."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW_", "AIRFLOW__", "AIRBYTE_"))
    }


def _migrate_metadata_db(env: dict[str, str]) -> None:
    """``airflow db migrate`` in ``env``; AirflowStartError with its stderr if it fails."""
    migrate = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=MIGRATE_TIMEOUT,
        check=False,
    )
    if migrate.returncode != 0:
        raise AirflowStartError(f"airflow db migrate failed:\n{migrate.stderr[-3000:]}")
