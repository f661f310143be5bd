"""Authentication for the Airbyte API: client-credentials tokens and static bearer tokens.

HTTP basic auth needs nothing here. Client-credentials tokens are cached, refreshed shortly
before they expire and registered with Airflow's secrets masker; ``ClientCredentialsAuth``
serves the blocking ``requests`` client, ``AsyncClientCredentialsAuth`` the ``httpx`` client
the deferrable trigger uses. Both share the exchange itself (``TokenExchange``), and every
client of one process with the same credentials shares one token: a triggerer waiting on
hundreds of jobs fetches (and registers with the secrets masker) one token, not hundreds.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ssl
import threading
import time
import weakref
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import certifi
import httpx
import requests
from requests.auth import AuthBase

from plugins.airbyte_errors import (
    AirbyteAuthError,
    AirbyteResponseError,
    AirbyteTransientApiError,
    AirbyteUnreachableError,
)

# Airbyte 1.0-1.5 issues 180 s tokens and leaves out ``expires_in`` on the Configuration API.
DEFAULT_TOKEN_LIFETIME = 180.0


class BearerAuth(AuthBase):
    """A static bearer token."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request


@dataclass
class TokenExchange:
    """Exchanges an application's client id and secret for a short-lived bearer token."""

    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    as_form: bool
    source: str
    token: str | None = field(default=None, repr=False)
    refresh_at: float = 0.0
    tokens_fetched: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _async_locks: weakref.WeakKeyDictionary = field(
        default_factory=weakref.WeakKeyDictionary, repr=False
    )

    _shared: ClassVar[dict[tuple[str, str, str], TokenExchange]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def shared(
        cls, token_url: str, client_id: str, client_secret: str, *, as_form: bool, source: str
    ) -> TokenExchange:
        """The process-wide exchange for these credentials (created on first use)."""
        key = (token_url, client_id, hashlib.sha256(client_secret.encode()).hexdigest())
        with cls._shared_lock:
            exchange = cls._shared.get(key)
            if exchange is None:
                exchange = cls(token_url, client_id, client_secret, as_form, source)
                cls._shared[key] = exchange
            return exchange

    def async_lock(self) -> asyncio.Lock:
        """One lock per event loop, so concurrent coroutines fetch the token once."""
        loop = asyncio.get_running_loop()
        lock = self._async_locks.get(loop)
        if lock is None:
            lock = self._async_locks[loop] = asyncio.Lock()
        return lock

    @property
    def needs_token(self) -> bool:
        return self.token is None or time.monotonic() >= self.refresh_at

    def request_kwargs(self) -> dict[str, Any]:
        payload = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "grant_type": "client_credentials",
        }
        return {"data": payload} if self.as_form else {"json": payload}

    def accept(self, status_code: int, body: Any) -> str:
        """Check the token endpoint's answer; remember and return the token."""
        endpoint = f"POST {self.token_url}"
        if status_code in (400, 401, 403, 422):
            raise AirbyteAuthError(
                f"Airbyte refused the client id/secret from {self.source} at {self.token_url} "
                f"(HTTP {status_code}). Check the application's client id and secret in "
                "External Secrets / the Airflow Connection.",
                status_code=status_code,
                endpoint=endpoint,
            )
        if status_code >= 400:
            raise AirbyteTransientApiError(
                f"Airbyte answered HTTP {status_code} to the token request at {self.token_url}.",
                status_code=status_code,
                endpoint=endpoint,
            )
        try:
            token = str(body["access_token"])
            lifetime = float(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise AirbyteResponseError(
                f"Airbyte's token endpoint {self.token_url} answered without an access_token.",
                endpoint=endpoint,
            ) from None
        from airflow.sdk.log import mask_secret

        mask_secret(token)
        self.token = token
        self.refresh_at = time.monotonic() + lifetime - min(60.0, lifetime * 0.2)
        self.tokens_fetched += 1
        return token

    def invalidate(self, token: str | None = None) -> None:
        """Forget the token (only if it is still ``token``, when given: one refresh per 401)."""
        if token is None or token == self.token:
            self.token = None


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context for every async client: building one costs ~20 ms of CPU each."""
    return ssl.create_default_context(cafile=certifi.where())


def _json_or_none(response: requests.Response | httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class ClientCredentialsAuth(AuthBase):
    """``requests`` auth that adds a cached client-credentials token to each request."""

    def __init__(self, exchange: TokenExchange, timeout: tuple[float, float]) -> None:
        self.exchange = exchange
        self._timeout = timeout

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        return request

    def token(self) -> str:
        with self.exchange.lock:
            if self.exchange.needs_token:
                self._fetch()
            assert self.exchange.token is not None
            return self.exchange.token

    def invalidate(self, token: str | None = None) -> None:
        with self.exchange.lock:
            self.exchange.invalidate(token)

    def _fetch(self) -> None:
        url = self.exchange.token_url
        try:
            response = requests.post(url, timeout=self._timeout, **self.exchange.request_kwargs())
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise AirbyteUnreachableError(url, type(exc).__name__) from None
        self.exchange.accept(response.status_code, _json_or_none(response))


class AsyncClientCredentialsAuth(httpx.Auth):
    """``httpx`` auth flow: cached token, one refresh and replay on a 401."""

    def __init__(self, exchange: TokenExchange) -> None:
        self.exchange = exchange

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._token(request)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            self.exchange.invalidate(token)
            request.headers["Authorization"] = f"Bearer {await self._token(request)}"
            yield request

    async def _token(self, request: httpx.Request) -> str:
        async with self.exchange.async_lock():
            if self.exchange.needs_token:
                url = self.exchange.token_url
                timeout = request.extensions.get("timeout")
                try:
                    async with httpx.AsyncClient(
                        timeout=httpx.Timeout(**timeout) if timeout else 30,
                        verify=shared_ssl_context(),
                    ) as c:
                        response = await c.post(url, **self.exchange.request_kwargs())
                except httpx.TransportError as exc:
                    raise AirbyteUnreachableError(url, type(exc).__name__) from None
                self.exchange.accept(response.status_code, _json_or_none(response))
            assert self.exchange.token is not None
            return self.exchange.token
