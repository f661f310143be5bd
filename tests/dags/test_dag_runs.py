"""The DAGs end to end: real DAG runs (``dag.test()``) against the Airbyte stand-in.

Each run talks to the stand-in over loopback HTTP, writes real rows into a SQLite
warehouse, runs the real Great Expectations checkpoint and SQL transform, and delivers its
notification to an outbox file.
"""

from __future__ import annotations

import email
import json
import sqlite3
from pathlib import Path

import pytest

from dev.airbyte_standin.seed import (
    CONNECTIONS_BY_ID,
    DESTINATION_ID,
    HUBSPOT_CONNECTION_ID,
    SALESFORCE_CONNECTION_ID,
    STRIPE_CONNECTION_ID,
)
from tests.conftest import OPENLINEAGE_EVENTS
from tests.dags.conftest import connect_airbyte

UNKNOWN_CONNECTION_ID = "00000000-0000-4000-8000-000000000000"
STRIPE_TABLES = ("stripe_customers", "stripe_charges", "stripe_invoices")


def run_dag(dagbag, dag_id: str, conf: dict | None = None):
    """One real DAG run from the declared param defaults plus ``conf``; no task retries."""
    dag = dagbag.dags[dag_id]
    retries = {task.task_id: task.retries for task in dag.tasks}
    for task in dag.tasks:
        task.retries = 0
    try:
        return dag.test(run_conf={**dagbag.declared_params[dag_id], **(conf or {})})
    finally:  # the DagBag is the session's: the house-rule tests read the declared retries
        for task in dag.tasks:
            task.retries = retries[task.task_id]


def states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def notifications(outbox: Path) -> list[dict]:
    if not outbox.exists():
        return []
    return [json.loads(line) for line in outbox.read_text().splitlines()]


def sync_jobs(standin, connection_id: str) -> list[dict]:
    return [
        j for j in standin.jobs() if j["connection_id"] == connection_id and j["job_type"] == "sync"
    ]


def warehouse_count(standin, table: str) -> int:
    with sqlite3.connect(standin.warehouse_url.removeprefix("sqlite:///")) as db:
        return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


@pytest.fixture
def lineage_events():
    """A function returning the OpenLineage events written since the test started."""
    start = OPENLINEAGE_EVENTS.stat().st_size if OPENLINEAGE_EVENTS.exists() else 0

    def read() -> list[dict]:
        with OPENLINEAGE_EVENTS.open("rb") as events:
            events.seek(start)
            return [json.loads(line) for line in events.read().splitlines() if line.strip()]

    return read


def stripe_counts(standin) -> dict[str, int]:
    """Rows in each Stripe table; 0 before the first sync created it."""
    with sqlite3.connect(standin.warehouse_url.removeprefix("sqlite:///")) as db:
        existing = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    return {t: warehouse_count(standin, t) if t in existing else 0 for t in STRIPE_TABLES}


def asset_events(run) -> list:
    """The Asset events a DAG run's tasks emitted, from the metadata database."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    with create_session() as session:
        query = (
            select(AssetEvent)
            .options(joinedload(AssetEvent.asset))
            .where(AssetEvent.source_run_id == run.run_id)
        )
        return [(e.asset.uri, e.extra) for e in session.scalars(query).unique()]


pytestmark = pytest.mark.usefixtures("airflow_db", "airflow_env")


# --- airbyte_event_driven_sync ---------------------------------------------------------


BOTH_FLAVOURS = pytest.mark.parametrize("airflow_env", ["public", "config"], indirect=True)
#: Per-stream figures (XCom, OpenLineage statistics, table events) exist only on the
#: Configuration API: the Public API reports a job's totals.
CONFIG_API = pytest.mark.parametrize("airflow_env", ["config"], indirect=True)


@BOTH_FLAVOURS
def test_event_driven_sync_with_the_seed_conf(dagbag, standin, outbox, airflow_env):
    run = run_dag(dagbag, "airbyte_event_driven_sync", {"connection_id": STRIPE_CONNECTION_ID})
    assert str(run.state) == "success", states(run)
    [job] = sync_jobs(standin, STRIPE_CONNECTION_ID)
    assert job["status"] == "succeeded"
    [message] = notifications(outbox)
    assert message["airbyte_job_id"] == job["id"]
    assert f"job {job['id']}" in message["subject"]


@BOTH_FLAVOURS
def test_event_driven_reset_without_waiting(dagbag, standin, airflow_env):
    run = run_dag(
        dagbag,
        "airbyte_event_driven_sync",
        {"connection_id": SALESFORCE_CONNECTION_ID, "job_type": "reset", "wait": False},
    )
    assert str(run.state) == "success", states(run)
    assert [j["job_type"] for j in standin.jobs()] == ["reset"]


@BOTH_FLAVOURS
def test_event_driven_clear_waits_and_empties_the_tables(dagbag, standin, airflow_env):
    first = run_dag(dagbag, "airbyte_event_driven_sync", {"connection_id": STRIPE_CONNECTION_ID})
    assert str(first.state) == "success", states(first)
    assert warehouse_count(standin, "stripe_charges") > 0
    run = run_dag(
        dagbag,
        "airbyte_event_driven_sync",
        {"connection_id": STRIPE_CONNECTION_ID, "job_type": "clear"},
    )
    assert str(run.state) == "success", states(run)
    assert [(j["job_type"], j["status"]) for j in standin.jobs()] == [
        ("sync", "succeeded"),
        ("clear", "succeeded"),
    ]
    assert warehouse_count(standin, "stripe_charges") == 0


@pytest.mark.parametrize("airflow_env", ["config"], indirect=True)
def test_event_driven_refresh_of_one_stream(dagbag, standin, airflow_env):
    run_dag(dagbag, "airbyte_event_driven_sync", {"connection_id": STRIPE_CONNECTION_ID})
    charges = warehouse_count(standin, "stripe_charges")
    conf = {
        "connection_id": STRIPE_CONNECTION_ID,
        "job_type": "refresh",
        "streams": ["charges"],
        "refresh_mode": "truncate",
    }
    run = run_dag(dagbag, "airbyte_event_driven_sync", conf)
    assert str(run.state) == "success", states(run)
    assert [(j["job_type"], j["status"]) for j in standin.jobs()][-1] == ("refresh", "succeeded")
    assert warehouse_count(standin, "stripe_charges") == charges + standin.config.rows_per_stream


def test_event_driven_per_stream_clear_on_the_public_api_fails_before_any_job(
    dagbag, standin, capfd
):
    conf = {"connection_id": STRIPE_CONNECTION_ID, "job_type": "clear", "streams": ["charges"]}
    run = run_dag(dagbag, "airbyte_event_driven_sync", conf)
    assert states(run)["run_airbyte_job"] == "failed"
    assert "needs the Configuration API" in capfd.readouterr().out
    assert standin.jobs() == []


@pytest.mark.parametrize(
    "conf",
    [
        {},
        {"connection_id": "abc-123-def-456"},
        {"connection_id": STRIPE_CONNECTION_ID, "job_type": "drop"},
        {"connection_id": STRIPE_CONNECTION_ID, "job_type": "refresh", "refresh_mode": "wipe"},
        {"connection_id": STRIPE_CONNECTION_ID, "job_type": "clear", "streams": [""]},
    ],
)
def test_event_driven_bad_conf_is_refused_before_any_airbyte_call(dagbag, standin, conf):
    from airflow.sdk.definitions.param import ParamValidationError

    with pytest.raises(ParamValidationError):
        run_dag(dagbag, "airbyte_event_driven_sync", conf)
    assert standin.requests() == []


def test_event_driven_unknown_connection_fails_clearly(dagbag, standin, capfd):
    run = run_dag(dagbag, "airbyte_event_driven_sync", {"connection_id": UNKNOWN_CONNECTION_ID})
    assert str(run.state) == "failed"
    assert states(run)["run_airbyte_job"] == "failed"
    assert "Airbyte has no connection" in capfd.readouterr().out
    assert standin.jobs() == []


# --- airbyte_stripe_to_postgres -------------------------------------------------------


@BOTH_FLAVOURS
def test_stripe_to_postgres_end_to_end(dagbag, standin, outbox, airflow_env):
    run = run_dag(dagbag, "airbyte_stripe_to_postgres")
    assert str(run.state) == "success", states(run)
    assert set(states(run).values()) == {"success"}
    assert len(sync_jobs(standin, STRIPE_CONNECTION_ID)) == 1
    assert warehouse_count(standin, "analytics_stripe_daily_revenue") > 0
    [message] = notifications(outbox)
    assert message["stats"]["records"] > 0


def test_stripe_missing_variable_names_it(dagbag, standin, monkeypatch, capfd):
    monkeypatch.delenv("AIRFLOW_VAR_AIRBYTE_STRIPE_POSTGRES_CONNECTION_ID")
    run = run_dag(dagbag, "airbyte_stripe_to_postgres")
    assert states(run)["sync_stripe"] == "failed"
    out = capfd.readouterr().out
    assert "airflow variables set AIRBYTE_STRIPE_POSTGRES_CONNECTION_ID" in out
    assert standin.requests() == []


def test_stripe_accepts_the_legacy_variable_name(dagbag, standin, monkeypatch):
    monkeypatch.delenv("AIRFLOW_VAR_AIRBYTE_STRIPE_POSTGRES_CONNECTION_ID")
    monkeypatch.setenv("AIRFLOW_VAR_AIRBYTE_STRIPE_CONNECTION_ID", STRIPE_CONNECTION_ID)
    run = run_dag(dagbag, "airbyte_stripe_to_postgres")
    assert str(run.state) == "success", states(run)


# --- airbyte_multi_source_sync ---------------------------------------------------------


def test_multi_source_syncs_all_three(dagbag, standin):
    run = run_dag(dagbag, "airbyte_multi_source_sync")
    assert str(run.state) == "success", states(run)
    for connection_id in (STRIPE_CONNECTION_ID, HUBSPOT_CONNECTION_ID, SALESFORCE_CONNECTION_ID):
        assert [j["status"] for j in sync_jobs(standin, connection_id)] == ["succeeded"]


def test_one_failing_source_does_not_stop_the_others(dagbag, standin, capfd):
    standin.set_job_behaviour("fail", connection_id=SALESFORCE_CONNECTION_ID, failure_reason="boom")
    run = run_dag(dagbag, "airbyte_multi_source_sync")
    result = states(run)
    assert str(run.state) == "failed"
    assert result["stripe.validate"] == "success"
    assert result["hubspot.validate"] == "success"
    assert result["salesforce.sync"] == "failed"
    assert result["summary"] == "failed"
    out = capfd.readouterr().out
    assert "Sources that failed to sync or validate: salesforce" in out


# --- airbyte_advanced_examples ---------------------------------------------------------


def test_advanced_chains_and_syncs_a_stale_source(dagbag, standin, outbox):
    run = run_dag(dagbag, "airbyte_advanced_examples", {"max_age_hours": 0})
    result = states(run)
    assert str(run.state) == "success", result
    assert result["reset_salesforce"] == "skipped"
    assert result["sync_salesforce"] == "success"
    assert result["salesforce_is_fresh"] == "skipped"
    by_connection = {j["connection_id"]: j for j in standin.jobs()}
    stripe, hubspot = by_connection[STRIPE_CONNECTION_ID], by_connection[HUBSPOT_CONNECTION_ID]
    assert hubspot["id"] > stripe["id"]  # HubSpot started after Stripe finished
    subjects = [m["subject"] for m in notifications(outbox)]
    assert any("sync_stripe" in s or "Airbyte task" in s for s in subjects)


def test_advanced_skips_a_fresh_source(dagbag, standin):
    run_dag(dagbag, "airbyte_advanced_examples", {"max_age_hours": 0})
    assert len(sync_jobs(standin, SALESFORCE_CONNECTION_ID)) == 1
    run = run_dag(dagbag, "airbyte_advanced_examples", {"max_age_hours": 1000})
    result = states(run)
    assert result["sync_salesforce"] == "skipped"
    assert result["salesforce_is_fresh"] == "success"
    assert len(sync_jobs(standin, SALESFORCE_CONNECTION_ID)) == 1


# --- the seed's destination: PostgreSQL ------------------------------------------------


@pytest.fixture
def postgres_standin(postgres_server, tmp_path):
    """A stand-in whose syncs land in a fresh PostgreSQL database."""
    from dev.airbyte_standin.serving import quick_config, run_standin

    database = postgres_server.create_database()
    config = quick_config(tmp_path, warehouse_url=postgres_server.url(database))
    with run_standin(config) as server:
        yield server, postgres_server.connection(database)


def test_stripe_to_postgres_on_postgresql(dagbag, postgres_standin, monkeypatch, outbox):
    import sqlalchemy as sa

    server, warehouse_conn = postgres_standin
    connect_airbyte(monkeypatch, server.url)
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_DEFAULT", json.dumps(warehouse_conn))
    run = run_dag(dagbag, "airbyte_stripe_to_postgres")
    assert str(run.state) == "success", states(run)
    engine = sa.create_engine(server.warehouse_url)
    with engine.connect() as db:
        days = db.execute(sa.text("SELECT COUNT(*) FROM analytics_stripe_daily_revenue")).scalar()
        charges = db.execute(sa.text("SELECT COUNT(*) FROM stripe_charges")).scalar()
    engine.dispose()
    assert days > 0
    assert charges > 0
    assert notifications(outbox)[0]["stats"]["records"] > 0


# --- data checks, transform output, e-mail and XCom inside real runs -----------------


@pytest.fixture
def own_standin(tmp_path, monkeypatch):
    """Start a stand-in with its own SQLite warehouse (``**config`` overrides) and point the
    ``airbyte_default`` and ``warehouse_default`` Connections at it."""
    from contextlib import ExitStack

    from dev.airbyte_standin.serving import quick_config, run_standin

    with ExitStack() as stack:

        def start(flavour: str = "public", **config):
            server = stack.enter_context(run_standin(quick_config(tmp_path, **config)))
            connect_airbyte(monkeypatch, server.url, flavour)
            path = server.warehouse_url.removeprefix("sqlite:///")
            monkeypatch.setenv(
                "AIRFLOW_CONN_WAREHOUSE_DEFAULT", json.dumps({"conn_type": "sqlite", "host": path})
            )
            return server

        yield start


def xcom(run, task_id: str, key: str = "return_value"):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(run_id=run.run_id, key=key, task_ids=task_id, dag_ids=run.dag_id)
        ).first()
        return None if row is None else XComModel.deserialize_value(row)


def test_stripe_xcom_stats_and_transform_are_right(dagbag, own_standin):
    server = own_standin("config")  # per-stream figures: the Configuration API's
    run = run_dag(dagbag, "airbyte_stripe_to_postgres")
    assert str(run.state) == "success", states(run)
    stats = xcom(run, "validate_sync")
    [job] = sync_jobs(server, STRIPE_CONNECTION_ID)
    assert xcom(run, "validate_sync", "airbyte_job_id") == job["id"]
    assert stats["job_id"] == job["id"]
    assert stats["records"] == sum(warehouse_count(server, t) for t in STRIPE_TABLES) > 0
    assert set(stats["streams"]) == {"customers", "charges", "invoices"}
    with sqlite3.connect(server.warehouse_url.removeprefix("sqlite:///")) as db:
        expected = db.execute(
            "SELECT SUBSTR(created, 1, 10), currency, COUNT(*), SUM(amount) FROM stripe_charges "
            "WHERE status = 'succeeded' GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
        built = db.execute(
            "SELECT revenue_date, currency, charges, revenue_cents "
            "FROM analytics_stripe_daily_revenue ORDER BY 1, 2"
        ).fetchall()
    assert built == expected
    assert len(built) > 0


def test_stripe_bad_row_fails_the_checkpoint_and_skips_the_transform(dagbag, own_standin, capfd):
    server = own_standin()
    warehouse = server.warehouse_url.removeprefix("sqlite:///")
    run_dag(dagbag, "airbyte_stripe_to_postgres")  # a first good run creates the tables
    with sqlite3.connect(warehouse) as db:
        db.execute("DROP TABLE analytics_stripe_daily_revenue")
        db.execute(
            "INSERT INTO stripe_charges (id, customer_id, amount, currency, status, created,"
            " _airbyte_raw_id, _airbyte_extracted_at) SELECT 'ch_bad', id, -100, 'xxx',"
            " 'succeeded', created, 'raw-bad', created FROM stripe_customers LIMIT 1"
        )
    run = run_dag(dagbag, "airbyte_stripe_to_postgres")
    result = states(run)
    assert str(run.state) == "failed"
    assert result["validate_sync"] == "success"
    assert result["stripe_postgres_checkpoint"] == "failed"
    assert result["transform_stripe_daily_revenue"] == "upstream_failed"
    with sqlite3.connect(warehouse) as db:
        assert not db.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'analytics_stripe_daily_revenue'"
        ).fetchone()


def test_zero_records_fail_the_validation(dagbag, own_standin, capfd):
    own_standin(rows_per_stream=0)
    run = run_dag(dagbag, "airbyte_stripe_to_postgres")
    result = states(run)
    assert result["sync_stripe"] == "success"
    assert result["validate_sync"] == "failed"
    assert "succeeded but synced 0 records" in capfd.readouterr().out


def test_notification_email_carries_the_job_id(dagbag, standin, monkeypatch):
    from aiosmtpd.controller import Controller

    from dev.processes import free_port

    received = []

    class Inbox:
        async def handle_DATA(self, server, session, envelope):
            received.append(email.message_from_bytes(envelope.content))
            return "250 OK"

    smtp = Controller(Inbox(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        monkeypatch.setenv(
            "AIRFLOW_CONN_SMTP_DEFAULT",
            json.dumps(
                {
                    "conn_type": "smtp",
                    "host": "127.0.0.1",
                    "port": smtp.port,
                    "extra": {
                        "disable_tls": True,
                        "disable_ssl": True,
                        "from_email": "airflow@example.com",
                    },
                }
            ),
        )
        monkeypatch.setenv("AIRFLOW_VAR_AIRBYTE_NOTIFY_CHANNELS", "email")
        run = run_dag(dagbag, "airbyte_event_driven_sync", {"connection_id": STRIPE_CONNECTION_ID})
    finally:
        smtp.stop()
    assert str(run.state) == "success", states(run)
    [job] = sync_jobs(standin, STRIPE_CONNECTION_ID)
    [mail] = received
    body = "".join(
        part.get_payload(decode=True).decode() for part in mail.walk() if not part.is_multipart()
    )
    assert f"Airbyte job: {job['id']}" in body
    assert "State: succeeded" in body
    assert f"(job {job['id']})" in mail["Subject"]
    assert mail["To"] == "data-team@example.com"


# --- lineage ---------------------------------------------------------------------------


@CONFIG_API
def test_stripe_run_reports_its_streams_and_tables_to_openlineage(
    dagbag, standin, lineage_events, airflow_env
):
    before = stripe_counts(standin)
    run = run_dag(dagbag, "airbyte_stripe_to_postgres")
    assert str(run.state) == "success", states(run)
    [job] = sync_jobs(standin, STRIPE_CONNECTION_ID)
    [event] = [
        e
        for e in lineage_events()
        if e["job"]["name"] == "airbyte_stripe_to_postgres.sync_stripe"
        and e["eventType"] == "COMPLETE"
    ]
    source = CONNECTIONS_BY_ID[STRIPE_CONNECTION_ID].source_id
    assert {(i["namespace"], i["name"]) for i in event["inputs"]} == {
        (f"stripe://{source}", stream) for stream in ("customers", "charges", "invoices")
    }
    rows = {
        (o["namespace"], o["name"]): o["outputFacets"]["outputStatistics"]["rowCount"]
        for o in event["outputs"]
    }
    # The sync appends: the rows it reports are the rows its tables gained.
    assert rows == {
        (f"sqlite://{DESTINATION_ID}", table): warehouse_count(standin, table) - before[table]
        for table in STRIPE_TABLES
    }
    assert all(count > 0 for count in rows.values())
    charges = next(o for o in event["outputs"] if o["name"] == "stripe_charges")
    assert {"amount", "currency", "status"} <= {
        f["name"] for f in charges["facets"]["schema"]["fields"]
    }
    assert event["run"]["facets"]["externalQuery"]["externalQueryId"] == str(job["id"])


@CONFIG_API
def test_stripe_asset_events_carry_the_job_and_name_tables_like_openlineage(
    dagbag, standin, lineage_events, airflow_env
):
    before = stripe_counts(standin)
    run = run_dag(dagbag, "airbyte_stripe_to_postgres")
    assert str(run.state) == "success", states(run)
    [job] = sync_jobs(standin, STRIPE_CONNECTION_ID)
    # Airflow normalises "scheme://name" to "scheme://name/"
    events = {uri.rstrip("/"): extra for uri, extra in asset_events(run)}
    connection = events["airbyte://stripe_postgres"]
    counts = {t: warehouse_count(standin, t) - before[t] for t in STRIPE_TABLES}
    assert connection["airbyte_job_id"] == job["id"]
    assert connection["records"] == sum(counts.values())
    [sync_event] = [
        e
        for e in lineage_events()
        if e["job"]["name"].endswith(".sync_stripe") and e["eventType"] == "COMPLETE"
    ]
    openlineage_uris = {f"{o['namespace']}/{o['name']}" for o in sync_event["outputs"]}
    table_events = {uri: extra for uri, extra in events.items() if uri in openlineage_uris}
    assert len(table_events) == len(STRIPE_TABLES)  # one Asset per table, named as in OL
    assert {e["table"]: e["records"] for e in table_events.values()} == counts
    assert {e["airbyte_job_id"] for e in table_events.values()} == {job["id"]}
    assert {table["stream"]: table["records"] for table in connection["tables"].values()} == {
        t.removeprefix("stripe_"): n for t, n in counts.items()
    }
