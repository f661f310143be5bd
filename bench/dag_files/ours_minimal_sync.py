"""The smallest DAG running one Airbyte sync with this repository's operator (parse bench)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from plugins.airbyte_operator import AirbyteSyncOperator

with DAG("bench_ours_minimal_sync", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    AirbyteSyncOperator(
        task_id="sync", connection_id="2a6f1c2e-8b1d-4c3a-9f0e-1d2c3b4a5f60", deferrable=True
    )
