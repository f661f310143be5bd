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
#: The shortest lifetime a token is kept for: an ``expires_in`` of 0, negative or a few
#: milliseconds would otherwise cost a token request per API call. A token that really
#: expires sooner is refreshed by the 401 replay.
MIN_TOKEN_LIFETIME = 30.0
#: Both flavours exchange client credentials for a token at ``<api root>/applications/token``.
TOKEN_PATH = "/applications/token"  # noqa: S105 - a URL path
#: Token-endpoint answers that mean "these credentials are refused".
_REFUSED = (400, 401, 403, 422)


@dataclass
class TokenExchange:
    """The token of one set of client credentials, shared by every client of the process.

    Only the cache is shared: each token request is sent with the settings (TLS, limits,
    the name of the Connection in messages) of the client that needs the token.
    """

    url: str
    as_form: bool
    token: str | None = field(default=None, repr=False)
    refresh_at: float = 0.0
    floor_logged: bool = False
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
                exchange = cls._shared[key] = cls(settings.api_root + TOKEN_PATH, as_form)
            return exchange

    @property
    def needs_token(self) -> bool:
        return self.token is None or time.monotonic() >= self.refresh_at

    def request(self, settings: AirbyteSettings) -> httpx.Request:
        payload = {
            "client_id": settings.login or "",
            "client_secret": settings.secret or "",
            "grant_type": "client_credentials",
        }
        kwargs: dict[str, Any] = {"data": payload} if self.as_form else {"json": payload}
        return httpx.Request("POST", self.url, **kwargs)

    def token_now(self, settings: AirbyteSettings) -> str:
        """The cached token, fetched first when missing or about to expire (blocking)."""
        with self.lock:
            if self.needs_token:
                with build_client(settings, None, asynchronous=False) as client:
                    answer = send(client, self.request(settings), settings, follow=False)
                    self.accept(answer, settings)
            assert self.token is not None
            return self.token

    async def atoken_now(self, settings: AirbyteSettings) -> str:
        """``token_now`` on the event loop; concurrent coroutines fetch the token once."""
        loop = asyncio.get_running_loop()
        lock = self._async_locks.setdefault(loop, asyncio.Lock())
        async with lock:
            if self.needs_token:
                async with build_client(settings, None, asynchronous=True) as client:
                    answer = await asend(client, self.request(settings), settings, follow=False)
                    self.accept(answer, settings)
            assert self.token is not None
            return self.token

    def accept(self, answer: Answer, settings: AirbyteSettings) -> str:
        """Check the token endpoint's answer; remember and return the token."""
        status, endpoint = answer.status_code, f"POST {self.url}"
        if status == 429 or status >= 500:
            raise AirbyteTransientApiError(
                f"Airbyte answered HTTP {status} to the token request at {self.url}.",
                status_code=status,
                endpoint=endpoint,
            )
        if status in _REFUSED:
            raise AirbyteAuthError(
                f"Airbyte refused the client id/secret from {settings.source} at {self.url} "
                f"(HTTP {status}). Check the application's client id and secret in External "
                "Secrets / the Airflow Connection.",
                status_code=status,
                endpoint=endpoint,
            )
        if status >= 300:
            raise AirbyteAuthError(
                f"Airbyte has no token endpoint at {self.url} (HTTP {status}). Check the host "
                f"and path in {settings.source} (the API root, e.g. "
                "http://airbyte-server:8001/api/public/v1) and its API flavour.",
                status_code=status,
                endpoint=endpoint,
            )
        try:
            body = json.loads(answer.body)
            token = str(body["access_token"])
            expires_in = body.get("expires_in")
            lifetime = DEFAULT_TOKEN_LIFETIME if expires_in is None else float(expires_in)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise AirbyteResponseError(
                f"Airbyte's token endpoint {self.url} answered without an access_token.",
                endpoint=endpoint,
            ) from None
        mask_secret(token)
        self.token = token
        self.refresh_at = time.monotonic() + self._kept_for(lifetime)
        return token

    def _kept_for(self, lifetime: float) -> float:
        """Seconds to use a token of ``lifetime`` s: refreshed a little early, kept at least
        ``MIN_TOKEN_LIFETIME`` (an odd ``expires_in`` is logged once per exchange)."""
        if not lifetime >= MIN_TOKEN_LIFETIME:  # also NaN
            if not self.floor_logged:
                log.warning(
                    "Airbyte's token endpoint %s gave expires_in=%s; keeping tokens for %.0f s "
                    "(a 401 still refreshes them sooner)",
                    self.url,
                    lifetime,
                    MIN_TOKEN_LIFETIME,
                )
                self.floor_logged = True
            lifetime = MIN_TOKEN_LIFETIME
        return lifetime - min(60.0, lifetime * 0.2)

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

    def _token(self) -> str | None:
        return self.exchange.token_now(self.settings) if self.exchange else None

    async def _atoken(self) -> str | None:
        return await self.exchange.atoken_now(self.settings) if self.exchange else None

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        token = self._token()
        response = yield self._sign(request, token)
        if self._refresh_after(response, token):
            yield self._sign(request, self._token())

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._atoken()
        response = yield self._sign(request, token)
        if self._refresh_after(response, token):
            yield self._sign(request, await self._atoken())
