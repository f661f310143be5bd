"""The objects a receiver's requests share: the Airflow client, the ledger and the two
intakes (the notification intake only with ``AIRBYTE_NOTIFICATION_TOKEN`` set).

Made once per app: at start-up when the receiver is a process of its own (the app's
lifespan), on the first request when Airflow's API server mounts it (a mounted app gets no
lifespan of its own); closed at shutdown.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from include.receiver.airbyte_notifications import NotificationIntake
from include.receiver.airflow_client import AirflowClient
from include.receiver.events import EventIntake
from include.receiver.ledger import Ledger
from include.receiver.settings import WebhookSettings


def prepare(app: FastAPI, settings: WebhookSettings, client: AirflowClient | None) -> None:
    """What ``start`` needs, on ``app.state``; nothing is opened yet."""
    app.state.settings = settings
    app.state.client = client
    app.state.start_lock = asyncio.Lock()
    app.state.event_intake = None


async def start(app: FastAPI) -> None:
    """Make the shared objects unless they exist."""
    if app.state.event_intake is not None:
        return
    async with app.state.start_lock:
        if app.state.event_intake is not None:
            return
        settings: WebhookSettings = app.state.settings
        airflow = app.state.airflow = app.state.client or AirflowClient(settings)
        ledger = app.state.ledger = await asyncio.to_thread(
            Ledger, settings.ledger_database, settings.ledger_retention_seconds
        )
        app.state.notification_intake = None
        if settings.airbyte_notification_token is not None:
            app.state.notification_intake = NotificationIntake(
                airflow, ledger, settings.airbyte_conn_id
            )
        app.state.event_intake = EventIntake(airflow, ledger, settings.dag_id)


async def stop(app: FastAPI) -> None:
    """Close what ``start`` made."""
    if app.state.event_intake is None:
        return
    if app.state.notification_intake is not None:
        await app.state.notification_intake.aclose()
    await app.state.airflow.aclose()
    app.state.ledger.close()
    app.state.event_intake = None
