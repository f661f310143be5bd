"""A finished Airbyte job's lineage in Airflow: OpenLineage facets and the task's Asset events.

The names come from ``plugins.airbyte_client.lineage`` and the events' ``extra`` from
``plugins.airbyte_client.contracts``; this module puts them where Airflow reads them.
Reset and clear jobs read nothing and truncate their tables, a truncating refresh truncates
them before it writes: their outputs carry the ``lifecycleStateChange`` facet ``TRUNCATE``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

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
from airflow.sdk import Asset, AssetAlias

from plugins.airbyte_client.contracts import ORIGIN_TASK, job_extra, table_extra
from plugins.airbyte_client.errors import AirbyteError
from plugins.airbyte_client.lineage import LineageDataset, SyncLineage, sync_lineage
from plugins.airbyte_client.models import AirbyteJob, ConnectionDetails

if TYPE_CHECKING:
    from plugins.airbyte_hook import AirbyteHook


def _schema_facets(dataset: LineageDataset) -> dict[str, Any]:
    if not dataset.fields:
        return {}
    fields = [SchemaDatasetFacetFields(name=n, type=t) for n, t in dataset.fields]
    return {"schema": SchemaDatasetFacet(fields=fields)}


def _output(out: LineageDataset, truncates: bool) -> OutputDataset:
    dataset_facets = _schema_facets(out)
    if truncates:
        dataset_facets["lifecycleStateChange"] = LifecycleStateChangeDatasetFacet(
            lifecycleStateChange=LifecycleStateChange.TRUNCATE
        )
    output_facets = {}
    if out.records is not None:
        output_facets["outputStatistics"] = OutputStatisticsOutputDatasetFacet(
            rowCount=out.records, size=out.bytes
        )
    return OutputDataset(
        namespace=out.namespace, name=out.name, facets=dataset_facets, outputFacets=output_facets
    )


def operator_lineage(lineage: SyncLineage) -> OperatorLineage:
    """The task's OpenLineage inputs, outputs and run facets."""
    return OperatorLineage(
        inputs=[
            Dataset(namespace=i.namespace, name=i.name, facets=_schema_facets(i))
            for i in lineage.inputs
        ],
        outputs=[_output(out, lineage.truncates) for out in lineage.outputs],
        run_facets={
            "externalQuery": ExternalQueryRunFacet(
                externalQueryId=str(lineage.job.job_id), source="airbyte"
            )
        },
    )


def emit_asset_events(
    job: AirbyteJob,
    lineage: SyncLineage | None,
    outlets: Iterable[Any],
    context: Mapping[str, Any],
    origin: str = ORIGIN_TASK,
) -> None:
    """Put the job's facts on the task's Asset events.

    Every ``Asset`` outlet's event gets the job's figures (and per table, when the lineage is
    known); every ``AssetAlias`` outlet gets one event per destination table, for the Asset
    named like the table's OpenLineage output, with that table's figures.
    """
    extra = job_extra(job, lineage, origin)
    for outlet in outlets:
        if isinstance(outlet, AssetAlias) and lineage is not None:
            for out in lineage.outputs:
                context["outlet_events"][outlet].add(
                    Asset(uri=out.uri, name=out.uri), extra=table_extra(job, out, origin)
                )
        elif isinstance(outlet, Asset):
            context["outlet_events"][outlet].extra.update(extra)


def record_sync(
    hook: AirbyteHook,
    job: AirbyteJob,
    outlets: Iterable[Any],
    context: Mapping[str, Any],
    origin: str = ORIGIN_TASK,
    *,
    streams: Sequence[str] = (),
    refresh_mode: str | None = None,
) -> tuple[SyncLineage | None, ConnectionDetails | None]:
    """At the end of a task: the job's lineage (one request) and its Asset events
    (``streams``, ``refresh_mode``: what the job was limited to, see ``sync_lineage``).

    Lineage is worth a request, never a failed sync: when the connection details cannot be
    read or named, the Asset events still carry the job's figures and the reason is logged.
    """
    details = lineage = None
    try:
        details = hook.get_connection_details(job.connection_id)
        lineage = sync_lineage(job, details, streams, refresh_mode)
    except AirbyteError as exc:
        hook.log.warning("No lineage for Airbyte job %s: %s", job.job_id, exc)
    except Exception:  # the job is done: a retry of the task would only start another sync
        hook.log.exception("No lineage for Airbyte job %s: could not name its datasets", job.job_id)
    emit_asset_events(job, lineage, outlets, context, origin)
    return lineage, details
