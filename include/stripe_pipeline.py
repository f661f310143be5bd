"""What follows a Stripe sync, shared by the DAGs that run it: the Great Expectations
checkpoint on the raw tables, then the daily revenue transform.

Nothing here imports a SQL provider or prepares Great Expectations at parse time: GX is
prepared when its task runs (``on_execute_callback``) and the transform imports the SQL
hook when it runs.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import task
from great_expectations_provider.operators.validate_checkpoint import (
    GXValidateCheckpointOperator,
)

from include.assets import DAILY_REVENUE_ASSET
from include.data_quality import checkpoint_factory, prepare_gx
from include.paths import SQL_DIR
from include.sources import STRIPE


@task(outlets=[DAILY_REVENUE_ASSET], multiple_outputs=False)
def build_daily_revenue() -> dict:
    """Rebuild the daily revenue table from the raw charges (include/sql), through the
    warehouse Connection's own hook."""
    from airflow.providers.common.sql.hooks.handlers import fetch_all_handler
    from airflow.sdk import BaseHook

    hook = BaseHook.get_connection("warehouse_default").get_hook()
    sql = (SQL_DIR / "stripe_daily_revenue.sql").read_text(encoding="utf-8")
    [(days, revenue_cents)] = hook.run(sql, split_statements=True, handler=fetch_all_handler)
    return {"days_and_currencies": int(days), "revenue_cents": int(revenue_cents)}


def checkpoint_then_revenue() -> tuple[GXValidateCheckpointOperator, Any]:
    """``stripe_postgres_checkpoint`` >> ``build_daily_revenue`` (inside a DAG context)."""
    checkpoint = GXValidateCheckpointOperator(
        task_id=STRIPE.checkpoint,
        configure_checkpoint=checkpoint_factory(STRIPE.checkpoint),
        context_type="ephemeral",
        on_execute_callback=prepare_gx,  # not at parse time: it sets env vars and log levels
    )
    revenue = build_daily_revenue()
    checkpoint >> revenue
    return checkpoint, revenue
