"""The Airbyte client's one HTTP stack, for blocking calls and the event loop alike.

``build_client`` makes every ``httpx`` client (sync or async) with the same TLS, timeout,
header and redirect settings; ``send``/``asend`` send one request under the same rules:

* **Redirects** are followed only within the configured origin (scheme, host, port), so
  credentials never go anywhere else, keeping the method and body (a 303 on a POST is
  refused); the token request follows none.
* **TLS** is verified against the Connection's ``ca_bundle``, else ``REQUESTS_CA_BUNDLE``/
  ``SSL_CERT_FILE``, else certifi; ``verify: false`` turns it off (and says so in the log).
* **Limits**: ``total_timeout`` bounds a whole request (connect, send, every read), so a
  trickling server cannot hold a poll; ``max_response_bytes`` caps the answer on the wire and
  ``max_decompressed_bytes`` once decompressed (a gzip bomb stops at the cap, not in memory).

Answers come back as ``Answer`` (status, headers, body), read whole within the limits;
``plugins.airbyte_client.answers`` says what they mean.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import ssl
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import certifi
import httpcore
import httpx

from plugins.airbyte_client.config import AirbyteSettings
from plugins.airbyte_client.errors import (
    AirbyteConfigError,
    AirbyteResponseError,
    AirbyteUnreachableError,
)

log = logging.getLogger(__name__)

HEADERS = {
    "Accept": "application/json",
    "Accept-Encoding": "gzip, deflate",
    "User-Agent": "airflow-airbyte",
}
#: Where a CA bundle may be named, in the order ``requests`` and then OpenSSL read them.
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")
MAX_REDIRECTS = 5
#: The shortest time a request of a wait gets, however little is left on the wait.
MIN_REQUEST_SECONDS = 1.0
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
#: The monotonic deadline of the blocking request running in this thread/context.
_deadline: ContextVar[float | None] = ContextVar("airbyte_request_deadline", default=None)


@dataclass(frozen=True)
class ApiRequest:
    """One HTTP call, relative to the API root."""

    method: str
    path: str
    json: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    #: What the request is about, for error messages: ``job 42``, ``connection <id>``.
    subject: str = ""
    #: The end (epoch s) of the wait this request belongs to, if any.
    deadline: float | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"

    def total_timeout(self, settings: AirbyteSettings) -> float:
        """``total_timeout``, clipped to the time left on the request's wait (but at least
        ``MIN_REQUEST_SECONDS``, so a last poll can still be answered)."""
        if self.deadline is None:
            return settings.total_timeout
        left = max(self.deadline - time.time(), MIN_REQUEST_SECONDS)
        return min(settings.total_timeout, left)

    def to_httpx(self, api_root: str) -> httpx.Request:
        return httpx.Request(self.method, api_root + self.path, json=self.json, params=self.params)


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, read whole within the limits."""

    status_code: int
    headers: httpx.Headers
    body: bytes


# --- TLS and clients -------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _ssl_context(ca_path: str | None) -> ssl.SSLContext:
    """One context per CA bundle, shared by every client (building one costs ~20 ms)."""
    if ca_path and os.path.isdir(ca_path):
        return ssl.create_default_context(capath=ca_path)
    return ssl.create_default_context(cafile=ca_path or certifi.where())


@functools.cache
def _no_trust() -> ssl.SSLContext:
    """A verifying context that trusts no CA: for an ``http://`` server, whose clients never
    make a TLS connection (redirects stay on the origin), without loading a CA bundle."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def tls_verification(settings: AirbyteSettings) -> ssl.SSLContext | bool:
    """What clients verify the server's certificate against (False: nothing, as configured)."""
    if settings.api_root.startswith("http://"):
        return _no_trust()
    if not settings.verify:
        log.warning(
            "TLS certificate verification is off for %s (extra verify=false)", settings.source
        )
        return False
    env = next((v for v in CA_BUNDLE_VARIABLES if os.environ.get(v)), None)
    ca_path = settings.ca_bundle or (os.environ[env] if env else None)
    try:
        return _ssl_context(ca_path)
    except (OSError, ssl.SSLError) as exc:
        origin = "the extra ca_bundle" if settings.ca_bundle else f"${env}"
        raise AirbyteConfigError(
            f"The CA bundle {ca_path!r} ({origin} of {settings.source}) cannot be loaded "
            f"({type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}). Point it at a "
            "readable PEM file of the CA that signed Airbyte's certificate."
        ) from None


def _clip(timeout: float | None) -> float | None:
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = max(deadline - time.monotonic(), 0.001)
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket whose every read and write waits no longer than the request's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _clip(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _clip(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, _clip(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.SyncBackend):
    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        stream = super().connect_tcp(host, port, _clip(timeout), local_address, socket_options)
        return _DeadlineStream(stream)


class _DeadlineTransport(httpx.HTTPTransport):
    """httpx's transport on a socket layer that honours ``total_timeout`` (blocking mode;
    the async client gets the same deadline from ``asyncio.timeout``)."""

    def __init__(self, verify: ssl.SSLContext | bool) -> None:
        super().__init__(verify=verify)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify),
            network_backend=_DeadlineBackend(),
        )


def build_client(
    settings: AirbyteSettings, auth: httpx.Auth | None, *, asynchronous: bool
) -> httpx.Client | httpx.AsyncClient:
    """The one place clients are made: same TLS, timeouts, headers and redirect rule."""
    verify = tls_verification(settings)
    options: dict[str, Any] = {
        "auth": auth,
        "headers": HEADERS,
        "timeout": httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
        "verify": verify,
        "follow_redirects": False,  # ``send`` follows same-origin redirects only
    }
    if asynchronous:
        return httpx.AsyncClient(**options)
    return httpx.Client(transport=_DeadlineTransport(verify), **options)


# --- sending ---------------------------------------------------------------------------


class _BodyReader:
    """Reads an answer chunk by chunk within the size caps and the deadline; decompresses."""

    def __init__(self, response: httpx.Response, settings: AirbyteSettings, deadline: float):
        self.settings, self.deadline, self.url = settings, deadline, str(response.url)
        self.raw = self.size = 0
        self.chunks: list[bytes] = []
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        self.encoding = encoding
        if encoding not in ("identity", "", *_DECODERS):
            raise AirbyteResponseError(
                f"Airbyte answered with Content-Encoding {encoding!r}, "
                "which was not asked for (only gzip and deflate are)."
            )
        self.decoder = zlib.decompressobj(_DECODERS[encoding]) if encoding in _DECODERS else None
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > settings.max_response_bytes:
            self._too_large("max_response_bytes", settings.max_response_bytes)

    def _too_large(self, setting: str, limit: int) -> None:
        raise AirbyteResponseError(
            f"Airbyte's answer from {self.url} is larger than {setting}={limit} bytes; it was "
            f"not read. Raise the Connection extra {setting} if such answers are expected."
        )

    def feed(self, chunk: bytes) -> None:
        self.raw += len(chunk)
        if self.raw > self.settings.max_response_bytes:
            self._too_large("max_response_bytes", self.settings.max_response_bytes)
        if time.monotonic() > self.deadline:
            raise AirbyteUnreachableError(self.url, "total_timeout, or the wait's deadline, passed")
        if self.decoder is None:
            self.chunks.append(chunk)
            return
        room = self.settings.max_decompressed_bytes - self.size
        try:
            data = self.decoder.decompress(chunk, room + 1)  # never more than the cap allows
        except zlib.error as exc:
            self._broken(exc)
        if len(data) > room:
            self._too_large("max_decompressed_bytes", self.settings.max_decompressed_bytes)
        self.size += len(data)
        self.chunks.append(data)

    def _broken(self, reason: object) -> None:
        raise AirbyteResponseError(
            f"Airbyte's {self.encoding} answer from {self.url} does not decompress ({reason})."
        )

    def body(self) -> bytes:
        if self.decoder is not None and not self.decoder.eof and self.raw:
            self._broken("cut short")
        return b"".join(self.chunks)


def _same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


def _origin(url: httpx.URL) -> str:
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{url.scheme}://{host}{f':{url.port}' if url.port else ''}"


def _is_redirect(response: httpx.Response) -> bool:
    return response.status_code in _REDIRECTS and "Location" in response.headers


def _next_hop(request: httpx.Request, response: httpx.Response, follow: bool) -> httpx.Request:
    """The request a redirect asks for, if it stays on the configured origin.

    The method and body are kept (Airbyte's endpoints are POSTs: re-sent as a bodiless GET
    they would only earn a 405 that hides the redirect). A 303 to anything but a GET is
    refused: it says the request was handled and its result is elsewhere, and sending a
    sync request again could start a second job.
    """
    target = request.url.join(response.headers["Location"])
    status = response.status_code
    reason = ""
    if not follow:
        reason = "the token request never follows a redirect, so no credentials go elsewhere"
    elif not _same_origin(request.url, target):
        reason = "it leaves the configured server, so no credentials go elsewhere"
    elif status == 303 and request.method != "GET":
        reason = f"a 303 would turn the {request.method} into a GET without its body"
    if reason:
        raise AirbyteConfigError(
            f"Airbyte at {_origin(request.url)} answered {request.method} {request.url.path} with "
            f"a redirect (HTTP {status}) to {_origin(target)}{target.path}. It was not "
            f"followed: {reason}. Set the Connection's host to the URL Airbyte really "
            "answers on."
        )
    headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
    return httpx.Request(request.method, target, headers=headers, content=request.content)


@contextmanager
def _transport_errors(url: httpx.URL) -> Iterator[None]:
    """httpx's transport failures as ``AirbyteUnreachableError`` (retryable, no secret)."""
    try:
        yield
    except httpx.TimeoutException:
        raise AirbyteUnreachableError(str(url.copy_with(query=None)), "timed out") from None
    except httpx.ConnectError as exc:
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            raise AirbyteConfigError(
                f"TLS verification of {_origin(url)} failed ({exc}). If "
                "Airbyte's certificate is signed by a company CA, set the Connection extra "
                "ca_bundle (or REQUESTS_CA_BUNDLE / SSL_CERT_FILE) to that CA's PEM file."
            ) from None
        reason = "Connection refused" if "refused" in str(exc).lower() else type(exc).__name__
        raise AirbyteUnreachableError(str(url.copy_with(query=None)), reason) from None
    except (httpx.TransportError, httpx.DecodingError) as exc:
        reason = "Connection reset" if isinstance(exc, httpx.ReadError) else type(exc).__name__
        raise AirbyteUnreachableError(str(url.copy_with(query=None)), reason) from None


def send(
    client: httpx.Client,
    request: httpx.Request,
    settings: AirbyteSettings,
    *,
    follow: bool = True,
    total_timeout: float | None = None,
) -> Answer:
    """Send ``request`` (blocking) within the limits (``total_timeout`` overrides the
    settings'); same-origin redirects only."""
    total = total_timeout or settings.total_timeout
    deadline = time.monotonic() + total
    token = _deadline.set(deadline)
    try:
        for _ in range(MAX_REDIRECTS + 1):
            with _transport_errors(request.url):
                response = client.send(request, stream=True)
                try:
                    if not _is_redirect(response):
                        reader = _BodyReader(response, settings, deadline)
                        for chunk in response.iter_raw():
                            reader.feed(chunk)
                        return _answer(request, response, reader)
                finally:
                    response.close()
            request = _next_hop(request, response, follow)
    finally:
        _deadline.reset(token)
    raise AirbyteResponseError(
        f"Airbyte redirected {request.url.path} more than {MAX_REDIRECTS} times."
    )


async def asend(
    client: httpx.AsyncClient,
    request: httpx.Request,
    settings: AirbyteSettings,
    *,
    follow: bool = True,
    total_timeout: float | None = None,
) -> Answer:
    """``send`` on the event loop: the same rules, the deadline from ``asyncio.timeout``."""
    total = total_timeout or settings.total_timeout
    deadline = time.monotonic() + total
    try:
        async with asyncio.timeout(total):
            for _ in range(MAX_REDIRECTS + 1):
                with _transport_errors(request.url):
                    response = await client.send(request, stream=True)
                    try:
                        if not _is_redirect(response):
                            reader = _BodyReader(response, settings, deadline)
                            async for chunk in response.aiter_raw():
                                reader.feed(chunk)
                            return _answer(request, response, reader)
                    finally:
                        await response.aclose()
                request = _next_hop(request, response, follow)
    except TimeoutError:
        raise AirbyteUnreachableError(
            str(request.url.copy_with(query=None)), f"total_timeout={total:g}s"
        ) from None
    raise AirbyteResponseError(
        f"Airbyte redirected {request.url.path} more than {MAX_REDIRECTS} times."
    )


def _answer(request: httpx.Request, response: httpx.Response, reader: _BodyReader) -> Answer:
    return Answer(response.status_code, response.headers, reader.body())
