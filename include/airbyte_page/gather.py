"""The Airbyte page's data: the connections file's entries, with what Airflow knows of their
syncs (Asset events, failed sync tasks, the drift check's last result) and what Airbyte says
of their connections, read concurrently.

What cannot be read becomes a note on the page, except a refusal to list the Assets, which
refuses the whole page (``AirflowRefused``): without it the page has nothing to say.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterable, Mapping
from datetime import UTC, datetime
from typing import TypeVar

from include.airbyte_page.airbyte_status import AirbyteStatus, ServerView
from include.airbyte_page.airflow_api import (
    DRIFT_DAG,
    AirflowReader,
    AirflowRefused,
    AirflowUnreadable,
    AssetRef,
)
from include.airbyte_page.model import (
    AirbyteSide,
    Page,
    Row,
    Sync,
    drift_findings,
    history,
    last_sync,
    ordered,
    parse_time,
)
from include.assets import connection_asset
from include.connections import ConnectionEntry, ConnectionsFile
from include.workspace import Findings
from plugins.airbyte_links import connection_url

T = TypeVar("T")


async def _or_note(read: Awaitable[T], default: T, notes: list[str]) -> T:
    """What ``read`` returns, or ``default`` and a note saying why not."""
    try:
        return await read
    except (AirflowRefused, AirflowUnreadable) as error:
        notes.append(str(error))
        return default


async def _events(airflow: AirflowReader, assets: Mapping[str, AssetRef]) -> dict[str, list[dict]]:
    """Each Asset's last events, by Asset name."""
    listings = await asyncio.gather(*(airflow.events(a) for a in assets.values()))
    return dict(zip(assets, listings, strict=True))


def _failures(tasks: list[dict]) -> dict[str, Sync]:
    """The newest failed Airbyte task of each sync DAG (``tasks`` come newest first)."""
    found: dict[str, Sync] = {}
    for ti in tasks:
        sync = Sync.from_task(ti)
        if sync is not None and sync.dag_id is not None:
            found.setdefault(sync.dag_id, sync)
    return found


async def gather(file: ConnectionsFile, airflow: AirflowReader, airbyte: AirbyteStatus) -> Page:
    """Everything the page shows of ``file``'s entries; ``AirflowRefused`` when the user may
    not read Assets."""
    entries = list(file.connections.values())
    assets = {e.key: connection_asset(e).name for e in entries}
    notes: list[str] = []
    found = await airflow.assets(assets.values())
    events, dags, failed, (run, drift), views = await asyncio.gather(
        _or_note(_events(airflow, found), {}, notes),
        _or_note(airflow.sync_dags(), set(), notes),
        _or_note(airflow.failed_sync_tasks(), [], notes),
        _or_note(airflow.drift(), (None, None), notes),
        airbyte.views(file),
    )
    failures = _failures(failed)
    drift_found = Findings.from_dict(drift or {})
    findings = drift_findings(drift_found)
    rows = []
    for entry in entries:
        syncs = history(events.get(assets[entry.key], ()))
        rows.append(
            Row(
                key=entry.key,
                label=entry.title,
                named_by=named_by(entry),
                last=last_sync(syncs, failures.get(entry.sync_dag_id)),
                syncs=syncs,
                findings=findings.get(entry.key, ()),
                airbyte=airbyte_side(entry, views[entry.airbyte_conn_id], file.workspace_id),
                dag_id=entry.sync_dag_id if entry.sync_dag_id in dags else None,
            )
        )
    if run is not None and drift is None:
        notes.append(f"{DRIFT_DAG}'s last run ({run.get('dag_run_id')}) left no findings")
    return Page(
        generated_at=datetime.now(UTC),
        rows=tuple(ordered(rows)),
        new_connections=drift_found.new,
        drift_checked_at=parse_time(run.get("end_date")) if run else None,
        drift_run=(DRIFT_DAG, run["dag_run_id"]) if run else None,
        notes=tuple(notes) + tuple(airbyte_notes(views.values())),
    )


def named_by(entry: ConnectionEntry) -> str:
    """How the entry names its connection, for people."""
    if entry.connection_id is not None:
        return f"connection_id {entry.connection_id}"
    if entry.connection_variable is not None:
        return f"Variable {' or '.join(entry.connection_variable)}"
    return f"name {entry.connection_name!r}"


def airbyte_side(entry: ConnectionEntry, view: ServerView, workspace_id: str | None) -> AirbyteSide:
    """What Airbyte's last answer says of the entry's connection, with its Airbyte link."""
    target = view.targets.get(entry.key)
    if target is not None and target.connection is None:
        return AirbyteSide(problem=target.problem)
    if target is None:  # Airbyte has not answered: only a written id is known
        connection_id, status, name, workspace = entry.connection_id, None, None, None
    else:
        connection = target.connection
        connection_id, status, name = connection.connection_id, connection.status, connection.name
        workspace = connection.workspace_id
    workspace = workspace or view.workspace_id or workspace_id
    url = None
    if connection_id and workspace and view.api_root:
        url = connection_url(view.api_root, workspace, connection_id)
    return AirbyteSide(connection_id, status, name, url=url)


def airbyte_notes(views: Iterable[ServerView]) -> list[str]:
    """What the page says of Airbyte servers that did not answer the last time."""
    notes = []
    for view in views:
        if view.error is None:
            continue
        known = (
            f"showing what it said {time.time() - view.answered_at:.0f} s ago"
            if view.answered_at is not None
            else "its connections' status is unknown"
        )
        notes.append(f"Airbyte ({view.conn_id}): {view.error}; {known}")
    return notes
