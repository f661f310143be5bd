"""
### Every nightly connection in parallel

One task group per entry of the group `nightly` in `airbyte_connections.yaml` (the seed's
Stripe, HubSpot and Salesforce, and any entry you add to the group) syncs its Airbyte
connection, waits for it and validates the result. The connections run in parallel and
independently: one failing neither cancels nor blocks the others. A final `summary` task
(which runs whatever happened) reports every connection: Airbyte job id, status, rows, bytes
and duration, and fails the run if any failed, so the failure stays visible.

**Configuration**: the entries' connections (for the seed's: Variables
`AIRBYTE_STRIPE_POSTGRES_CONNECTION_ID` or `AIRBYTE_STRIPE_CONNECTION_ID`,
`AIRBYTE_HUBSPOT_CONNECTION_ID`, `AIRBYTE_SALESFORCE_CONNECTION_ID`); Connection
`airbyte_default`.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, TaskGroup, dag, task

from include.connections import load_connections
from include.dag_defaults import default_args
from include.pipeline import sync_task
from include.reporting import summarize_sources
from include.validation import validate_sync_results

GROUP = "nightly"
ENTRIES = load_connections().group(GROUP)


@dag(
    dag_id="airbyte_multi_source_sync",
    schedule="0 2 * * *",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["airbyte", GROUP],
    doc_md=__doc__,
    params={
        "min_records": Param(1, type="integer", minimum=0),
        "timeout_minutes": Param(120, type="number", exclusiveMinimum=0),
    },
)
def airbyte_multi_source_sync():
    @task(multiple_outputs=False)  # the stats as one XCom
    def validate(job: dict, **context) -> dict:
        return validate_sync_results(
            job, min_records=context["params"]["min_records"], context=context
        )

    finished = []
    for entry in ENTRIES:
        with TaskGroup(group_id=entry.key, tooltip=entry.title):
            sync = sync_task(entry, timeout_minutes="{{ params.timeout_minutes }}")
            finished.append(validate(sync.output))

    @task(trigger_rule="all_done", retries=0)
    def summary(**context) -> list[dict]:
        return summarize_sources(ENTRIES, context)

    finished >> summary()


airbyte_multi_source_sync()
