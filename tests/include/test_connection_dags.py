"""The generated DAGs' shape, and when a quality DAG leaves a sync to its sync DAG."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from include.assets import connection_asset
from include.connection_dags import quality_dag, sync_dag
from include.connections import parse_connections

FILE = """
connections:
  billing:
    connection_id: 2a6f1c2e-8b1d-4c3a-9f0e-1d2c3b4a5f60
    schedule: "@daily"
    checkpoint: stripe_postgres_checkpoint
    transforms: [{sql: stripe_daily_revenue.sql, table: analytics_stripe_daily_revenue}]
  pushed:
    connection_id: 7c9e4b1a-3d2f-4e5a-8b6c-0f1e2d3c4b5a
    schedule: "@daily"
    wait: zero_poll
    checkpoint: hubspot_checkpoint
"""
ENTRIES = parse_connections(FILE, Path("airbyte_connections.yaml")).connections


class Ti:
    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


def sync_details(key: str, *source_dag_ids: str | None) -> dict:
    """Run the quality DAG's first task on asset events from these DAGs (None: the receiver)."""
    entry = ENTRIES[key]
    events = [
        SimpleNamespace(source_dag_id=d, extra={"airbyte_job_id": n, "origin": "task"})
        for n, d in enumerate(source_dag_ids, start=1)
    ]
    task = quality_dag(entry).get_task("sync_details")
    context = {"triggering_asset_events": {connection_asset(entry): events}, "ti": Ti()}
    return task.python_callable(**context)


def test_the_sync_dag_checks_then_transforms_then_notifies():
    dag = sync_dag(ENTRIES["billing"])
    order = ["sync", "validate", "stripe_postgres_checkpoint"]
    order += ["transform_stripe_daily_revenue", "notify"]
    for upstream, downstream in pairwise(order):
        assert upstream in dag.get_task(downstream).upstream_task_ids
    [table] = dag.get_task("transform_stripe_daily_revenue").outlets
    assert table.name == "analytics_stripe_daily_revenue"


def test_a_zero_poll_sync_dag_starts_and_stands_by():
    dag = sync_dag(ENTRIES["pushed"])
    assert {t.task_id for t in dag.tasks} == {"start_sync", "watchdog"}
    assert dag.get_task("watchdog").pool == dag.get_task("start_sync").pool == "airbyte"


def test_a_sync_its_own_sync_dag_checked_is_skipped():
    with pytest.raises(AirflowSkipException, match="airbyte_sync__billing already checked"):
        sync_details("billing", "airbyte_sync__billing")


@pytest.mark.parametrize(
    "sources",
    [
        pytest.param((None,), id="a notification"),
        pytest.param(("airbyte_sync__billing", "airbyte_multi_source_sync"), id="another DAG too"),
        pytest.param((), id="a manual run"),
    ],
)
def test_other_syncs_are_checked(sources):
    stats = sync_details("billing", *sources)
    assert stats["jobs"] == list(range(1, len(sources) + 1))


def test_a_zero_poll_entry_is_checked_by_its_quality_dag():
    assert sync_details("pushed", "airbyte_sync__pushed")["job_id"] == 1
