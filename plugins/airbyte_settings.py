"""Where the Airbyte client gets its configuration, and how API URLs are normalised.

Configuration comes from an Airflow Connection (default ``airbyte_default``) or, when that
Connection does not exist, from the Variables ``AIRBYTE_API_URL``, ``AIRBYTE_API_USERNAME``
and ``AIRBYTE_API_PASSWORD``. Secrets found here are registered with Airflow's secrets
masker as soon as they are read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow.sdk.exceptions import AirflowNotFoundException

from plugins.airbyte_api import ApiFlavour
from plugins.airbyte_errors import AirbyteConfigError

URL_VARIABLE = "AIRBYTE_API_URL"
USERNAME_VARIABLE = "AIRBYTE_API_USERNAME"
PASSWORD_VARIABLE = "AIRBYTE_API_PASSWORD"  # noqa: S105 - a Variable name, not a secret
CLOUD_HOST = "api.airbyte.com"


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

    def with_overrides(self, **overrides: Any) -> AirbyteSettings:
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})


_TUNABLES = {
    "connect_timeout": float,
    "read_timeout": float,
    "max_retries": int,
    "retry_min_wait": float,
    "retry_max_wait": float,
    "poll_interval": float,
    "max_poll_interval": float,
    "quiet_poll_interval": float,
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
            "'airbyte_default' Connection, e.g. http://airbyte-server:8000."
        )
    if "://" not in url:
        url = f"http://{url}"
    parts = urlsplit(url)
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
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, path, "", "")), flavour


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.username or parts.password:
        netloc = "***@" + parts.netloc.rsplit("@", 1)[1]
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _mask(*secrets: str | None) -> None:
    from airflow.sdk.log import mask_secret

    for secret in secrets:
        if secret:
            mask_secret(secret)


def settings_from_connection(conn: Any) -> AirbyteSettings:
    """Build settings from an Airflow Connection (host, port, schema, login, password, extras)."""
    extra: dict[str, Any] = dict(conn.extra_dejson or {})
    host = (conn.host or "").strip()
    if host and "://" not in host:
        host = f"{conn.schema or 'http'}://{host}"
    if host and conn.port and not urlsplit(host).port:
        split = urlsplit(host)
        host = urlunsplit(split._replace(netloc=f"{split.netloc}:{conn.port}"))
    source = f"Airflow Connection '{conn.conn_id}'"
    login, secret = conn.login or None, conn.password or None
    embedded = urlsplit(host) if host else None
    if embedded is not None and (embedded.username or embedded.password):
        login = login or embedded.username
        secret = secret or embedded.password
    _mask(secret, extra.get("client_secret"), extra.get("token"))
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
                raise AirbyteConfigError(
                    f"{source} extra {key}={extra[key]!r} is not a number."
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


def settings_from_variables(conn_id: str = "airbyte_default") -> AirbyteSettings:
    """Build settings from the seed's Variables; ``AIRBYTE_API_URL`` is required."""
    from airflow.sdk import Variable

    url = Variable.get(URL_VARIABLE, default=None)
    if url is None:
        raise AirbyteConfigError(
            f"Airbyte is not configured: there is no Airflow Connection '{conn_id}' and no "
            f"Variable {URL_VARIABLE}. Create one, e.g. "
            f"`airflow variables set {URL_VARIABLE} http://airbyte-server:8000` (plus "
            f"{USERNAME_VARIABLE}/{PASSWORD_VARIABLE}), or the Connection "
            f"`airflow connections add {conn_id} --conn-uri http://user:pass@airbyte-server:8000`."
        )
    login = Variable.get(USERNAME_VARIABLE, default=None) or None
    secret = Variable.get(PASSWORD_VARIABLE, default=None) or None
    _mask(secret)
    root, flavour = normalize_api_url(url)
    source = f"Airflow Variables {URL_VARIABLE}/{USERNAME_VARIABLE}/{PASSWORD_VARIABLE}"
    if login and not secret:
        raise AirbyteConfigError(f"{USERNAME_VARIABLE} is set but {PASSWORD_VARIABLE} is not.")
    return AirbyteSettings(
        api_root=root,
        flavour=flavour,
        source=source,
        auth_type=AuthType.BASIC if login else AuthType.NONE,
        login=login,
        secret=secret,
    )


def resolve_settings(conn_id: str) -> AirbyteSettings:
    """Settings from the Connection ``conn_id``, else from the Variables."""
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return settings_from_variables(conn_id)
    return settings_from_connection(conn)


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


async def aresolve_settings(conn_id: str) -> AirbyteSettings:
    """``resolve_settings`` for the event loop (the triggerer): never blocks it."""
    from airflow.sdk import BaseHook
    from asgiref.sync import sync_to_async

    try:
        conn = await BaseHook.aget_connection(conn_id)
    except AirflowNotFoundException:
        return await sync_to_async(settings_from_variables)(conn_id)
    return settings_from_connection(conn)
