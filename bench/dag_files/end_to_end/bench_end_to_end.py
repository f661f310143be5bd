"""The DAGs of ``bench/end_to_end.py``: one per (side, job length, run), sync >> downstream.

The plan (JSON, path in ``BENCH_E2E_PLAN``) lists each DAG's id, side, Airbyte connection and
Airflow Connection. Every side's sync is built as its users write it, with its shipped
defaults; ``downstream`` is the same empty task everywhere (its ``start_date`` is measured).
Zero-poll: ``start_sync >> watchdog`` (``include.pipeline.zero_poll_sync``) and a second DAG,
scheduled on the connection's Asset, holds ``downstream``. The official provider is imported
only for its sides, so our sides also parse without it.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, task

from include.assets import connection_asset
from include.connections import load_connections
from include.pipeline import zero_poll_sync
from plugins.airbyte_operator import AirbyteSyncOperator

START = datetime(2026, 1, 1)


@task(task_id="downstream")
def downstream() -> None:
    """What a transform's first task would be: nothing to do, only its start is measured."""


def _dag(dag_id: str, schedule: Any = None) -> DAG:
    return DAG(
        dag_id,
        schedule=schedule,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        default_args={"retries": 0},
        tags=["bench"],
    )


def ours(spec: dict[str, Any]) -> None:
    deferrable = spec["side"] == "ours_deferred"
    sync = AirbyteSyncOperator(
        task_id="sync",
        connection_id=spec["connection_id"],
        airbyte_conn_id=spec["conn_id"],
        deferrable=deferrable,
    )
    sync >> downstream()


def zero_poll(spec: dict[str, Any]) -> None:
    zero_poll_sync(load_connections().entry(spec["entry"]), grace_seconds=spec["grace_seconds"])


def zero_poll_downstream(spec: dict[str, Any]) -> None:
    """The DAG the notification's Asset event schedules."""
    asset = connection_asset(load_connections().entry(spec["entry"]))
    with _dag(f"{spec['dag_id']}__downstream", schedule=[asset]):
        downstream()


def official(spec: dict[str, Any]) -> None:
    # Imported here so that our sides parse where the official provider is not installed.
    from airflow.providers.airbyte.operators.airbyte import AirbyteTriggerSyncOperator
    from airflow.providers.airbyte.sensors.airbyte import AirbyteJobSensor

    common = {"connection_id": spec["connection_id"], "airbyte_conn_id": spec["conn_id"]}
    if spec["side"] == "official_sensor":
        sync = AirbyteTriggerSyncOperator(task_id="sync", asynchronous=True, **common)
        wait = AirbyteJobSensor(
            task_id="wait",
            airbyte_job_id=sync.output,
            airbyte_conn_id=spec["conn_id"],
            deferrable=True,
        )
        sync >> wait >> downstream()
        return
    deferrable = spec["side"] == "official_deferred"
    AirbyteTriggerSyncOperator(task_id="sync", deferrable=deferrable, **common) >> downstream()


BUILDERS = {
    "ours_deferred": ours,
    "ours_blocking": ours,
    "ours_zero_poll": zero_poll,
    "official_deferred": official,
    "official_blocking": official,
    "official_sensor": official,
}

for _spec in json.loads(Path(os.environ.get("BENCH_E2E_PLAN", "/dev/null")).read_text() or "[]"):
    with _dag(_spec["dag_id"]):
        BUILDERS[_spec["side"]](_spec)
    if _spec["side"] == "ours_zero_poll":
        zero_poll_downstream(_spec)
