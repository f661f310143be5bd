"""A session-wide DagBag of ``dags/``, parsed with network, Variables and Connections forbidden."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

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
