"""The objects a receiver's requests share: the Airflow client, the ledger and the two
intakes (the notification intake, and the loop working off its inbox, only with
``AIRBYTE_NOTIFICATION_TOKEN`` set).

Made once per app at start-up (the app's lifespan; Airflow 3.3's API server runs the
lifespans of the apps plugins mount), else on the first request; closed at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib

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
        app.state.notification_intake = app.state.worker = None
        if settings.airbyte_notification_token is not None:
            intake = app.state.notification_intake = await asyncio.to_thread(
                NotificationIntake,
                airflow,
                ledger,
                settings.airbyte_conn_id,
                settings.notification_workers,
            )
            app.state.worker = asyncio.create_task(intake.worker.run(), name="notifications")
        app.state.event_intake = EventIntake(airflow, ledger, settings.dag_id)


async def stop(app: FastAPI) -> None:
    """Close what ``start`` made."""
    if app.state.event_intake is None:
        return
    if app.state.worker is not None:
        app.state.worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await app.state.worker
    if app.state.notification_intake is not None:
        await app.state.notification_intake.aclose()
    await app.state.airflow.aclose()
    app.state.ledger.close()
    app.state.event_intake = None
