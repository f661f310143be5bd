"""A stand-in seeded with extra connections (``extra_connections`` / ``--connections N``):
every list pages through all of them on both APIs, every get answers for them, a sync on one
runs to success, and the same N gives the same workspace on every start. Real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests
import sqlalchemy as sa

from dev.airbyte_standin import SEED, WORKSPACE_ID, build_seed, extra_connection
from dev.airbyte_standin.admin_client import RunningStandin
from dev.airbyte_standin.seed import DESTINATION_ID, EXTRA_NAMESPACE, SOURCE_TYPES
from dev.airbyte_standin.serving import quick_config, run_standin, run_standin_process
from dev.processes import wait_until
from tests.dev.conftest import reset_and_checked

EXTRA = 250
TOTAL = len(SEED) + EXTRA
USER_ID = "11111111-2222-4333-8444-555555555555"


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStandin]:
    """An in-process stand-in with 250 extra connections (the config field)."""
    config = quick_config(tmp_path_factory.mktemp("scaled"), auth="basic", extra_connections=EXTRA)
    with run_standin(config) as running:
        yield running


@pytest.fixture
def standin(scaled: RunningStandin) -> Iterator[RunningStandin]:
    """The scaled stand-in, reset before the test; fails the test on contract violations."""
    yield from reset_and_checked(scaled)


def expected_ids() -> list[str]:
    return [conn.connection_id for conn in build_seed(EXTRA)]


def public_pages(api: requests.Session, first_url: str, **params) -> list[dict]:
    """Every page of a Public API list, following its ``next`` links."""
    pages = [api.get(first_url, params=params, timeout=10).json()]
    while "next" in pages[-1]:
        assert pages[-1]["next"].startswith(first_url)
        pages.append(api.get(pages[-1]["next"], timeout=10).json())
    return pages


# -- the seed as data ---------------------------------------------------------------------
def test_build_seed_keeps_the_fixed_ones_first_and_adds_deterministic_ones() -> None:
    seed = build_seed(EXTRA)
    assert seed[: len(SEED)] == SEED
    assert build_seed(0) == SEED
    assert len(seed) == TOTAL
    assert seed == build_seed(EXTRA)
    assert seed[: len(SEED) + 10] == build_seed(10)  # connection i is the same whatever N
    conn = extra_connection(42)
    assert seed[len(SEED) + 41] == conn
    assert conn.connection_id == str(uuid.uuid5(EXTRA_NAMESPACE, "connection/42"))
    assert conn.name == "Source 0042 → Postgres"
    assert conn.source_title == "Source 0042"
    assert conn.table_names[0] == "source_0042_" + conn.streams[0]
    extras = seed[len(SEED) :]
    assert all(2 <= len(c.streams) <= 4 and c.status == "active" for c in extras)
    assert {len(c.streams) for c in extras} == {2, 3, 4}
    assert {c.source for c in extras} <= set(SOURCE_TYPES)
    for attribute in ("connection_id", "source_id", "name", "prefix"):
        assert len({getattr(c, attribute) for c in seed}) == TOTAL, attribute
    with pytest.raises(ValueError, match=">= 0"):
        build_seed(-1)


# -- lists --------------------------------------------------------------------------------
def test_config_api_lists_every_connection(api, standin) -> None:
    response = api.post(
        f"{standin.config_api_url}/connections/list", json={"workspaceId": WORKSPACE_ID}, timeout=30
    )
    assert response.status_code == 200, response.text
    connections = response.json()["connections"]
    assert [c["connectionId"] for c in connections] == expected_ids()
    assert [c["name"] for c in connections] == [c.name for c in build_seed(EXTRA)]
    assert all(c["status"] == "active" for c in connections)


def test_config_api_pages_every_connection(api, standin) -> None:
    seen, offset = [], 0
    while True:
        body = {
            "workspaceIds": [WORKSPACE_ID],
            "userId": USER_ID,
            "pagination": {"pageSize": 100, "rowOffset": offset},
        }
        response = api.post(
            f"{standin.config_api_url}/connections/list_paginated", json=body, timeout=30
        )
        assert response.status_code == 200, response.text
        page = [c["connectionId"] for c in response.json()["connections"]]
        if not page:
            break
        seen += page
        offset += len(page)
    assert seen == expected_ids()
    assert offset == TOTAL


def test_public_api_pages_every_connection_with_next_links(api, standin) -> None:
    url = f"{standin.public_api_url}/connections"
    pages = public_pages(api, url, workspaceIds=WORKSPACE_ID, limit=100)
    assert [len(page["data"]) for page in pages] == [100, 100, TOTAL - 200]
    assert [c["connectionId"] for page in pages for c in page["data"]] == expected_ids()
    assert "workspaceIds=" + WORKSPACE_ID in pages[1]["next"]
    assert api.get(pages[-1]["previous"], timeout=10).json() == pages[-2]
    default = public_pages(api, url)  # 20 a page, as Airbyte
    assert len(default) == -(-TOTAL // 20)
    assert [c["connectionId"] for page in default for c in page["data"]] == expected_ids()
    other = uuid.uuid4()
    assert api.get(url, params={"workspaceIds": other}, timeout=10).json()["data"] == []


# -- gets ---------------------------------------------------------------------------------
@pytest.mark.parametrize("index", [1, 42, EXTRA])
def test_every_get_answers_for_an_extra_connection(api, standin, index: int) -> None:
    conn = extra_connection(index)
    config, public = standin.config_api_url, standin.public_api_url
    body = {"connectionId": conn.connection_id}
    read = api.post(f"{config}/connections/get", json=body, timeout=10).json()
    assert (read["name"], read["sourceId"], read["prefix"]) == (
        conn.name,
        conn.source_id,
        conn.prefix,
    )
    assert [s["stream"]["name"] for s in read["syncCatalog"]["streams"]] == list(conn.streams)
    details = api.post(f"{config}/web_backend/connections/get", json=body, timeout=10).json()
    assert details["source"]["name"] == conn.source_title
    assert details["destination"]["destinationId"] == DESTINATION_ID
    source = api.post(f"{config}/sources/get", json={"sourceId": conn.source_id}, timeout=10)
    assert source.json()["sourceDefinitionId"] == SOURCE_TYPES[conn.source].definition_id

    response = api.get(f"{public}/connections/{conn.connection_id}", timeout=10).json()
    assert response["name"] == conn.name
    assert [s["name"] for s in response["configurations"]["streams"]] == list(conn.streams)
    source = api.get(f"{public}/sources/{conn.source_id}", timeout=10).json()
    assert (source["name"], source["sourceType"]) == (conn.source_title, conn.source)
    destination = api.get(f"{public}/destinations/{response['destinationId']}", timeout=10)
    assert destination.status_code == 200
    streams = api.get(f"{public}/streams", params={"sourceId": conn.source_id}, timeout=10)
    assert [s["streamName"] for s in streams.json()] == list(conn.streams)


# -- syncs --------------------------------------------------------------------------------
def wait_public_job(api, standin: RunningStandin, job_id: int) -> dict:
    def finished() -> dict | None:
        body = api.get(f"{standin.public_api_url}/jobs/{job_id}", timeout=10).json()
        return body if body["status"] in ("succeeded", "failed", "cancelled") else None

    return wait_until(finished, timeout=10, what=f"job {job_id} ends")


def table_counts(standin: RunningStandin, tables: tuple[str, ...]) -> dict[str, int]:
    engine = sa.create_engine(standin.warehouse_url)
    try:
        with engine.connect() as db:
            return {
                t: db.execute(sa.text(f'SELECT COUNT(*) FROM "{t}"')).scalar_one() for t in tables
            }
    finally:
        engine.dispose()


def test_sync_on_an_extra_connection_writes_its_tables(api, standin) -> None:
    conn = extra_connection(42)  # HubSpot-typed: three streams of its own, one generic
    assert conn.streams == ("contacts", "companies", "deals", "tickets")
    body = {"connectionId": conn.connection_id, "jobType": "sync"}
    job = api.post(f"{standin.public_api_url}/jobs", json=body, timeout=10).json()
    done = wait_public_job(api, standin, job["jobId"])
    rows = standin.config.rows_per_stream
    assert done["status"] == "succeeded"
    assert done["rowsSynced"] == len(conn.streams) * rows
    assert table_counts(standin, conn.table_names) == dict.fromkeys(conn.table_names, rows)


def test_reset_then_sync_on_an_extra_connection_by_the_config_api(api, standin) -> None:
    conn = extra_connection(EXTRA)
    config = standin.config_api_url
    for action in ("reset", "sync"):
        answer = api.post(
            f"{config}/connections/{action}", json={"connectionId": conn.connection_id}, timeout=10
        ).json()
        if action == "reset":
            reset = answer["job"]["resetConfig"]["streamsToReset"]
            assert [s["name"] for s in reset] == list(conn.streams)
        wait_public_job(api, standin, answer["job"]["id"])
    [reset_job, sync_job] = standin.jobs()
    assert (reset_job["status"], sync_job["status"]) == ("succeeded", "succeeded")
    rows = standin.config.rows_per_stream
    assert table_counts(standin, conn.table_names) == dict.fromkeys(conn.table_names, rows)


# -- the same workspace on every start ----------------------------------------------------
def listed(running: RunningStandin) -> list[tuple[str, str, str, tuple[str, ...]]]:
    session = requests.Session()
    session.headers.update(running.auth_headers())
    pages = public_pages(session, f"{running.public_api_url}/connections", limit=100)
    return [
        (
            c["connectionId"],
            c["name"],
            c["sourceId"],
            tuple(s["name"] for s in c["configurations"]["streams"]),
        )
        for page in pages
        for c in page["data"]
    ]


def test_same_count_gives_the_same_workspace_on_every_start(tmp_path, scaled) -> None:
    starts = []
    for attempt in ("first", "second"):
        config = quick_config(tmp_path / attempt, auth="none", extra_connections=EXTRA)
        with run_standin_process(config) as running:  # --connections 250
            starts.append(listed(running))
    assert starts[0] == starts[1] == listed(scaled)
    assert [c[0] for c in starts[0]] == expected_ids()
    assert len({c[2] for c in starts[0]}) == TOTAL
