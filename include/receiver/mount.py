"""The receiver inside Airflow's API server: what the plugin gives as ``fastapi_apps``.

Mounted under ``URL_PREFIX`` (``/airbyte-receiver/airbyte/notifications/<token>``,
``/airbyte-receiver/events``) when the API server's environment configures the receiver
(``WEBHOOK_SECRET``, and ``AIRBYTE_NOTIFICATION_TOKEN`` for Airbyte's notifications; see
``include.receiver.settings``); with no or a bad configuration nothing is mounted and the API
server says why in its log. Airflow's auth does not cover plugin apps: the token, the
signatures and the network allow-list stay the receiver's own.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from include.receiver.app import create_app
from include.receiver.settings import WebhookSettings

log = logging.getLogger("webhook")
URL_PREFIX = "/airbyte-receiver"


def receiver_apps() -> list[dict[str, Any]]:
    """The receiver app to mount, or none when the environment does not configure it."""
    try:
        settings = WebhookSettings()
    except ValidationError as error:
        fields = sorted(".".join(map(str, e["loc"])).upper() for e in error.errors())
        log.info("Airbyte receiver not mounted: %s not set or invalid", ", ".join(fields))
        return []
    return [{"app": create_app(settings), "url_prefix": URL_PREFIX, "name": "Airbyte receiver"}]
