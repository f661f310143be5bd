"""Webhook receiver: signed events become DAG runs, Airbyte's notifications asset events
(see README.md)."""

from include.receiver.app import create_app
from include.receiver.settings import WebhookSettings

__all__ = ["WebhookSettings", "create_app"]
