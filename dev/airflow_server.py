"""A real local Airflow 3 on loopback: `make airflow`, and the session Airflow of the tests.

``run_airflow(environment, executor=...)`` migrates the SQLite metadata database of the
Airflow home in ``environment`` and starts the Airflow 3 components as separate processes:
``api-server`` (REST API v2 and the UI, bound to 127.0.0.1), ``scheduler``, ``dag-processor``
and ``triggerer``, plus whatever the executor needs (``EXECUTORS``: the default ``local`` is
the LocalExecutor, which Airflow 3 runs on SQLite, as ``airflow standalone`` does; ``celery``
adds a Celery worker, see ``dev.celery_executor``). Each one
runs in its own process group, so stopping kills the whole group (task supervisors and
executor workers included): SIGTERM, a bounded wait, then SIGKILL. Nothing is left running
and no port stays bound. A triggerer always runs, so operators defer by default
(``[operators] default_deferrable`` from ``dev.environment``).

Auth is Airflow 3's default SimpleAuthManager with one known user (``admin``/``admin`` by
default) whose password is written to the passwords file beforehand; API clients get a JWT
from ``POST /auth/token``.

``python -m dev.airflow_server`` (``make airflow``) starts the Airbyte stand-in and this
Airflow with its UI on http://127.0.0.1:8080 (``AIRFLOW_PORT`` changes the port) and runs
until Ctrl-C, as a small supervisor: ``AIRFLOW__*`` variables of the caller's environment
override the local settings, and a component (or the stand-in) that dies is restarted and
logged, not the whole stack stopped; one that keeps dying stops everything with its output.
``EXECUTOR=celery`` runs it on CeleryExecutor with a local Redis broker.
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

from dev.airbyte_standin.config import StandinConfig
from dev.airbyte_standin.testing import (
    RunningStandin,
    free_port,
    run_standin_process,
    tail,
    wait_until,
)
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
#: How often ``make airflow`` looks for dead components.
SUPERVISE_INTERVAL = 1.0
#: A component restarted this often within RESTART_WINDOW seconds is given up on.
MAX_RESTARTS = 5
RESTART_WINDOW = 120.0
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
    overrides: dict[str, str] | None = None,
    username: str = DEFAULT_USERNAME,
    password: str = DEFAULT_PASSWORD,
) -> dict[str, str]:
    """The Airflow settings ``run_airflow`` adds to ``environment`` (see the module docstring);
    ``overrides`` win over all of them.

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
        **(overrides or {}),
    }


def _stop_groups(
    processes: dict[str, subprocess.Popen],
    timeout: float = STOP_TIMEOUT,
    first_signal: int = signal.SIGTERM,
) -> None:
    """``first_signal`` (SIGTERM) to every process group, wait up to ``timeout``, then SIGKILL
    what is left."""

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
        signal_group(process, first_signal)
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

    def stop(self) -> None:
        """Stop every component's process group (idempotent)."""
        _stop_groups(self.processes)

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
        _stop_groups({name: self.processes[name]}, first_signal=signum)

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
            _stop_groups({name: self.processes[name]})  # its task processes too
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
    ``executor`` names an entry of ``EXECUTORS``; ``overrides`` (``AIRFLOW__*`` settings) win
    over every other setting. On exit every component's process group is stopped, whatever
    happened in the body.
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
        yield server
    finally:
        server.stop()


def main() -> int:
    from dev.airbyte_standin.seed import CONNECTIONS_BY_ID
    from dev.airbyte_standin.testing import StandinStartError, quick_config
    from dev.environment import AIRFLOW_HOME, airflow_environment, caller_overrides

    port = int(os.environ.get("AIRFLOW_PORT", "8080"))
    executor = os.environ.get("EXECUTOR", DEFAULT_EXECUTOR)
    if executor not in EXECUTORS:
        print(f"==> EXECUTOR={executor}: use one of {', '.join(EXECUTORS)}", file=sys.stderr)
        return 2
    AIRFLOW_HOME.mkdir(exist_ok=True)
    # Ctrl-C and SIGTERM both unwind through the context managers below.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    config = quick_config(
        AIRFLOW_HOME,
        pending_seconds=0.5,
        running_seconds=3,
        rows_per_stream=50,
        state_url=f"sqlite:///{AIRFLOW_HOME / 'standin-state.db'}",
    )
    token = os.environ.get("AIRBYTE_NOTIFICATION_TOKEN")
    if token:  # `make webhook` with the same token receives the stand-in's notifications
        receiver = f"http://127.0.0.1:{os.environ.get('WEBHOOK_PORT', '8090')}"
        config.notification_url = f"{receiver}/airbyte/notifications/{token}"
    overrides = caller_overrides()
    for key in sorted(overrides):
        print(f"==> {key} from your environment overrides the local setting", flush=True)
    try:
        with contextlib.ExitStack() as stack:
            standin = SupervisedStandin(stack, config, AIRFLOW_HOME / "processes" / "standin.log")
            print(f"==> Airbyte stand-in at {standin.url}", flush=True)
            print(f"==> Starting Airflow (home {AIRFLOW_HOME}); this takes ~30 s", flush=True)
            environment = airflow_environment(standin.url, AIRFLOW_HOME)
            if executor == "celery":
                redis = stack.enter_context(run_redis(AIRFLOW_HOME / "redis"))
                print(f"==> CeleryExecutor, Redis broker at {redis.url}", flush=True)
                environment.update(redis.settings())
            airflow = stack.enter_context(
                run_airflow(environment, port=port, executor=executor, overrides=overrides)
            )
            for dag_id in ("airbyte_event_driven_sync", "airbyte_stripe_quality"):
                airflow.unpause(dag_id)
            _print_banner(airflow, standin.url, CONNECTIONS_BY_ID)
            while True:
                time.sleep(SUPERVISE_INTERVAL)
                airflow.restart_dead()
                standin.restart_if_dead()
    except KeyboardInterrupt:
        print("\n==> Stopped Airflow and the stand-in", flush=True)
        return 0
    except (AirflowStartError, StandinStartError, RedisError) as error:
        print(f"==> {error}", file=sys.stderr)
        return 1


class SupervisedStandin:
    """The stand-in process of ``make airflow``: restarted on the same port when it dies; its
    jobs survive in its state database."""

    def __init__(self, stack: contextlib.ExitStack, config: StandinConfig, log_file: Path):
        self.stack, self.config, self.log_file = stack, config, log_file
        log_file.parent.mkdir(parents=True, exist_ok=True)
        self.restarts: list[float] = []
        self.running = self._start(port=None)
        self.url = self.running.url

    def _start(self, port: int | None) -> RunningStandin:
        return self.stack.enter_context(
            run_standin_process(self.config, port=port, log_file=self.log_file)
        )

    def restart_if_dead(self) -> bool:
        process = self.running.process
        if process is None or (code := process.poll()) is None:
            return False
        what = "the Airbyte stand-in"
        self.restarts = note_restart(self.restarts, what, code, self.log_file)
        print(f"==> {what} exited with {code}; restarting it. Its output:", flush=True)
        print(tail(self.log_file, 15), flush=True)
        self.running = self._start(port=self.running.config.port)
        return True


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
