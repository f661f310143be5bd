"""sqlalchemy_url: the warehouse Connection, given the Airflow way, as a SQLAlchemy URL."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from airflow.sdk.exceptions import AirflowNotFoundException
from sqlalchemy.engine import make_url

from include.warehouse import (
    WarehouseConnectionError,
    WarehouseConnectionNotFound,
    redact_url,
    sqlalchemy_url,
)
from tests.include.conftest import set_warehouse_connection

PASSWORD = "s3cr:et@/p%ss#?"


def test_sqlite_uri_form(monkeypatch):
    set_warehouse_connection(monkeypatch, "sqlite:////data/airbyte/warehouse.db")
    assert sqlalchemy_url() == "sqlite:////data/airbyte/warehouse.db"


def test_sqlite_path_in_host(monkeypatch):
    """``airflow connections add --conn-type sqlite --conn-host PATH`` stores the path in host."""
    set_warehouse_connection(
        monkeypatch, {"conn_type": "sqlite", "host": "/data/warehouse.db"}, conn_id="wh"
    )
    assert sqlalchemy_url("wh") == "sqlite:////data/warehouse.db"


def test_sqlite_without_path(monkeypatch):
    set_warehouse_connection(monkeypatch, {"conn_type": "sqlite"})
    with pytest.raises(WarehouseConnectionError, match="no database file"):
        sqlalchemy_url()


def test_postgres_json_form_quotes_the_password(monkeypatch):
    set_warehouse_connection(
        monkeypatch,
        {
            "conn_type": "postgres",
            "host": "db.example.com",
            "port": 5433,
            "login": "etl",
            "password": PASSWORD,
            "schema": "analytics",
        },
    )
    url = sqlalchemy_url()
    assert (
        url == f"postgresql+psycopg2://etl:{quote(PASSWORD, safe='')}@db.example.com:5433/analytics"
    )
    parsed = make_url(url)
    assert (parsed.username, parsed.password, parsed.host, parsed.port, parsed.database) == (
        "etl",
        PASSWORD,
        "db.example.com",
        5433,
        "analytics",
    )


def test_postgres_uri_form_with_libpq_extras(monkeypatch):
    set_warehouse_connection(
        monkeypatch,
        f"postgresql://etl:{quote(PASSWORD, safe='')}@db.example.com:5432/analytics"
        "?sslmode=require&connect_timeout=5",
    )
    parsed = make_url(sqlalchemy_url())
    assert parsed.drivername == "postgresql+psycopg2"
    assert parsed.password == PASSWORD
    assert parsed.database == "analytics"
    assert dict(parsed.query) == {"sslmode": "require", "connect_timeout": "5"}


def test_postgres_without_port_or_password(monkeypatch):
    set_warehouse_connection(
        monkeypatch, {"conn_type": "postgres", "host": "db", "login": "etl", "schema": "dw"}
    )
    assert sqlalchemy_url() == "postgresql+psycopg2://etl@db/dw"


def test_missing_connection_says_how_to_define_it(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_WAREHOUSE_DEFAULT", raising=False)
    with pytest.raises(WarehouseConnectionNotFound) as caught:
        sqlalchemy_url()
    message = str(caught.value)
    assert "'warehouse_default'" in message
    assert "AIRFLOW_CONN_WAREHOUSE_DEFAULT=sqlite:////" in message
    assert "airflow connections add warehouse_default" in message
    assert isinstance(caught.value, AirflowNotFoundException)


def test_unsupported_type_does_not_reveal_the_password(monkeypatch):
    set_warehouse_connection(
        monkeypatch,
        {"conn_type": "mysql", "host": "db", "login": "etl", "password": PASSWORD},
    )
    with pytest.raises(WarehouseConnectionError, match="'sqlite' or 'postgres'") as caught:
        sqlalchemy_url()
    assert PASSWORD not in str(caught.value)
    assert quote(PASSWORD, safe="") not in str(caught.value)


def test_redact_url_hides_the_password():
    url = f"postgresql+psycopg2://etl:{quote(PASSWORD, safe='')}@db:5432/dw"
    redacted = redact_url(url)
    assert redacted == "postgresql+psycopg2://etl:***@db:5432/dw"
    assert redact_url("not a url") == "<unparseable database URL>"
