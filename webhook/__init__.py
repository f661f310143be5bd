"""Webhook receiver: signed events become DAG runs, Airbyte's notifications asset events
(see README.md)."""

from webhook.app import create_app
from webhook.settings import WebhookSettings

__all__ = ["WebhookSettings", "create_app"]
