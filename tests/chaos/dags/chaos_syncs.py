"""
### Chaos-test DAGs

One Airbyte job per run, on the connection given in the run's conf, waited for in the
worker (`chaos_blocking`) or in the triggerer (`chaos_deferred`). Retries come quickly so a
killed try is retried within seconds, not minutes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param

from plugins.airbyte_operator import AirbyteSyncOperator

for mode in ("blocking", "deferred"):
    with DAG(
        dag_id=f"chaos_{mode}",
        schedule=None,
        start_date=datetime(2025, 1, 1),
        catchup=False,
        default_args={"owner": "chaos", "retries": 3, "retry_delay": timedelta(seconds=2)},
        tags=["chaos"],
        doc_md=__doc__,
        params={"connection_id": Param(type="string")},
    ):
        AirbyteSyncOperator(
            task_id="sync",
            connection_id="{{ params.connection_id }}",
            deferrable=mode == "deferred",
            timeout_minutes=10,
        )
