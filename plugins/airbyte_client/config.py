"""The client's settings, how API URLs are normalised, and checks of what callers pass.

``settings_from_connection`` reads an Airflow Connection's fields and extras (any object with
``conn_id``, ``host``, ``port``, ``schema``, ``login``, ``password`` and ``extra_dejson``);
secrets found there are registered with Airflow's secrets masker as soon as they are read.
The ``validate_*`` checks take an argument as given or as a template rendered it (``"30"``,
``"False"``) and return it typed, or raise ``AirbyteConfigError`` (no task retries) naming
the argument and what it accepts.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from airflow.sdk.log import mask_secret

from plugins.airbyte_client.errors import AirbyteConfigError

#: The Airflow Connection the client reads unless told otherwise.
DEFAULT_CONN_ID = "airbyte_default"
#: What a trigger does when Airbyte answers 409 (a job is already running on the connection).

URL_VARIABLE = "AIRBYTE_API_URL"
USERNAME_VARIABLE = "AIRBYTE_API_USERNAME"
PASSWORD_VARIABLE = "AIRBYTE_API_PASSWORD"  # noqa: S105 - a Variable name, not a secret
CLOUD_HOST = "api.airbyte.com"
MIB = 1024 * 1024


class ApiFlavour(StrEnum):
    """Configuration API (``/api/v1``) or Public API (``/api/public/v1``, Airbyte Cloud)."""

    CONFIG = "config"
    PUBLIC = "public"


class AuthType(StrEnum):
    BASIC = "basic"
    CLIENT_CREDENTIALS = "client_credentials"
    BEARER = "bearer"
    NONE = "none"


@dataclass(frozen=True)
class AirbyteSettings:
    """Everything the client needs to talk to one Airbyte server."""

    api_root: str
    flavour: ApiFlavour
    source: str
    auth_type: AuthType = AuthType.NONE
    login: str | None = None
    secret: str | None = field(default=None, repr=False)
    workspace_id: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_retries: int = 5
    retry_min_wait: float = 1.0
    retry_max_wait: float = 30.0
    poll_interval: float = 2.0
    max_poll_interval: float = 20.0
    quiet_poll_interval: float = 60.0
    #: Whole-request deadline: connect, send and every read of one answer.
    total_timeout: float = 120.0
    #: Largest answer accepted as sent on the wire, and once decompressed.
    max_response_bytes: int = 16 * MIB
    max_decompressed_bytes: int = 64 * MIB
    #: Unreadable answers in a row (empty or HTML 200, unknown status, broken gzip) a wait
    #: rides out before giving up.
    max_unreadable_polls: int = 5
    #: Most pages ``list_connections`` reads before calling the pagination broken.
    max_pages: int = 1000
    #: TLS: verify certificates (keep it on), against ``ca_bundle`` (a PEM file or directory)
    #: or, unset, ``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE`` or certifi's bundle.
    verify: bool = True
    ca_bundle: str | None = None

    def with_overrides(self, **overrides: Any) -> AirbyteSettings:
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _positive(cast: Callable[[Any], Any], minimum: float = 0.0) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        number = cast(value)
        if isinstance(value, bool) or not math.isfinite(number) or number < minimum:
            raise ValueError(value)
        return number

    return convert


def parse_bool(value: Any) -> bool:
    """A bool, or its text: ``true``/``false``, 1/0, yes/no, on/off; ``ValueError`` otherwise."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(value)


_TUNABLES: dict[str, Callable[[Any], Any]] = {
    "connect_timeout": _positive(float, 0.001),
    "read_timeout": _positive(float, 0.001),
    "total_timeout": _positive(float, 0.001),
    "max_retries": _positive(int),
    "retry_min_wait": _positive(float),
    "retry_max_wait": _positive(float),
    "poll_interval": _positive(float, 0.001),
    "max_poll_interval": _positive(float, 0.001),
    "quiet_poll_interval": _positive(float, 0.001),
    "max_response_bytes": _positive(int, 1),
    "max_decompressed_bytes": _positive(int, 1),
    "max_unreadable_polls": _positive(int),
    "max_pages": _positive(int, 1),
    "verify": parse_bool,
    "ca_bundle": str,
}


def normalize_api_url(url: str, api_type: str | None = None) -> tuple[str, ApiFlavour]:
    """Turn any usual way of writing an Airbyte URL into ``(api_root, flavour)``.

    Accepts a server root (``http://airbyte-server:8000``), ``.../api``, ``.../api/v1``,
    ``.../api/public/v1`` and Airbyte Cloud (``https://api.airbyte.com[/v1]``). A bare
    server root uses ``api_type`` (``config`` by default, the seed's ``/api/v1``).
    """
    url = (url or "").strip()
    if not url:
        raise AirbyteConfigError(
            f"The Airbyte API URL is empty. Set the Variable {URL_VARIABLE} or the host of the "
            f"'{DEFAULT_CONN_ID}' Connection, e.g. http://airbyte-server:8000."
        )
    if "://" not in url:
        url = f"http://{url}"
    parts = _split(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AirbyteConfigError(
            f"The Airbyte API URL {_redact(url)!r} is not an http(s) URL with a host, "
            "e.g. http://airbyte-server:8000."
        )
    try:
        wanted = ApiFlavour(api_type) if api_type else None
    except ValueError:
        raise AirbyteConfigError(
            f"Unknown api_type {api_type!r} in the Airbyte Connection extras; "
            "use 'config' (Configuration API /api/v1) or 'public' (Public API)."
        ) from None
    path = parts.path.rstrip("/")
    if parts.hostname == CLOUD_HOST:
        path, flavour = "/v1", ApiFlavour.PUBLIC
    elif path.endswith("/api/public/v1"):
        flavour = ApiFlavour.PUBLIC
    elif path.endswith("/api/public"):
        path, flavour = f"{path}/v1", ApiFlavour.PUBLIC
    elif path.endswith("/api/v1"):
        flavour = ApiFlavour.CONFIG
    else:
        if path.endswith("/api"):
            path = path[: -len("/api")]
        flavour = wanted or ApiFlavour.CONFIG
        path = f"{path}/api/v1" if flavour is ApiFlavour.CONFIG else f"{path}/api/public/v1"
    if wanted and wanted is not flavour:
        raise AirbyteConfigError(
            f"The Airbyte URL {_redact(url)!r} is a {flavour} API URL but the Connection extras "
            f"ask for api_type={wanted!s}; drop one of the two."
        )
    netloc = parts.netloc.rpartition("@")[2]  # host[:port], IPv6 brackets kept
    return urlunsplit((parts.scheme, netloc, path, "", "")), flavour


def _split(url: str) -> SplitResult:
    """``urlsplit`` that refuses a bad port, or credentials with a raw ``/``, ``?`` or ``#``
    (which would end the host part early: the secret becomes a port or a path), with a
    message that shows no credentials."""
    rest = url.partition("://")[2]
    if "@" in rest and min((rest.find(c) for c in "/?#" if c in rest), default=len(rest)) < (
        rest.rfind("@")
    ):
        raise AirbyteConfigError(
            f"The Airbyte API URL {_redact(url)!r} has credentials with a reserved character "
            "(/, ? or #) that is not percent-encoded, so its host cannot be told apart. Write "
            "them as %2F, %3F and %23 (e.g. http://airbyte:pa%2Fss@airbyte-server:8000), or "
            "leave the URL without credentials and put them in the Connection's login and "
            "password fields."
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        reason = "has a bad port" if "port" in str(exc).lower() else "is malformed"
        raise AirbyteConfigError(
            f"The Airbyte API URL {_redact(url)!r} {reason}: use http(s)://host[:port] with a "
            "port from 1 to 65535, e.g. http://airbyte-server:8000 or http://[::1]:8000."
        ) from None
    return parts


def _redact(url: str) -> str:
    """``url`` with everything before its last ``@`` hidden: credentials may hold a raw
    ``/``, so the host part cannot be trusted to end at the first one."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    return f"{scheme}{sep}{rest}"


def _host_url(conn: Any) -> str:
    """The Connection's host as a URL: scheme from ``schema``, port, IPv6 brackets."""
    host = (conn.host or "").strip()
    if not host:
        return ""
    if "://" not in host:
        try:
            if ipaddress.ip_address(host.strip("[]")).version == 6:
                host = f"[{host.strip('[]')}]"
        except ValueError:
            pass
        host = f"{conn.schema or 'http'}://{host}"
    if conn.port and not _split(host).port:
        split = urlsplit(host)
        host = urlunsplit(split._replace(netloc=f"{split.netloc}:{conn.port}"))
    return host


def _mask(*secrets: str | None) -> None:
    for secret in secrets:
        if secret:
            mask_secret(secret)


def settings_from_connection(conn: Any) -> AirbyteSettings:
    """Build settings from an Airflow Connection (host, port, schema, login, password, extras)."""
    extra: dict[str, Any] = dict(conn.extra_dejson or {})
    source = f"Airflow Connection '{conn.conn_id}'"
    login, secret = conn.login or None, conn.password or None
    _mask(secret, extra.get("client_secret"), extra.get("token"))
    host = _host_url(conn)
    embedded = _split(host) if host else None
    if embedded is not None and (embedded.username or embedded.password):
        login = login or unquote(embedded.username or "") or None
        secret = secret or unquote(embedded.password or "") or None
        _mask(secret, embedded.password)
    root, flavour = normalize_api_url(host, extra.get("api_type"))
    auth_type = _auth_type(extra.get("auth_type"), login, source)
    if auth_type is AuthType.BEARER:
        secret = secret or extra.get("token")
    if auth_type is not AuthType.NONE and not secret:
        raise AirbyteConfigError(
            f"{source} uses auth_type={auth_type} but has no password"
            f"{' or token' if auth_type is AuthType.BEARER else ''}; set it in the Connection."
        )
    tunables = {}
    for key, cast in _TUNABLES.items():
        if key in extra and extra[key] not in (None, ""):
            try:
                tunables[key] = cast(extra[key])
            except (TypeError, ValueError):
                kind = "true or false" if cast is parse_bool else "a number >= 0 (> 0 for timeouts)"
                raise AirbyteConfigError(
                    f"{source} extra {key}={extra[key]!r} is not valid: use {kind}."
                ) from None
    return AirbyteSettings(
        api_root=root,
        flavour=flavour,
        source=source,
        auth_type=auth_type,
        login=login,
        secret=secret,
        workspace_id=extra.get("workspace_id") or None,
        **tunables,
    )


def _auth_type(value: str | None, login: str | None, source: str) -> AuthType:
    if not value:
        return AuthType.BASIC if login else AuthType.NONE
    try:
        return AuthType(str(value).lower())
    except ValueError:
        allowed = ", ".join(a.value for a in AuthType)
        raise AirbyteConfigError(
            f"{source} has auth_type={value!r}; use one of: {allowed}."
        ) from None


def settings_from_variables(
    url: str, login: str | None, secret: str | None, source: str
) -> AirbyteSettings:
    """Settings from the seed's three values (URL, user, password); basic auth with a user."""
    _mask(secret)
    root, flavour = normalize_api_url(url)
    return AirbyteSettings(
        api_root=root,
        flavour=flavour,
        source=source,
        auth_type=AuthType.BASIC if login else AuthType.NONE,
        login=login,
        secret=secret,
    )
