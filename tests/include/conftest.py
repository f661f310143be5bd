"""Warehouses for the data-quality tests: SQLite files, and PostgreSQL via ``postgres_url``.

Both are filled by the Airbyte stand-in's own code (``Warehouse.sync``), so the checks run
against exactly the tables and rows a sync writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from dev.airbyte_standin.seed import SEED
from dev.airbyte_standin.warehouse import Warehouse

ROWS_PER_STREAM = 20


def fill_warehouse(url: str, *, syncs: int = 1, primary_keys: bool = True) -> None:
    """Write ``syncs`` syncs of every seeded connection into the database at ``url``.

    With ``primary_keys=False`` the tables are created first without constraints, as
    Airbyte's Postgres destination creates them, so NULL and duplicate ids can be inserted.
    """
    warehouse = Warehouse(url)
    try:
        if not primary_keys:
            loose = sa.MetaData()
            for connection in SEED:
                for stream in connection.streams:
                    table = warehouse.table(connection, stream)
                    sa.Table(
                        table.name,
                        loose,
                        *(sa.Column(c.name, c.type, nullable=True) for c in table.columns),
                    )
            with warehouse.engine.begin() as db:
                loose.create_all(db)
        for _ in range(syncs):
            for connection in SEED:
                warehouse.sync(connection, ROWS_PER_STREAM)
    finally:
        warehouse.dispose()


def execute(url: str, *statements: str, **params) -> None:
    """Run SQL statements against the database at ``url`` in one transaction."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as db:
            for statement in statements:
                db.execute(sa.text(statement), params)
    finally:
        engine.dispose()


def set_warehouse_connection(
    monkeypatch: pytest.MonkeyPatch, conn: dict | str, conn_id: str = "warehouse_default"
) -> None:
    """Define the Airflow Connection ``conn_id`` as an ``AIRFLOW_CONN_*`` variable."""
    value = conn if isinstance(conn, str) else json.dumps(conn)
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)


@pytest.fixture
def sqlite_warehouse(tmp_path: Path) -> str:
    """URL of a fresh SQLite warehouse holding one sync of every seeded connection."""
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    fill_warehouse(url)
    return url


@pytest.fixture
def sqlite_connection(monkeypatch: pytest.MonkeyPatch, sqlite_warehouse: str) -> str:
    """``warehouse_default`` pointing at ``sqlite_warehouse`` (URI form); returns the URL."""
    path = sa.engine.make_url(sqlite_warehouse).database
    set_warehouse_connection(monkeypatch, f"sqlite:///{path}")
    return sqlite_warehouse
