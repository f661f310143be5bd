"""A session-wide DagBag of ``dags/``, parsed with network, Variables and Connections forbidden;
the metadata database, stand-in, Connections and Variables of real DAG runs (``dag.test()``)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dev.airbyte_standin.seed import (
    HUBSPOT_CONNECTION_ID,
    SALESFORCE_CONNECTION_ID,
    STRIPE_CONNECTION_ID,
)
from tests.conftest import token_conn_env

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"


class ParseTimeAccess(RuntimeError):
    """Raised when a DAG file touches the network, a Variable or a Connection while parsing."""


def _forbid(what: str):
    def refuse(*args, **kwargs):
        raise ParseTimeAccess(f"{what} at DAG parse time")

    return refuse


@pytest.fixture(scope="session")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import BaseHook, Variable
    from airflow.sdk.definitions.connection import Connection

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _forbid("network connection"))
        mp.setattr(socket.socket, "connect_ex", _forbid("network connection"))
        mp.setattr(socket, "getaddrinfo", _forbid("DNS lookup"))
        mp.setattr(Variable, "get", _forbid("Variable lookup"))
        mp.setattr(BaseHook, "get_connection", _forbid("Connection lookup"))
        mp.setattr(Connection, "get", _forbid("Connection lookup"))
        bag = DagBag(dag_folder=str(DAGS_DIR))
    # dag.test() merges a run's conf into the DAG's (and its tasks') params in place; runs
    # start from these declared defaults so one test's conf cannot leak into the next run.
    bag.declared_params = {dag_id: dag.params.dump() for dag_id, dag in bag.dags.items()}
    return bag


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """The metadata database ``dag.test()`` records runs in (SQLite in the test Airflow home)."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def outbox(tmp_path) -> Path:
    return tmp_path / "outbox.jsonl"


@pytest.fixture
def standin(token_standin):
    """The client-credentials stand-in, reset; what the runs send and get keeps the contract."""
    token_standin.reset()
    yield token_standin
    token_standin.assert_contract_kept()


def connect_airbyte(monkeypatch, url: str, flavour: str = "public") -> None:
    """``airbyte_default`` as Airbyte 1.x is used: client credentials, on the Public API
    unless the test asks for the Configuration API."""
    token_conn_env(monkeypatch, url, api_type=flavour)


@pytest.fixture
def airflow_env(request, standin, monkeypatch, outbox) -> None:
    """Connections and Variables as a deployment would provide them, as environment variables
    (``airbyte_default`` on the API flavour given as the fixture's parameter, else public)."""
    connect_airbyte(monkeypatch, standin.url, getattr(request, "param", "public"))
    warehouse = standin.warehouse_url.removeprefix("sqlite:///")
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE_DEFAULT", json.dumps({"conn_type": "sqlite", "host": warehouse})
    )
    variables = {
        "AIRBYTE_STRIPE_POSTGRES_CONNECTION_ID": STRIPE_CONNECTION_ID,
        "AIRBYTE_HUBSPOT_CONNECTION_ID": HUBSPOT_CONNECTION_ID,
        "AIRBYTE_SALESFORCE_CONNECTION_ID": SALESFORCE_CONNECTION_ID,
        "AIRBYTE_NOTIFY_CHANNELS": "outbox",
        "AIRBYTE_NOTIFY_OUTBOX": str(outbox),
    }
    for name, value in variables.items():
        monkeypatch.setenv(f"AIRFLOW_VAR_{name}", value)
