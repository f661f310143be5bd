"""The comparison of the connections file with Airbyte's list: every kind of finding, from
entries and ``AirbyteConnection``s as the hook returns them (no server: the comparison is pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from include.connections import ConnectionEntry, parse_connections
from include.workspace import (
    EntryNote,
    Findings,
    NewConnection,
    StreamChange,
    compare,
    locate,
    resolve_variables,
)
from plugins.airbyte_client.models import AirbyteConnection

STRIPE_ID = "2a6f1c2e-8b1d-4c3a-9f0e-1d2c3b4a5f60"
HUBSPOT_ID = "7c9e4b1a-3d2f-4e5a-8b6c-0f1e2d3c4b5a"
SALESFORCE_ID = "d41e7f3b-6a5c-4b8d-9e2f-3a4b5c6d7e8f"
GITHUB_ID = "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
ZENDESK_ID = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b"

FILE = f"""
version: 1
connections:
  stripe:
    label: Stripe → Postgres
    connection_variable: [AIRBYTE_STRIPE_POSTGRES_CONNECTION_ID, AIRBYTE_STRIPE_CONNECTION_ID]
    streams: [customers, charges, invoices]
  hubspot:
    label: HubSpot → Postgres
    connection_id: {HUBSPOT_ID}
    streams: [contacts, companies, deals]
  salesforce:
    connection_variable: AIRBYTE_SALESFORCE_CONNECTION_ID
  github:
    label: GitHub
    connection_name: GitHub → Postgres
    streams: [issues]
"""
VARIABLES = {"AIRBYTE_STRIPE_CONNECTION_ID": STRIPE_ID, "AIRBYTE_SALESFORCE_CONNECTION_ID": None}


def connection(
    connection_id: str, name: str, *streams: str, status: str = "active"
) -> AirbyteConnection:
    return AirbyteConnection(
        connection_id=connection_id,
        name=name,
        status=status,
        source_id="0b7e5f2c-1a3d-4e6f-8a9b-c0d1e2f3a4b5",
        destination_id="b8a3c1d2-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        streams=streams,
    )


AIRBYTE = [
    connection(STRIPE_ID, "Stripe → Postgres", "customers", "charges", "invoices"),
    connection(HUBSPOT_ID, "HubSpot → Postgres", "contacts", "companies", "deals"),
    connection(SALESFORCE_ID, "Salesforce → Postgres", "accounts", "opportunities"),
    connection(GITHUB_ID, "GitHub → Postgres", "issues"),
]


def entries(text: str = FILE) -> list[ConnectionEntry]:
    return list(parse_connections(text, Path("airbyte_connections.yaml")).connections.values())


def variables(names: tuple[str, ...]) -> str | None:
    """A resolver as Airflow's Variables answer: the first of ``names`` that is set."""
    return next((VARIABLES[n] for n in names if VARIABLES.get(n)), None)


def findings(airbyte: list[AirbyteConnection], variable_values: dict | None = None) -> Findings:
    listed = entries()
    ids = resolve_variables(listed, variables)
    return compare(listed, airbyte, {**ids, **(variable_values or {})})


def test_variables_are_resolved_through_the_resolver_for_variable_entries_only():
    assert resolve_variables(entries(), variables) == {"stripe": STRIPE_ID, "salesforce": None}


def test_each_entry_finds_its_connection_by_id_variable_or_name():
    listed = entries()
    ids = resolve_variables(listed, variables) | {"salesforce": SALESFORCE_ID}
    targets = locate(listed, AIRBYTE, ids)
    assert [(t.key, t.connection.connection_id) for t in targets] == [
        ("stripe", STRIPE_ID),
        ("hubspot", HUBSPOT_ID),
        ("salesforce", SALESFORCE_ID),
        ("github", GITHUB_ID),
    ]


def test_file_and_airbyte_agreeing_find_nothing():
    found = findings(AIRBYTE, {"salesforce": SALESFORCE_ID})
    assert found == Findings()
    assert not found
    assert found.points_at_nothing == ()
    assert found.render() == "The connections file and Airbyte agree."
    assert found.as_dict() == {k: [] for k in ("new", "gone", "inactive", "renamed", "streams")}


def test_a_connection_no_entry_names_is_new():
    zendesk = connection(ZENDESK_ID, "Zendesk → Postgres", "tickets")
    found = findings([*AIRBYTE, zendesk], {"salesforce": SALESFORCE_ID})
    assert found.new == (NewConnection(ZENDESK_ID, "Zendesk → Postgres"),)
    assert found.count == 1
    assert found.points_at_nothing == ()
    assert f"  - Zendesk → Postgres ({ZENDESK_ID})" in found.render().splitlines()


def test_entries_whose_connection_is_gone_point_at_nothing():
    deleted = connection(HUBSPOT_ID, "HubSpot → Postgres", "contacts", status="deprecated")
    found = findings([AIRBYTE[0], deleted])  # Salesforce and GitHub deleted, HubSpot too
    assert found.gone == (
        EntryNote("hubspot", f"its connection_id {HUBSPOT_ID} is deleted in Airbyte"),
        EntryNote("salesforce", "the Variable AIRBYTE_SALESFORCE_CONNECTION_ID is not set"),
        EntryNote("github", "Airbyte has no connection named 'GitHub → Postgres'"),
    )
    assert found.points_at_nothing == ("hubspot", "salesforce", "github")
    assert found.new == ()  # a deleted connection is not new either


def test_a_variable_holding_an_id_airbyte_does_not_list_points_at_nothing():
    found = findings(AIRBYTE, {"salesforce": ZENDESK_ID})
    assert found.gone == (
        EntryNote(
            "salesforce",
            f"Airbyte does not list {ZENDESK_ID} (the Variable AIRBYTE_SALESFORCE_CONNECTION_ID)",
        ),
    )
    assert found.new == (NewConnection(SALESFORCE_ID, "Salesforce → Postgres"),)


def test_a_name_two_connections_have_points_at_nothing():
    twin = connection(ZENDESK_ID, "GitHub → Postgres", "issues")
    found = findings([*AIRBYTE, twin], {"salesforce": SALESFORCE_ID})
    assert found.gone == (
        EntryNote("github", "Airbyte has 2 connections named 'GitHub → Postgres'"),
    )
    assert {n.connection_id for n in found.new} == {GITHUB_ID, ZENDESK_ID}


def test_an_inactive_connection_is_reported_but_still_found():
    paused = connection(STRIPE_ID, "Stripe → Postgres", "customers", "charges", "invoices")
    paused = paused.model_copy(update={"status": "inactive"})
    found = findings([paused, *AIRBYTE[1:]], {"salesforce": SALESFORCE_ID})
    assert found.inactive == (EntryNote("stripe", "'Stripe → Postgres' is inactive"),)
    assert found.points_at_nothing == ()


def test_a_label_other_than_airbytes_name_is_a_rename_unless_named_by_connection_name():
    renamed = connection(HUBSPOT_ID, "HubSpot (EU) → Postgres", "contacts", "companies", "deals")
    found = findings([AIRBYTE[0], renamed, *AIRBYTE[2:]], {"salesforce": SALESFORCE_ID})
    assert found.renamed == (
        EntryNote(
            "hubspot", "label 'HubSpot → Postgres', but Airbyte calls it 'HubSpot (EU) → Postgres'"
        ),
    )
    # github's label "GitHub" differs from its name, but it is named by connection_name (its
    # name is how it is found) and salesforce has no label: neither is a rename.
    assert [n.key for n in found.renamed] == ["hubspot"]


def test_streams_added_and_removed_since_discovery():
    changed = connection(
        STRIPE_ID, "Stripe → Postgres", "customers", "invoices", "refunds", "disputes"
    )
    found = findings([changed, *AIRBYTE[1:]], {"salesforce": SALESFORCE_ID})
    assert found.streams == (StreamChange("stripe", ("refunds", "disputes"), ("charges",)),)
    assert "  - stripe: added refunds, disputes; removed charges" in found.render().splitlines()
    assert found.as_dict()["streams"] == [
        {"key": "stripe", "added": ["refunds", "disputes"], "removed": ["charges"]}
    ]


def test_an_entry_without_recorded_streams_reports_none():
    more = connection(SALESFORCE_ID, "Salesforce → Postgres", "accounts", "leads", "cases")
    found = findings([*AIRBYTE[:2], more, AIRBYTE[3]], {"salesforce": SALESFORCE_ID})
    assert found == Findings()


def test_stream_order_alone_is_no_change():
    shuffled = connection(STRIPE_ID, "Stripe → Postgres", "invoices", "customers", "charges")
    assert not findings([shuffled, *AIRBYTE[1:]], {"salesforce": SALESFORCE_ID})


def test_findings_of_two_servers_add_up_and_render_by_kind():
    one = Findings(new=(NewConnection(ZENDESK_ID, "Zendesk"),))
    two = Findings(gone=(EntryNote("github", "gone"),), streams=(StreamChange("a", ("x",)),))
    both = one + two
    assert both.count == 3
    assert both.points_at_nothing == ("github",)
    assert both.render().splitlines() == [
        "Airbyte connections not in the connections file (1):",
        f"  - Zendesk ({ZENDESK_ID})",
        "Entries whose connection is gone (1):",
        "  - github: gone",
        "Streams changed since discovery (1):",
        "  - a: added x",
    ]


def test_findings_read_back_from_their_dict_are_the_same_and_sorted_by_entry():
    found = Findings(
        new=(NewConnection(ZENDESK_ID, "Zendesk"),),
        gone=(EntryNote("github", "gone"),),
        renamed=(EntryNote("stripe", "renamed"),),
        streams=(StreamChange("stripe", ("x",), ("y", "z")),),
    )
    assert Findings.from_dict(found.as_dict()) == found
    assert found.by_entry == {
        "github": (("gone", "gone"),),
        "stripe": (("renamed", "renamed"), ("streams", "added x; removed y, z")),
    }


@pytest.mark.parametrize(
    "data",
    [
        {"gone": "github"},
        {"gone": [{"detail": "no key"}], "new": [{"connection_id": 7, "name": "n"}]},
        {"streams": [{"key": "a", "added": "x"}, {"key": "b", "removed": [1]}, ["key"]]},
        {"inactive": None, "renamed": {"key": "a", "detail": "d"}},
    ],
)
def test_findings_of_another_shape_are_left_out_when_read_back(data):
    assert Findings.from_dict(data) == Findings()


@pytest.mark.parametrize("status", ["inactive", "deprecated"])
def test_only_active_or_inactive_connections_can_be_new(status):
    extra = connection(ZENDESK_ID, "Zendesk → Postgres", "tickets", status=status)
    found = findings([*AIRBYTE, extra], {"salesforce": SALESFORCE_ID})
    assert [n.connection_id for n in found.new] == ([ZENDESK_ID] if status == "inactive" else [])
