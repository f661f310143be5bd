"""Check requests and responses against the Airbyte OpenAPI contracts (openapi-core).

Specs come from ``specs/`` beside this module (unmodified copies, source and licence in its
README) or from ``$AIRBYTE_API_SPEC_DIR``. Known defects of the published files are patched in
``_apply_errata`` (each one documented there).
"""

from __future__ import annotations

import functools
import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import yaml
from openapi_core import Config, OpenAPI
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dev.airbyte_standin.asgi import read_body, replaying
from dev.airbyte_standin.errors import PROBLEM_CONTENT_TYPE, PUBLIC_PREFIX

SPEC_DIR_ENV = "AIRBYTE_API_SPEC_DIR"
CONFIG_PREFIX = "/api/v1"
HOST_URL = "http://standin.local"
V160_ONLY_PATHS = frozenset({"/api/v1/workspaces/list"})


def spec_dir() -> Path:
    """Directory holding config.yaml, config-v1.6.0.yaml, public-api.yaml, api-problems.yaml."""
    return Path(os.environ.get(SPEC_DIR_ENV) or Path(__file__).with_name("specs"))


def _load_yaml(name: str) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with (spec_dir() / name).open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=loader)  # noqa: S506 - a safe loader


def _apply_errata(spec: dict[str, Any]) -> None:
    """Patch defects that make every real response invalid.

    - ``AirbyteStream`` (config API) requires ``json_schema`` but only declares ``jsonSchema`` and
      forbids additional properties, so no object can satisfy it; Airbyte sends ``jsonSchema``.
    - ``ApplicationTokenRequestWithGrant`` (public API) requires ``grant_type`` but declares only
      ``grant-type``, so a form post drops the field before validation; declare ``grant_type``.
    """
    schemas = spec.get("components", {}).get("schemas", {})
    stream = schemas.get("AirbyteStream")
    if stream and "json_schema" in stream.get("required", []):
        stream["required"] = ["jsonSchema" if r == "json_schema" else r for r in stream["required"]]
    grant = schemas.get("ApplicationTokenRequestWithGrant")
    if grant and "grant_type" not in grant.get("properties", {}):
        grant["properties"]["grant_type"] = {"type": "string", "enum": ["client_credentials"]}


def _openapi(name: str, server: str) -> OpenAPI:
    spec = _load_yaml(name)
    spec["servers"] = [{"url": server}]
    _apply_errata(spec)
    # config.yaml fails spec validation (``default: null`` on non-nullable fields): skip it.
    return OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))


@functools.cache
def load_specs() -> dict[str, Any]:
    """Parsed specs, loaded once per process (about 1-2 s)."""
    problems = _load_yaml("api-problems.yaml")["components"]["schemas"]
    return {
        "config": _openapi("config.yaml", "/api"),
        "config-v1.6.0": _openapi("config-v1.6.0.yaml", "/api"),
        "public": _openapi("public-api.yaml", PUBLIC_PREFIX),
        "problem": OAS30Validator(problems["BaseProblemFields"]),
    }


@dataclass(frozen=True)
class Exchange:
    """One HTTP request and the response it got."""

    method: str
    path: str
    query: list[tuple[str, str]]
    request_content_type: str
    request_body: bytes
    status: int
    response_content_type: str
    response_body: bytes


@dataclass(frozen=True)
class Violation:
    """A contract violation found in an exchange."""

    side: str  # "request" or "response"
    method: str
    path: str
    status: int
    message: str


def _explain(error: Exception) -> str:
    cause = error.__cause__
    details = [e.message for e in getattr(cause, "schema_errors", ()) or ()]
    text = f"{type(error).__name__}: {error}"
    if cause is not None and not details:
        text += f" ({cause})"
    return text + ("".join(f"\n  - {d}" for d in details) if details else "")


def spec_name(path: str) -> str | None:
    """Which spec governs ``path`` (None: not an Airbyte API path)."""
    if path.startswith(PUBLIC_PREFIX):
        return "public"
    if path in V160_ONLY_PATHS:
        return "config-v1.6.0"
    if path.startswith(CONFIG_PREFIX):
        return "config"
    return None


def check_exchange(ex: Exchange) -> list[Violation]:
    """Every way the request or response of ``ex`` breaks the contract."""
    name = spec_name(ex.path)
    if name is None:
        return []
    specs = load_specs()
    api: OpenAPI = specs[name]
    request = MockRequest(
        HOST_URL,
        ex.method,
        ex.path,
        args=ex.query,
        data=ex.request_body,
        content_type=ex.request_content_type or "application/json",
    )
    found: list[Violation] = []

    def add(side: str, message: str) -> None:
        found.append(Violation(side, ex.method, ex.path, ex.status, message))

    for error in api.iter_request_errors(request):
        add("request", _explain(error))
    response = MockResponse(
        ex.response_body, status_code=ex.status, content_type=ex.response_content_type
    )
    undeclared = False
    for error in api.iter_response_errors(request, response):
        if isinstance(error, ResponseNotFound):
            undeclared = True
        else:
            add("response", _explain(error))
    if ex.status >= 400 and (undeclared or name == "public"):
        for message in _problem_errors(ex, public=name == "public"):
            add("response", message)
    elif undeclared:
        add("response", f"status {ex.status} is not declared for {ex.method} {ex.path}")
    return found


def _problem_errors(ex: Exchange, public: bool) -> list[str]:
    """Errors of a body that should be a problem body (undeclared or public error status)."""
    if public and ex.response_content_type != PROBLEM_CONTENT_TYPE:
        return [f"error content-type {ex.response_content_type!r}, expected problem+json"]
    try:
        body = json.loads(ex.response_body)
    except ValueError:
        return ["error body is not JSON"]
    validator: OAS30Validator = load_specs()["problem"]
    messages = [f"problem body: {e.message}" for e in validator.iter_errors(body)]
    if isinstance(body, dict) and body.get("status") not in (None, ex.status):
        messages.append(f"problem status {body.get('status')} differs from HTTP {ex.status}")
    return messages


class ViolationLog:
    """Thread-safe list of violations found so far."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Violation] = []

    def extend(self, items: list[Violation]) -> None:
        with self._lock:
            self._items.extend(items)

    def take(self, clear: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            items = [asdict(v) for v in self._items]
            if clear:
                self._items.clear()
            return items


class ContractMiddleware:
    """Validates every Airbyte API exchange that passes through and logs the violations."""

    def __init__(self, app: ASGIApp, log: ViolationLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or spec_name(scope["path"]) is None:
            await self.app(scope, receive, send)
            return
        request_body = await read_body(receive)
        response: dict[str, Any] = {"status": 0, "ctype": "", "chunks": []}

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
                response["ctype"] = headers.get("content-type", "").split(";")[0].strip()
            elif message["type"] == "http.response.body":
                response["chunks"].append(message.get("body", b""))
            await send(message)

        await self.app(scope, replaying(request_body, receive), recording_send)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        exchange = Exchange(
            method=scope["method"],
            path=scope["path"],
            query=_query_pairs(scope.get("query_string", b"")),
            request_content_type=headers.get("content-type", "").split(";")[0].strip(),
            request_body=request_body,
            status=response["status"],
            response_content_type=response["ctype"],
            response_body=b"".join(response["chunks"]),
        )
        self.log.extend(check_exchange(exchange))


def _query_pairs(raw: bytes) -> list[tuple[str, str]]:
    return parse_qsl(raw.decode(), keep_blank_values=True)
