"""Lineage of an Airbyte job: the source streams it read and the destination tables it wrote.

``sync_lineage`` joins a finished (or attached-to) job with its connection's details (one
API request, made when the task runs) into ``SyncLineage``. From it come the task's
OpenLineage facets (``operator_lineage``) and the ``extra`` of the Asset events it emits
(``emit_asset_events``), so a table has one identity in OpenLineage and in Airflow.

Names follow the OpenLineage naming spec (https://openlineage.io/docs/spec/naming):
a database table is ``postgres://{host}:{port}`` + ``{database}.{schema}.{table}`` (MySQL,
BigQuery likewise), through the OpenLineage client's own naming helpers. Connectors the spec
does not cover (SaaS APIs such as Stripe, SQLite files) are named by type and id:
``stripe://{source id}`` + ``{stream}``. Reset and clear jobs read nothing and truncate
their tables; their outputs carry the ``lifecycleStateChange`` facet ``TRUNCATE``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plugins.airbyte_errors import AirbyteError
from plugins.airbyte_models import (
    AirbyteJob,
    CatalogStream,
    ConnectionDetails,
    ConnectorInfo,
    JobType,
)

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

    from plugins.airbyte_hook import AirbyteHook

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
    rows: int | None = None
    bytes: int | None = None


@dataclass(frozen=True)
class SyncLineage:
    """What one Airbyte job read (inputs) and wrote (outputs), with its figures."""

    job: AirbyteJob
    inputs: tuple[LineageDataset, ...]
    outputs: tuple[LineageDataset, ...]

    @property
    def truncates(self) -> bool:
        """Reset and clear jobs empty the destination tables instead of writing to them."""
        return self.job.job_type in (JobType.RESET, JobType.CLEAR)


def sync_lineage(job: AirbyteJob, details: ConnectionDetails) -> SyncLineage:
    """The lineage of ``job`` on the connection described by ``details``."""
    stats = {(s.name, s.namespace): s for s in job.streams}
    by_name = {s.name: s for s in job.streams}
    inputs, outputs = [], []
    for stream in details.streams:
        stat = stats.get((stream.name, stream.namespace)) or by_name.get(stream.name)
        schema = destination_schema(details, stream)
        table = details.prefix + (stream.destination_name or stream.name)
        outputs.append(
            _dataset(
                details.destination,
                schema,
                table,
                stream,
                rows=stat.rows if stat else None,
                size=stat.bytes if stat else None,
            )
        )
        inputs.append(_dataset(details.source, stream.namespace, stream.name, stream))
    if job.job_type in (JobType.RESET, JobType.CLEAR):
        inputs = []
    elif len(outputs) == 1 and not job.streams and job.is_terminal:
        # The job's totals (all the Public API gives) are its one table's.
        outputs = [_with_figures(outputs[0], job.rows, job.bytes)]
    return SyncLineage(job=job, inputs=tuple(inputs), outputs=tuple(outputs))


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
    rows: int | None = None,
    size: int | None = None,
) -> LineageDataset:
    namespace, name, uri = table_identity(connector, schema, table)
    return LineageDataset(
        namespace=namespace,
        name=name,
        uri=uri,
        stream=stream.name,
        fields=stream.fields,
        rows=rows,
        bytes=size,
    )


def _with_figures(dataset: LineageDataset, rows: int, size: int) -> LineageDataset:
    return LineageDataset(**{**dataset.__dict__, "rows": rows, "bytes": size})


def table_identity(
    connector: ConnectorInfo, schema: str | None, table: str
) -> tuple[str, str, str]:
    """``(namespace, name, asset uri)`` of a table or stream of ``connector``.

    Databases the naming spec covers get its names and the URI form of the Airflow provider
    for that database (whose OpenLineage converter maps it back to the same namespace and
    name); anything else is ``{type}://{actor id}`` + ``[{schema}.]{table}``.
    """
    from openlineage.client.naming import dataset as naming

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


# --- OpenLineage ------------------------------------------------------------------------


def operator_lineage(lineage: SyncLineage) -> OperatorLineage:
    """The task's OpenLineage inputs, outputs and run facets."""
    from airflow.providers.common.compat.openlineage.facet import (
        Dataset,
        ExternalQueryRunFacet,
        LifecycleStateChange,
        LifecycleStateChangeDatasetFacet,
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
        SchemaDatasetFacet,
        SchemaDatasetFacetFields,
    )
    from airflow.providers.openlineage.extractors import OperatorLineage

    def facets(dataset: LineageDataset) -> dict[str, Any]:
        if not dataset.fields:
            return {}
        fields = [SchemaDatasetFacetFields(name=n, type=t) for n, t in dataset.fields]
        return {"schema": SchemaDatasetFacet(fields=fields)}

    outputs = []
    for out in lineage.outputs:
        dataset_facets = facets(out)
        if lineage.truncates:
            dataset_facets["lifecycleStateChange"] = LifecycleStateChangeDatasetFacet(
                lifecycleStateChange=LifecycleStateChange.TRUNCATE
            )
        output_facets = {}
        if out.rows is not None:
            output_facets["outputStatistics"] = OutputStatisticsOutputDatasetFacet(
                rowCount=out.rows, size=out.bytes
            )
        outputs.append(
            OutputDataset(
                namespace=out.namespace,
                name=out.name,
                facets=dataset_facets,
                outputFacets=output_facets,
            )
        )
    return OperatorLineage(
        inputs=[
            Dataset(namespace=i.namespace, name=i.name, facets=facets(i)) for i in lineage.inputs
        ],
        outputs=outputs,
        run_facets={
            "externalQuery": ExternalQueryRunFacet(
                externalQueryId=str(lineage.job.job_id), source="airbyte"
            )
        },
    )


# --- Airflow Asset events ---------------------------------------------------------------


def job_extra(job: AirbyteJob) -> dict[str, Any]:
    """The job's facts as an asset event's ``extra``."""
    return {
        "airbyte_job_id": job.job_id,
        "connection_id": job.connection_id,
        "job_type": str(job.job_type),
        "status": str(job.status),
        "records": job.rows,
        "bytes": job.bytes,
    }


def asset_extra(lineage: SyncLineage) -> dict[str, Any]:
    """The job's figures, overall and per destination table (keyed by its asset URI)."""
    return {
        **job_extra(lineage.job),
        "tables": {
            out.uri: {"stream": out.stream, "records": out.rows, "bytes": out.bytes}
            for out in lineage.outputs
        },
    }


def table_extra(job: AirbyteJob, out: LineageDataset) -> dict[str, Any]:
    """The job's facts as the ``extra`` of one destination table's asset event."""
    return {
        **job_extra(job),
        "table": out.name,
        "namespace": out.namespace,
        "stream": out.stream,
        "records": out.rows,
        "bytes": out.bytes,
    }


def emit_asset_events(
    job: AirbyteJob,
    lineage: SyncLineage | None,
    outlets: Iterable[Any],
    context: Mapping[str, Any],
) -> None:
    """Put the job's facts on the task's asset events.

    Every ``Asset`` outlet's event gets the job's figures (and per table, when the lineage is
    known); every ``AssetAlias`` outlet gets one event per destination table, for the Asset
    named like the table's OpenLineage output, with that table's figures.
    """
    from airflow.sdk import Asset, AssetAlias

    extra = asset_extra(lineage) if lineage else job_extra(job)
    for outlet in outlets:
        if isinstance(outlet, AssetAlias) and lineage is not None:
            for out in lineage.outputs:
                context["outlet_events"][outlet].add(
                    Asset(uri=out.uri, name=out.uri), extra=table_extra(job, out)
                )
        elif isinstance(outlet, Asset):
            context["outlet_events"][outlet].extra.update(extra)


def record_sync(
    hook: AirbyteHook, job: AirbyteJob, outlets: Iterable[Any], context: Mapping[str, Any]
) -> tuple[SyncLineage | None, dict[str, str]]:
    """At the end of a task: the job's lineage (one request), its Asset events and links.

    Lineage is worth a request, never a failed sync: when the connection details cannot be
    read or named, the Asset events still carry the job's figures and the reason is logged.
    """
    from plugins.airbyte_links import job_urls

    details = lineage = None
    try:
        details = hook.get_connection_details(job.connection_id)
        lineage = sync_lineage(job, details)
    except AirbyteError as exc:
        hook.log.warning("No lineage for Airbyte job %s: %s", job.job_id, exc)
    except Exception:  # the job is done: a retry of the task would only start another sync
        hook.log.exception("No lineage for Airbyte job %s: could not name its datasets", job.job_id)
    emit_asset_events(job, lineage, outlets, context)
    return lineage, job_urls(hook, job, details.workspace_id if details else None)
