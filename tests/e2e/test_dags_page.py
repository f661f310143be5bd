"""End to end: a run triggered over REST API v2 succeeds, and a person logging in to the UI
in headless Chromium sees the four DAGs (screenshot in test-artifacts/dags-page.png)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.airflow_fixtures import DAG_IDS, EVENT_DAG, STRIPE, TIMEOUT, SharedAirflow

pytestmark = pytest.mark.timeout(TIMEOUT)
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """``$CHROMIUM`` or the Chromium on PATH; missing fails the test (it never skips)."""
    path = (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if path is None:
        pytest.fail(
            "Chromium not found: run `make system-deps` (as root), `sudo apt-get install -y "
            "chromium`, or set CHROMIUM to a Chromium or Chrome binary",
            pytrace=False,
        )
    return path


@pytest.fixture
def browser_page() -> Iterator:
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        with sync_playwright() as playwright:
            # A persistent context is how Playwright takes a --user-data-dir: a fresh one here.
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=executable,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 900},
            )
            try:
                context.set_default_timeout(30_000)
                yield context.new_page()
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


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
    page.goto(f"{airflow.url}/dags")
    page.wait_for_url("**/auth/login**")
    page.fill("input[name=username]", airflow.username)
    page.fill("input[name=password]", airflow.password)
    page.click("button[type=submit]")
    page.wait_for_url("**/dags")
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
