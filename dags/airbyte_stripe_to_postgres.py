"""
### Stripe → Postgres, every 6 hours

Syncs the Airbyte connection Stripe → Postgres, checks that the sync moved data
(`validate_sync_results`), validates the synced tables with the Great Expectations checkpoint
`stripe_postgres_checkpoint`, rebuilds `analytics_stripe_daily_revenue` from the raw charges,
and sends a notification with the Airbyte job id, rows and duration.

**Configuration**: the entry `stripe` of `airbyte_connections.yaml` names the connection,
the checkpoint and the transform; then (Admin → Variables / Connections, or External Secrets):
- Variable `AIRBYTE_STRIPE_POSTGRES_CONNECTION_ID` (legacy name `AIRBYTE_STRIPE_CONNECTION_ID`
  also accepted): the Airbyte connection id.
- Connection `airbyte_default` (or the Variables `AIRBYTE_API_URL`, `AIRBYTE_API_USERNAME`,
  `AIRBYTE_API_PASSWORD`): the Airbyte server.
- Connection `warehouse_default`: the destination database the checks and transform read.

Emits Assets for what it refreshes: `airbyte://stripe_postgres` (its events carry the Airbyte
job id and the records and bytes, overall and per table), the raw tables through the alias
`airbyte_stripe_tables` (each named like its OpenLineage output, e.g.
`postgres://host:5432/warehouse/public/stripe_charges`) and
`warehouse://analytics_stripe_daily_revenue`, so downstream DAGs can be scheduled on fresh data.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

from include.connections import load_connections
from include.dag_defaults import default_args
from include.pipeline import after_sync, notifier, sync_task
from include.validation import validate_sync_results

STRIPE = load_connections().entry("stripe")


@dag(
    dag_id="airbyte_stripe_to_postgres",
    schedule=timedelta(hours=6),
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["airbyte", "stripe", "postgres"],
    doc_md=__doc__,
    params={
        "min_records": Param(
            1, type="integer", minimum=0, description="Fewest records a sync must move"
        ),
        "timeout_minutes": Param(60, type="number", exclusiveMinimum=0),
    },
    on_failure_callback=notifier(STRIPE, xcom_task_id="sync_stripe"),
)
def airbyte_stripe_to_postgres():
    sync = sync_task(STRIPE, task_id="sync_stripe", timeout_minutes="{{ params.timeout_minutes }}")

    @task(multiple_outputs=False)  # the stats as one XCom
    def validate_sync(job: dict, **context) -> dict:
        return validate_sync_results(
            job, min_records=context["params"]["min_records"], context=context
        )

    after_sync(STRIPE, validate_sync(sync.output))


airbyte_stripe_to_postgres()
