"""Fault injection and the request log, as an ASGI wrapper around the API application."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import threading
import zlib
from dataclasses import asdict, dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dev.airbyte_standin.asgi import read_body, replaying
from dev.airbyte_standin.errors import (
    PROBLEM_CONTENT_TYPE,
    ApiError,
    config_error_body,
    is_public,
    problem_body,
)

FAULT_KINDS = (
    "status",
    "hang",
    "drop",
    "lost_response",
    "malformed",
    "missing_fields",
    # Hostile answers (see ``_send_hostile``): all but "redirect" answer 200.
    "empty",
    "html",
    "unknown_status",
    "broken_gzip",
    "gzip_bomb",
    "trickle",
    "redirect",
    "other_job",
)
HOSTILE = frozenset(FAULT_KINDS[6:])
#: ``other_job``: the connection an answer about another job names.
OTHER_CONNECTION_ID = "0d7a0f5e-0000-4000-8000-0000000000aa"
ADMIN_PREFIX = "/_standin"
ID_KEYS = frozenset({"id", "jobId", "connectionId", "workspaceId", "access_token"})


class DroppedConnection(Exception):
    """Raised after a partial response so the server aborts the connection."""


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


@dataclass
class Fault:
    """One injected fault for the next ``count`` matching requests."""

    kind: str
    count: int = 1
    path: str | None = None
    method: str | None = None
    status: int = 503
    seconds: float = 5.0
    process: bool = False
    #: ``gzip_bomb``: decompressed size; ``redirect``: where to (``Location``; empty: the
    #: request's own path and query, on the same server).
    size: int = 64 * 1024 * 1024
    location: str = ""
    #: Match ``path`` exactly, not as a prefix (``/jobs`` but not ``/jobs/42``).
    exact: bool = False
    #: Match only requests whose query string contains this (``connectionId=<id>``).
    query: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {FAULT_KINDS}")
        if self.count < 1:
            raise ValueError("count must be at least 1")
        self.method = self.method.upper() if self.method else None

    def matches(self, method: str, path: str, query: str = "") -> bool:
        if self.path is not None and not (
            path == self.path if self.exact else path.startswith(self.path)
        ):
            return False
        if self.query is not None and self.query not in query:
            return False
        return self.method is None or self.method == method


class FaultRegistry:
    """Pending faults (consumed in order) and the log of served API requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._log: list[dict[str, Any]] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, method: str, path: str, query: str = "") -> Fault | None:
        """The first fault matching the request, with its count decremented."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path, query):
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._faults]

    def record(self, method: str, path: str, status: int | None, fault: str | None) -> None:
        with self._lock:
            self._log.append({"method": method, "path": path, "status": status, "fault": fault})

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._log)

    def clear(self) -> int:
        """Drop the queued faults; returns how many there were."""
        with self._lock:
            count = len(self._faults)
            self._faults.clear()
            return count

    def reset(self) -> None:
        self.clear()
        with self._lock:
            self._log.clear()


class FaultMiddleware:
    """Applies injected faults to API requests and logs every API request served."""

    def __init__(self, app: ASGIApp, registry: FaultRegistry) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        query = scope.get("query_string", b"").decode("latin-1")
        fault = self.registry.take(method, path, query)
        status: dict[str, int | None] = {"code": None}

        async def logging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self._serve(fault, scope, receive, logging_send)
        finally:
            dropped = fault is not None and fault.kind in ("drop", "lost_response")
            self.registry.record(
                method, path, None if dropped else status["code"], fault.kind if fault else None
            )

    async def _serve(self, fault: Fault | None, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if fault is None:
            await self.app(scope, receive, send)
        elif fault.kind == "status":
            await _send_status(send, path, fault.status)
        elif fault.kind == "hang":
            body = await read_body(receive)  # received before the server "hangs"
            await asyncio.sleep(fault.seconds)
            await self.app(scope, replaying(body, receive), send)
        elif fault.kind == "drop":
            await _send_partial_and_drop(send, b'{"job": {"id": ')
        elif fault.kind == "lost_response":
            body = await _run_and_capture(self.app, scope, receive)
            await _send_partial_and_drop(send, body[: len(body) // 2])
        elif fault.kind in HOSTILE:
            await _send_hostile(self.app, fault, scope, receive, send)
        else:
            body = b""
            if fault.process:
                body = await _run_and_capture(self.app, scope, receive)
            await _send_corrupted(send, fault.kind, body)


async def _send_status(send: Send, path: str, status: int) -> None:
    message = f"Injected fault: HTTP {status}."
    if is_public(path):
        body, ctype = problem_body(status, message), PROBLEM_CONTENT_TYPE
    else:
        body, ctype = config_error_body(ApiError(status, message)), "application/json"
    encoded = json.dumps(body).encode()
    headers = [(b"content-type", ctype.encode()), (b"content-length", str(len(encoded)).encode())]
    if status == 429:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": encoded})


async def _send_partial_and_drop(send: Send, partial: bytes) -> None:
    declared = str(len(partial) + 4096).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", declared)]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": partial, "more_body": True})
    raise DroppedConnection("injected fault: connection dropped mid-response")


async def _run_and_capture(app: ASGIApp, scope: Scope, receive: Receive) -> bytes:
    """Process the request for real and return the body it would have answered."""
    chunks: list[bytes] = []

    async def capture(message: Message) -> None:
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, capture)
    return b"".join(chunks)


def strip_ids(value: Any) -> Any:
    """``value`` without its identifying keys (top level and one level down)."""
    if not isinstance(value, dict):
        return value
    return {
        key: (
            {k: v for k, v in inner.items() if k not in ID_KEYS}
            if isinstance(inner, dict)
            else inner
        )
        for key, inner in value.items()
        if key not in ID_KEYS
    }


async def _send_corrupted(send: Send, kind: str, real_body: bytes) -> None:
    if kind == "malformed":
        body = real_body[: max(len(real_body) // 2, 1)] if real_body else b'{"job": {"id": 1,'
        body = b"<html>502 upstream garbage</html>" if body.strip() == b"" else body
    else:
        try:
            body = json.dumps(strip_ids(json.loads(real_body))).encode() if real_body else b"{}"
        except ValueError:
            body = b"{}"
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_hostile(app: ASGIApp, fault: Fault, scope: Scope, receive: Receive, send: Send):
    """Answers a proxy or a broken server gives: an empty or HTML 200, a status Airbyte does
    not have, a gzip body that does not decompress or decompresses to ``size`` bytes, the real
    answer in 20 pieces ``seconds`` apart, a redirect to ``location`` (``status`` if it is a
    3xx, else 307), or the real answer made
    about another job of another connection (a caching proxy mixing answers)."""
    headers = [(b"content-type", b"application/json")]
    status = 200
    if fault.kind == "empty":
        body = b""
    elif fault.kind == "html":
        body, headers = (
            b"<html><body>Welcome to nginx!</body></html>",
            [(b"content-type", b"text/html")],
        )
    elif fault.kind == "unknown_status":
        body = _with_unknown_status(await _run_and_capture(app, scope, receive))
    elif fault.kind == "other_job":
        body = _about_another_job(await _run_and_capture(app, scope, receive))
    elif fault.kind == "broken_gzip":
        body = gzip.compress(b'{"job": {"id": 1}}' * 100)[:40] + b"not gzip at all"
        headers.append((b"content-encoding", b"gzip"))
    elif fault.kind == "gzip_bomb":
        body = _gzip_zeros(fault.size)
        headers.append((b"content-encoding", b"gzip"))
    elif fault.kind == "redirect":
        status, body = (fault.status if 300 <= fault.status < 400 else 307), b""
        query = scope.get("query_string", b"")
        itself = scope["path"].encode() + (b"?" + query if query else b"")
        headers.append((b"location", fault.location.encode() or itself))
    else:  # trickle
        body = await _run_and_capture(app, scope, receive)
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    step = -(-len(body) // 20) if fault.kind == "trickle" else len(body)  # trickle: 20 pieces
    step = max(step, 1)
    # Once the request is read, ``receive`` returns only when the client disconnects.
    gone = asyncio.ensure_future(receive()) if fault.kind == "trickle" else None
    try:
        for start in range(0, max(len(body), 1), step):
            if fault.kind == "trickle":
                await asyncio.sleep(fault.seconds)
            if gone is not None and gone.done():  # the client gave up: log the request now
                return
            chunk = body[start : start + step]
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        if gone is not None:
            gone.cancel()


def _with_unknown_status(body: bytes) -> bytes:
    data = json.loads(body)
    job = data.get("job", data) if isinstance(data, dict) else data
    if isinstance(job, dict) and "status" in job:
        job["status"] = "paused_by_gremlins"
    return json.dumps(data).encode()


def _about_another_job(body: bytes) -> bytes:
    """A job answer or job list of either flavour, about job id + 1000 of
    ``OTHER_CONNECTION_ID``."""
    data = json.loads(body)
    listed = data.get("jobs") or data.get("data")
    for item in listed if isinstance(listed, list) else [data]:
        job = item.get("job", item)
        id_key, connection_key = (
            ("id", "configId") if "configId" in job else ("jobId", "connectionId")
        )
        job[id_key] += 1000
        job[connection_key] = OTHER_CONNECTION_ID
    return json.dumps(data).encode()


def _gzip_zeros(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    parts = [
        compressor.compress(block[: min(len(block), size - done)])
        for done in range(0, size, len(block))
    ]
    return b"".join(parts) + compressor.flush()
