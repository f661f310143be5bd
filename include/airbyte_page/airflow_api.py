"""Airflow's REST API v2 as the Airbyte page reads it: with the requesting user's own token, so
Airflow's permissions decide what the page may show (a DAG the user cannot read is not there).

Bounded: one listing of the connections' Assets, one request per Asset for its last
``model.HISTORY`` events (``EVENTS_AT_ONCE`` in flight) unless ``EventCache`` holds them, one
listing of the sync DAGs, one of the sync tasks that failed lately, two for the drift check's
last result. Refusals (401, 403) are ``AirflowRefused``; anything else that is not the JSON the
API documents is ``AirflowUnreadable``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from include.airbyte_page.model import FAILED_STATES, HISTORY

#: Largest page Airflow serves by default (``[api] maximum_page_limit``).
PAGE_LIMIT = 100
#: Asset-event listings one page view has in flight.
EVENTS_AT_ONCE = 8
SYNC_DAG_PREFIX = "airbyte_sync__"
SYNC_OPERATORS = ("AirbyteSyncOperator", "AirbyteSyncWatchdogOperator")
DRIFT_DAG = "airbyte_workspace_drift"
DRIFT_TASK = "compare_with_airbyte"
#: The XCom the drift task returns (and pushes before failing on an entry that is gone).
DRIFT_KEY = "return_value"


class AirflowRefused(Exception):
    """Airflow refused the user's token (401) or the user may not read something (403)."""

    def __init__(self, status_code: int, what: str) -> None:
        super().__init__(f"Airflow answered {status_code} to reading {what}")
        self.status_code = status_code


class AirflowUnreadable(Exception):
    """Airflow's API could not be reached or did not answer as documented."""


@dataclass(frozen=True)
class AssetRef:
    """An Asset as its listing shows it: its id and the id of its newest event."""

    id: int
    last_event_id: int | None


class EventCache:
    """The last events of each Asset, read once per newest event: listing an Asset's events
    costs ~9 ms of the API server's time, and the Assets' listing already says which Assets
    have a new one. Shared by the users of one process, each of whom must be able to list the
    Assets first (the permission that reading their events takes)."""

    def __init__(self) -> None:
        self._events: dict[int, tuple[int, list[dict]]] = {}

    def get(self, asset: AssetRef) -> list[dict] | None:
        cached = self._events.get(asset.id)
        return cached[1] if cached and cached[0] == asset.last_event_id else None

    def put(self, asset: AssetRef, events: list[dict]) -> None:
        if asset.last_event_id is not None:
            self._events[asset.id] = (asset.last_event_id, events)


class AirflowReader:
    """Reads what the page needs from Airflow, as the user whose ``token`` it is."""

    def __init__(self, http: httpx.AsyncClient, token: str, cache: EventCache) -> None:
        self._http = http
        self._headers = {"Authorization": f"Bearer {token}"}
        self._cache = cache
        self._slots = asyncio.Semaphore(EVENTS_AT_ONCE)

    async def _get(self, what: str, path: str, params: Any = None) -> dict[str, Any] | None:
        """The JSON object at ``/api/v2{path}``; None on 404."""
        try:
            response = await self._http.get(f"/api/v2{path}", params=params, headers=self._headers)
        except httpx.HTTPError as error:
            raise AirflowUnreadable(
                f"cannot reach Airflow's API to read {what}: {type(error).__name__}"
            ) from None
        if response.status_code in (401, 403):
            raise AirflowRefused(response.status_code, what)
        if response.status_code == 404:
            return None
        try:
            body = response.json() if response.status_code == 200 else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise AirflowUnreadable(f"Airflow answered {response.status_code} to reading {what}")
        return body

    async def _listing(self, what: str, path: str, key: str, params: dict) -> list[dict]:
        """Every item of a paged listing."""
        items: list[dict] = []
        while True:
            page = {**params, "limit": PAGE_LIMIT, "offset": len(items)}
            body = await self._get(what, path, page) or {}
            found = [i for i in body.get(key) or () if isinstance(i, dict)]
            items += found
            if len(found) < PAGE_LIMIT or len(items) >= int(body.get("total_entries") or 0):
                return items

    async def assets(self, names: Iterable[str]) -> dict[str, AssetRef]:
        """The Assets named ``names`` (the connections' ``airbyte_<key>``), by name; Assets no
        DAG declared yet are missing."""
        wanted = set(names)
        assets = await self._listing(
            "assets",
            "/assets",
            "assets",
            {"name_prefix_pattern": "airbyte_", "only_active": False},
        )
        return {
            a["name"]: AssetRef(a["id"], (a.get("last_asset_event") or {}).get("id"))
            for a in assets
            if a.get("name") in wanted
        }

    async def events(self, asset: AssetRef) -> list[dict]:
        """The Asset's last ``HISTORY`` events, newest first."""
        if asset.last_event_id is None:
            return []
        cached = self._cache.get(asset)
        if cached is not None:
            return cached
        async with self._slots:
            body = await self._get(
                "asset events",
                "/assets/events",
                {"asset_id": asset.id, "order_by": "-timestamp", "limit": HISTORY},
            )
        events = [e for e in (body or {}).get("asset_events") or () if isinstance(e, dict)]
        self._cache.put(asset, events)
        return events

    async def sync_dags(self) -> set[str]:
        """The ``airbyte_sync__<key>`` DAGs Airflow has (and the user may read)."""
        dags = await self._listing(
            "DAGs",
            "/dags",
            "dags",
            {"dag_id_prefix_pattern": SYNC_DAG_PREFIX, "exclude_stale": True},
        )
        return {d["dag_id"] for d in dags if str(d.get("dag_id", "")).startswith(SYNC_DAG_PREFIX)}

    async def failed_sync_tasks(self) -> list[dict]:
        """The last ``PAGE_LIMIT`` Airbyte tasks of sync DAGs that failed, newest first."""
        params = {
            "dag_id_prefix_pattern": SYNC_DAG_PREFIX,
            "state": list(FAILED_STATES),
            "operator": list(SYNC_OPERATORS),
            "order_by": "-end_date",
            "limit": PAGE_LIMIT,
        }
        body = await self._get("task instances", "/dags/~/dagRuns/~/taskInstances", params)
        return [t for t in (body or {}).get("task_instances") or () if isinstance(t, dict)]

    async def drift(self) -> tuple[dict | None, dict | None]:
        """The last finished run of the drift check and its findings (None: no such run, or
        it left none)."""
        path = f"/dags/{DRIFT_DAG}/dagRuns"
        params = {"state": ["success", "failed"], "order_by": "-run_after", "limit": 1}
        runs = (await self._get("the drift check's runs", path, params) or {}).get("dag_runs")
        if not runs or not isinstance(runs[0], dict):
            return None, None
        run = runs[0]
        xcom = (
            f"{path}/{quote(run['dag_run_id'], safe='')}/taskInstances/{DRIFT_TASK}"
            f"/xcomEntries/{DRIFT_KEY}"
        )
        entry = await self._get("the drift check's findings", xcom)
        value = (entry or {}).get("value")
        return run, value if isinstance(value, dict) else None
