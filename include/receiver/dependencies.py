"""FastAPI dependencies of the routes: the shared objects kept on ``app.state``, and the
checks a request passes before its body is handled.

Each check refuses with an ``HTTPException`` (``{"detail": ...}``): 413 for a body over
``MAX_BODY_BYTES`` (a notification: ``MAX_NOTIFICATION_BYTES``; ``include.receiver.body``),
401 for a missing or wrong signature or a timestamp outside the window
(``include.receiver.signature``), 404 for a wrong notification token and 403 for a source
outside ``AIRBYTE_ALLOWED_NETWORKS``.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from include.receiver import state
from include.receiver.airbyte_notifications import NotificationIntake
from include.receiver.body import BodyTooLarge, read_limited
from include.receiver.events import EventIntake
from include.receiver.settings import WebhookSettings
from include.receiver.signature import HEADER, TIMESTAMP_HEADER, Verdict, verify

log = logging.getLogger("webhook")


async def get_settings(request: Request) -> WebhookSettings:
    return request.app.state.settings


async def get_event_intake(request: Request) -> EventIntake:
    await state.start(request.app)  # mounted in Airflow's API server: on the first request
    return request.app.state.event_intake


async def get_notification_intake(request: Request) -> NotificationIntake:
    """None without a token, but then ``known_token`` has refused the request already."""
    await state.start(request.app)
    return request.app.state.notification_intake


Settings = Annotated[WebhookSettings, Depends(get_settings)]
Events = Annotated[EventIntake, Depends(get_event_intake)]
Notifications = Annotated[NotificationIntake, Depends(get_notification_intake)]


async def _read_at_most(request: Request, limit: int) -> bytes:
    try:
        return await read_limited(request, limit)
    except BodyTooLarge:
        raise HTTPException(
            status_code=413,
            detail=f"Request body larger than {limit} bytes.",
            headers={"Connection": "close"},
        ) from None


async def limited_body(request: Request, settings: Settings) -> bytes:
    """A signed event's raw body, read no further than ``MAX_BODY_BYTES``."""
    return await _read_at_most(request, settings.max_body_bytes)


async def notification_body(request: Request, settings: Settings) -> bytes:
    """A notification's raw body, read no further than ``MAX_NOTIFICATION_BYTES``: Airbyte
    puts a failed job's stack trace in it."""
    return await _read_at_most(request, settings.max_notification_bytes)


LimitedBody = Annotated[bytes, Depends(limited_body)]
NotificationBody = Annotated[bytes, Depends(notification_body)]


async def signed_body(request: Request, body: LimitedBody, settings: Settings) -> bytes:
    """The raw body, once its signature and timestamp are verified."""
    verdict = verify(
        body,
        settings.webhook_secret.get_secret_value(),
        request.headers.get(HEADER),
        request.headers.get(TIMESTAMP_HEADER),
        now=time.time(),
        tolerance=settings.signature_tolerance_seconds,
    )
    if verdict is Verdict.OK:
        return body
    log.warning("Rejected an event: %s", verdict)
    detail = f"Missing or invalid {HEADER} signature."
    if verdict is Verdict.STALE:
        detail = (
            f"{TIMESTAMP_HEADER} is more than {settings.signature_tolerance_seconds} s "
            "from the receiver's clock; sign the request again with the current time."
        )
    raise HTTPException(status_code=401, detail=detail)


SignedBody = Annotated[bytes, Depends(signed_body)]


async def known_token(token: str, settings: Settings) -> None:
    """The path's token is ``AIRBYTE_NOTIFICATION_TOKEN`` (constant time), else 404."""
    expected = settings.airbyte_notification_token
    if expected is None or not hmac.compare_digest(
        token.encode(), expected.get_secret_value().encode()
    ):
        log.warning("Refused an Airbyte notification with a wrong token")
        raise HTTPException(status_code=404, detail="Not Found")


async def allowed_source(request: Request, settings: Settings) -> None:
    """The TCP peer is in ``AIRBYTE_ALLOWED_NETWORKS`` (when set), else 403."""
    if settings.allowed_networks and not _allowed(request, settings):
        log.warning("Refused an Airbyte notification from %s", _client_host(request))
        raise HTTPException(status_code=403, detail="Source address not allowed.")


def _client_host(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _allowed(request: Request, settings: WebhookSettings) -> bool:
    try:
        address = ipaddress.ip_address(_client_host(request))
    except ValueError:
        return False
    return any(address in network for network in settings.allowed_networks)
