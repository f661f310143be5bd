"""Session-wide fixtures: an isolated Airflow home and local Airbyte stand-ins on loopback.

The hook reads its configuration the Airflow way; tests give it as ``AIRFLOW_CONN_*`` and
``AIRFLOW_VAR_*`` environment variables, never by patching the code under test.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO_ROOT / "dags")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO_ROOT / "plugins")
#: Where the OpenLineage file transport writes the events of the tests' task runs, as
#: ``make demo`` does (dev/airflow.env); set before Airflow loads its plugins.
OPENLINEAGE_EVENTS = _AIRFLOW_HOME / "openlineage.jsonl"
os.environ["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps(
    {"type": "file", "log_file_path": str(OPENLINEAGE_EVENTS), "append": True}
)
os.environ["AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD"] = "True"
os.environ["AIRFLOW__OPENLINEAGE__NAMESPACE"] = "airbyte-airflow-tests"

import pytest  # noqa: E402

from dev.airbyte_standin.admin_client import RunningStandin  # noqa: E402
from dev.airbyte_standin.config import StandinConfig  # noqa: E402
from dev.airbyte_standin.serving import run_standin  # noqa: E402
from dev.postgres import PostgresServer, postgres_bin_dir, run_postgres  # noqa: E402

#: Fast tunables so a test waits milliseconds, not seconds, between polls and retries.
FAST_EXTRAS = {
    "poll_interval": 0.02,
    "max_poll_interval": 0.1,
    "retry_min_wait": 0.01,
    "retry_max_wait": 0.05,
    "max_retries": 4,
    "connect_timeout": 1,
    "read_timeout": 2,
    "total_timeout": 3,
}


def _standin(tmp_path_factory: pytest.TempPathFactory, **settings) -> Iterator[RunningStandin]:
    warehouse = tmp_path_factory.mktemp("warehouse") / "warehouse.db"
    config = StandinConfig(
        port=0,
        pending_seconds=0.05,
        running_seconds=0.15,
        rows_per_stream=20,
        warehouse_url=f"sqlite:///{warehouse}",
        **settings,
    )
    with run_standin(config) as server:
        yield server


@pytest.fixture(scope="session")
def basic_standin(tmp_path_factory) -> Iterator[RunningStandin]:
    """A stand-in behind HTTP basic auth (``airbyte``/``password``)."""
    yield from _standin(tmp_path_factory, auth="basic")


@pytest.fixture(scope="session")
def token_standin(tmp_path_factory) -> Iterator[RunningStandin]:
    """A stand-in that wants client-credentials bearer tokens."""
    yield from _standin(tmp_path_factory, auth="token")


@pytest.fixture(scope="session")
def open_standin(tmp_path_factory) -> Iterator[RunningStandin]:
    """A stand-in with no auth in front, as some in-cluster deployments run."""
    yield from _standin(tmp_path_factory, auth="none")


async def next_trigger_event(trigger) -> dict:
    """What the triggerer does: run the trigger until its first event; return its payload."""
    async for event in trigger.run():
        return event.payload
    raise AssertionError("the trigger ended without an event")


def trigger_event(trigger) -> dict:
    """``next_trigger_event`` in a fresh event loop."""
    return asyncio.run(next_trigger_event(trigger))


def resume_deferred(operator, context: dict, deferred):
    """Do what the triggerer and the resumed worker do with a ``TaskDeferred``."""
    return getattr(operator, deferred.method_name)(context, trigger_event(deferred.trigger))


class RecordingTaskInstance:
    """Stands in for Airflow's TaskInstance in direct ``execute()`` calls: records XCom pushes."""

    stats_tags: dict[str, str] = {}

    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


class MemoryTaskStateStore:
    """Stands in for ``context["task_state_store"]``: one task instance's keys, across tries."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def get(self, key: str, default: object = None) -> object:
        return self.values.get(key, default)

    def set(self, key: str, value: object, *, retention: object = None) -> None:
        if value is None:
            raise ValueError("Cannot set value as None")
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


@pytest.fixture
def standin(basic_standin) -> Iterator[RunningStandin]:
    """The basic-auth stand-in, reset; what the test sends and gets must keep the contract."""
    basic_standin.reset()
    yield basic_standin
    basic_standin.assert_contract_kept()


@pytest.fixture
def airbyte_conn(standin, monkeypatch) -> RunningStandin:
    """``airbyte_default`` pointing at the basic-auth stand-in; returns the stand-in."""
    airbyte_conn_env(monkeypatch, standin.url, login="airbyte", password="password")
    return standin


@pytest.fixture
def token_conn(token_standin, monkeypatch) -> Iterator[RunningStandin]:
    """``airbyte_default`` with client credentials against the token stand-in."""
    token_standin.reset()
    token_conn_env(monkeypatch, token_standin.url)
    yield token_standin
    token_standin.assert_contract_kept()


def token_conn_env(monkeypatch: pytest.MonkeyPatch, url: str, **extra) -> None:
    """``airbyte_default`` with the token stand-in's client credentials."""
    airbyte_conn_env(
        monkeypatch,
        url,
        login="standin-client",
        password="standin-secret",
        auth_type="client_credentials",
        **extra,
    )


def airbyte_conn_env(
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    *,
    conn_id: str = "airbyte_default",
    login: str | None = None,
    password: str | None = None,
    **extra,
) -> None:
    """Define the Airflow Connection ``conn_id`` as an ``AIRFLOW_CONN_*`` variable."""
    conn = {"conn_type": "airbyte", "host": url, "extra": {**FAST_EXTRAS, **extra}}
    if login is not None:
        conn["login"] = login
    if password is not None:
        conn["password"] = password
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster for the whole session (see the module docstring)."""
    with run_postgres(postgres_bin_dir()) as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """URL of a new, empty database on ``postgres_server``."""
    return postgres_server.url(postgres_server.create_database())
