"""End to end: after GitHub syncs twice through its generated DAG, then fails in Airbyte (the
task given up on), Airbyte's scheduler syncs HubSpot twice (its notifications reach the
receiver the API server mounts), and the drift check finds a stream added to Salesforce, a
person logged in to Airflow's UI in headless Chromium opens "Airbyte" in the navigation and
sees the failing connection first, then the drifting one, with their statuses, who started
their syncs, charts and links; the link to the DAG opens Airflow's DAG page (screenshot in
test-artifacts/airbyte-page.png)."""

from __future__ import annotations

import re
import uuid

import pytest
import requests

from dev.airbyte_standin.seed import (
    GITHUB_CONNECTION_ID,
    HUBSPOT_CONNECTION_ID,
    SALESFORCE_CONNECTION_ID,
    WORKSPACE_ID,
)
from dev.processes import wait_until
from include.assets import connection_asset
from include.connections import load_connections
from tests.airflow_fixtures import TIMEOUT, SharedAirflow
from tests.e2e.browser import ARTIFACTS, log_in

pytestmark = pytest.mark.timeout(2 * TIMEOUT)
GITHUB_DAG = "airbyte_sync__github"
DRIFT_DAG = "airbyte_workspace_drift"
SYNC_TASK = "sync"


def run_to_the_end(shared: SharedAirflow, dag_id: str, what: str) -> dict:
    """A manual run of ``dag_id``, once it has finished."""
    run_id = f"e2e_airbyte_page__{what}__{uuid.uuid4().hex[:6]}"
    shared.airflow.trigger(dag_id, dag_run_id=run_id)
    return shared.airflow.wait_for_run(dag_id, run_id, timeout=TIMEOUT)


def wait_for_runs_to_finish(shared: SharedAirflow, dag_id: str) -> None:
    """Until no run of ``dag_id`` is queued or running (unpausing may start one)."""
    wait_until(
        lambda: all(r["state"] in ("success", "failed") for r in shared.airflow.list_runs(dag_id)),
        timeout=TIMEOUT,
        interval=1,
        what=f"the runs of {dag_id} to finish",
    )


def fail_a_github_sync(shared: SharedAirflow) -> None:
    """Airbyte fails GitHub's next job; its task fails its first try and is given up on, as
    a person marking it failed does."""
    airflow = shared.airflow
    shared.standin.set_job_behaviour("fail", GITHUB_CONNECTION_ID, failure_reason="e2e: HTTP 500")
    run_id = f"e2e_airbyte_page__fails__{uuid.uuid4().hex[:6]}"
    airflow.trigger(GITHUB_DAG, dag_run_id=run_id)
    path = f"/dags/{GITHUB_DAG}/dagRuns/{run_id}/taskInstances/{SYNC_TASK}"
    wait_until(
        lambda: airflow.api("GET", path).json().get("state") in ("up_for_retry", "failed"),
        timeout=TIMEOUT,
        interval=0.5,
        what="GitHub's sync task to fail",
    )
    airflow.api("PATCH", path, json={"new_state": "failed"}).raise_for_status()
    assert airflow.wait_for_run(GITHUB_DAG, run_id, timeout=TIMEOUT)["state"] == "failed"


def job_events(shared: SharedAirflow, asset_name: str, job_id: int) -> list[dict]:
    """Airflow's events of the Asset ``asset_name`` that announce Airbyte job ``job_id``."""
    params = {"name_pattern": asset_name, "limit": 100, "order_by": "-timestamp"}
    events = shared.airflow.api("GET", "/assets/events", params=params).json()["asset_events"]
    return [e for e in events if (e["extra"] or {}).get("airbyte_job_id") == job_id]


def sync_hubspot_outside_airflow(shared: SharedAirflow) -> None:
    """Airbyte's scheduler syncs HubSpot; its notification reaches the API server's receiver,
    which announces the sync as an Asset event."""
    response = requests.post(
        f"{shared.standin.config_api_url}/connections/sync",
        json={"connectionId": HUBSPOT_CONNECTION_ID},
        headers=shared.standin.auth_headers(),
        timeout=10,
    )
    response.raise_for_status()
    job_id = response.json()["job"]["id"]
    asset = connection_asset(load_connections().entry("hubspot")).name
    wait_until(
        lambda: job_events(shared, asset, job_id),
        timeout=TIMEOUT,
        interval=0.5,
        what=f"the Asset event of HubSpot's job {job_id}",
    )


def make_the_syncs_a_failure_and_a_drift(shared: SharedAirflow) -> None:
    airflow = shared.airflow
    token = airflow.env["AIRBYTE_NOTIFICATION_TOKEN"]
    shared.standin.notify_to(f"{airflow.url}/airbyte-receiver/airbyte/notifications/{token}")
    try:
        for _ in range(2):
            sync_hubspot_outside_airflow(shared)
    finally:
        shared.standin.notify_to(None)
    airflow.unpause(GITHUB_DAG)  # hourly: unpausing starts a run as well
    for _ in range(2):
        assert run_to_the_end(shared, GITHUB_DAG, "syncs")["state"] == "success"
    wait_for_runs_to_finish(shared, GITHUB_DAG)
    fail_a_github_sync(shared)
    shared.standin.add_stream(SALESFORCE_CONNECTION_ID, "leads")
    airflow.unpause(DRIFT_DAG)
    assert run_to_the_end(shared, DRIFT_DAG, "drift")["state"] == "success"


def test_the_airbyte_page_shows_failing_then_drifting_connections(shared, browser_page):
    airflow = shared.airflow
    try:
        make_the_syncs_a_failure_and_a_drift(shared)
    finally:
        for dag_id in (GITHUB_DAG, DRIFT_DAG):
            airflow.api("PATCH", f"/dags/{dag_id}", json={"is_paused": True})

    page = browser_page
    log_in(page, airflow)
    page.locator('a[href$="plugin/airbyte"]').first.click()  # "Airbyte" in the navigation
    page.wait_for_url("**/plugin/airbyte")
    frame = page.frame_locator('iframe[title="Airbyte"]')
    rows = frame.locator("tr[data-key]")
    rows.first.wait_for()
    keys = [row.get_attribute("data-key") for row in rows.all()]
    health = [row.get_attribute("class") for row in rows.all()]
    assert keys[:2] == ["github", "salesforce"], keys
    assert health[:2] == ["failing", "drifting"], health
    assert set(keys) == set(load_connections().connections)

    github = frame.locator('tr[data-key="github"]')
    text = " ".join(github.inner_text().split())
    assert "failed" in text
    assert "task sync failed (try 1 of 3)" in text
    assert "Airbyte: active" in text
    assert github.locator("svg.spark").count() == 2
    assert github.locator("svg.spark").first.locator("circle").count() >= 2  # the syncs
    assert github.locator("a.airbyte-link").get_attribute("href") == (
        f"{shared.standin.url}/workspaces/{WORKSPACE_ID}/connections/{GITHUB_CONNECTION_ID}/status"
    )
    assert github.locator("a.dag-link").get_attribute("href") == f"../dags/{GITHUB_DAG}"
    salesforce = " ".join(frame.locator('tr[data-key="salesforce"]').inner_text().split())
    assert "streams added leads" in salesforce.lower()
    hubspot = frame.locator('tr[data-key="hubspot"]')
    assert hubspot.get_attribute("class") == "healthy"
    assert "started by Airbyte (its notification)" in " ".join(hubspot.inner_text().split())
    assert hubspot.locator("svg.spark").first.locator("circle").count() == 2
    header = " ".join(frame.locator("header").inner_text().split())
    assert "1 failing" in header
    assert "1 drifting" in header
    assert re.search(rf"drift checked \d+ (s|min) ago \({DRIFT_DAG}\)", header), header

    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "airbyte-page.png"
    page.screenshot(path=str(screenshot))
    assert screenshot.stat().st_size > 10_000

    github.locator("a.dag-link").click()  # Airflow's own page, in Airflow's window
    page.wait_for_url(f"**/dags/{GITHUB_DAG}")
    page.get_by_text(GITHUB_DAG).first.wait_for()
