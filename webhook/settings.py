"""Settings of the webhook receiver, from environment variables (pydantic-settings)."""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebhookSettings(BaseSettings):
    """``WEBHOOK_SECRET``, ``AIRFLOW_API_URL``, ``AIRFLOW_USERNAME``, ``AIRFLOW_PASSWORD``, ...

    Secrets are ``SecretStr``: their ``repr`` and ``str`` print ``**********``, so logging the
    settings never leaks them.
    """

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    webhook_secret: SecretStr = Field(
        description="Shared secret the sender signs each body with (HMAC-SHA256)."
    )
    airflow_api_url: AnyHttpUrl = Field(
        default="http://127.0.0.1:8080",
        description="Base URL of the Airflow API server (the UI's URL), without /api/v2.",
    )
    airflow_username: str = Field(default="admin")
    airflow_password: SecretStr = Field(default=SecretStr("admin"))
    dag_id: str = Field(default="airbyte_event_driven_sync")
    webhook_host: str = Field(default="127.0.0.1")
    webhook_port: int = Field(default=8090, ge=1, le=65535)
    airflow_timeout_seconds: float = Field(default=10.0, gt=0)
    retry_after_seconds: int = Field(default=30, ge=1)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    @field_validator("webhook_secret")
    @classmethod
    def _secret_not_trivial(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("WEBHOOK_SECRET must be at least 16 characters")
        return value

    @property
    def airflow_base(self) -> str:
        return str(self.airflow_api_url).rstrip("/")
