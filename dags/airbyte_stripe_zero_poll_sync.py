"""
### Stripe → Postgres in zero-poll mode

Starts the Stripe sync and returns at once: nothing polls Airbyte while it works. When the
sync ends, Airbyte's success notification reaches the webhook receiver, which confirms the
job with Airbyte and creates the asset events of `airbyte://stripe_postgres` and the raw
tables; `airbyte_quality__stripe` then runs the checks and the transform. Three Airbyte
requests per sync at most (token, start, the receiver's confirmation) instead of one every
few seconds.

The `watchdog` task is the fallback. It waits deferred, holding no worker slot, until the
connection's usual sync time (from earlier asset events) plus `grace_seconds` has passed,
then looks for the job's asset event. If the notification was lost it asks Airbyte once and
emits the events itself; a failed or cancelled job fails the task (and this run), like a
blocking sync; a job still running is looked at again every few minutes.

Needs the receiver and Airbyte's notification webhook (see `webhook/README.md`). Manual
trigger here; give it a schedule to use it in place of `airbyte_stripe_to_postgres`.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag

from include.connections import load_connections
from include.dag_defaults import default_args
from include.pipeline import notifier, zero_poll_sync

STRIPE = load_connections().entry("stripe")


@dag(
    dag_id="airbyte_stripe_zero_poll_sync",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["airbyte", "stripe", "zero-poll"],
    doc_md=__doc__,
    params={
        "grace_seconds": Param(300, type="number", minimum=0, title="Notification grace (s)"),
        "fallback_after_seconds": Param(
            1800, type="number", minimum=0, title="First look without history (s)"
        ),
        "timeout_minutes": Param(1440, type="number", exclusiveMinimum=0),
    },
    on_failure_callback=notifier(STRIPE, xcom_task_id="start_sync"),
)
def airbyte_stripe_zero_poll_sync():
    zero_poll_sync(
        STRIPE,
        grace_seconds="{{ params.grace_seconds }}",
        fallback_after_seconds="{{ params.fallback_after_seconds }}",
        timeout_minutes="{{ params.timeout_minutes }}",
    )


airbyte_stripe_zero_poll_sync()
