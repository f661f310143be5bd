"""The one job -> dict contract: XCom values, trigger events and Asset event extras."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from plugins.airbyte_client.contracts import (
    JOB_ID_KEY,
    ORIGIN_NOTIFICATION,
    ORIGIN_TASK,
    ORIGIN_WATCHDOG,
    job_dict,
    job_extra,
    job_from_dict,
    names_job,
    stats_from_events,
    sync_stats,
    table_extra,
)
from plugins.airbyte_client.lineage import sync_lineage
from plugins.airbyte_client.models import (
    AirbyteJob,
    CatalogStream,
    ConnectionDetails,
    ConnectorInfo,
    JobStatus,
    JobType,
    StreamStats,
)

CONNECTION_ID = "2a6f1c2e-8b1d-4c3a-9f0e-1d2c3b4a5f60"
SOURCE_ID = "3f5c0b8e-2a7d-4d6e-9c1b-7e4a2f9d8c10"
DESTINATION_ID = "b8a3c1d2-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
CREATED = datetime(2025, 3, 1, 8, 0, 0, tzinfo=UTC)

JOB = AirbyteJob(
    job_id=42,
    connection_id=CONNECTION_ID,
    job_type=JobType.SYNC,
    status=JobStatus.SUCCEEDED,
    records=30,
    bytes=3000,
    created_at=CREATED,
    updated_at=CREATED,
    duration_seconds=12.5,
    attempts=2,
    failure_reason=None,
    streams=(
        StreamStats(name="charges", namespace="public", records=20, bytes=2000),
        StreamStats(name="customers", records=10, bytes=1000),
    ),
)

DETAILS = ConnectionDetails(
    connection_id=CONNECTION_ID,
    source=ConnectorInfo(actor_id=SOURCE_ID, type="stripe"),
    destination=ConnectorInfo(
        actor_id=DESTINATION_ID,
        type="postgres",
        location={"host": "warehouse", "port": "5432", "database": "analytics", "schema": "raw"},
    ),
    namespace_definition="destination",
    prefix="stripe_",
    streams=(
        CatalogStream(name="charges", namespace="public"),
        CatalogStream(name="customers"),
    ),
)
CHARGES_URI = "postgres://warehouse:5432/analytics/raw/stripe_charges"
CUSTOMERS_URI = "postgres://warehouse:5432/analytics/raw/stripe_customers"


def test_job_dict_round_trips_through_json():
    data = json.loads(json.dumps(job_dict(JOB)))  # as an XCom or a trigger event stores it
    assert job_from_dict(data) == JOB
    assert data["status"] == "succeeded"
    assert data["job_type"] == "sync"
    assert data["streams"][0] == {
        "name": "charges",
        "namespace": "public",
        "records": 20,
        "bytes": 2000,
    }


def test_job_from_dict_refuses_a_malformed_dict():
    with pytest.raises(ValidationError):
        job_from_dict({**job_dict(JOB), "records": -1})
    with pytest.raises(ValidationError):
        job_from_dict({"job_id": 42})


def test_sync_stats_figures_and_streams():
    stats = sync_stats(JOB, min_records=5)
    assert stats == {
        "job_id": 42,
        "connection_id": CONNECTION_ID,
        "job_type": "sync",
        "status": "succeeded",
        "records": 30,
        "bytes": 3000,
        "duration_seconds": 12.5,
        "streams": {
            "charges": {"records": 20, "bytes": 2000},
            "customers": {"records": 10, "bytes": 1000},
        },
        "min_records": 5,
    }
    assert type(stats["status"]) is str  # plain JSON, not the enum
    json.dumps(stats)


def test_job_extra_without_lineage():
    extra = job_extra(JOB)
    assert extra == {
        JOB_ID_KEY: 42,
        "connection_id": CONNECTION_ID,
        "job_type": "sync",
        "status": "succeeded",
        "records": 30,
        "bytes": 3000,
        "duration_seconds": 12.5,
        "origin": ORIGIN_TASK,
    }
    assert "tables" not in extra


def test_job_extra_with_lineage_has_figures_per_destination_table():
    extra = job_extra(JOB, sync_lineage(JOB, DETAILS), origin=ORIGIN_WATCHDOG)
    assert extra["origin"] == "watchdog"
    assert extra["tables"] == {
        CHARGES_URI: {"stream": "charges", "records": 20, "bytes": 2000},
        CUSTOMERS_URI: {"stream": "customers", "records": 10, "bytes": 1000},
    }
    json.dumps(extra)


def test_job_id_key_names_the_job_in_every_extra():
    assert JOB_ID_KEY == "airbyte_job_id"  # renaming it breaks in-flight retries
    out = sync_lineage(JOB, DETAILS).outputs[0]
    for extra in (job_extra(JOB), table_extra(JOB, out)):
        assert extra[JOB_ID_KEY] == 42
        assert "job_id" not in extra
        assert names_job(extra, 42)


def test_table_extra_is_the_tables_own_figures():
    charges = next(o for o in sync_lineage(JOB, DETAILS).outputs if o.stream == "charges")
    extra = table_extra(JOB, charges, origin=ORIGIN_NOTIFICATION)
    assert extra["table"] == "analytics.raw.stripe_charges"
    assert extra["namespace"] == "postgres://warehouse:5432"
    assert (extra["stream"], extra["records"], extra["bytes"]) == ("charges", 20, 2000)
    assert extra["origin"] == "airbyte_notification"
    assert extra["connection_id"] == CONNECTION_ID
    assert "tables" not in extra


@pytest.mark.parametrize(
    ("extra", "job_id", "expected"),
    [
        ({JOB_ID_KEY: 42}, 42, True),
        ({JOB_ID_KEY: "42"}, 42, True),  # an extra that went through a text template
        ({JOB_ID_KEY: 43}, 42, False),
        ({"job_id": 42}, 42, False),
        ({}, 42, False),
        (None, 42, False),
        ("airbyte_job_id=42", 42, False),
        ([42], 42, False),
    ],
)
def test_names_job(extra, job_id, expected):
    assert names_job(extra, job_id) is expected


def test_stats_from_events_latest_wins_and_lists_every_job():
    first = job_extra(JOB.model_copy(update={"job_id": 40, "records": 1}))
    second = job_extra(JOB, origin=ORIGIN_NOTIFICATION)
    stats = stats_from_events([first, None, "not a mapping", second])
    assert stats["job_id"] == 42
    assert stats["records"] == 30
    assert stats["origin"] == "airbyte_notification"
    assert stats["jobs"] == [40, 42]


def test_stats_from_events_reads_a_generator_once():
    stats = stats_from_events(job_extra(JOB) for _ in range(2))
    assert stats["jobs"] == [42, 42]
    assert stats["bytes"] == 3000


def test_stats_from_events_of_nothing():
    stats = stats_from_events([])
    assert stats["job_id"] is None
    assert stats["records"] is None
    assert stats["jobs"] == []
