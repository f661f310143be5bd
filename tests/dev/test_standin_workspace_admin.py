"""The admin API changes the workspace at run time (a connection added, one deleted, a stream
added) and both APIs' lists and gets follow, over real HTTP; a reset brings back the seed."""

from __future__ import annotations

import pytest
import requests
import sqlalchemy as sa

from dev.airbyte_standin import (
    HUBSPOT_CONNECTION_ID,
    SEED,
    STRIPE_CONNECTION_ID,
    WORKSPACE_ID,
)
from dev.airbyte_standin.admin_client import RunningStandin
from dev.processes import wait_until

SEEDED = [conn.connection_id for conn in SEED]


def config_list(api, standin: RunningStandin, **flags) -> list[dict]:
    response = api.post(
        f"{standin.config_api_url}/connections/list",
        json={"workspaceId": WORKSPACE_ID, **flags},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["connections"]


def public_list(api, standin: RunningStandin, **params) -> list[dict]:
    response = api.get(f"{standin.public_api_url}/connections", params=params, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def ids(connections: list[dict]) -> list[str]:
    return [c["connectionId"] for c in connections]


def sync(api, standin: RunningStandin, connection_id: str) -> requests.Response:
    body = {"connectionId": connection_id, "jobType": "sync"}
    return api.post(f"{standin.public_api_url}/jobs", json=body, timeout=10)


def wait_succeeded(api, standin: RunningStandin, job_id: int) -> dict:
    url = f"{standin.public_api_url}/jobs/{job_id}"
    return wait_until(
        lambda: (body := api.get(url, timeout=10).json())["status"] == "succeeded" and body,
        what=f"job {job_id} succeeded",
    )


def test_added_connection_is_listed_got_and_synced(api, standin, warehouse) -> None:
    added = standin.add_connection("Zendesk → Postgres", ["tickets", "users"])
    new_id = added["connection_id"]
    assert added["source_name"] == "Zendesk"
    assert ids(config_list(api, standin)) == [*SEEDED, new_id]
    assert ids(public_list(api, standin, workspaceIds=WORKSPACE_ID)) == [*SEEDED, new_id]
    got = api.get(f"{standin.public_api_url}/connections/{new_id}", timeout=10).json()
    assert (got["name"], got["status"]) == ("Zendesk → Postgres", "active")
    streams = api.get(
        f"{standin.public_api_url}/streams", params={"sourceId": added["source_id"]}, timeout=10
    )
    assert [s["streamName"] for s in streams.json()] == ["tickets", "users"]

    done = wait_succeeded(api, standin, sync(api, standin, new_id).json()["jobId"])
    assert done["rowsSynced"] == 2 * standin.config.rows_per_stream
    with warehouse.connect() as db:
        for table in added["tables"]:
            count = db.execute(sa.text(f'SELECT COUNT(*) FROM "{table}"')).scalar_one()
            assert count == standin.config.rows_per_stream


def test_deleted_connection_leaves_the_lists_but_answers_as_deprecated(api, standin) -> None:
    assert standin.delete_connection(HUBSPOT_CONNECTION_ID)["status"] == "deprecated"
    remaining = [c for c in SEEDED if c != HUBSPOT_CONNECTION_ID]
    assert ids(config_list(api, standin)) == remaining
    assert ids(public_list(api, standin)) == remaining
    assert ids(config_list(api, standin, includeTombstone=True)) == SEEDED
    with_deleted = public_list(api, standin, includeDeleted="true")
    assert [c["status"] for c in with_deleted] == ["active", "deprecated", "active", "active"]

    got = api.get(f"{standin.public_api_url}/connections/{HUBSPOT_CONNECTION_ID}", timeout=10)
    assert got.json()["status"] == "deprecated"
    config_got = api.post(
        f"{standin.config_api_url}/connections/get",
        json={"connectionId": HUBSPOT_CONNECTION_ID},
        timeout=10,
    )
    assert config_got.json()["status"] == "deprecated"
    refused = sync(api, standin, HUBSPOT_CONNECTION_ID)
    assert refused.status_code == 409
    assert "deleted" in refused.json()["detail"]
    assert standin.jobs() == []


def test_added_stream_shows_everywhere_and_syncs(api, standin, warehouse) -> None:
    changed = standin.add_stream(STRIPE_CONNECTION_ID, "refunds")
    assert changed["streams"] == ["customers", "charges", "invoices", "refunds"]
    read = api.post(
        f"{standin.config_api_url}/connections/get",
        json={"connectionId": STRIPE_CONNECTION_ID},
        timeout=10,
    ).json()
    assert [s["stream"]["name"] for s in read["syncCatalog"]["streams"]][-1] == "refunds"
    [stripe] = [c for c in public_list(api, standin) if c["connectionId"] == STRIPE_CONNECTION_ID]
    assert [s["name"] for s in stripe["configurations"]["streams"]][-1] == "refunds"
    streams = api.get(
        f"{standin.public_api_url}/streams", params={"sourceId": changed["source_id"]}, timeout=10
    )
    assert "refunds" in [s["streamName"] for s in streams.json()]

    before = _count(warehouse, "stripe_refunds")
    done = wait_succeeded(api, standin, sync(api, standin, STRIPE_CONNECTION_ID).json()["jobId"])
    assert done["rowsSynced"] == 4 * standin.config.rows_per_stream
    assert _count(warehouse, "stripe_refunds") == before + standin.config.rows_per_stream


def _count(engine: sa.Engine, table: str) -> int:
    if not sa.inspect(engine).has_table(table):
        return 0
    with engine.connect() as db:
        return db.execute(sa.text(f'SELECT COUNT(*) FROM "{table}"')).scalar_one()


def test_reset_brings_back_the_seed(api, standin) -> None:
    added = standin.add_connection("Extra → Postgres", ["users"], source_type="faker")
    standin.delete_connection(STRIPE_CONNECTION_ID)
    standin.add_stream(HUBSPOT_CONNECTION_ID, "tickets")
    standin.reset()
    assert ids(config_list(api, standin)) == SEEDED
    assert [c["streams"] for c in standin.connections()] == [list(c.streams) for c in SEED]
    assert added["connection_id"] not in [c["connection_id"] for c in standin.connections(True)]
    again = standin.add_connection("Extra → Postgres", ["users"])
    assert again["connection_id"] != added["connection_id"]  # ids and tables never reused
    assert again["tables"] != added["tables"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/connections", {"name": "x", "streams": []}, 400),
        ("POST", "/connections", {"name": "x", "streams": ["a b"]}, 400),
        ("POST", "/connections", {"name": "", "streams": ["a"]}, 400),
        ("POST", "/connections", {"name": "x", "streams": ["a"], "source_type": "nope"}, 400),
        ("POST", "/connections", {"name": "x", "streams": ["a"], "colour": "red"}, 400),
        ("POST", f"/connections/{STRIPE_CONNECTION_ID}/streams", {"name": "charges"}, 400),
        ("POST", f"/connections/{STRIPE_CONNECTION_ID}/streams", {"stream": "x"}, 400),
        ("POST", "/connections/00000000-1111-4222-8333-444444444444/streams", {"name": "x"}, 404),
        ("DELETE", "/connections/00000000-1111-4222-8333-444444444444", None, 404),
    ],
)
def test_admin_refuses_bad_changes(standin, method, path, body, status) -> None:
    response = requests.request(method, f"{standin.url}/_standin{path}", json=body, timeout=10)
    assert response.status_code == status, response.text
    assert response.json()["message"]
    assert [c["connection_id"] for c in standin.connections()] == SEEDED
