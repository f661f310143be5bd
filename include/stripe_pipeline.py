"""What follows a Stripe sync, shared by the DAGs that run it: the Great Expectations
checkpoint on the raw tables, then the daily revenue transform."""

from __future__ import annotations

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from great_expectations_provider.operators.validate_checkpoint import (
    GXValidateCheckpointOperator,
)

from include.assets import DAILY_REVENUE_ASSET
from include.data_quality import checkpoint_factory
from include.sources import STRIPE


def checkpoint_then_revenue() -> tuple[GXValidateCheckpointOperator, SQLExecuteQueryOperator]:
    """``stripe_postgres_checkpoint`` >> ``build_daily_revenue`` (inside a DAG context);
    the DAG needs ``template_searchpath=[str(SQL_DIR)]``."""
    checkpoint = GXValidateCheckpointOperator(
        task_id=STRIPE.checkpoint,
        configure_checkpoint=checkpoint_factory(STRIPE.checkpoint),
        context_type="ephemeral",
    )
    build_daily_revenue = SQLExecuteQueryOperator(
        task_id="build_daily_revenue",
        conn_id="warehouse_default",
        sql="stripe_daily_revenue.sql",
        split_statements=True,
        outlets=[DAILY_REVENUE_ASSET],
    )
    checkpoint >> build_daily_revenue
    return checkpoint, build_daily_revenue
