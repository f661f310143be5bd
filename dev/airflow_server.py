"""A real local Airflow 3 on loopback: `make airflow`, and the session Airflow of the tests.

``run_airflow(environment, executor=...)`` migrates the SQLite metadata database of the
Airflow home in ``environment`` and starts the four Airflow 3 components as separate
processes: ``api-server`` (REST API v2 and the UI, bound to 127.0.0.1), ``scheduler``,
``dag-processor`` and ``triggerer``, plus whatever the executor needs (``EXECUTORS``: the
default ``local`` is the LocalExecutor, which Airflow 3 runs on SQLite, as ``airflow
standalone`` does; ``celery`` adds a Celery worker, see ``dev.celery_executor``). Each one
runs in its own process group, so stopping kills the whole group (task supervisors and
executor workers included): SIGTERM, a bounded wait, then SIGKILL. Nothing is left running
and no port stays bound.

Auth is Airflow 3's default SimpleAuthManager with one known user (``admin``/``admin`` by
default) whose password is written to the passwords file beforehand; API clients get a JWT
from ``POST /auth/token``.

``python -m dev.airflow_server`` (``make airflow``) starts the Airbyte stand-in and this
Airflow with its UI on http://127.0.0.1:8080 (``AIRFLOW_PORT`` changes the port) and runs
until Ctrl-C; ``EXECUTOR=celery`` runs it on CeleryExecutor with a local Redis broker.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from dev.airbyte_standin.testing import free_port, wait_until
from dev.celery_executor import CELERY_SETTINGS, CELERY_WORKER_ARGS, RedisError, run_redis
from dev.environment import REPO
from webhook.airflow_client import jwt_expiry

SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)
#: Command lines. The scheduler and triggerer would also start `serve-logs` on 0.0.0.0:8793
#: and :8794; the API server reads the task logs from the shared local log folder instead.
COMPONENT_ARGS: dict[str, Callable[[int], list[str]]] = {
    "api-server": lambda port: ["api-server", "--host", "127.0.0.1", "--port", str(port)],
    "scheduler": lambda port: ["scheduler", "--skip-serve-logs"],
    "dag-processor": lambda port: ["dag-processor"],
    "triggerer": lambda port: ["triggerer", "--skip-serve-logs"],
}


@dataclass(frozen=True)
class Executor:
    """How to run one executor: its Airflow settings and any components of its own."""

    settings: dict[str, str]
    components: dict[str, Callable[[int], list[str]]] = field(default_factory=dict)


#: The executors ``run_airflow`` can start, by name. ``celery`` needs its broker in the
#: environment (``dev.celery_executor.run_redis(...).settings()``).
EXECUTORS: dict[str, Executor] = {
    "local": Executor(settings={"AIRFLOW__CORE__EXECUTOR": "LocalExecutor"}),
    "celery": Executor(
        settings=CELERY_SETTINGS, components={"celery-worker": lambda port: CELERY_WORKER_ARGS}
    ),
}
DEFAULT_EXECUTOR = "local"
MIGRATE_TIMEOUT = 180.0
START_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0
REQUEST_TIMEOUT = 30.0
TERMINAL_RUN_STATES = {"success", "failed"}
#: The local login (SimpleAuthManager, role admin); only ever served on 127.0.0.1.
DEFAULT_USERNAME = "admin"
DEFAULT_PASSWORD = "admin"


class AirflowStartError(RuntimeError):
    """An Airflow component died or did not become healthy in time."""


def server_environment(
    environment: dict[str, str],
    port: int,
    *,
    executor: str = DEFAULT_EXECUTOR,
    username: str = DEFAULT_USERNAME,
    password: str = DEFAULT_PASSWORD,
) -> dict[str, str]:
    """The Airflow settings ``run_airflow`` adds to ``environment`` (see the module docstring).

    Writes the SimpleAuthManager passwords file into the Airflow home.
    """
    home = Path(environment["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    passwords = home / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({username: password}) + "\n", encoding="utf-8")
    passwords.chmod(0o600)
    base_url = f"http://127.0.0.1:{port}"
    return {
        **environment,
        **EXECUTORS[executor].settings,
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        # Auth: SimpleAuthManager with a known user; one JWT secret shared by all components.
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{username}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        # API server: loopback only, one worker.
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__EXPOSE_CONFIG": "False",
        # Fast local loops: a triggered run starts within a second or two.
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
        "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
    }


def _stop_groups(processes: dict[str, subprocess.Popen], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM every process group, wait up to ``timeout``, then SIGKILL what is left."""

    def alive(process: subprocess.Popen) -> bool:
        process.poll()  # reap the group leader once it exits
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # pragma: no cover - only other users' processes
            return False
        return True

    def signal_group(process: subprocess.Popen, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)

    for process in processes.values():
        signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in processes.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    for process in processes.values():
        if alive(process):
            signal_group(process, signal.SIGKILL)
    for process in processes.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
    # Group members orphaned by the leader are reaped by init; give them a moment.
    with contextlib.suppress(TimeoutError):
        wait_until(
            lambda: not any(alive(p) for p in processes.values()),
            timeout=5,
            interval=0.1,
            what="Airflow process groups gone",
        )


@dataclass
class AirflowServer:
    """A running local Airflow; every helper talks to its REST API v2 over real HTTP."""

    url: str
    username: str
    password: str
    home: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)
    log_files: dict[str, Path] = field(default_factory=dict, repr=False)
    #: Each component's command line (without ``airflow``) and the environment it runs in.
    commands: dict[str, list[str]] = field(default_factory=dict, repr=False)
    env: dict[str, str] = field(default_factory=dict, repr=False)
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

    def stop(self) -> None:
        """Stop every component's process group (idempotent)."""
        _stop_groups(self.processes)

    def start_component(self, name: str) -> subprocess.Popen:
        """Start component ``name`` in its own process group, its output appended to its log."""
        log_file = self.home / "processes" / f"{name}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "airflow", *self.commands[name]],
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes[name], self.log_files[name] = process, log_file
        return process

    def kill_component(self, name: str) -> None:
        """SIGKILL component ``name``'s whole process group (its task processes too)."""
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        _stop_groups({name: process})


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _wait_healthy(server: AirflowServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        for name, process in server.processes.items():
            if process.poll() is not None:
                raise AirflowStartError(
                    f"airflow {name} exited with {process.returncode}:\n"
                    + _tail(server.log_files[name])
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
    username: str = DEFAULT_USERNAME,
    password: str = DEFAULT_PASSWORD,
    start_timeout: float = START_TIMEOUT,
) -> Iterator[AirflowServer]:
    """Migrate the metadata DB, start the components, yield when all are healthy.

    ``environment`` comes from ``dev.environment.airflow_environment``; the process's own
    environment is the base (PATH and the like), less its ``AIRFLOW_*``/``AIRBYTE_*`` keys.
    ``executor`` names an entry of ``EXECUTORS``. On exit every component's process group is
    stopped, whatever happened in the body.
    """
    port = port or free_port()
    settings = server_environment(
        environment, port, executor=executor, username=username, password=password
    )
    # This process's Airflow/Airbyte settings (a test session's, say) must not leak in.
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW_", "AIRFLOW__", "AIRBYTE_"))
    }
    env = {**inherited, **settings}
    home = Path(settings["AIRFLOW_HOME"])
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
    components = {**COMPONENT_ARGS, **EXECUTORS[executor].components}
    server = AirflowServer(
        url=f"http://127.0.0.1:{port}",
        username=username,
        password=password,
        home=home,
        commands={name: args(port) for name, args in components.items()},
        env=env,
    )
    try:
        for name in server.commands:
            server.start_component(name)
        _wait_healthy(server, start_timeout)
        yield server
    finally:
        server.stop()


def main() -> int:
    from dev.airbyte_standin.seed import CONNECTIONS_BY_ID
    from dev.airbyte_standin.testing import quick_config, run_standin_process
    from dev.environment import AIRFLOW_HOME, airflow_environment

    port = int(os.environ.get("AIRFLOW_PORT", "8080"))
    executor = os.environ.get("EXECUTOR", DEFAULT_EXECUTOR)
    if executor not in EXECUTORS:
        print(f"==> EXECUTOR={executor}: use one of {', '.join(EXECUTORS)}", file=sys.stderr)
        return 2
    AIRFLOW_HOME.mkdir(exist_ok=True)
    # Ctrl-C and SIGTERM both unwind through the context managers below.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    config = quick_config(AIRFLOW_HOME, pending_seconds=0.5, running_seconds=3, rows_per_stream=50)
    print("==> Starting the local Airbyte stand-in", flush=True)
    try:
        with run_standin_process(config) as standin:
            print(f"==> Airbyte stand-in at {standin.url}", flush=True)
            print(f"==> Starting Airflow (home {AIRFLOW_HOME}); this takes ~30 s", flush=True)
            environment = airflow_environment(standin.url, AIRFLOW_HOME)
            broker = run_redis(AIRFLOW_HOME / "redis") if executor == "celery" else None
            with broker or contextlib.nullcontext() as redis:
                if redis is not None:
                    print(f"==> CeleryExecutor, Redis broker at {redis.url}", flush=True)
                    environment.update(redis.settings())
                with run_airflow(environment, port=port, executor=executor) as airflow:
                    airflow.unpause("airbyte_event_driven_sync")
                    _print_banner(airflow, standin.url, CONNECTIONS_BY_ID)
                    while all(p.poll() is None for p in airflow.processes.values()):
                        time.sleep(1)
                    dead = [n for n, p in airflow.processes.items() if p.poll() is not None]
                    print(f"==> airflow {', '.join(dead)} exited; see {airflow.home}/processes/")
                    return 1
    except KeyboardInterrupt:
        print("\n==> Stopped Airflow and the stand-in", flush=True)
        return 0
    except (AirflowStartError, RedisError) as error:
        print(f"==> {error}", file=sys.stderr)
        return 1


def _print_banner(airflow: AirflowServer, standin_url: str, connections: dict) -> None:
    stripe = next(c for c in connections.values() if "stripe" in c.name.lower())
    print(
        f"""
Airflow UI     {airflow.url}   (login {airflow.username} / {airflow.password})
Airbyte        {standin_url}   (stand-in, basic auth airbyte / password)
Component logs {airflow.home}/processes/
Airbyte connection ids:""",
        flush=True,
    )
    for connection_id, connection in connections.items():
        print(f"  {connection.name:<28} {connection_id}")
    print(
        f"""
Trigger the event-driven DAG (unpaused) through the REST API:

  TOKEN=$(curl -s -X POST {airflow.url}/auth/token -H 'Content-Type: application/json' \\
    -d '{{"username": "{airflow.username}", "password": "{airflow.password}"}}' \\
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -s -X POST {airflow.url}/api/v2/dags/airbyte_event_driven_sync/dagRuns \\
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
    -d '{{"logical_date": null, "conf": {{"connection_id": "{stripe.connection_id}"}}}}'

Ctrl-C stops everything.""",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
