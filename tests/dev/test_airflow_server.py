"""``make airflow``'s settings and supervision, without starting Airflow (the chaos suite and
tests/e2e run the real thing)."""

from __future__ import annotations

import sys

import pytest

from dev.airflow_server import (
    MAX_RESTARTS,
    AirflowServer,
    AirflowStartError,
    server_environment,
)
from dev.environment import airflow_environment, caller_overrides


def test_deferrable_is_the_default_and_the_executor_is_local(tmp_path):
    env = server_environment(airflow_environment("http://127.0.0.1:1", tmp_path), 8080)
    assert env["AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"] == "True"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"


def test_the_callers_airflow_settings_win(tmp_path):
    overrides = caller_overrides(
        {
            "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "False",
            "AIRFLOW__CORE__PARALLELISM": "9",
            "AIRFLOW_HOME": "/elsewhere",  # not an AIRFLOW__ setting: the local home stays
            "PATH": "/bin",
        }
    )
    assert set(overrides) == {
        "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE",
        "AIRFLOW__CORE__PARALLELISM",
    }
    env = server_environment(
        airflow_environment("http://127.0.0.1:1", tmp_path), 8080, overrides=overrides
    )
    assert env["AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"] == "False"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "9"
    assert env["AIRFLOW_HOME"] == str(tmp_path)


CRASH = "import sys; print('triggerer: bad setting in airflow.cfg'); sys.exit(3)"


def crashing_server(tmp_path) -> AirflowServer:
    """A server whose one "component" prints an error and exits with code 3."""
    server = AirflowServer(url="http://127.0.0.1:1", username="u", password="p", home=tmp_path)
    server.commands["triggerer"] = [sys.executable, "-c", CRASH]
    return server


def test_a_dead_component_is_restarted_and_logged(tmp_path):
    server = crashing_server(tmp_path)
    server.start_component("triggerer").wait(timeout=60)
    said: list[str] = []
    assert server.restart_dead(log=said.append) == ["triggerer"]
    assert "airflow triggerer exited with 3; restarting it" in said[0]
    assert server.processes["triggerer"].wait(timeout=60) is not None
    assert server.restart_dead(log=said.append) == ["triggerer"]  # a new process each time


def test_a_component_that_keeps_dying_stops_the_stack_with_its_output(tmp_path):
    server = crashing_server(tmp_path)
    server.start_component("triggerer")
    for _ in range(MAX_RESTARTS):
        server.processes["triggerer"].wait(timeout=60)
        assert server.restart_dead(log=lambda _: None) == ["triggerer"]
    server.processes["triggerer"].wait(timeout=60)
    with pytest.raises(AirflowStartError, match="giving up") as error:
        server.restart_dead(log=lambda _: None)
    assert "bad setting in airflow.cfg" in str(error.value)
