"""A local stand-in for a self-managed Airbyte server (Configuration and Public APIs).

Start it with ``python -m dev.airbyte_standin`` or, in tests, ``serving.run_standin``.
"""

from dev.airbyte_standin.config import StandinConfig
from dev.airbyte_standin.seed import (
    CONNECTIONS_BY_ID,
    GITHUB_CONNECTION_ID,
    HUBSPOT_CONNECTION_ID,
    SALESFORCE_CONNECTION_ID,
    SEED,
    SOURCE_TYPES,
    STRIPE_CONNECTION_ID,
    TABLE_NAMES,
    WORKSPACE_ID,
    SeedConnection,
    build_seed,
    extra_connection,
)

__all__ = [
    "CONNECTIONS_BY_ID",
    "GITHUB_CONNECTION_ID",
    "HUBSPOT_CONNECTION_ID",
    "SALESFORCE_CONNECTION_ID",
    "SEED",
    "SOURCE_TYPES",
    "STRIPE_CONNECTION_ID",
    "TABLE_NAMES",
    "WORKSPACE_ID",
    "SeedConnection",
    "StandinConfig",
    "build_seed",
    "extra_connection",
]
