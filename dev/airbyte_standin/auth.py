"""Authentication in front of the APIs: HTTP basic, client-credential bearer tokens, or none."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import threading
import time

from dev.airbyte_standin.config import StandinConfig
from dev.airbyte_standin.errors import ApiError


class TokenIssuer:
    """Issues random bearer tokens for the configured client and tracks their expiry."""

    def __init__(self, client_id: str, client_secret: str, expires_in: int) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.expires_in = expires_in
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self, client_id: str, client_secret: str) -> str:
        """A new token, or a 401 ApiError for wrong client credentials."""
        if not (_same(client_id, self.client_id) and _same(client_secret, self.client_secret)):
            raise ApiError(401, "Invalid client credentials.")
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = time.monotonic() + self.expires_in
        return token

    def is_valid(self, token: str) -> bool:
        """Whether ``token`` was issued here and has not expired."""
        with self._lock:
            expiry = self._tokens.get(token)
        return expiry is not None and time.monotonic() < expiry

    def expire_all(self) -> int:
        """Make every issued token expired now; returns how many there were."""
        with self._lock:
            for token in self._tokens:
                self._tokens[token] = 0.0
            return len(self._tokens)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def check_authorization(config: StandinConfig, tokens: TokenIssuer, header: str | None) -> None:
    """Raise a 401 ApiError unless the Authorization header satisfies the auth mode."""
    if config.auth == "none":
        return
    scheme, _, value = (header or "").partition(" ")
    if config.auth == "basic":
        challenge = {"WWW-Authenticate": 'Basic realm="airbyte"'}
        if scheme.lower() != "basic":
            raise ApiError(401, "Missing basic authentication.", headers=challenge)
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise ApiError(401, "Malformed basic authentication.", headers=challenge) from None
        if not (_same(user, config.username) and _same(password, config.password)):
            raise ApiError(401, "Invalid username or password.", headers=challenge)
        return
    challenge = {"WWW-Authenticate": 'Bearer realm="airbyte"'}
    if scheme.lower() != "bearer" or not value:
        raise ApiError(401, "Missing bearer token.", headers=challenge)
    if not tokens.is_valid(value.strip()):
        raise ApiError(401, "The bearer token is invalid or has expired.", headers=challenge)
