"""The DAGs an entry of the connections file gets, built when ``dags/airbyte_connections.py``
is parsed.

- ``airbyte_sync__<key>`` (an entry with a ``schedule``): sync >> ``validate_sync_results`` >>
  checkpoint >> transforms >> notify. In ``zero_poll`` mode: start the sync, then the watchdog
  stands by for Airbyte's notification; the checks run in the quality DAG.
- ``airbyte_quality__<key>`` (an entry with a ``checkpoint`` or ``transforms``): scheduled on
  the connection's Asset, so it checks every sync, whoever started it (Airbyte's scheduler,
  its UI, a DAG). It skips syncs its own sync DAG already checked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Asset, task
from airflow.sdk.exceptions import AirflowSkipException

from include.assets import connection_asset
from include.connections import ConnectionEntry, load_connections
from include.dag_defaults import default_args
from include.pipeline import after_sync, notifier, sync_task, zero_poll_sync
from include.validation import validate_sync_results
from plugins.airbyte_client.contracts import JOB_ID_KEY, STATS_KEY, stats_from_events

START_DATE = datetime(2025, 1, 1)


def _dag(
    entry: ConnectionEntry, dag_id: str, schedule: Any, doc: str, reporter: str, *tags: str
) -> DAG:
    """A DAG of ``entry``; a failed run is reported with the XComs of task ``reporter``."""
    return DAG(
        dag_id=dag_id,
        schedule=schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=default_args(retries=entry.retries) | {"owner": entry.owner},
        tags=["airbyte", "airbyte_connections.yaml", *entry.groups, *entry.tags, *tags],
        doc_md=f"### {entry.title}\n\n{doc}\n\nFrom the entry `{entry.key}` of "
        "`airbyte_connections.yaml`; edit the file, not this DAG.",
        on_failure_callback=notifier(entry, xcom_task_id=reporter),
    )


def _schedule(entry: ConnectionEntry) -> Any:
    if entry.schedule is None or isinstance(entry.schedule, str):
        return entry.schedule
    return [Asset(uri=uri, name=uri) for uri in entry.schedule.assets]


def sync_dag(entry: ConnectionEntry) -> DAG:
    """``airbyte_sync__<key>``: the entry's sync and what follows it."""
    doc = "Syncs the Airbyte connection, checks the result, then notifies."
    zero_poll = entry.wait == "zero_poll"
    reporter = "start_sync" if zero_poll else "validate"
    with _dag(entry, entry.sync_dag_id, _schedule(entry), doc, reporter) as dag:
        if zero_poll:
            zero_poll_sync(entry)
            return dag

        @task(multiple_outputs=False)  # the stats as one XCom
        def validate(job: dict, **context: Any) -> dict:
            return validate_sync_results(
                job, min_records=entry.min_records, allow_zero=entry.allow_zero, context=context
            )

        after_sync(entry, validate(sync_task(entry).output))
    return dag


def quality_dag(entry: ConnectionEntry) -> DAG:
    """``airbyte_quality__<key>``: checks and transforms after every sync of the entry."""
    synced = connection_asset(entry)
    checked_by_sync_dag = entry.schedule is not None and entry.wait != "zero_poll"
    doc = "Runs the entry's checkpoint and transforms after every successful sync."
    reporter = "sync_details"
    with _dag(entry, entry.quality_dag_id, [synced], doc, reporter, "data-quality") as dag:

        @task(multiple_outputs=False)
        def sync_details(**context: Any) -> dict:
            """The Airbyte job(s) behind this run, from the triggering asset events."""
            events = context["triggering_asset_events"].get(synced, [])
            own = [e for e in events if e.source_dag_id == entry.sync_dag_id]
            if checked_by_sync_dag and events and len(own) == len(events):
                raise AirflowSkipException(f"{entry.sync_dag_id} already checked this sync")
            stats = stats_from_events(e.extra for e in events)
            context["ti"].xcom_push(key=JOB_ID_KEY, value=stats["job_id"])
            context["ti"].xcom_push(key=STATS_KEY, value=stats)
            print(f"{entry.title} synced by Airbyte job(s) {stats['jobs']} ({stats['origin']})")
            return stats

        after_sync(entry, sync_details())
    return dag


def connection_dags() -> list[DAG]:
    """Every generated DAG, in file order."""
    connections = load_connections()
    return [sync_dag(e) for e in connections.scheduled()] + [
        quality_dag(e) for e in connections.checked()
    ]
