"""Authentication for the Airbyte API: one ``httpx.Auth`` flow for blocking and async clients.

``AirbyteAuth`` signs every request the same way in both modes: HTTP basic (credentials
encoded as UTF-8), a static bearer token, a client-credentials token, or nothing. A
client-credentials token is cached, refreshed shortly before it expires (``expires_in``), and
on a 401 it is refreshed once and the request replayed. Every client of one process with the
same credentials shares one ``TokenExchange``: a triggerer waiting on hundreds of jobs fetches
(and registers with the secrets masker) one token, not hundreds. The token request goes to the
configured server only: it never follows a redirect.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
from airflow.sdk.log import mask_secret

from plugins.airbyte_client.config import AirbyteSettings, AuthType
from plugins.airbyte_client.errors import (
    AirbyteAuthError,
    AirbyteResponseError,
    AirbyteTransientApiError,
)
from plugins.airbyte_client.transport import Answer, asend, build_client, send

log = logging.getLogger(__name__)

# Airbyte 1.0-1.5 issues 180 s tokens and leaves out ``expires_in`` on the Configuration API.
DEFAULT_TOKEN_LIFETIME = 180.0
#: Both flavours exchange client credentials for a token at ``<api root>/applications/token``.
TOKEN_PATH = "/applications/token"  # noqa: S105 - a URL path


@dataclass
class TokenExchange:
    """Exchanges an application's client id and secret for a short-lived bearer token."""

    settings: AirbyteSettings = field(repr=False)
    as_form: bool
    token: str | None = field(default=None, repr=False)
    refresh_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _async_locks: weakref.WeakKeyDictionary = field(
        default_factory=weakref.WeakKeyDictionary, repr=False
    )

    _shared: ClassVar[dict[tuple[str, str, str], TokenExchange]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def shared(cls, settings: AirbyteSettings, *, as_form: bool) -> TokenExchange:
        """The process-wide exchange for these credentials (created on first use)."""
        secret = hashlib.sha256((settings.secret or "").encode()).hexdigest()
        key = (settings.api_root, settings.login or "", secret)
        with cls._shared_lock:
            exchange = cls._shared.get(key)
            if exchange is None:
                exchange = cls._shared[key] = cls(settings, as_form)
            return exchange

    @property
    def url(self) -> str:
        return self.settings.api_root + TOKEN_PATH

    @property
    def needs_token(self) -> bool:
        return self.token is None or time.monotonic() >= self.refresh_at

    def request(self) -> httpx.Request:
        payload = {
            "client_id": self.settings.login or "",
            "client_secret": self.settings.secret or "",
            "grant_type": "client_credentials",
        }
        kwargs: dict[str, Any] = {"data": payload} if self.as_form else {"json": payload}
        return httpx.Request("POST", self.url, **kwargs)

    def token_now(self) -> str:
        """The cached token, fetched first when missing or about to expire (blocking)."""
        with self.lock:
            if self.needs_token:
                with build_client(self.settings, None, asynchronous=False) as client:
                    self.accept(send(client, self.request(), self.settings, follow=False))
            assert self.token is not None
            return self.token

    async def atoken_now(self) -> str:
        """``token_now`` on the event loop; concurrent coroutines fetch the token once."""
        loop = asyncio.get_running_loop()
        lock = self._async_locks.setdefault(loop, asyncio.Lock())
        async with lock:
            if self.needs_token:
                async with build_client(self.settings, None, asynchronous=True) as client:
                    self.accept(await asend(client, self.request(), self.settings, follow=False))
            assert self.token is not None
            return self.token

    def accept(self, answer: Answer) -> str:
        """Check the token endpoint's answer; remember and return the token."""
        status, endpoint = answer.status_code, f"POST {self.url}"
        if status in (400, 401, 403, 422):
            raise AirbyteAuthError(
                f"Airbyte refused the client id/secret from {self.settings.source} at {self.url} "
                f"(HTTP {status}). Check the application's client id and secret in External "
                "Secrets / the Airflow Connection.",
                status_code=status,
                endpoint=endpoint,
            )
        if status >= 400:
            raise AirbyteTransientApiError(
                f"Airbyte answered HTTP {status} to the token request at {self.url}.",
                status_code=status,
                endpoint=endpoint,
            )
        try:
            body = json.loads(answer.body)
            token = str(body["access_token"])
            lifetime = float(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise AirbyteResponseError(
                f"Airbyte's token endpoint {self.url} answered without an access_token.",
                endpoint=endpoint,
            ) from None
        mask_secret(token)
        self.token = token
        self.refresh_at = time.monotonic() + lifetime - min(60.0, lifetime * 0.2)
        return token

    def invalidate(self, token: str | None = None) -> None:
        """Forget the token (only if it is still ``token``, when given: one refresh per 401)."""
        if token is None or token == self.token:
            self.token = None


class AirbyteAuth(httpx.Auth):
    """Signs requests for ``settings.auth_type``; the same flow serves both client kinds."""

    def __init__(self, settings: AirbyteSettings, *, token_as_form: bool) -> None:
        self.settings = settings
        self.exchange: TokenExchange | None = None
        if settings.auth_type is AuthType.CLIENT_CREDENTIALS:
            self.exchange = TokenExchange.shared(settings, as_form=token_as_form)

    def _header(self, token: str | None) -> str | None:
        s = self.settings
        if s.auth_type is AuthType.BASIC:
            pair = f"{s.login or ''}:{s.secret or ''}".encode()  # UTF-8, in both modes
            return "Basic " + base64.b64encode(pair).decode("ascii")
        if s.auth_type is AuthType.BEARER:
            return f"Bearer {s.secret}"
        return f"Bearer {token}" if token else None

    def _sign(self, request: httpx.Request, token: str | None) -> httpx.Request:
        header = self._header(token)
        if header:
            request.headers["Authorization"] = header
        return request

    def _refresh_after(self, response: httpx.Response, token: str | None) -> bool:
        """True when a 401 means the cached token expired: forget it and replay once."""
        if self.exchange is None or response.status_code != 401:
            return False
        log.info("Airbyte answered 401 to %s; refreshing the token", response.request.url.path)
        with self.exchange.lock:
            self.exchange.invalidate(token)
        return True

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        token = self.exchange.token_now() if self.exchange else None
        response = yield self._sign(request, token)
        if self._refresh_after(response, token):
            yield self._sign(request, self.exchange.token_now() if self.exchange else None)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.exchange.atoken_now() if self.exchange else None
        response = yield self._sign(request, token)
        if self._refresh_after(response, token):
            yield self._sign(request, await self.exchange.atoken_now() if self.exchange else None)
