"""Webhook receiver: signed events in, ``airbyte_event_driven_sync`` runs out (see README.md)."""

from webhook.app import create_app
from webhook.settings import WebhookSettings

__all__ = ["WebhookSettings", "create_app"]
