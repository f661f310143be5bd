"""The same DAG with apache-airflow-providers-airbyte's operator (parse bench)."""

from __future__ import annotations

from datetime import datetime

from airflow.providers.airbyte.operators.airbyte import AirbyteTriggerSyncOperator
from airflow.sdk import DAG

with DAG(
    "bench_official_minimal_sync", schedule=None, start_date=datetime(2026, 1, 1), catchup=False
):
    AirbyteTriggerSyncOperator(
        task_id="sync", connection_id="2a6f1c2e-8b1d-4c3a-9f0e-1d2c3b4a5f60", deferrable=True
    )
