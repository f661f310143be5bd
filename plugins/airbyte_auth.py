"""Authentication for the Airbyte API: client-credentials tokens and static bearer tokens.

HTTP basic auth needs nothing here (``requests.auth.HTTPBasicAuth``). Tokens are cached,
refreshed shortly before they expire, and registered with Airflow's secrets masker.
"""

from __future__ import annotations

import threading
import time
from typing import Any

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


class ClientCredentialsAuth(AuthBase):
    """Exchanges an application's client id and secret for a short-lived bearer token."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        as_form: bool,
        source: str,
        timeout: tuple[float, float],
    ) -> None:
        self.token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._as_form = as_form
        self._source = source
        self._timeout = timeout
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self.tokens_fetched = 0

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        return request

    def token(self) -> str:
        """The cached token, fetched anew when missing or close to expiry."""
        with self._lock:
            if self._token is None or time.monotonic() >= self._refresh_at:
                self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        """Forget the token, e.g. after a 401, so the next call fetches a new one."""
        with self._lock:
            self._token = None

    def _fetch(self) -> None:
        payload = {
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "grant_type": "client_credentials",
        }
        kwargs: dict[str, Any] = {"data": payload} if self._as_form else {"json": payload}
        try:
            response = requests.post(self.token_url, timeout=self._timeout, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise AirbyteUnreachableError(self.token_url, type(exc).__name__) from None
        if response.status_code in (400, 401, 403, 422):
            raise AirbyteAuthError(
                f"Airbyte refused the client id/secret from {self._source} at {self.token_url} "
                f"(HTTP {response.status_code}). Check the application's client id and secret "
                "in External Secrets / the Airflow Connection.",
                status_code=response.status_code,
                endpoint=f"POST {self.token_url}",
            )
        if response.status_code >= 400:
            raise AirbyteTransientApiError(
                f"Airbyte answered HTTP {response.status_code} to the token request at "
                f"{self.token_url}.",
                status_code=response.status_code,
                endpoint=f"POST {self.token_url}",
            )
        try:
            body = response.json()
            token = str(body["access_token"])
            lifetime = float(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        except (ValueError, KeyError, TypeError):
            raise AirbyteResponseError(
                f"Airbyte's token endpoint {self.token_url} answered without an access_token.",
                endpoint=f"POST {self.token_url}",
            ) from None
        from airflow.sdk.log import mask_secret

        mask_secret(token)
        self._token = token
        self._refresh_at = time.monotonic() + lifetime - min(60.0, lifetime * 0.2)
        self.tokens_fetched += 1
