"""Assemble the stand-in ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp

from dev.airbyte_standin import admin_api, config_api, notifications, public_api
from dev.airbyte_standin.config import StandinConfig
from dev.airbyte_standin.contract import ContractMiddleware, load_specs
from dev.airbyte_standin.errors import ApiError, render_error
from dev.airbyte_standin.faults import FaultMiddleware
from dev.airbyte_standin.jobs import Ticker
from dev.airbyte_standin.state import Standin


def create_api(standin: Standin) -> FastAPI:
    """The FastAPI application serving both APIs and the admin API."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        ticker = Ticker(standin.jobs, standin.config.tick_seconds)
        ticker.start()
        api.state.notifier.start()
        try:
            yield
        finally:
            api.state.notifier.stop()
            ticker.stop()
            standin.warehouse.dispose()
            if standin.jobs.journal is not None:
                standin.jobs.journal.dispose()

    api = FastAPI(
        title="Airbyte stand-in", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    api.state.standin = standin
    api.state.notifier = notifications.NotificationSender(
        standin.jobs, standin.config.notification_url, standin.config.tick_seconds
    )
    for module in (config_api, public_api):
        api.include_router(module.open_router)
        api.include_router(module.router)
    api.include_router(admin_api.router)
    api.include_router(notifications.router)

    @api.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError) -> JSONResponse:
        return render_error(request.url.path, exc)

    @api.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return render_error(request.url.path, ApiError(exc.status_code, str(exc.detail)))

    return api


def create_app(config: StandinConfig) -> tuple[ASGIApp, Standin]:
    """The full application (faults outside, contract checks inside) and its state."""
    standin = Standin.from_config(config)
    app: ASGIApp = create_api(standin)
    if config.validate_contract:
        load_specs()
        app = ContractMiddleware(app, standin.violations)
    app = FaultMiddleware(app, standin.faults)
    return app, standin
