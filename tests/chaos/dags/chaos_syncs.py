"""
### Chaos-test DAGs

One Airbyte job per run, on the connection given in the run's conf, waited for in the
worker (`chaos_blocking`) or in the triggerer (`chaos_deferred`), through the Public API
(`airbyte_default`), or the Configuration API (`chaos_blocking_config`, `chaos_deferred_config`:
`airbyte_config_api`). Retries come quickly so a killed try is retried within seconds.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import product

from airflow.sdk import DAG, Param

from plugins.airbyte_operator import AirbyteSyncOperator

FLAVOURS = {"": "airbyte_default", "_config": "airbyte_config_api"}

for mode, (suffix, conn_id) in product(("blocking", "deferred"), FLAVOURS.items()):
    with DAG(
        dag_id=f"chaos_{mode}{suffix}",
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
            airbyte_conn_id=conn_id,
            deferrable=mode == "deferred",
            timeout_minutes=10,
        )
