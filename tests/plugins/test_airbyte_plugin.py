"""The Airbyte task's extra links, as the Airflow UI gets them from a real API server.

The API server never imports DAG code: it knows the links from ``AirbyteLinksPlugin`` and
reads the URLs the worker stored when the task ended.
"""

from __future__ import annotations

import uuid

import pytest

from dev.airbyte_standin.seed import STRIPE_CONNECTION_ID, WORKSPACE_ID
from tests.airflow_fixtures import EVENT_DAG, TIMEOUT, SharedAirflow, shared_airflow

SYNC_TASK = "run_airbyte_job"


@pytest.fixture(scope="session")
def shared(request: pytest.FixtureRequest) -> SharedAirflow:
    return shared_airflow(request.config)


def test_the_api_server_loads_the_plugin_with_both_links(shared):
    plugins = shared.airflow.api("GET", "/plugins").json()["plugins"]
    [plugin] = [p for p in plugins if p["name"] == "airbyte_links"]
    links = " ".join(plugin["operator_extra_links"])
    assert "AirbyteJobLink" in links
    assert "AirbyteConnectionLink" in links


def test_a_finished_sync_links_to_its_airbyte_job_and_connection(shared):
    run_id = f"links__{uuid.uuid4().hex[:8]}"
    shared.airflow.trigger(EVENT_DAG, {"connection_id": STRIPE_CONNECTION_ID}, dag_run_id=run_id)
    run = shared.airflow.wait_for_run(EVENT_DAG, run_id, timeout=TIMEOUT)
    assert run["state"] == "success"
    path = f"/dags/{EVENT_DAG}/dagRuns/{run_id}/taskInstances/{SYNC_TASK}"
    xcom = shared.airflow.api("GET", f"{path}/xcomEntries/airbyte_job_id").json()
    job_id = int(xcom["value"])
    response = shared.airflow.api("GET", f"{path}/links")
    assert response.status_code == 200, response.text
    connection = (
        f"{shared.standin.url}/workspaces/{WORKSPACE_ID}/connections/{STRIPE_CONNECTION_ID}"
    )
    assert response.json()["extra_links"] == {
        "Airbyte connection": f"{connection}/status",
        "Airbyte job": f"{connection}/job-history#{job_id}::0",
    }
