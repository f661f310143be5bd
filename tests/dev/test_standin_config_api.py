"""Configuration API endpoints of the stand-in, over real HTTP."""

from __future__ import annotations

import requests

from dev.airbyte_standin import (
    GITHUB_CONNECTION_ID,
    HUBSPOT_CONNECTION_ID,
    SALESFORCE_CONNECTION_ID,
    SEED,
    STRIPE_CONNECTION_ID,
    WORKSPACE_ID,
)
from dev.airbyte_standin.admin_client import RunningStandin
from dev.processes import wait_until

UNKNOWN = "00000000-1111-4222-8333-444444444444"


def post(
    api: requests.Session, standin: RunningStandin, path: str, body: object
) -> requests.Response:
    return api.post(f"{standin.config_api_url}/{path}", json=body, timeout=5)


def test_health_needs_no_auth(standin: RunningStandin) -> None:
    response = requests.get(f"{standin.config_api_url}/health", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"available": True}


def test_workspaces_list_returns_seeded_workspace(api, standin) -> None:
    response = post(api, standin, "workspaces/list", {})
    assert response.status_code == 200
    assert [w["workspaceId"] for w in response.json()["workspaces"]] == [WORKSPACE_ID]


def test_connections_list_returns_the_seeded_connections(api, standin) -> None:
    response = post(api, standin, "connections/list", {"workspaceId": WORKSPACE_ID})
    assert response.status_code == 200
    connections = response.json()["connections"]
    assert [c["connectionId"] for c in connections] == [
        STRIPE_CONNECTION_ID,
        HUBSPOT_CONNECTION_ID,
        SALESFORCE_CONNECTION_ID,
        GITHUB_CONNECTION_ID,
    ]
    assert [c["name"] for c in connections] == [c.name for c in SEED]
    assert all(c["status"] == "active" for c in connections)


def test_connections_list_unknown_workspace_is_404(api, standin) -> None:
    assert post(api, standin, "connections/list", {"workspaceId": UNKNOWN}).status_code == 404


def test_connection_get_has_streams_and_prefix(api, standin) -> None:
    response = post(api, standin, "connections/get", {"connectionId": STRIPE_CONNECTION_ID})
    assert response.status_code == 200
    body = response.json()
    streams = [s["stream"]["name"] for s in body["syncCatalog"]["streams"]]
    assert streams == ["customers", "charges", "invoices"]
    assert body["prefix"] == "stripe_"


def test_connection_get_unknown_is_404_not_found_info(api, standin) -> None:
    response = post(api, standin, "connections/get", {"connectionId": UNKNOWN})
    assert response.status_code == 404
    assert UNKNOWN in response.json()["message"]


def test_bad_uuid_and_malformed_body_are_422(api, standin) -> None:
    bad_uuid = post(api, standin, "connections/get", {"connectionId": "not-a-uuid"})
    malformed = api.post(
        f"{standin.config_api_url}/connections/sync",
        data=b"{nope",
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    for response in (bad_uuid, malformed):
        assert response.status_code == 422
        assert response.json()["message"]
        assert response.json()["validationErrors"]
    # The client sent off-contract requests on purpose: the validator noticed both.
    violations = standin.take_contract_violations()
    assert {v["side"] for v in violations} == {"request"}


def test_job_get_and_unknown_job(api, standin) -> None:
    job_id = post(api, standin, "connections/sync", {"connectionId": HUBSPOT_CONNECTION_ID}).json()[
        "job"
    ]["id"]
    response = post(api, standin, "jobs/get", {"id": job_id})
    assert response.status_code == 200
    assert response.json()["job"]["configId"] == HUBSPOT_CONNECTION_ID
    assert post(api, standin, "jobs/get", {"id": 987654}).status_code == 404
    wait_until(lambda: standin.jobs()[0]["status"] == "succeeded")


def test_jobs_list_filters_and_paginates(api, standin) -> None:
    ids = []
    for _ in range(3):
        job = post(api, standin, "connections/sync", {"connectionId": STRIPE_CONNECTION_ID}).json()
        ids.append(job["job"]["id"])
        wait_until(lambda: standin.jobs()[-1]["status"] == "succeeded")
    post(api, standin, "connections/sync", {"connectionId": HUBSPOT_CONNECTION_ID})
    body = {"configTypes": ["sync"], "configId": STRIPE_CONNECTION_ID}
    listed = post(api, standin, "jobs/list", body).json()
    assert listed["totalJobCount"] == 3
    assert [j["job"]["id"] for j in listed["jobs"]] == ids[::-1]  # newest first
    page = post(api, standin, "jobs/list", {**body, "pagination": {"pageSize": 2, "rowOffset": 2}})
    assert [j["job"]["id"] for j in page.json()["jobs"]] == [ids[0]]
    resets = post(api, standin, "jobs/list", {**body, "configTypes": ["reset_connection"]})
    assert resets.json() == {"jobs": [], "totalJobCount": 0}
    wait_until(lambda: all(j["status"] == "succeeded" for j in standin.jobs()))


def test_jobs_list_requires_config_types(api, standin) -> None:
    assert post(api, standin, "jobs/list", {"configId": STRIPE_CONNECTION_ID}).status_code == 422
    assert standin.take_contract_violations()


def test_application_token_issues_bearer_token(standin) -> None:
    cfg = standin.config
    response = requests.post(
        f"{standin.config_api_url}/applications/token",
        json={"client_id": cfg.client_id, "client_secret": cfg.client_secret},
        timeout=5,
    )
    assert response.status_code == 200
    assert response.json()["access_token"]
    assert response.json()["expires_in"] == cfg.token_expires_in


def test_web_backend_connection_describes_source_destination_and_catalog(api, standin) -> None:
    response = post(
        api, standin, "web_backend/connections/get", {"connectionId": STRIPE_CONNECTION_ID}
    )
    assert response.status_code == 200
    body = response.json()
    stripe = SEED[0]
    assert (body["source"]["sourceId"], body["source"]["sourceName"]) == (
        stripe.source_id,
        "Stripe",
    )
    # The local warehouse is a SQLite file: described as Airbyte's SQLite destination.
    assert body["destination"]["destinationName"] == "SQLite"
    assert body["destination"]["connectionConfiguration"] == {
        "destination_path": standin.warehouse_url.removeprefix("sqlite:///")
    }
    assert [s["stream"]["name"] for s in body["syncCatalog"]["streams"]] == list(stripe.streams)
    assert all(s["stream"]["jsonSchema"]["properties"] for s in body["syncCatalog"]["streams"])


def test_web_backend_connection_unknown_is_404(api, standin) -> None:
    response = post(api, standin, "web_backend/connections/get", {"connectionId": UNKNOWN})
    assert response.status_code == 404


def test_postgres_destination_is_described_by_host_port_database_with_a_masked_password() -> None:
    from dev.airbyte_standin.views import destination_read

    url = "postgresql+psycopg2://loader:s3cret@db.internal:6543/warehouse"
    destination = destination_read(url)
    assert destination["destinationName"] == "Postgres"
    config = destination["connectionConfiguration"]
    assert (config["host"], config["port"], config["database"], config["schema"]) == (
        "db.internal",
        6543,
        "warehouse",
        "public",
    )
    assert config["password"] == "**********"
    assert "s3cret" not in str(destination)
