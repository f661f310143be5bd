"""Parsing the answers lineage needs: connection details, stream schemas, per-stream figures."""

from __future__ import annotations

import pytest

from dev.airbyte_standin.seed import STRIPE_CONNECTION_ID, WORKSPACE_ID
from plugins.airbyte_client.api.base import schema_fields
from plugins.airbyte_client.api.config import ConfigApi
from plugins.airbyte_client.transport import ApiRequest


def job_info(status: str, attempts: list[dict]) -> dict:
    """A Configuration API JobInfoRead of a Stripe sync."""
    job = {
        "id": 9,
        "configType": "sync",
        "configId": STRIPE_CONNECTION_ID,
        "createdAt": 1,
        "updatedAt": 2,
        "status": status,
    }
    return {"job": job, "attempts": [{"attempt": a} for a in attempts]}


@pytest.mark.parametrize(
    ("json_schema", "fields"),
    [
        (
            {
                "properties": {
                    "id": {"type": ["null", "string"]},
                    "at": {"type": "string", "format": "date-time"},
                    "n": {"type": "integer"},
                    "odd": "not a schema",
                    "untyped": {},
                }
            },
            (("id", "string"), ("at", "timestamp"), ("n", "integer"), ("untyped", "unknown")),
        ),
        ({"properties": ["a", "b"]}, ()),
        ("not an object", ()),
        (None, ()),
    ],
)
def test_schema_fields_survive_hostile_schemas(json_schema, fields):
    assert schema_fields(json_schema) == fields


def test_stream_figures_fall_back_to_the_attempts_stream_stats():
    attempt = {
        "id": 0,
        "status": "succeeded",
        "createdAt": 1,
        "updatedAt": 2,
        "streamStats": [
            {"streamName": "charges", "stats": {"recordsEmitted": 5, "bytesEmitted": 50}},
            {"streamName": "charges", "stats": {"recordsCommitted": 2, "bytesCommitted": 20}},
        ],
    }
    body = job_info("succeeded", [attempt, {**attempt, "id": 1}])
    job = ConfigApi().parse_job(body, ApiRequest("POST", "/jobs/get"))
    [charges] = job.streams
    assert (charges.records, charges.bytes) == (14, 140)


def test_connection_details_keep_locations_never_secrets():
    actor = {"workspaceId": WORKSPACE_ID, "createdAt": 1}
    body = {
        "connectionId": STRIPE_CONNECTION_ID,
        "prefix": None,
        "syncCatalog": {
            "streams": [
                {"stream": {"name": "kept"}, "config": {"selected": True, "aliasName": "k"}},
                {"stream": {"name": "unselected"}, "config": {"selected": False}},
            ]
        },
        "source": {
            **actor,
            "sourceId": "s",
            "sourceName": "Postgres (Strict Encrypt)",
            "connectionConfiguration": {
                "host": "db",
                "port": 5432,
                "database": "app",
                "password": "hunter2",
                "tunnel_method": {"tunnel_user_password": "hunter2"},
                "schema": True,  # not a location value: dropped
            },
        },
        "destination": {
            **actor,
            "destinationId": "d",
            "destinationName": "Postgres",
            "connectionConfiguration": None,
        },
    }
    request = ApiRequest("POST", "/web_backend/connections/get")
    d = ConfigApi().parse_connection_details(body, request)
    assert d.source.type == "postgres-strict-encrypt"
    assert d.source.location == {"host": "db", "port": "5432", "database": "app"}
    assert "hunter2" not in d.model_dump_json()
    assert d.destination.location == {}
    assert [(s.name, s.destination_name) for s in d.streams] == [("kept", "k")]
    assert d.workspace_id == WORKSPACE_ID


def test_odd_lineage_fields_never_break_the_answers_a_sync_needs():
    """Only lineage reads schemas, selection and per-attempt figures: odd ones are skipped."""
    api = ConfigApi()
    connection = {
        "connectionId": STRIPE_CONNECTION_ID,
        "name": "Stripe",
        "sourceId": "s",
        "destinationId": "d",
        "status": "active",
        "syncCatalog": {
            "streams": [{"stream": {"name": "charges", "jsonSchema": "oops"}, "config": {}}]
        },
    }
    parsed = api.parse_connection(connection, ApiRequest("POST", "/connections/get"))
    assert parsed.streams == ("charges",)
    attempt = {
        "id": 0,
        "status": "running",
        "createdAt": 1,
        "updatedAt": 2,
        "streamStats": [{"streamName": "charges"}],
    }
    body = job_info("running", [attempt])
    job = api.parse_job(body, ApiRequest("POST", "/jobs/get"))
    assert job.streams == ()


def test_a_connection_lists_only_the_streams_it_syncs():
    """The Configuration API's catalog holds every stream the source offers; the Public API
    and the drift check count only the selected ones."""
    body = {
        "connectionId": STRIPE_CONNECTION_ID,
        "name": "Stripe → Postgres",
        "status": "active",
        "sourceId": "s",
        "destinationId": "d",
        "syncCatalog": {
            "streams": [
                {"stream": {"name": "kept"}, "config": {"selected": True}},
                {"stream": {"name": "no_config"}},
                {"stream": {"name": "unselected"}, "config": {"selected": False}},
            ]
        },
    }
    connection = ConfigApi().parse_connection(body, ApiRequest("POST", "/connections/get"))
    assert connection.streams == ("kept", "no_config")
