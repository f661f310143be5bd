"""The stand-in as a separate process: ``serving.run_standin_process`` and ``__main__``."""

from __future__ import annotations

import signal

import pytest
import requests

from dev.airbyte_standin import STRIPE_CONNECTION_ID, serving
from dev.airbyte_standin.__main__ import parse_args
from dev.airbyte_standin.serving import StandinStartError, quick_config, run_standin_process
from dev.processes import free_port, wait_until


def test_cli_parses_every_setting() -> None:
    config = parse_args(
        ["--auth=token", "--port=9", "--rows-per-stream=7", '--fault={"kind": "drop"}']
    )
    assert (config.auth, config.port, config.rows_per_stream) == ("token", 9, 7)
    assert config.faults == [{"kind": "drop"}]
    assert config.warehouse_url.startswith("sqlite:///")


def test_process_serves_syncs_and_can_be_killed(tmp_path) -> None:
    config = quick_config(
        tmp_path,
        auth="none",
        faults=[{"kind": "status", "status": 502, "path": "/api/v1/connections"}],
    )
    with run_standin_process(config) as running:
        url = f"{running.config_api_url}/connections/sync"
        body = {"connectionId": STRIPE_CONNECTION_ID}
        assert requests.post(url, json=body, timeout=5).status_code == 502  # --fault applied
        assert requests.post(url, json=body, timeout=5).status_code == 200
        wait_until(lambda: running.jobs()[0]["status"] == "succeeded")
        running.process.send_signal(signal.SIGKILL)
        running.process.wait(timeout=5)
        assert running.process.returncode == -signal.SIGKILL


def test_a_restarted_process_keeps_its_jobs(tmp_path) -> None:
    """Jobs live in the state database: same ids and history, running jobs carry on."""
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    config = quick_config(tmp_path, auth="none", running_seconds=3600, state_url=state_url)
    body = {"connectionId": STRIPE_CONNECTION_ID}
    with run_standin_process(config) as first:
        url = f"{first.config_api_url}/connections/sync"
        first.set_durations(running_seconds=0)
        assert requests.post(url, json=body, timeout=5).status_code == 200
        wait_until(lambda: first.jobs()[0]["status"] == "succeeded")
        first.set_durations(running_seconds=3600)
        assert requests.post(url, json=body, timeout=5).status_code == 200
        wait_until(lambda: first.jobs()[1]["status"] == "running")
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=5)
    with run_standin_process(config, port=first.config.port) as second:
        assert [(j["id"], j["status"]) for j in second.jobs()] == [(1, "succeeded"), (2, "running")]
        assert requests.post(url, json=body, timeout=5).status_code == 409  # job 2 still runs
        second.set_durations(running_seconds=0)
        wait_until(lambda: second.jobs()[1]["status"] == "succeeded")
        third = requests.post(url, json=body, timeout=5).json()
        assert third["job"]["id"] == 3


def test_a_failed_start_shows_the_output(tmp_path) -> None:
    config = quick_config(tmp_path, auth="none", state_url="nosuchdb://nowhere")
    with pytest.raises(StandinStartError, match="nosuchdb"), run_standin_process(config):
        pass


def test_a_port_taken_before_the_stand_in_binds_it_is_given_up_for_another(
    tmp_path, monkeypatch
) -> None:
    """Two stand-ins starting at once may pick the same free port: the one that cannot bind
    it must not take the other's answers for its own health."""
    with run_standin_process(quick_config(tmp_path / "a", auth="none")) as first:
        ports = iter([first.config.port])
        monkeypatch.setattr(serving, "free_port", lambda: next(ports, None) or free_port())
        with run_standin_process(quick_config(tmp_path / "b", auth="none")) as second:
            assert second.config.port != first.config.port
            info = requests.get(f"{second.url}/_standin/info", timeout=5).json()
            assert info["pid"] == second.process.pid
            assert "address already in use" in second.log_file.read_text().lower()
        assert first.process.poll() is None  # the first one is left alone
