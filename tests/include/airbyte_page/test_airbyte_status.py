"""What Airbyte says of the entries, from a real stand-in over loopback HTTP: each entry is
matched however it names its connection, Airbyte is asked once per few minutes, and an
Airbyte that does not answer is said so, keeping what it said before."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from dev.airbyte_standin.seed import (
    GITHUB_CONNECTION_ID,
    HUBSPOT_CONNECTION_ID,
    STRIPE_CONNECTION_ID,
)
from dev.processes import free_port
from include.airbyte_page.airbyte_status import AirbyteStatus, ServerView
from include.connections import ConnectionsFile, parse_connections
from tests.conftest import airbyte_conn_env

MISSING_ID = "0b5e3a52-6f0e-4c1e-9d7a-2f4b8c6d1e00"
FILE = f"""\
version: 1
connections:
  stripe:
    label: Stripe → Postgres
    connection_variable: [AIRBYTE_PAGE_STRIPE_ID]
  github:
    connection_name: GitHub → Postgres
  hubspot:
    label: HubSpot (old name)
    connection_id: {HUBSPOT_CONNECTION_ID}
  gone:
    connection_id: {MISSING_ID}
"""


def connections_file(tmp_path: Path, text: str = FILE) -> ConnectionsFile:
    path = tmp_path / "airbyte_connections.yaml"
    path.write_text(text, encoding="utf-8")
    return parse_connections(text, path)


async def answered(cache: AirbyteStatus, file: ConnectionsFile) -> ServerView:
    """The view of ``airbyte_default`` once Airbyte has answered or failed (a loaded machine
    may take longer than a page waits)."""
    deadline = time.monotonic() + 30
    while True:
        view = (await cache.views(file))["airbyte_default"]
        if view.answered_at is not None or view.error != "Airbyte has not answered yet":
            return view
        assert time.monotonic() < deadline, "Airbyte never answered"
        await asyncio.sleep(0.05)


def test_every_entry_is_matched_however_it_names_its_connection(
    airbyte_conn, tmp_path, monkeypatch
):
    monkeypatch.setenv("AIRFLOW_VAR_AIRBYTE_PAGE_STRIPE_ID", STRIPE_CONNECTION_ID)

    view = asyncio.run(answered(AirbyteStatus(), connections_file(tmp_path)))

    assert view.error is None
    assert view.api_root == f"{airbyte_conn.url}/api/v1"
    found = {key: t.connection for key, t in view.targets.items()}
    assert found["stripe"].connection_id == STRIPE_CONNECTION_ID  # through its Variable
    assert found["github"].connection_id == GITHUB_CONNECTION_ID  # by its name
    assert (found["hubspot"].name, found["hubspot"].status) == ("HubSpot → Postgres", "active")
    assert found["hubspot"].workspace_id  # what the link to Airbyte needs
    assert found["gone"] is None
    assert view.targets["gone"].problem == f"Airbyte does not list its connection_id {MISSING_ID}"


def test_airbyte_is_asked_once_for_many_page_views(airbyte_conn, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_AIRBYTE_PAGE_STRIPE_ID", STRIPE_CONNECTION_ID)
    file = connections_file(tmp_path)

    async def views() -> list[ServerView]:
        cache = AirbyteStatus()
        first = await answered(cache, file)
        asked = len(airbyte_conn.requests())
        again = [(await cache.views(file))["airbyte_default"] for _ in range(20)]
        assert len(airbyte_conn.requests()) == asked  # the next views ask nothing
        return [first, *again]

    seen = asyncio.run(views())

    listings = [r for r in airbyte_conn.requests() if "connections" in r["path"]]
    assert len(listings) == 1, airbyte_conn.requests()  # 4 connections: one page
    assert all(view is seen[0] for view in seen)


def test_an_unreachable_airbyte_is_said_and_what_it_said_before_is_kept(
    airbyte_conn, tmp_path, monkeypatch
):
    monkeypatch.setenv("AIRFLOW_VAR_AIRBYTE_PAGE_STRIPE_ID", STRIPE_CONNECTION_ID)
    cache = AirbyteStatus()
    before = asyncio.run(answered(cache, connections_file(tmp_path)))
    airbyte_conn_env(monkeypatch, f"http://127.0.0.1:{free_port()}", login="a", password="b")
    changed = connections_file(tmp_path, FILE.replace("HubSpot (old name)", "HubSpot"))

    after = asyncio.run(answered(cache, changed))  # a changed file is asked about at once

    assert before.error is None
    assert after.error.startswith("AirbyteUnreachableError: Connection refused"), after.error
    assert after.targets == before.targets  # what Airbyte said last
    assert after.answered_at == before.answered_at


def test_an_airbyte_nobody_reached_yet_says_nothing_about_the_entries(tmp_path, monkeypatch):
    airbyte_conn_env(monkeypatch, f"http://127.0.0.1:{free_port()}")

    view = asyncio.run(answered(AirbyteStatus(), connections_file(tmp_path)))

    assert view.answered_at is None
    assert view.targets == {}
    assert view.error.startswith("AirbyteUnreachableError: Connection refused"), view.error
