"""``python -m include.discovery`` against the real Airbyte stand-in over HTTP, on both API
flavours: it writes entries for the workspace's connections, keeps comments and hand edits,
changes nothing on a second run, reports (never removes) gone entries, and pages through a
large workspace with one request per page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dev.airbyte_standin.admin_client import RunningStandin
from dev.airbyte_standin.seed import (
    HUBSPOT_CONNECTION_ID,
    SALESFORCE_CONNECTION_ID,
    SEED,
    STRIPE_CONNECTION_ID,
    WORKSPACE_ID,
    build_seed,
)
from dev.airbyte_standin.serving import quick_config, run_standin
from include.connections import ConnectionsFile, parse_connections
from include.discovery import entry_key, main
from tests.conftest import airbyte_conn_env, token_conn_env

FLAVOURS = pytest.mark.parametrize("flavour", ["public", "config"])
HAND_WRITTEN = """\
# Our connections. Keep this comment.
version: 1

connections:
  # Billing: the hand-written entry.
  stripe:
    label: Stripe → Postgres
    connection_variable: AIRBYTE_STRIPE_POSTGRES_CONNECTION_ID
    schedule: "@hourly"     # hand-set: billing wants it hourly
    owner: billing-team
    streams: [customers, charges]
"""


@pytest.fixture
def airbyte(token_standin, monkeypatch, flavour) -> Iterator[RunningStandin]:
    """``airbyte_default`` on the stand-in (client credentials, API ``flavour``), the Stripe
    Variable set; the stand-in reset and checked against the Airbyte contract."""
    token_standin.reset()
    token_conn_env(monkeypatch, token_standin.url, api_type=flavour)
    monkeypatch.setenv("AIRFLOW_VAR_AIRBYTE_STRIPE_POSTGRES_CONNECTION_ID", STRIPE_CONNECTION_ID)
    yield token_standin
    token_standin.assert_contract_kept()


def discover(path: Path, capsys, *args: str) -> tuple[int, str, str]:
    code = main(["--file", str(path), *args])
    out, err = capsys.readouterr()
    return code, out, err


def load(path: Path) -> ConnectionsFile:
    return parse_connections(path.read_bytes(), path)


def api_requests(standin: RunningStandin) -> list[tuple[str, str]]:
    """The Airbyte API requests the stand-in served (not tokens, health or its admin API)."""
    return [
        (r["method"], r["path"].rsplit("/api/", 1)[-1])
        for r in standin.requests()
        if "/applications/token" not in r["path"] and not r["path"].endswith("/health")
    ]


@FLAVOURS
def test_discovery_adds_entries_keeps_hand_edits_and_a_second_run_changes_nothing(
    airbyte, tmp_path, capsys, flavour
):
    path = tmp_path / "airbyte_connections.yaml"
    path.write_text(HAND_WRITTEN, encoding="utf-8")

    code, out, _ = discover(path, capsys)

    assert code == 0
    assert "  streams of stripe: +invoices" in out.splitlines()
    assert (
        f"  added hubspot_postgres: HubSpot → Postgres ({HUBSPOT_CONNECTION_ID}), 3 stream(s)"
        in out
    )
    assert "Wrote the file: 3 entries added, 1 stream lists updated." in out
    written = path.read_text(encoding="utf-8")
    assert written.startswith(
        HAND_WRITTEN.replace("[customers, charges]", "[customers, charges, invoices]")
    )
    file = load(path)
    assert list(file.connections) == [
        "stripe",
        "hubspot_postgres",
        "salesforce_postgres",
        "github_postgres",
    ]
    stripe, hubspot = file.entry("stripe"), file.entry("hubspot_postgres")
    assert (stripe.schedule, stripe.owner) == ("@hourly", "billing-team")
    assert stripe.streams == ("customers", "charges", "invoices")
    assert (hubspot.connection_id, hubspot.label) == (HUBSPOT_CONNECTION_ID, "HubSpot → Postgres")
    assert hubspot.streams == ("contacts", "companies", "deals")
    assert hubspot.schedule is None
    assert file.entry("salesforce_postgres").connection_id == SALESFORCE_CONNECTION_ID

    # A hand edit of a discovered entry, then discovery again: nothing changes, byte for byte.
    edited = written.replace(
        "  hubspot_postgres:\n",
        "  # CRM, synced nightly.\n  hubspot_postgres:\n    groups: [nightly]\n",
    )
    path.write_text(edited, encoding="utf-8")
    airbyte.reset()
    code, out, _ = discover(path, capsys)
    assert code == 0
    assert "No changes: the file is up to date (not rewritten)." in out
    assert path.read_text(encoding="utf-8") == edited
    assert load(path).entry("hubspot_postgres").groups == ("nightly",)
    expected = {
        "public": [("GET", "public/v1/connections")],
        "config": [("POST", "v1/workspaces/list"), ("POST", "v1/connections/list")],
    }[flavour]
    assert api_requests(airbyte) == expected
    assert f"Airbyte lists {len(SEED)} connection(s) ({len(expected)} API request(s)" in out


@FLAVOURS
def test_changes_in_airbyte_update_streams_and_add_entries_but_remove_nothing(
    airbyte, tmp_path, capsys, flavour
):
    path = tmp_path / "connections.yaml"
    assert discover(path, capsys)[0] == 0  # a missing file is created
    airbyte.delete_connection(HUBSPOT_CONNECTION_ID)
    airbyte.add_stream(SALESFORCE_CONNECTION_ID, "leads")
    zendesk = airbyte.add_connection("Zendesk → Postgres", ["tickets", "users"])

    code, out, _ = discover(path, capsys)

    assert code == 0
    lines = out.splitlines()
    assert "  streams of salesforce_postgres: +leads" in lines
    assert (
        f"  added zendesk_postgres: Zendesk → Postgres ({zendesk['connection_id']}), 2 stream(s)"
        in lines
    )
    assert "  Entries whose connection is gone (1):" in lines
    assert (
        f"    - hubspot_postgres: Airbyte does not list its connection_id {HUBSPOT_CONNECTION_ID}"
        in lines
    )
    file = load(path)
    assert "hubspot_postgres" in file.connections  # reported, not removed
    assert file.entry("salesforce_postgres").streams == ("accounts", "opportunities", "leads")
    assert file.entry("zendesk_postgres").streams == ("tickets", "users")


@FLAVOURS
def test_dry_run_says_what_would_change_and_writes_nothing(airbyte, tmp_path, capsys, flavour):
    path = tmp_path / "airbyte_connections.yaml"
    path.write_text(HAND_WRITTEN, encoding="utf-8")
    code, out, _ = discover(path, capsys, "--dry-run")
    assert code == 0
    assert "Dry run, not written: 3 entries added, 1 stream lists updated." in out
    assert path.read_text(encoding="utf-8") == HAND_WRITTEN


@pytest.mark.parametrize("flavour", ["public"])
def test_an_unset_variable_stops_discovery_before_it_adds_a_duplicate(
    airbyte, tmp_path, capsys, monkeypatch, flavour
):
    monkeypatch.delenv("AIRFLOW_VAR_AIRBYTE_STRIPE_POSTGRES_CONNECTION_ID")
    path = tmp_path / "airbyte_connections.yaml"
    path.write_text(HAND_WRITTEN, encoding="utf-8")
    code, _, err = discover(path, capsys)
    assert code == 2
    assert "stripe: AIRBYTE_STRIPE_POSTGRES_CONNECTION_ID" in err
    assert "cannot tell whether their connections are already in the file" in err
    assert path.read_text(encoding="utf-8") == HAND_WRITTEN


@pytest.mark.parametrize("flavour", ["config"])
def test_another_airbyte_server_gets_entries_naming_its_connection_id(
    airbyte, tmp_path, capsys, monkeypatch, flavour
):
    airbyte_conn_env(
        monkeypatch,
        airbyte.config_api_url,
        conn_id="airbyte_eu",
        login="standin-client",
        password="standin-secret",
        auth_type="client_credentials",
    )
    path = tmp_path / "airbyte_connections.yaml"
    path.write_text(HAND_WRITTEN, encoding="utf-8")
    code, _, _ = discover(path, capsys, "--conn-id", "airbyte_eu", "--workspace-id", WORKSPACE_ID)
    assert code == 0
    file = load(path)
    # The stripe entry is airbyte_default's: on airbyte_eu its connection is new.
    servers = [e.airbyte_conn_id for e in file.connections.values()]
    assert servers == ["airbyte_default"] + ["airbyte_eu"] * len(SEED)
    assert file.entry("stripe").streams == ("customers", "charges")
    assert api_requests(airbyte) == [("POST", "v1/connections/list")]  # no workspaces/list


@pytest.fixture
def large_workspace(tmp_path, monkeypatch, flavour) -> Iterator[RunningStandin]:
    """A stand-in with 250 connections besides the seed's (``--connections 250``)."""
    with run_standin(quick_config(tmp_path, extra_connections=250)) as server:
        token_conn_env(monkeypatch, server.url, api_type=flavour)
        yield server


@FLAVOURS
def test_discovery_pages_through_a_large_workspace(large_workspace, tmp_path, capsys, flavour):
    path = tmp_path / "airbyte_connections.yaml"
    code, out, _ = discover(path, capsys)
    assert code == 0
    seed = build_seed(250)
    file = load(path)
    assert [e.connection_id for e in file.connections.values()] == [c.connection_id for c in seed]
    assert file.entry("source_0250_postgres").label == "Source 0250 → Postgres"
    sent = api_requests(large_workspace)
    pages = {"public": 3, "config": 1}[flavour]  # the Public API's pages hold 100 each
    assert len(sent) <= pages + 1 + len(
        seed
    )  # at most one per page (+ workspaces) and per connection
    lists = [s for s in sent if s[1].endswith(("connections", "connections/list"))]
    assert len(lists) == pages
    assert len(sent) == len(lists) + (flavour == "config")  # and nothing per connection
    assert f"Airbyte lists {len(seed)} connection(s) ({len(sent)} API request(s)" in out

    large_workspace.reset()
    before = path.read_bytes()
    assert "No changes" in discover(path, capsys)[1]
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("name", "taken", "key"),
    [
        ("Stripe → Postgres", set(), "stripe_postgres"),
        ("Stripe → Postgres", {"stripe_postgres"}, "stripe_postgres_2"),
        ("Stripe → Postgres", {"stripe_postgres", "stripe_postgres_2"}, "stripe_postgres_3"),
        ("Café Ünïcode  -- Sync!", set(), "cafe_unicode_sync"),
        ("2024 Orders", set(), "connection_2024_orders"),
        ("→ ←", set(), "connection"),
        ("x" * 80, set(), "x" * 63),
        ("x" * 80, {"x" * 63}, "x" * 61 + "_2"),
    ],
)
def test_entry_keys_are_valid_and_unique(name, taken, key):
    taken = set(taken)
    assert entry_key(name, taken) == key
    assert key in taken
