"""Lineage of Airbyte jobs: OpenLineage facets and Asset events, against the stand-in.

Runs ``AirbyteSyncOperator`` for real (HTTP to the stand-in, rows into its warehouse) and
checks what lineage it reports: names per the OpenLineage naming spec, row counts equal to
the warehouse's, one table one identity, and the right facts for attached, reset and
deferred jobs, the Public API and a connection whose details cannot be read.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from airflow.sdk import Asset, AssetAlias
from airflow.sdk.exceptions import TaskDeferred
from airflow.sdk.execution_time.context import OutletEventAccessors

from dev.airbyte_standin.config import StandinConfig
from dev.airbyte_standin.seed import (
    CONNECTIONS_BY_ID,
    DESTINATION_ID,
    STRIPE_CONNECTION_ID,
    WORKSPACE_ID,
)
from dev.airbyte_standin.serving import run_standin
from plugins.airbyte_client.lineage import destination_schema, table_identity
from plugins.airbyte_client.models import CatalogStream, ConnectionDetails, ConnectorInfo
from plugins.airbyte_hook import AirbyteHook
from plugins.airbyte_operator import AirbyteSyncOperator
from tests.conftest import RecordingTaskInstance, airbyte_conn_env, resume_deferred

STRIPE = CONNECTIONS_BY_ID[STRIPE_CONNECTION_ID]
STRIPE_TABLES = STRIPE.table_names
CONNECTION_ASSET = Asset(name="airbyte_stripe", uri="airbyte://stripe_postgres")
TABLES_ALIAS = AssetAlias(name="airbyte_stripe_tables")


def context() -> dict:
    return {"ti": RecordingTaskInstance(), "outlet_events": OutletEventAccessors()}


def operator(**kwargs) -> AirbyteSyncOperator:
    return AirbyteSyncOperator(
        task_id="sync",
        connection_id=STRIPE_CONNECTION_ID,
        outlets=[CONNECTION_ASSET, TABLES_ALIAS],
        **kwargs,
    )


def details_requests(standin) -> list[dict]:
    return [r for r in standin.requests() if "web_backend" in r["path"]]


def table_events(ctx: dict) -> dict[str, dict]:
    """The alias's events: Asset URI -> extra."""
    events = ctx["outlet_events"][TABLES_ALIAS].asset_alias_events
    return {e.dest_asset_key.uri: e.extra for e in events}


def output_rows(lineage) -> dict[str, int]:
    return {o.name: o.outputFacets["outputStatistics"].rowCount for o in lineage.outputs}


@pytest.fixture
def postgres_standin(postgres_url, monkeypatch):
    """A stand-in whose destination is a real PostgreSQL database."""
    config = StandinConfig(
        auth="basic",
        port=0,
        pending_seconds=0.05,
        running_seconds=0.15,
        rows_per_stream=7,
        warehouse_url=postgres_url,
    )
    with run_standin(config) as server:
        airbyte_conn_env(monkeypatch, server.url, login="airbyte", password="password")
        yield server
        server.assert_contract_kept()


def test_postgres_tables_are_named_per_the_spec_with_the_warehouse_counts(
    postgres_standin, postgres_server
):
    from airflow.providers.postgres.assets.postgres import convert_asset_to_openlineage

    ctx = context()
    op = operator()
    op.execute(ctx)
    lineage = op.get_openlineage_facets_on_complete(None)
    database = sa.engine.make_url(postgres_standin.warehouse_url).database
    engine = sa.create_engine(postgres_standin.warehouse_url)
    with engine.connect() as db:
        counts = {
            f"{database}.public.{t}": db.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar()
            for t in STRIPE_TABLES
        }
    engine.dispose()
    assert output_rows(lineage) == counts
    assert {o.namespace for o in lineage.outputs} == {
        f"postgres://{postgres_server.host}:{postgres_server.port}"
    }
    assert {(i.namespace, i.name) for i in lineage.inputs} == {
        (f"stripe://{STRIPE.source_id}", stream) for stream in STRIPE.streams
    }
    # One table, one identity: the Postgres provider reads each Asset back as the same dataset.
    events = table_events(ctx)
    assert {
        (d.namespace, d.name)
        for d in (convert_asset_to_openlineage(Asset(uri), None) for uri in events)
    } == {(o.namespace, o.name) for o in lineage.outputs}
    assert {e["table"]: e["records"] for e in events.values()} == counts
    assert len(details_requests(postgres_standin)) == 1


def test_public_api_names_postgres_tables_per_the_spec(
    postgres_standin, postgres_server, monkeypatch
):
    airbyte_conn_env(
        monkeypatch, postgres_standin.url, login="airbyte", password="password", api_type="public"
    )
    op = operator()
    op.execute(context())
    lineage = op.get_openlineage_facets_on_complete(None)
    database = sa.engine.make_url(postgres_standin.warehouse_url).database
    assert {(o.namespace, o.name) for o in lineage.outputs} == {
        (f"postgres://{postgres_server.host}:{postgres_server.port}", f"{database}.public.{t}")
        for t in STRIPE_TABLES
    }


@pytest.fixture
def standin(airbyte_conn):
    return airbyte_conn


def test_sync_schema_and_statistics_come_from_the_catalog_and_the_job(standin):
    ctx = context()
    op = operator()
    result = op.execute(ctx)
    lineage = op.get_openlineage_facets_on_complete(None)
    stats = {s["name"]: s for s in result["streams"]}
    assert {o.name: (o.outputFacets["outputStatistics"].size) for o in lineage.outputs} == {
        f"stripe_{name}": s["bytes"] for name, s in stats.items()
    }
    charges = next(o for o in lineage.outputs if o.name == "stripe_charges")
    assert [(f.name, f.type) for f in charges.facets["schema"].fields][:3] == [
        ("id", "string"),
        ("customer_id", "string"),
        ("amount", "integer"),
    ]
    assert {o.namespace for o in lineage.outputs} == {f"sqlite://{DESTINATION_ID}"}
    assert lineage.run_facets["externalQuery"].externalQueryId == str(result["job_id"])
    extra = ctx["outlet_events"][CONNECTION_ASSET].extra
    assert extra["airbyte_job_id"] == result["job_id"]
    assert extra["records"] == result["records"] == sum(s["records"] for s in stats.values())
    assert {t["stream"]: t["records"] for t in extra["tables"].values()} == {
        name: s["records"] for name, s in stats.items()
    }


def test_attached_job_reports_the_job_it_attached_to(standin):
    running = AirbyteHook().trigger_sync(STRIPE_CONNECTION_ID)
    ctx = context()
    op = operator(on_conflict="attach")
    result = op.execute(ctx)
    assert result["job_id"] == running.job_id
    lineage = op.get_openlineage_facets_on_complete(None)
    assert lineage.run_facets["externalQuery"].externalQueryId == str(running.job_id)
    assert sum(output_rows(lineage).values()) == result["records"] > 0
    assert {e["airbyte_job_id"] for e in table_events(ctx).values()} == {running.job_id}


@pytest.mark.parametrize("job_type", ["reset", "clear"])
def test_reset_and_clear_read_nothing_and_truncate_the_tables(standin, job_type):
    ctx = context()
    op = operator(job_type=job_type)
    op.execute(ctx)
    lineage = op.get_openlineage_facets_on_complete(None)
    assert lineage.inputs == []
    assert {o.name for o in lineage.outputs} == set(STRIPE_TABLES)
    assert {
        o.facets["lifecycleStateChange"].lifecycleStateChange.value for o in lineage.outputs
    } == {"TRUNCATE"}
    assert set(output_rows(lineage).values()) == {0}
    assert {e["job_type"] for e in table_events(ctx).values()} == {job_type}


def test_deferred_job_reports_its_lineage_when_resumed(standin):
    op = operator(deferrable=True)
    ctx = context()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(ctx)
    result = resume_deferred(op, ctx, deferred.value)
    lineage = op.get_openlineage_facets_on_complete(None)
    assert lineage.run_facets["externalQuery"].externalQueryId == str(result["job_id"])
    assert sum(output_rows(lineage).values()) == result["records"] > 0
    assert len(table_events(ctx)) == len(STRIPE_TABLES)


def test_unreadable_connection_details_never_fail_the_sync(standin, capfd):
    standin.inject("status", status=403, path="/api/v1/web_backend", count=1)
    ctx = context()
    op = operator()
    result = op.execute(ctx)
    assert result["status"] == "succeeded"
    assert op.get_openlineage_facets_on_complete(None) is None
    assert table_events(ctx) == {}
    assert ctx["outlet_events"][CONNECTION_ASSET].extra["records"] == result["records"]
    logged = capfd.readouterr()
    assert "No lineage for Airbyte job" in logged.out + logged.err
    assert len(details_requests(standin)) == 1  # a 403 is not retried


def lineage_of_a_sync(monkeypatch, standin, api_type: str):
    airbyte_conn_env(
        monkeypatch, standin.url, login="airbyte", password="password", api_type=api_type
    )
    ctx = context()
    op = operator()
    result = op.execute(ctx)
    return op, ctx, result, op.get_openlineage_facets_on_complete(None)


def test_public_api_names_tables_as_the_configuration_api_does(standin, monkeypatch):
    """Connector types and locations from ``/sources/{id}`` and ``/destinations/{id}``, fields
    from ``/streams``: the same datasets; only per-table counts stay unknown (job totals)."""
    _, _, _, config = lineage_of_a_sync(monkeypatch, standin, "config")
    op, ctx, result, public = lineage_of_a_sync(monkeypatch, standin, "public")

    def names(datasets):
        return {(d.namespace, d.name) for d in datasets}

    assert names(public.inputs) == names(config.inputs)
    assert names(public.outputs) == names(config.outputs)
    assert {o.namespace for o in public.outputs} == {f"sqlite://{DESTINATION_ID}"}
    assert {i.namespace for i in public.inputs} == {f"stripe://{STRIPE.source_id}"}
    # fields by name (the Public API gives no types)
    public_fields = {o.name: [f.name for f in o.facets["schema"].fields] for o in public.outputs}
    config_fields = {o.name: [f.name for f in o.facets["schema"].fields] for o in config.outputs}
    assert public_fields == config_fields
    # The Public API gives job totals only: no per-table statistics are made up.
    assert all("outputStatistics" not in o.outputFacets for o in public.outputs)
    assert ctx["outlet_events"][CONNECTION_ASSET].extra["records"] == result["records"] > 0
    assert f"/workspaces/{WORKSPACE_ID}/" in op.airbyte_urls["Airbyte job"]
    asked = {r["path"].rsplit("/", 1)[0] for r in standin.requests() if "public" in r["path"]}
    assert {"/api/public/v1/sources", "/api/public/v1/destinations"} <= asked


def test_public_api_lineage_without_stream_fields_still_names_the_tables(standin, monkeypatch):
    """``/streams`` may be missing or slow (older servers): the fields are best effort."""
    _, _, _, config = lineage_of_a_sync(monkeypatch, standin, "config")
    standin.inject("status", status=404, path="/api/public/v1/streams")
    _, _, _, public = lineage_of_a_sync(monkeypatch, standin, "public")
    assert {(o.namespace, o.name) for o in public.outputs} == {
        (o.namespace, o.name) for o in config.outputs
    }
    assert all("schema" not in o.facets for o in public.outputs)


# --- naming rules ---------------------------------------------------------------------


def details(**kwargs) -> ConnectionDetails:
    destination = kwargs.pop(
        "destination",
        ConnectorInfo(actor_id="d", type="postgres", location={"schema": "raw"}),
    )
    return ConnectionDetails(
        connection_id="c", source=ConnectorInfo(actor_id="s"), destination=destination, **kwargs
    )


@pytest.mark.parametrize(
    ("definition", "fmt", "stream_namespace", "expected"),
    [
        ("destination", None, "crm", "raw"),
        ("source", None, "crm", "crm"),
        ("source", None, None, "raw"),
        ("customformat", "airbyte_${SOURCE_NAMESPACE}", "crm", "airbyte_crm"),
        ("customformat", "${SOURCE_NAMESPACE}", None, "raw"),
    ],
)
def test_destination_schema_follows_the_connection_namespace_setting(
    definition, fmt, stream_namespace, expected
):
    d = details(namespace_definition=definition, namespace_format=fmt)
    assert destination_schema(d, CatalogStream(name="s", namespace=stream_namespace)) == expected


def test_destination_schema_defaults_to_public_on_postgres():
    d = details(destination=ConnectorInfo(actor_id="d", type="postgres"))
    assert destination_schema(d, CatalogStream(name="s")) == "public"


@pytest.mark.parametrize(
    ("connector", "schema", "expected"),
    [
        (
            ConnectorInfo(actor_id="d", type="postgres", location={"host": "db", "database": "wh"}),
            "raw",
            ("postgres://db:5432", "wh.raw.t", "postgres://db:5432/wh/raw/t"),
        ),
        (
            ConnectorInfo(
                actor_id="d",
                type="mysql",
                location={"host": "db", "port": "3307", "database": "wh"},
            ),
            None,
            ("mysql://db:3307", "wh.t", "mysql://db:3307/wh/t"),
        ),
        (
            ConnectorInfo(actor_id="d", type="bigquery", location={"project_id": "p"}),
            "ds",
            ("bigquery", "p.ds.t", "bigquery://p/ds/t"),
        ),
        (
            ConnectorInfo(actor_id="d", type="postgres", location={"host": "db"}),  # no database
            "raw",
            ("postgres://d", "raw.t", "postgres://d/raw.t"),
        ),
        (ConnectorInfo(actor_id="s1"), None, ("airbyte://s1", "t", "airbyte://s1/t")),
    ],
)
def test_table_identity(connector, schema, expected):
    assert table_identity(connector, schema, "t") == expected


def test_details_the_naming_spec_refuses_never_fail_the_sync(caplog):
    """A hostile answer (a blank stream name) cannot be named: the sync still reports its job."""
    import logging
    from types import SimpleNamespace

    from plugins.airbyte_client.models import AirbyteJob
    from plugins.airbyte_lineage import record_sync
    from plugins.airbyte_links import job_urls

    location = {"host": "db", "port": "5432", "database": "wh"}
    hostile = details(
        destination=ConnectorInfo(actor_id="d", type="postgres", location=location),
        streams=(CatalogStream(name="   "),),
        workspace_id=WORKSPACE_ID,
    )

    class Hook:
        log = logging.getLogger("test.lineage")
        settings = SimpleNamespace(api_root="http://airbyte:8000/api/v1", workspace_id=None)

        def get_connection_details(self, connection_id):
            return hostile

    job = AirbyteJob(
        job_id=7, connection_id="c", job_type="sync", status="succeeded", records=3, bytes=30
    )
    ctx = context()
    lineage, found = record_sync(Hook(), job, [CONNECTION_ASSET], ctx)
    assert lineage is None
    assert ctx["outlet_events"][CONNECTION_ASSET].extra["records"] == 3
    assert found is hostile  # its workspace still gives the task its links
    urls = job_urls(Hook.settings, job, found.workspace_id)
    assert urls["Airbyte job"].endswith("/job-history#7::0")
    assert "could not name its datasets" in caplog.text
