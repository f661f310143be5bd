"""Supervision of the local Airflow's components, without starting Airflow (the chaos suite and
tests/e2e run the real thing)."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from dev.airflow_components import MAX_RESTARTS, AirflowServer, AirflowStartError

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


def test_killing_a_component_takes_its_whole_process_group(tmp_path):
    server = AirflowServer(url="http://127.0.0.1:1", username="u", password="p", home=tmp_path)
    child = (
        "import subprocess, sys, time;"
        " subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        " time.sleep(60)"
    )
    server.commands["scheduler"] = [sys.executable, "-c", child]
    process = server.start_component("scheduler")
    server.kill_component("scheduler", signal.SIGTERM)
    assert process.returncode == -signal.SIGTERM
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)
    assert server.dead_components() == {"scheduler": -signal.SIGTERM}
    server.stop()  # idempotent
