"""The datasets an Airbyte job read (source streams) and wrote (destination tables).

``sync_lineage`` joins a job with its connection's details into ``SyncLineage``, whose
names serve OpenLineage and Airflow's Asset URIs alike, so a table has one identity in both.

Names follow the OpenLineage naming spec (https://openlineage.io/docs/spec/naming):
a database table is ``postgres://{host}:{port}`` + ``{database}.{schema}.{table}`` (MySQL,
BigQuery likewise), through the OpenLineage client's own naming helpers. Connectors the spec
does not cover (SaaS APIs such as Stripe, SQLite files) are named by type and id:
``stripe://{source id}`` + ``{stream}``. Reset and clear jobs read nothing and empty their
tables (``SyncLineage.truncates``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from openlineage.client.naming import dataset as naming

from plugins.airbyte_client.models import (
    AirbyteJob,
    CatalogStream,
    ConnectionDetails,
    ConnectorInfo,
)

DEFAULT_PORTS = {"postgres": "5432", "mysql": "3306"}
DEFAULT_SCHEMAS = {"postgres": "public"}
SOURCE_NAMESPACE_PLACEHOLDER = "${SOURCE_NAMESPACE}"


@dataclass(frozen=True)
class LineageDataset:
    """One stream or table, named for OpenLineage (namespace, name) and Airflow (uri)."""

    namespace: str
    name: str
    uri: str
    stream: str
    fields: tuple[tuple[str, str], ...] = ()
    records: int | None = None
    bytes: int | None = None


@dataclass(frozen=True)
class SyncLineage:
    """What one Airbyte job read (inputs) and wrote (outputs), with its figures."""

    job: AirbyteJob
    inputs: tuple[LineageDataset, ...]
    outputs: tuple[LineageDataset, ...]
    #: The job emptied its tables: a reset or clear, or a refresh that truncates.
    truncates: bool = False


def sync_lineage(
    job: AirbyteJob,
    details: ConnectionDetails,
    streams: Sequence[str] = (),
    refresh_mode: str | None = None,
) -> SyncLineage:
    """The lineage of ``job`` on the connection described by ``details``; of ``streams``
    only when the job was limited to them (a per-stream reset or clear, a refresh)."""
    stats = {(s.name, s.namespace): s for s in job.streams}
    by_name = {s.name: s for s in job.streams}
    inputs, outputs = [], []
    for stream in details.streams:
        if streams and stream.name not in streams:
            continue
        stat = stats.get((stream.name, stream.namespace)) or by_name.get(stream.name)
        schema = destination_schema(details, stream)
        table = details.prefix + (stream.destination_name or stream.name)
        outputs.append(
            _dataset(
                details.destination,
                schema,
                table,
                stream,
                records=stat.records if stat else None,
                size=stat.bytes if stat else None,
            )
        )
        inputs.append(_dataset(details.source, stream.namespace, stream.name, stream))
    if not job.job_type.moves_data:
        inputs = []
    elif len(outputs) == 1 and not job.streams and job.is_terminal:
        # The job's totals (all the Public API gives) are its one table's.
        outputs = [_with_figures(outputs[0], job.records, job.bytes)]
    truncates = not job.job_type.moves_data or refresh_mode == "truncate"
    return SyncLineage(job, tuple(inputs), tuple(outputs), truncates)


def destination_schema(details: ConnectionDetails, stream: CatalogStream) -> str | None:
    """The destination namespace (schema) a stream lands in, per the connection's setting."""
    location = details.destination.location
    default = (
        location.get("schema")
        or location.get("dataset_id")
        or DEFAULT_SCHEMAS.get(details.destination.type or "")
    )
    if details.namespace_definition == "source":
        return stream.namespace or default
    if details.namespace_definition == "customformat" and details.namespace_format:
        custom = details.namespace_format.replace(
            SOURCE_NAMESPACE_PLACEHOLDER, stream.namespace or ""
        )
        return custom or default
    return default


def _dataset(
    connector: ConnectorInfo,
    schema: str | None,
    table: str,
    stream: CatalogStream,
    *,
    records: int | None = None,
    size: int | None = None,
) -> LineageDataset:
    namespace, name, uri = table_identity(connector, schema, table)
    return LineageDataset(
        namespace=namespace,
        name=name,
        uri=uri,
        stream=stream.name,
        fields=stream.fields,
        records=records,
        bytes=size,
    )


def _with_figures(dataset: LineageDataset, records: int, size: int) -> LineageDataset:
    return dataclasses.replace(dataset, records=records, bytes=size)


def table_identity(
    connector: ConnectorInfo, schema: str | None, table: str
) -> tuple[str, str, str]:
    """``(namespace, name, asset uri)`` of a table or stream of ``connector``.

    Databases the naming spec covers get its names and the URI form of the Airflow provider
    for that database (whose OpenLineage converter maps it back to the same namespace and
    name); anything else is ``{type}://{actor id}`` + ``[{schema}.]{table}``.
    """
    kind, loc = connector.type or "", connector.location
    host, database = loc.get("host"), loc.get("database")
    port = loc.get("port") or DEFAULT_PORTS.get(kind)
    if kind == "postgres" and host and port and database and schema:
        ds = naming.Postgres(host=host, port=port, database=database, schema=schema, table=table)
        uri = f"postgres://{host}:{port}/{database}/{schema}/{table}"
        return ds.get_namespace(), ds.get_name(), uri
    if kind == "mysql" and host and port and database:
        ds = naming.MySQL(host=host, port=port, database=database, table=table)
        return ds.get_namespace(), ds.get_name(), f"mysql://{host}:{port}/{database}/{table}"
    if kind == "bigquery" and loc.get("project_id") and schema:
        project = loc["project_id"]
        ds = naming.BigQuery(project_id=project, dataset_name=schema, table_name=table)
        return ds.get_namespace(), ds.get_name(), f"bigquery://{project}/{schema}/{table}"
    namespace = f"{kind or 'airbyte'}://{connector.actor_id}"
    name = f"{schema}.{table}" if schema else table
    return namespace, name, f"{namespace}/{name}"
