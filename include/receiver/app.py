"""The receiver app: its routers (``include.receiver.routes``) and the objects their requests
share (``include.receiver.state``), read by the routes through
``include.receiver.dependencies``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from include.receiver import state
from include.receiver.airflow_client import AirflowClient
from include.receiver.routes import events, health, notifications
from include.receiver.settings import WebhookSettings


def create_app(
    settings: WebhookSettings | None = None, *, client: AirflowClient | None = None
) -> FastAPI:
    """The receiver app; ``settings`` default to the environment variables."""
    settings = settings or WebhookSettings()
    app = FastAPI(title="Airbyte event webhook", lifespan=_lifespan, docs_url=None, redoc_url=None)
    state.prepare(app, settings, client)
    app.include_router(health)
    app.include_router(events)
    app.include_router(notifications)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """As a process of its own: the shared objects made at start-up, closed at shutdown."""
    await state.start(app)
    try:
        yield
    finally:
        await state.stop(app)
