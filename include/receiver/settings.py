"""Settings of the webhook receiver, from environment variables (pydantic-settings)."""

from __future__ import annotations

import ipaddress
from functools import cached_property
from pathlib import Path

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _strong(value: SecretStr | None, name: str, minimum: int) -> SecretStr | None:
    """Refuse a secret that is empty, whitespace, padded or too short to guess hard."""
    if value is None:
        return None
    text = value.get_secret_value()
    if not text.strip():
        raise ValueError(f"{name} is empty or whitespace; set a long random value")
    if text != text.strip():
        raise ValueError(f"{name} has leading or trailing whitespace; remove it")
    if len(text) < minimum:
        raise ValueError(f"{name} must be at least {minimum} characters")
    return value


class AirflowSettings(BaseSettings):
    """How the receiver and the reconciler reach Airflow's API and the ledger they share:
    ``AIRFLOW_API_URL``, ``AIRFLOW_USERNAME``, ``AIRFLOW_PASSWORD``, ``LEDGER_URL``, ...

    Secrets are ``SecretStr``: their ``repr`` and ``str`` print ``**********``, so logging the
    settings never leaks them.
    """

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    airflow_api_url: AnyHttpUrl = Field(
        default="http://127.0.0.1:8080",
        description="Base URL of the Airflow API server (the UI's URL), without /api/v2.",
    )
    airflow_username: str = Field(default="admin")
    airflow_password: SecretStr = Field(default=SecretStr("admin"))
    dag_id: str = Field(default="airbyte_event_driven_sync")
    airflow_timeout_seconds: float = Field(default=10.0, gt=0)
    airflow_max_requests: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Requests to Airflow's API one process has in flight at most; a burst "
        "of notifications queues for these instead of exhausting Airflow's database pool.",
    )
    ledger_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL of the ledger database every replica shares, e.g. "
        "postgresql+psycopg2://receiver:...@db:5432/airbyte_receiver; unset: LEDGER_PATH.",
    )
    ledger_path: str = Field(
        default=".webhook/ledger.db",
        description="SQLite file of the ledger when LEDGER_URL is unset (one replica).",
    )

    @property
    def airflow_base(self) -> str:
        return str(self.airflow_api_url).rstrip("/")

    @property
    def ledger_database(self) -> str:
        """The ledger's SQLAlchemy URL: ``LEDGER_URL``, else the SQLite file (its folder made)."""
        if self.ledger_url is not None:
            return self.ledger_url.get_secret_value()
        Path(self.ledger_path).parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{Path(self.ledger_path).resolve()}"


class WebhookSettings(AirflowSettings):
    """The receiver's: ``WEBHOOK_SECRET``, ``AIRBYTE_NOTIFICATION_TOKEN``, ... besides
    ``AirflowSettings``."""

    webhook_secret: SecretStr = Field(
        description="Shared secret the sender signs each body with (HMAC-SHA256)."
    )
    webhook_host: str = Field(default="127.0.0.1")
    webhook_port: int = Field(default=8090, ge=1, le=65535)
    retry_after_seconds: int = Field(default=30, ge=1)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_notification_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest Airbyte notification read: a failure's errorMessage holds a "
        "stack trace.",
    )
    signature_tolerance_seconds: int = Field(
        default=300, ge=1, description="How old (or early) a signed timestamp may be."
    )
    airbyte_notification_token: SecretStr | None = Field(
        default=None,
        description="Secret path segment of POST /airbyte/notifications/<token>; unset "
        "disables the route.",
    )
    airbyte_allowed_networks: str = Field(
        default="",
        description="Comma-separated CIDRs Airbyte's notifications may come from; empty: any.",
    )
    airbyte_conn_id: str = Field(
        default="airbyte_default", description="Airflow Connection of the Airbyte server."
    )
    notification_workers: int = Field(
        default=8,
        ge=1,
        le=256,
        description="Accepted notifications one receiver processes at once.",
    )

    @field_validator("webhook_secret")
    @classmethod
    def _secret_not_trivial(cls, value: SecretStr) -> SecretStr:
        return _strong(value, "WEBHOOK_SECRET", 16)

    @field_validator("airbyte_notification_token")
    @classmethod
    def _token_not_trivial(cls, value: SecretStr | None) -> SecretStr | None:
        return _strong(value, "AIRBYTE_NOTIFICATION_TOKEN", 24)

    @field_validator("airbyte_allowed_networks")
    @classmethod
    def _networks_parse(cls, value: str) -> str:
        _parse_networks(value)
        return value

    @cached_property
    def allowed_networks(self) -> tuple[Network, ...]:
        return _parse_networks(self.airbyte_allowed_networks)

    @property
    def ledger_retention_seconds(self) -> float:
        """Event ids are kept twice the signature window: at least the window, with margin."""
        return 2.0 * self.signature_tolerance_seconds


def _parse_networks(value: str) -> tuple[Network, ...]:
    try:
        return tuple(
            ipaddress.ip_network(part.strip(), strict=False)
            for part in value.split(",")
            if part.strip()
        )
    except ValueError as error:
        raise ValueError(f"AIRBYTE_ALLOWED_NETWORKS: {error}") from None
