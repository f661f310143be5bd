"""The Airbyte page's FastAPI app, mounted by the API server (``plugins/airbyte_plugin.py``):

- ``GET /``: the page (HTML);
- ``GET /data``: the same data as JSON;
- ``GET /icon.svg``: the navigation icon (no data, no token needed).

Every data request needs an Airflow token (``include.airbyte_page.auth``). The page reads
Airflow's REST API at ``AIRFLOW_API_URL`` (the API server itself, as for the receiver) with that
token, and Airbyte through a cache shared by the process (``airbyte_status``); the Asset events
already read are kept too (``airflow_api.EventCache``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, HTTPException, Response
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from include.airbyte_page.airbyte_status import AirbyteStatus
from include.airbyte_page.airflow_api import (
    AirflowReader,
    AirflowRefused,
    AirflowUnreadable,
    EventCache,
)
from include.airbyte_page.auth import UserToken
from include.airbyte_page.gather import gather
from include.airbyte_page.model import Page
from include.airbyte_page.render import as_json, render
from include.connections import ConnectionsFileError, load_connections

API_URL_VARIABLE = "AIRFLOW_API_URL"
DEFAULT_API_URL = "http://127.0.0.1:8080"
AIRFLOW_TIMEOUT_SECONDS = 10.0
#: The page loads nothing but itself: inline CSS, inline SVG, one inline script; framed by
#: Airflow's UI only (same origin).
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
        "img-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}
ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" '
    'stroke="#615eff" stroke-width="2.2" stroke-linecap="round" stroke-linejoin="round">'
    '<path d="M4 20 11 4h2l7 16"/><path d="M7.5 13h9"/></svg>'
)


def create_app() -> FastAPI:
    """The app, reading Airflow's API at ``$AIRFLOW_API_URL``."""
    base = (os.environ.get(API_URL_VARIABLE) or DEFAULT_API_URL).rstrip("/")
    http = httpx.AsyncClient(base_url=base, timeout=AIRFLOW_TIMEOUT_SECONDS)
    airbyte, events = AirbyteStatus(), EventCache()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await http.aclose()

    app = FastAPI(
        title="Airbyte page", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )

    async def page_for(token: str) -> Page:
        try:
            return await gather(load_connections(), AirflowReader(http, token, events), airbyte)
        except AirflowRefused as refused:
            raise HTTPException(refused.status_code, str(refused)) from None
        except AirflowUnreadable as error:
            raise HTTPException(503, str(error)) from None
        except ConnectionsFileError as error:
            raise HTTPException(500, str(error)) from None

    # Rendering 100 rows takes ~50 ms of CPU: off the API server's event loop.
    @app.get("/", response_class=HTMLResponse)
    async def page(token: UserToken) -> HTMLResponse:
        html = await run_in_threadpool(render, await page_for(token))
        return HTMLResponse(html, headers=HEADERS)

    @app.get("/data")
    async def data(token: UserToken, response: Response) -> dict:
        response.headers.update(HEADERS)
        return await run_in_threadpool(as_json, await page_for(token))

    @app.get("/icon.svg")
    async def icon() -> Response:
        return Response(ICON, media_type="image/svg+xml")

    return app
