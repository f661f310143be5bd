"""Public API endpoints of the stand-in, over real HTTP."""

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
PROBLEM = "application/problem+json"


def url(standin: RunningStandin, path: str) -> str:
    return f"{standin.public_api_url}/{path}"


def create_job(api, standin, connection_id: str, job_type: str = "sync") -> dict:
    response = api.post(
        url(standin, "jobs"), json={"connectionId": connection_id, "jobType": job_type}, timeout=5
    )
    assert response.status_code == 200, response.text
    return response.json()


def all_terminal(standin: RunningStandin) -> bool:
    return all(j["status"] in ("succeeded", "failed", "cancelled") for j in standin.jobs())


def test_health_needs_no_auth(standin) -> None:
    assert requests.get(url(standin, "health"), timeout=5).status_code == 200


def test_list_connections_paginates_with_absolute_links(api, standin) -> None:
    first = api.get(url(standin, "connections"), params={"limit": 2}, timeout=5).json()
    assert [c["connectionId"] for c in first["data"]] == [
        STRIPE_CONNECTION_ID,
        HUBSPOT_CONNECTION_ID,
    ]
    assert "previous" not in first
    assert first["next"].startswith(standin.url)
    second = api.get(first["next"], timeout=5).json()
    assert [c["connectionId"] for c in second["data"]] == [
        SALESFORCE_CONNECTION_ID,
        GITHUB_CONNECTION_ID,
    ]
    assert "next" not in second
    assert api.get(second["previous"], timeout=5).json() == first


def test_list_connections_by_workspace(api, standin) -> None:
    mine = api.get(url(standin, "connections"), params={"workspaceIds": WORKSPACE_ID}, timeout=5)
    other = api.get(url(standin, "connections"), params={"workspaceIds": UNKNOWN}, timeout=5)
    assert len(mine.json()["data"]) == len(SEED)
    assert other.json()["data"] == []


def test_get_connection_and_unknown_connection(api, standin) -> None:
    found = api.get(url(standin, f"connections/{HUBSPOT_CONNECTION_ID}"), timeout=5)
    assert found.json()["name"] == "HubSpot → Postgres"
    assert [s["name"] for s in found.json()["configurations"]["streams"]] == [
        "contacts",
        "companies",
        "deals",
    ]
    missing = api.get(url(standin, f"connections/{UNKNOWN}"), timeout=5)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM
    assert missing.json()["data"]["resourceId"] == UNKNOWN


def test_create_and_get_job_until_succeeded(api, standin) -> None:
    job = create_job(api, standin, STRIPE_CONNECTION_ID)
    assert job["status"] == "pending"
    assert job["jobType"] == "sync"

    def finished() -> dict | None:
        body = api.get(url(standin, f"jobs/{job['jobId']}"), timeout=5).json()
        return body if body["status"] == "succeeded" else None

    done = wait_until(finished)
    assert done["rowsSynced"] == 3 * standin.config.rows_per_stream
    assert done["bytesSynced"] > 0
    assert done["duration"].startswith("PT")


def test_second_sync_while_running_is_409_problem(api, standin) -> None:
    create_job(api, standin, SALESFORCE_CONNECTION_ID)
    response = api.post(
        url(standin, "jobs"),
        json={"connectionId": SALESFORCE_CONNECTION_ID, "jobType": "sync"},
        timeout=5,
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    assert "already running" in response.json()["detail"]
    assert len(standin.jobs()) == 1
    wait_until(lambda: all_terminal(standin))


def test_create_job_validation(api, standin) -> None:
    unknown = api.post(
        url(standin, "jobs"), json={"connectionId": UNKNOWN, "jobType": "sync"}, timeout=5
    )
    bad_uuid = api.post(
        url(standin, "jobs"), json={"connectionId": "x", "jobType": "sync"}, timeout=5
    )
    bad_type = api.post(
        url(standin, "jobs"), json={"connectionId": UNKNOWN, "jobType": "nope"}, timeout=5
    )
    assert unknown.status_code == 404
    assert bad_uuid.status_code == 400
    assert bad_type.status_code == 400
    assert all(r.headers["content-type"] == PROBLEM for r in (unknown, bad_uuid, bad_type))
    assert standin.take_contract_violations()  # jobType "nope" breaks the request contract
    assert standin.jobs() == []


def test_cancel_job_via_delete(api, standin) -> None:
    standin.set_job_behaviour("stuck_pending")
    job = create_job(api, standin, STRIPE_CONNECTION_ID)
    cancelled = api.delete(url(standin, f"jobs/{job['jobId']}"), timeout=5)
    assert cancelled.json()["status"] == "cancelled"
    again = api.delete(url(standin, f"jobs/{job['jobId']}"), timeout=5)
    assert again.status_code == 200
    assert again.json()["status"] == "cancelled"
    assert api.delete(url(standin, "jobs/424242"), timeout=5).status_code == 404
    assert api.get(url(standin, "jobs/notanint"), timeout=5).status_code == 400
    standin.take_contract_violations()  # "notanint" is not an int64 path parameter


def test_list_jobs_filters_orders_and_paginates(api, standin) -> None:
    ids = []
    for connection_id in (STRIPE_CONNECTION_ID, HUBSPOT_CONNECTION_ID, SALESFORCE_CONNECTION_ID):
        ids.append(create_job(api, standin, connection_id)["jobId"])
    wait_until(lambda: all_terminal(standin))
    ids.append(create_job(api, standin, STRIPE_CONNECTION_ID, "reset")["jobId"])
    wait_until(lambda: all_terminal(standin))

    newest_first = api.get(url(standin, "jobs"), timeout=5).json()
    assert [j["jobId"] for j in newest_first["data"]] == ids[::-1]
    oldest_first = api.get(url(standin, "jobs"), params={"orderBy": "createdAt|ASC"}, timeout=5)
    assert [j["jobId"] for j in oldest_first.json()["data"]] == ids
    stripe = api.get(
        url(standin, "jobs"), params={"connectionId": STRIPE_CONNECTION_ID}, timeout=5
    ).json()
    assert {j["jobType"] for j in stripe["data"]} == {"sync", "reset"}
    resets = api.get(url(standin, "jobs"), params={"jobType": "reset"}, timeout=5).json()
    assert [j["jobId"] for j in resets["data"]] == [ids[3]]
    succeeded = api.get(url(standin, "jobs"), params={"status": "succeeded"}, timeout=5).json()
    assert len(succeeded["data"]) == 4

    page = api.get(
        url(standin, "jobs"), params={"limit": 3, "orderBy": "createdAt|ASC"}, timeout=5
    ).json()
    assert [j["jobId"] for j in page["data"]] == ids[:3]
    rest = api.get(page["next"], timeout=5).json()
    assert [j["jobId"] for j in rest["data"]] == ids[3:]
    assert "next" not in rest
    assert "offset=0" in rest["previous"]


def test_list_jobs_rejects_bad_parameters(api, standin) -> None:
    for params in ({"orderBy": "name|UP"}, {"limit": 0}, {"limit": 101}, {"offset": -1}):
        response = api.get(url(standin, "jobs"), params=params, timeout=5)
        assert response.status_code == 400, params
        assert response.headers["content-type"] == PROBLEM
    standin.take_contract_violations()  # each request broke the declared parameter bounds


def test_token_form_post_and_json(standin) -> None:
    cfg = standin.config
    form = requests.post(
        url(standin, "applications/token"),
        data={
            "grant_type": "client_credentials",
            "client_id": cfg.client_id,
            "client_secret": cfg.client_secret,
        },
        timeout=5,
    )
    as_json = requests.post(
        url(standin, "applications/token"),
        json={
            "grant_type": "client_credentials",
            "client_id": cfg.client_id,
            "client_secret": cfg.client_secret,
        },
        timeout=5,
    )
    for response in (form, as_json):
        assert response.status_code == 200
        assert response.json()["token_type"].lower() == "bearer"
        assert response.json()["expires_in"] == cfg.token_expires_in
