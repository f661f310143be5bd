"""The receiver's Airflow 3 REST API client: JWT from ``/auth/token``, runs and asset
events via API v2.

Every answer is checked before it is used: a body that is not the JSON object the API
documents (an SSO login page, a proxy's error page) means Airflow cannot be reached
properly, which is ``AirflowUnavailable`` (the receiver's 503 with ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from include.receiver.settings import AirflowSettings

log = logging.getLogger(__name__)
TOKEN_MARGIN_SECONDS = 60
#: Writes (asset events, runs) one process has in flight. One: each takes milliseconds, and
#: Airflow on SQLite deadlocks concurrent writers until its 5-s busy timeout (measured with
#: Airflow 3.3: 107 asset events/s one at a time, 1.7/s two at a time, with 500s).
WRITES_AT_ONCE = 1
#: How long an asset no DAG declares is taken as undeclared before Airflow is asked again (an
#: event skipped meanwhile is the reconciler's to create: the ledger holds no claim for it).
UNDECLARED_SECONDS = 60.0
#: Task instances or asset events asked for per request when listing them.
PAGE_SIZE = 100
#: A request sent on a kept-alive connection the server is closing: Airflow's uvicorn closes
#: the connection after a 500 for an exception (apache/airflow#71360's among them), and a
#: request already on its way there is reset unread. A read is sent once more; a write never
#: goes on a reused connection (reset, it may have been applied, so it is not repeated).
DROPPED = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)


class AirflowUnavailable(Exception):
    """Airflow could not take the run now (unreachable, 5xx, auth or DAG missing): retry."""


class AirflowRejected(Exception):
    """Airflow refused the run's conf (400/422): retrying the same event will not help."""

    def __init__(self, status_code: int, detail: Any) -> None:
        super().__init__(f"Airflow answered {status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


@dataclass(frozen=True)
class TriggerResult:
    dag_run_id: str
    created: bool
    state: str | None
    conf: dict[str, Any] | None


def _json(response: httpx.Response) -> dict[str, Any]:
    """The JSON object in ``response``; AirflowUnavailable when it is anything else."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        raise AirflowUnavailable(
            f"Airflow answered HTTP {response.status_code} with {kind}, not a JSON object "
            "(a login page or proxy in front of the API?)"
        )
    return body


def _detail(response: httpx.Response) -> Any:
    try:
        return response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        return response.text[:1000]


def jwt_expiry(token: str) -> float:
    """The ``exp`` claim of a JWT (seconds since the epoch), or now + 5 minutes if unreadable."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, KeyError, TypeError, ValueError):
        return time.time() + 300


class AirflowClient:
    """The receiver's and the reconciler's calls to Airflow: runs, asset events, task
    instances.

    At most ``AIRFLOW_MAX_REQUESTS`` requests, ``WRITES_AT_ONCE`` of them writes, are in flight
    at once (a burst of notifications waits here rather than exhausting the API server's
    database connections). Reads share kept-alive connections, writes each get a new one
    (``DROPPED``). Asset ids are cached. The token is cached until a minute before its
    ``exp`` and fetched again once when the API answers 401 (for example after the API
    server's JWT secret changed).
    """

    def __init__(
        self, settings: AirflowSettings, transport: httpx.AsyncBaseTransport | None = None
    ):
        self._settings = settings
        self._http = httpx.AsyncClient(
            base_url=settings.airflow_base,
            timeout=settings.airflow_timeout_seconds,
            transport=transport,
        )
        #: Writes: a new connection each (see ``DROPPED``).
        self._writer = httpx.AsyncClient(
            base_url=settings.airflow_base,
            timeout=settings.airflow_timeout_seconds,
            transport=transport,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        self._token: str | None = None
        self._expiry = 0.0
        self._asset_ids: dict[str, int] = {}
        #: URIs no DAG declared, and when that was last asked (asked again after a while).
        self._undeclared: dict[str, float] = {}
        self._asset_lookups: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(settings.airflow_max_requests)
        self._writes = asyncio.Semaphore(WRITES_AT_ONCE)

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._writer.aclose()

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request: a read on a pooled connection (once more if that one was dropped), a
        write on a new one; ``AirflowUnavailable`` when Airflow cannot be reached."""
        try:
            if method != "GET":
                return await self._writer.request(method, path, **kwargs)
            try:
                return await self._http.request(method, path, **kwargs)
            except DROPPED as error:
                log.info("Airflow dropped the connection (%s); asking again", type(error).__name__)
                return await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise AirflowUnavailable(f"cannot reach Airflow: {type(error).__name__}") from None

    async def _fetch_token(self) -> str:
        response = await self._send(
            "POST",
            "/auth/token",
            json={
                "username": self._settings.airflow_username,
                "password": self._settings.airflow_password.get_secret_value(),
            },
        )
        if response.status_code not in (200, 201):
            log.error(
                "Airflow refused the receiver's credentials for user %r: HTTP %s",
                self._settings.airflow_username,
                response.status_code,
            )
            raise AirflowUnavailable(f"Airflow token request failed with {response.status_code}")
        token = _json(response).get("access_token")
        if not isinstance(token, str) or not token:
            raise AirflowUnavailable("Airflow's token answer has no access_token")
        self._token, self._expiry = token, jwt_expiry(token)
        return token

    async def token(self, *, refresh: bool = False) -> str:
        async with self._lock:
            if refresh or self._token is None or time.time() > self._expiry - TOKEN_MARGIN_SECONDS:
                return await self._fetch_token()
            return self._token

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        writes = self._writes if method != "GET" else contextlib.nullcontext()
        async with writes, self._slots:  # a burst queues here, not in Airflow's database
            return await self._authorised(method, path, **kwargs)

    async def _authorised(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in (1, 2):
            token = await self.token(refresh=attempt == 2)
            headers = {"Authorization": f"Bearer {token}"}
            response = await self._send(method, path, headers=headers, **kwargs)
            if response.status_code != 401:
                return response
        return response

    async def trigger(self, dag_run_id: str, conf: dict[str, Any]) -> TriggerResult:
        """Create run ``dag_run_id``; an existing run of that id is returned with created=False."""
        dag_id = self._settings.dag_id
        response = await self._request(
            "POST",
            f"/api/v2/dags/{dag_id}/dagRuns",
            json={"dag_run_id": dag_run_id, "logical_date": None, "conf": conf},
        )
        if response.status_code in (200, 201):
            run = _json(response)
            return TriggerResult(dag_run_id, True, run.get("state"), run.get("conf"))
        if response.status_code == 409:
            existing = await self.get_run(dag_run_id)
            return TriggerResult(
                dag_run_id,
                False,
                existing.get("state") if existing else None,
                existing.get("conf") if existing else None,
            )
        if response.status_code in (400, 422):
            raise AirflowRejected(response.status_code, _json(response).get("detail"))
        log.error(
            "Airflow answered %s to creating run %s of %s: %s",
            response.status_code,
            dag_run_id,
            dag_id,
            str(_detail(response))[:300],
        )
        raise AirflowUnavailable(f"Airflow answered {response.status_code}")

    async def get_run(self, dag_run_id: str) -> dict[str, Any] | None:
        """The run, or None when it does not exist or cannot be read now."""
        try:
            response = await self._request(
                "GET", f"/api/v2/dags/{self._settings.dag_id}/dagRuns/{dag_run_id}"
            )
            return _json(response) if response.status_code == 200 else None
        except AirflowUnavailable:
            return None

    # --- assets ----------------------------------------------------------------------------

    async def asset_id(self, uri: str) -> int | None:
        """The id of the asset with exactly this URI, or None when no DAG declares it (asked
        again after ``UNDECLARED_SECONDS``: a DAG may declare it since). One lookup of a URI at
        a time: a burst of notifications asks Airflow once."""
        async with self._asset_lookups[uri]:
            if uri in self._asset_ids:
                return self._asset_ids[uri]
            if time.monotonic() - self._undeclared.get(uri, -math.inf) < UNDECLARED_SECONDS:
                return None
            found = await self._look_up_asset(uri)
            if found is None:
                self._undeclared[uri] = time.monotonic()
            else:
                self._asset_ids[uri] = found
            return found

    async def _look_up_asset(self, uri: str) -> int | None:
        response = await self._request(
            # Assets only task lineage emits (through an AssetAlias) are not "active".
            "GET",
            "/api/v2/assets",
            params={"uri_pattern": uri, "limit": 100, "only_active": False},
        )
        if response.status_code != 200:
            raise AirflowUnavailable(f"Airflow answered {response.status_code} listing assets")
        assets = _json(response).get("assets") or []
        found = next((a.get("id") for a in assets if a.get("uri") == uri), None)
        return found if isinstance(found, int) else None

    async def asset_events(
        self, asset_id: int, *, since: datetime | None = None, offset: int = 0
    ) -> list[dict[str, Any]]:
        """A page (``PAGE_SIZE``) of the asset's events created at ``since`` or later, oldest
        first, from ``offset``."""
        params: dict[str, Any] = {
            "asset_id": asset_id,
            "order_by": "timestamp",
            "limit": PAGE_SIZE,
            "offset": offset,
        }
        if since is not None:
            params["timestamp_gte"] = since.isoformat()
        response = await self._request("GET", "/api/v2/assets/events", params=params)
        if response.status_code != 200:
            raise AirflowUnavailable(f"Airflow answered {response.status_code} listing events")
        events = _json(response).get("asset_events")
        return [e for e in events if isinstance(e, dict)] if isinstance(events, list) else []

    async def create_asset_event(self, asset_id: int, extra: dict[str, Any]) -> dict[str, Any]:
        """``POST /api/v2/assets/events``: DAGs scheduled on the asset see a new event."""
        response = await self._request(
            "POST", "/api/v2/assets/events", json={"asset_id": asset_id, "extra": extra}
        )
        if response.status_code == 404:
            self._asset_ids = {u: i for u, i in self._asset_ids.items() if i != asset_id}
        if response.status_code not in (200, 201):
            raise AirflowUnavailable(
                f"Airflow answered {response.status_code} to an asset event: "
                f"{str(_detail(response))[:300]}"
            )
        return _json(response)

    # --- task instances --------------------------------------------------------------------

    async def failed_tasks(self, operator: str, ended_since: str) -> list[dict[str, Any]]:
        """Failed task instances of ``operator`` that ended since ``ended_since`` (ISO 8601),
        across DAGs and runs, every page."""
        found: list[dict[str, Any]] = []
        while True:
            response = await self._request(
                "GET",
                "/api/v2/dags/~/dagRuns/~/taskInstances",
                params={
                    "state": "failed",
                    "operator": operator,
                    "end_date_gte": ended_since,
                    "limit": PAGE_SIZE,
                    "offset": len(found),
                },
            )
            if response.status_code != 200:
                raise AirflowUnavailable(f"Airflow answered {response.status_code} listing tasks")
            page = _json(response).get("task_instances")
            page = [t for t in page if isinstance(t, dict)] if isinstance(page, list) else []
            found += page
            if len(page) < PAGE_SIZE:
                return found

    async def stored_value(self, ti: dict[str, Any], key: str) -> Any:
        """The task instance's ``task_state_store`` value under ``key``, or None."""
        dag, run, task = (quote(ti[k], safe="") for k in ("dag_id", "dag_run_id", "task_id"))
        path = f"/api/v2/dags/{dag}/dagRuns/{run}/taskInstances/{task}/state-store/{quote(key)}"
        response = await self._request("GET", path, params={"map_index": ti.get("map_index", -1)})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise AirflowUnavailable(f"Airflow answered {response.status_code} reading a state")
        return _json(response).get("value")
