"""Settings of one stand-in server."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

AuthMode = Literal["basic", "token", "none"]

DEFAULT_USERNAME = "airbyte"
DEFAULT_PASSWORD = "password"
DEFAULT_CLIENT_ID = "standin-client"
DEFAULT_CLIENT_SECRET = "standin-secret"
DEFAULT_WAREHOUSE_PATH = Path(".airflow") / "warehouse.db"


def default_warehouse_url() -> str:
    """SQLite file under ``./.airflow`` (relative to the working directory)."""
    return f"sqlite:///{DEFAULT_WAREHOUSE_PATH.resolve()}"


@dataclass
class StandinConfig:
    """Everything the stand-in can be told at start."""

    host: str = "127.0.0.1"
    port: int = 8001
    #: Client credentials, as Airbyte 1.x and Cloud run (``basic`` for older deployments
    #: behind a basic-auth proxy, ``none`` for an open in-cluster server).
    auth: AuthMode = "token"
    username: str = DEFAULT_USERNAME
    password: str = DEFAULT_PASSWORD
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    token_expires_in: int = 900
    pending_seconds: float = 0.2
    running_seconds: float = 1.0
    rows_per_stream: int = 50
    warehouse_url: str = field(default_factory=default_warehouse_url)
    #: SQLAlchemy URL where jobs are kept across restarts; None keeps them in memory only.
    state_url: str | None = None
    faults: list[dict[str, Any]] = field(default_factory=list)
    validate_contract: bool = True
    tick_seconds: float = 0.02
    notification_url: str | None = None
    #: Deterministic connections seeded after the four fixed ones (``seed.build_seed``), for
    #: discovery, pagination and scale tests; ``--connections N`` on the command line.
    extra_connections: int = 0

    def __post_init__(self) -> None:
        if self.auth not in ("basic", "token", "none"):
            raise ValueError(f"unknown auth mode {self.auth!r}")
        extra = self.extra_connections
        if isinstance(extra, bool) or not isinstance(extra, int) or extra < 0:
            raise ValueError(f"extra_connections must be an integer >= 0, not {extra!r}")
