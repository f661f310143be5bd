"""Fault injection: each kind, filters, counts, and the request log."""

from __future__ import annotations

import json
import threading

import pytest
import requests

from dev.airbyte_standin import HUBSPOT_CONNECTION_ID, STRIPE_CONNECTION_ID
from dev.airbyte_standin.admin_client import RunningStandin
from dev.processes import wait_until

SYNC = "/api/v1/connections/sync"
BROKEN = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)


def sync(api, standin: RunningStandin, connection_id: str = STRIPE_CONNECTION_ID, **kw):
    return api.post(
        f"{standin.url}{SYNC}", json={"connectionId": connection_id}, timeout=kw.get("timeout", 5)
    )


def settle(standin: RunningStandin) -> None:
    wait_until(
        lambda: all(j["status"] in ("succeeded", "failed", "cancelled") for j in standin.jobs())
    )


def test_status_fault_answers_n_requests_without_processing(api, standin) -> None:
    standin.inject("status", status=503, count=2, path=SYNC)
    assert [sync(api, standin).status_code for _ in range(2)] == [503, 503]
    assert standin.jobs() == []
    assert sync(api, standin).status_code == 200
    assert len(standin.jobs()) == 1
    log = standin.requests()
    assert [(r["status"], r["fault"]) for r in log] == [
        (503, "status"),
        (503, "status"),
        (200, None),
    ]
    settle(standin)


def test_429_carries_retry_after_and_public_problem_body(api, standin) -> None:
    standin.inject("status", status=429, path="/api/public/v1/jobs", method="GET")
    response = api.get(f"{standin.public_api_url}/jobs", timeout=5)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 429


def test_filters_by_method_and_path(api, standin) -> None:
    standin.inject("status", status=500, path="/api/v1/jobs/get", method="POST")
    assert sync(api, standin).status_code == 200  # other path: untouched
    job_id = standin.jobs()[0]["id"]
    response = api.post(f"{standin.config_api_url}/jobs/get", json={"id": job_id}, timeout=5)
    assert response.status_code == 500
    assert "message" in response.json()
    settle(standin)


def test_hang_times_out_client_but_not_other_requests(api, standin) -> None:
    standin.inject("hang", seconds=1.0, path="/api/v1/jobs/list")
    outcome: dict[str, object] = {}

    def slow_call() -> None:
        try:
            api.post(f"{standin.config_api_url}/jobs/list", json={"configTypes": []}, timeout=0.3)
        except requests.exceptions.ReadTimeout as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=slow_call)
    thread.start()
    # While that request hangs, the server keeps answering others.
    assert requests.get(f"{standin.config_api_url}/health", timeout=0.5).status_code == 200
    thread.join(timeout=5)
    assert isinstance(outcome.get("error"), requests.exceptions.ReadTimeout)
    wait_until(lambda: any(r["fault"] == "hang" for r in standin.requests()))


def test_drop_breaks_the_connection_and_does_not_process(api, standin) -> None:
    standin.inject("drop", path=SYNC)
    with pytest.raises(BROKEN):
        sync(api, standin)
    assert standin.jobs() == []
    assert standin.requests()[-1] == {
        "method": "POST",
        "path": SYNC,
        "status": None,
        "fault": "drop",
    }


def test_lost_response_processes_then_drops(api, standin) -> None:
    standin.inject("lost_response", path=SYNC)
    with pytest.raises(BROKEN):
        sync(api, standin)
    assert [j["connection_id"] for j in standin.jobs()] == [STRIPE_CONNECTION_ID]
    assert sync(api, standin).status_code == 409  # the job really exists
    settle(standin)


def test_malformed_answers_invalid_json(api, standin) -> None:
    standin.inject("malformed", path=SYNC)
    response = sync(api, standin)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)
    assert standin.jobs() == []


def test_missing_fields_answers_valid_json_without_ids(api, standin) -> None:
    standin.inject("missing_fields", path=SYNC)
    assert sync(api, standin).json() == {}
    standin.inject("missing_fields", path=SYNC, process=True)
    body = sync(api, standin, HUBSPOT_CONNECTION_ID).json()
    assert "id" not in body["job"]
    assert body["job"]["status"] == "pending"
    assert len(standin.jobs()) == 1
    settle(standin)


def test_filters_by_query_string(api, standin) -> None:
    jobs = f"{standin.public_api_url}/jobs"
    standin.inject("status", status=500, path="/api/public/v1/jobs", exact=True,
                   query=f"connectionId={HUBSPOT_CONNECTION_ID}")  # fmt: skip
    stripe = api.get(jobs, params={"connectionId": STRIPE_CONNECTION_ID}, timeout=5)
    assert stripe.status_code == 200  # another connection's listing: untouched
    hubspot = api.get(jobs, params={"connectionId": HUBSPOT_CONNECTION_ID}, timeout=5)
    assert hubspot.status_code == 500
    assert standin.faults() == []


def test_faults_are_consumed_in_order(api, standin) -> None:
    standin.inject("status", status=502, path=SYNC)
    standin.inject("status", status=503, path=SYNC)
    assert [sync(api, standin).status_code for _ in range(3)] == [502, 503, 200]
    settle(standin)


def test_unknown_fault_kind_is_rejected(standin) -> None:
    response = requests.post(f"{standin.url}/_standin/faults", json={"kind": "explode"}, timeout=5)
    assert response.status_code == 400
    assert "unknown fault kind" in response.json()["message"]


def test_clearing_drops_queued_faults(api, standin) -> None:
    standin.inject("status", status=502, path=SYNC, count=5)
    assert standin.clear_faults() == 1
    assert sync(api, standin).status_code == 200
    settle(standin)
