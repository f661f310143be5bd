"""Running the stand-in as a separate process (``python -m dev.airbyte_standin``)."""

from __future__ import annotations

import signal

import requests

from dev.airbyte_standin import STRIPE_CONNECTION_ID
from dev.airbyte_standin.__main__ import parse_args
from dev.airbyte_standin.testing import quick_config, run_standin_process, wait_until


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
