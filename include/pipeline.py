"""The tasks around an entry's Airbyte sync, built from its settings in the connections file.

``sync_task`` starts (and waits for) the sync in the Airbyte pool, ``zero_poll_sync`` starts
it and stands by for Airbyte's notification; ``after_sync`` is what
follows a successful sync: the Great Expectations checkpoint, the SQL transforms and the
notification. Both the generated DAGs (``dags/airbyte_connections.py``) and the seed's
hand-written DAGs use them inside a DAG context.

Nothing here connects anywhere at parse time: GX is prepared when its task runs
(``on_execute_callback``) and a transform reaches the warehouse when it runs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import BaseHook, task
from great_expectations_provider.operators.validate_checkpoint import (
    GXValidateCheckpointOperator,
)

from include.assets import connection_asset, sync_outlets, table_asset
from include.connections import ConnectionEntry, Transform, load_connections
from include.data_quality import checkpoint_factory, prepare_gx
from include.notifications import SyncNotifier, channels_named
from include.paths import SQL_DIR
from include.warehouse import DEFAULT_CONN_ID as WAREHOUSE_CONN_ID
from plugins.airbyte_operator import AirbyteSyncOperator
from plugins.airbyte_watchdog import AirbyteSyncWatchdogOperator

#: Rows of a transform's last statement kept in its XCom.
MAX_RESULT_ROWS = 100


def sync_task(entry: ConnectionEntry, task_id: str = "sync", **kwargs: Any) -> AirbyteSyncOperator:
    """The entry's Airbyte job in the pool of the connections file; ``kwargs`` win (e.g. a
    templated ``timeout_minutes``, ``wait=False``)."""
    settings: dict[str, Any] = {
        **entry.connection,
        "airbyte_conn_id": entry.airbyte_conn_id,
        "timeout_minutes": entry.timeout_minutes,
        "deferrable": entry.wait != "blocking",
        "pool": load_connections().pool.name,
        "outlets": sync_outlets(entry),
    }
    return AirbyteSyncOperator(task_id=task_id, **(settings | kwargs))


def zero_poll_sync(entry: ConnectionEntry, **watchdog: Any) -> tuple[AirbyteSyncOperator, Any]:
    """``start_sync`` (returns once Airbyte accepted the job) >> ``watchdog``, which stands by
    for the notification's Asset event; ``watchdog`` arguments win (e.g. templated
    ``grace_seconds``)."""
    start = sync_task(entry, task_id="start_sync", wait=False, outlets=[])
    settings: dict[str, Any] = {
        "airbyte_conn_id": entry.airbyte_conn_id,
        "timeout_minutes": entry.timeout_minutes,
        "announced_by": connection_asset(entry),
        "outlets": sync_outlets(entry),
        "pool": load_connections().pool.name,  # the job runs until the watchdog ends
        # Airflow 3.3.0 sometimes marks a task up_for_retry although it skipped right after
        # resuming from deferral. The watchdog is idempotent (it re-checks the job's Asset
        # event before acting), so its retry comes after the house minimum, not minutes later.
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": False,
    }
    guard = AirbyteSyncWatchdogOperator(
        task_id="watchdog", sync_task_id="start_sync", **(settings | watchdog)
    )
    start >> guard
    return start, guard


def notifier(entry: ConnectionEntry, **kwargs: Any) -> SyncNotifier:
    """A notifier through the entry's channels (``notify``), or the Variable's when unset."""
    channels = None if entry.notify is None else channels_named(entry.notify)
    return SyncNotifier(channels, title=entry.title, **kwargs)


def run_sql_file(name: str, conn_id: str = WAREHOUSE_CONN_ID) -> list[list[Any]]:
    """Run ``include/sql/<name>`` on the warehouse through its Connection's own hook; the rows
    of its last statement."""
    from airflow.providers.common.sql.hooks.handlers import fetch_all_handler

    hook = BaseHook.get_connection(conn_id).get_hook()
    sql = (SQL_DIR / name).read_text(encoding="utf-8")
    rows = hook.run(sql, split_statements=True, handler=fetch_all_handler) or []
    return [list(row) for row in rows[:MAX_RESULT_ROWS]]


def transform_task(transform: Transform) -> Any:
    """A task running one SQL transform; its table (if named) is an Asset it updates."""
    outlets = [table_asset(transform.table)] if transform.table else []
    stem = transform.sql.removesuffix(".sql")

    @task(task_id=f"transform_{stem}", outlets=outlets, multiple_outputs=False)
    def transform_sql() -> list[list[Any]]:
        return run_sql_file(transform.sql)

    return transform_sql()


def checkpoint_task(name: str) -> GXValidateCheckpointOperator:
    return GXValidateCheckpointOperator(
        task_id=name,
        configure_checkpoint=checkpoint_factory(name),
        context_type="ephemeral",
        on_execute_callback=prepare_gx,  # not at parse time: it sets env vars and log levels
    )


def after_sync(entry: ConnectionEntry, stats: Any) -> list[Any]:
    """Checkpoint (if any) >> transforms (in file order) >> notify, downstream of ``stats``
    (the validated sync's ``SyncStats``); returns the tasks in order."""
    chain: list[Any] = []
    if entry.checkpoint:
        chain.append(checkpoint_task(entry.checkpoint))
    chain += [transform_task(t) for t in entry.transforms]

    @task(task_id="notify")
    def notify(stats: dict, **context: Any) -> None:
        notifier(entry).notify(context, stats)

    chain.append(notify(stats))
    previous: Any = stats
    for step in chain:
        previous >> step
        previous = step
    return chain
