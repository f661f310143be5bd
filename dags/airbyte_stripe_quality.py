"""
### Stripe data quality, on every Stripe sync

Scheduled on the Asset `airbyte://stripe_postgres`: it runs after **every** successful Stripe
sync, whoever started it: Airbyte's own scheduler, someone in the Airbyte UI or API, or a DAG.
Syncs started outside Airflow reach it through Airbyte's success notification, which the
webhook receiver confirms with Airbyte and turns into an asset event
(`POST /airbyte/notifications/<token>`, see `webhook/README.md`); DAG syncs reach it through
their task's outlets or, in zero-poll mode, through the same notification.

Reads the Airbyte job id, rows, bytes and duration from the asset event, validates the raw
tables with the Great Expectations checkpoint `stripe_postgres_checkpoint`, rebuilds
`analytics_stripe_daily_revenue` and sends a notification.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from include.assets import connection_asset
from include.dag_defaults import default_args
from include.notifications import SyncNotifier
from include.paths import SQL_DIR
from include.sources import STRIPE
from include.stripe_pipeline import checkpoint_then_revenue
from plugins.airbyte_client.contracts import JOB_ID_KEY, STATS_KEY, stats_from_events

STRIPE_SYNCED = connection_asset(STRIPE)


@dag(
    dag_id="airbyte_stripe_quality",
    schedule=[STRIPE_SYNCED],
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["airbyte", "stripe", "data-quality"],
    doc_md=__doc__,
    template_searchpath=[str(SQL_DIR)],
    on_failure_callback=SyncNotifier(xcom_task_id="sync_details", title="Stripe quality"),
)
def airbyte_stripe_quality():
    @task(multiple_outputs=True)
    def sync_details(**context) -> dict:
        """The Airbyte job(s) behind this run, from the triggering asset events' ``extra``."""
        events = context["triggering_asset_events"].get(STRIPE_SYNCED, [])
        stats = stats_from_events(e.extra for e in events)
        context["ti"].xcom_push(key=JOB_ID_KEY, value=stats["job_id"])
        context["ti"].xcom_push(key=STATS_KEY, value=stats)
        print(f"Stripe synced by Airbyte job(s) {stats['jobs']} ({stats['origin']})")
        return stats

    checkpoint, build_daily_revenue = checkpoint_then_revenue()

    @task
    def notify(stats: dict, **context) -> None:
        SyncNotifier(xcom_task_id="sync_details", title="Stripe quality").notify(context)

    stats = sync_details()
    stats >> checkpoint
    build_daily_revenue >> notify(stats)


airbyte_stripe_quality()
