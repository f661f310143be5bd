"""Generated records and the warehouse writer, without the HTTP server."""

from __future__ import annotations

import json

import sqlalchemy as sa

from dev.airbyte_standin import SEED, STRIPE_CONNECTION_ID, TABLE_NAMES
from dev.airbyte_standin.records import generate_rows, to_json_value
from dev.airbyte_standin.seed import CONNECTIONS_BY_ID
from dev.airbyte_standin.warehouse import Warehouse, record_bytes


def test_table_names_are_source_and_stream() -> None:
    assert TABLE_NAMES == (
        "stripe_customers",
        "stripe_charges",
        "stripe_invoices",
        "hubspot_contacts",
        "hubspot_companies",
        "hubspot_deals",
        "salesforce_accounts",
        "salesforce_opportunities",
        "github_issues",
        "github_pull_requests",
    )


def test_rows_are_deterministic_and_json_serialisable() -> None:
    totals = {"customers": 10, "charges": 10, "invoices": 10}
    first = generate_rows("stripe", "charges", 0, 10, totals)
    assert first == generate_rows("stripe", "charges", 0, 10, totals)
    assert len({row["id"] for row in first}) == 10
    assert generate_rows("stripe", "charges", 10, 5, totals)[0]["id"] not in {
        r["id"] for r in first
    }
    for conn in SEED:
        counts = dict.fromkeys(conn.streams, 3)
        for stream in conn.streams:
            for row in generate_rows(conn.source, stream, 0, 3, counts):
                json.dumps({k: to_json_value(v) for k, v in row.items()})


def test_warehouse_sync_counts_rows_and_bytes(tmp_path) -> None:
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'nested' / 'w.db'}")
    connection = CONNECTIONS_BY_ID[STRIPE_CONNECTION_ID]
    results = warehouse.sync(connection, 4)
    assert [(r.stream, r.records) for r in results] == [
        ("customers", 4),
        ("charges", 4),
        ("invoices", 4),
    ]
    rows = generate_rows("stripe", "customers", 0, 4, {"customers": 4})
    assert results[0].bytes == sum(record_bytes(row) for row in rows)
    warehouse.sync(connection, 4)
    assert warehouse.count("stripe_customers") == 8
    warehouse.clear(connection)
    assert warehouse.count("stripe_customers") == 0
    assert warehouse.count("no_such_table") == 0
    columns = {c["name"] for c in sa.inspect(warehouse.engine).get_columns("stripe_charges")}
    assert {"id", "customer_id", "amount", "currency", "status", "created"} <= columns
    assert {"_airbyte_raw_id", "_airbyte_extracted_at"} <= columns
    warehouse.dispose()


def test_warehouse_on_postgres(postgres_url) -> None:
    warehouse = Warehouse(postgres_url)
    connection = CONNECTIONS_BY_ID[STRIPE_CONNECTION_ID]
    warehouse.clear(connection)
    warehouse.sync(connection, 3)
    warehouse.sync(connection, 3)
    assert warehouse.count("stripe_charges") == 6
    with warehouse.engine.connect() as db:
        created = db.execute(sa.text("SELECT created FROM stripe_charges LIMIT 1")).scalar_one()
    assert created.tzinfo is not None
    warehouse.clear(connection)
    warehouse.dispose()
