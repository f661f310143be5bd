"""The warehouse the Airbyte connections write to, as an Airflow Connection.

The Connection ``warehouse_default`` names the destination database: SQLite for local runs
(the embedded stand-in's file), PostgreSQL in production. ``sqlalchemy_url`` turns it into a
SQLAlchemy URL for Great Expectations and ad-hoc queries; read it at task run time, never at
DAG parse time. Passwords never reach an error message or a log line: log ``redact_url(url)``.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowException, AirflowNotFoundException
from sqlalchemy.engine import URL, make_url

DEFAULT_CONN_ID = "warehouse_default"

#: Connection extras passed to libpq (psycopg2) as URL query parameters.
POSTGRES_URL_EXTRAS = (
    "sslmode",
    "sslcert",
    "sslkey",
    "sslrootcert",
    "sslcrl",
    "connect_timeout",
    "application_name",
    "options",
    "keepalives",
    "keepalives_idle",
    "target_session_attrs",
)


class WarehouseConnectionError(AirflowException):
    """The warehouse Connection cannot be turned into a database URL."""


class WarehouseConnectionNotFound(WarehouseConnectionError, AirflowNotFoundException):
    """The warehouse Connection is not defined."""


def _how_to_define(conn_id: str) -> str:
    env = f"AIRFLOW_CONN_{conn_id.upper()}"
    return (
        f"Define it as an environment variable, e.g. {env}=sqlite:////path/to/warehouse.db or "
        f"{env}=postgresql://user:password@host:5432/dbname, or with the CLI: "
        f"airflow connections add {conn_id} --conn-type postgres --conn-host HOST "
        "--conn-port 5432 --conn-schema DBNAME --conn-login USER --conn-password PASSWORD "
        f"(SQLite: airflow connections add {conn_id} --conn-type sqlite "
        "--conn-host /path/to/warehouse.db)."
    )


def _get_connection(conn_id: str) -> Any:
    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise WarehouseConnectionNotFound(
            f"The Airflow Connection {conn_id!r} (the warehouse database) is not defined. "
            + _how_to_define(conn_id)
        ) from None


def sqlalchemy_url(conn_id: str = DEFAULT_CONN_ID) -> str:
    """SQLAlchemy URL of the warehouse named by the Airflow Connection ``conn_id``.

    - ``sqlite``: ``sqlite:///<path>``; the path is the Connection's host (where
      ``airflow connections add --conn-host`` puts it) or, for a URI such as
      ``sqlite:////data/warehouse.db``, its schema.
    - ``postgres``: ``postgresql+psycopg2://login:password@host:port/schema`` with login and
      password URL-quoted; libpq extras (``sslmode``, ``connect_timeout``, ...) become query
      parameters.

    The result contains the password: log ``redact_url(url)`` instead.

    :raises WarehouseConnectionNotFound: the Connection is not defined.
    :raises WarehouseConnectionError: its type is not supported or a required field is empty.
    """
    conn = _get_connection(conn_id)
    conn_type = (conn.conn_type or "").lower()
    if conn_type == "sqlite":
        return _sqlite_url(conn_id, conn)
    if conn_type in ("postgres", "postgresql"):
        return _postgres_url(conn_id, conn)
    raise WarehouseConnectionError(
        f"The Airflow Connection {conn_id!r} has type {conn.conn_type!r}; the warehouse must be "
        "a 'sqlite' or 'postgres' Connection."
    )


def _sqlite_url(conn_id: str, conn: Any) -> str:
    path = conn.host or conn.schema
    if not path:
        raise WarehouseConnectionError(
            f"The SQLite Connection {conn_id!r} has no database file: set its host to the "
            "path of the file, e.g. /data/warehouse.db."
        )
    return f"sqlite:///{path}"


def _postgres_url(conn_id: str, conn: Any) -> str:
    if not conn.host:
        raise WarehouseConnectionError(f"The PostgreSQL Connection {conn_id!r} has no host.")
    extras = conn.extra_dejson if conn.extra else {}
    query = {key: str(extras[key]) for key in POSTGRES_URL_EXTRAS if extras.get(key) is not None}
    url = URL.create(
        "postgresql+psycopg2",
        username=conn.login or None,
        password=conn.password or None,
        host=conn.host,
        port=int(conn.port) if conn.port else None,
        database=conn.schema or None,
        query=query,
    )
    return url.render_as_string(hide_password=False)


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***``, fit for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"
