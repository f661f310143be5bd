"""End to end: a run triggered over REST API v2 succeeds, and a person logging in to the UI
in headless Chromium sees the four DAGs (screenshot in test-artifacts/dags-page.png)."""

from __future__ import annotations

import shutil

import pytest

from tests.airflow_fixtures import DAG_IDS, EVENT_DAG, STRIPE, TIMEOUT, SharedAirflow
from tests.e2e.browser import ARTIFACTS, chromium_path, log_in

pytestmark = pytest.mark.timeout(TIMEOUT)


def test_rest_triggered_run_succeeds_and_the_dags_page_lists_the_dags(
    shared: SharedAirflow, browser_page
):
    airflow = shared.airflow
    run = airflow.trigger(EVENT_DAG, {"connection_id": STRIPE}, dag_run_id="e2e__rest_trigger")
    assert run["conf"] == {"connection_id": STRIPE}
    finished = airflow.wait_for_run(EVENT_DAG, run["dag_run_id"], timeout=120)
    assert finished["state"] == "success"
    # Task logs reach the API server from the shared log folder (no serve-logs port is opened).
    logs = airflow.api(
        "GET",
        f"/dags/{EVENT_DAG}/dagRuns/{run['dag_run_id']}/taskInstances/run_airbyte_job/logs/1",
        headers={"Accept": "application/json"},
    )
    assert logs.status_code == 200, logs.text
    assert "succeeded" in logs.text, logs.text[:2000]

    page = browser_page
    log_in(page, airflow)
    for dag_id in DAG_IDS:
        page.get_by_text(dag_id, exact=True).first.wait_for()
    page.wait_for_load_state("networkidle")
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "dags-page.png"
    page.screenshot(path=str(screenshot), full_page=True)
    text = page.inner_text("body")
    assert all(dag_id in text for dag_id in DAG_IDS), text[:2000]
    assert screenshot.stat().st_size > 10_000


def test_missing_chromium_fails_with_the_command_to_install_it(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y chromium"):
        chromium_path()
