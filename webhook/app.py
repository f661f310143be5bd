"""The receiver app: its routers (``webhook.routes``) and the objects their requests share.

The Airflow client, the ledger and the two intakes are made at start-up, kept on
``app.state`` (read through ``webhook.dependencies``) and closed at shutdown; the
notification intake exists only with ``AIRBYTE_NOTIFICATION_TOKEN`` set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI

from webhook.airbyte_notifications import NotificationIntake
from webhook.airflow_client import AirflowClient
from webhook.events import EventIntake
from webhook.ledger import Ledger
from webhook.routes import events, health, notifications
from webhook.settings import WebhookSettings


def create_app(
    settings: WebhookSettings | None = None, *, client: AirflowClient | None = None
) -> FastAPI:
    """The receiver app; ``settings`` default to the environment variables."""
    settings = settings or WebhookSettings()
    app = FastAPI(
        title="Airbyte event webhook",
        lifespan=partial(_lifespan, settings=settings, client=client),
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.include_router(health)
    app.include_router(events)
    app.include_router(notifications)
    return app


@asynccontextmanager
async def _lifespan(
    app: FastAPI, *, settings: WebhookSettings, client: AirflowClient | None
) -> AsyncIterator[None]:
    """Make the shared objects at start-up (``client`` if given) and close them at shutdown."""
    airflow = app.state.airflow = client or AirflowClient(settings)
    ledger = app.state.ledger = Ledger(settings.ledger_database, settings.ledger_retention_seconds)
    app.state.event_intake = EventIntake(airflow, ledger, settings.dag_id)
    app.state.notification_intake = None
    if settings.airbyte_notification_token is not None:
        app.state.notification_intake = NotificationIntake(
            airflow, ledger, settings.airbyte_conn_id
        )
    try:
        yield
    finally:
        if app.state.notification_intake is not None:
            await app.state.notification_intake.aclose()
        await airflow.aclose()
        ledger.close()
