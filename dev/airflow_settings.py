"""The settings and command lines of the local Airflow 3 components.

``server_environment`` adds to a ``dev.environment`` environment what every component of
``dev.airflow_components.run_airflow`` shares: the executor (``EXECUTORS``: the default
``local`` is the LocalExecutor, which Airflow 3 runs on SQLite, as ``airflow standalone``
does; ``celery`` adds a Celery worker, see ``dev.celery_executor``), Airflow 3's default
SimpleAuthManager with one known user (``admin``/``admin`` by default) whose password it
writes to the passwords file, one JWT secret, the API server on 127.0.0.1 and fast scheduler
loops. ``COMPONENT_ARGS`` are the ``airflow`` command lines of the components.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dev.celery_executor import CELERY_SETTINGS, CELERY_WORKER_ARGS

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
#: The local login (SimpleAuthManager, role admin); only ever served on 127.0.0.1.
DEFAULT_USERNAME = "admin"
DEFAULT_PASSWORD = "admin"


def component_args(executor: str) -> dict[str, Callable[[int], list[str]]]:
    """The command line (``airflow`` arguments, given the API port) of every component that
    runs with ``executor``."""
    return {**COMPONENT_ARGS, **EXECUTORS[executor].components}


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
        # The receiver the API server serves (include.receiver.mount) calls this API server.
        "AIRFLOW_API_URL": base_url,
        "AIRFLOW_USERNAME": username,
        "AIRFLOW_PASSWORD": password,
        "LEDGER_PATH": str(home / "receiver-ledger.db"),
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
