"""``make airflow``'s entry point: its settings from the environment and the supervised stand-in
(the stand-in runs for real; Airflow is not started here)."""

from __future__ import annotations

import contextlib
import signal

import requests
from dotenv import dotenv_values

from dev.airbyte_standin.serving import quick_config
from dev.airflow_server import SupervisedStandin, main, standin_config
from dev.environment import ENV_FILE


def test_an_unknown_executor_is_refused(monkeypatch, capsys):
    monkeypatch.setenv("EXECUTOR", "kubernetes")
    assert main() == 2
    assert "EXECUTOR=kubernetes: use one of local, celery" in capsys.readouterr().err


def test_the_standin_notifies_the_api_servers_receiver_or_make_webhook(monkeypatch):
    monkeypatch.delenv("AIRBYTE_NOTIFICATION_TOKEN", raising=False)
    token = dotenv_values(ENV_FILE)["AIRBYTE_NOTIFICATION_TOKEN"]
    mounted = f"http://127.0.0.1:8080/airbyte-receiver/airbyte/notifications/{token}"
    assert standin_config(8080).notification_url == mounted
    monkeypatch.setenv("AIRBYTE_NOTIFICATION_TOKEN", "t0k")
    monkeypatch.setenv("WEBHOOK_PORT", "9099")
    config = standin_config(8080)
    assert config.notification_url == "http://127.0.0.1:9099/airbyte/notifications/t0k"
    assert config.state_url.endswith("standin-state.db")


def test_a_dead_standin_is_restarted_on_the_same_port_with_its_output_shown(tmp_path, capsys):
    config = quick_config(tmp_path, auth="none", state_url=f"sqlite:///{tmp_path / 'state.db'}")
    with contextlib.ExitStack() as stack:
        standin = SupervisedStandin(stack, config, tmp_path / "processes" / "standin.log")
        assert not standin.restart_if_dead()
        first = standin.running.process
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert standin.restart_if_dead()
        assert standin.running.process is not first
        assert standin.running.url == standin.url
        assert requests.get(f"{standin.url}/api/v1/health", timeout=5).status_code == 200
    assert f"the Airbyte stand-in exited with {-signal.SIGKILL}; restarting it" in (
        capsys.readouterr().out
    )
    assert standin.running.process.poll() is not None  # the stack stopped it
