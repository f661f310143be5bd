"""The seeded workspace: fixed ids, connections and the streams each one syncs.

``SEED`` holds the four fixed connections (Stripe, HubSpot, Salesforce, GitHub) every stand-in
serves;
``build_seed(n)`` follows them with ``n`` extra ones, the same ids, names and streams on every
start, for discovery, pagination and scale tests.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

WORKSPACE_ID = "5ae6b09b-fdec-41af-aaf7-7d94cfc33ef6"
ORGANIZATION_ID = "00000000-0000-0000-0000-000000000000"
CUSTOMER_ID = "3f5c0b8e-2a7d-4d6e-9c1b-7e4a2f9d8c10"
DESTINATION_ID = "b8a3c1d2-4e5f-4a6b-8c7d-9e0f1a2b3c4d"

STRIPE_CONNECTION_ID = "2a6f1c2e-8b1d-4c3a-9f0e-1d2c3b4a5f60"
HUBSPOT_CONNECTION_ID = "7c9e4b1a-3d2f-4e5a-8b6c-0f1e2d3c4b5a"
SALESFORCE_CONNECTION_ID = "d41e7f3b-6a5c-4b8d-9e2f-3a4b5c6d7e8f"
#: Named by ``connection_name`` in airbyte_connections.yaml: the demo's generated DAG.
GITHUB_CONNECTION_ID = "5e0c8a7d-9f41-4b2e-8d6a-7b3c2f1e0a94"

#: Namespace of the uuid5 ids of the extra connections and their sources.
EXTRA_NAMESPACE = uuid.UUID("90f000bd-0ec4-4669-98a2-340fdbd77fac")


@dataclass(frozen=True)
class SourceType:
    """A kind of source: its Airbyte name and title, definition id and the streams it offers."""

    name: str
    title: str
    definition_id: str
    #: In catalogue order; a stream refers only to streams before it (a charge to a customer).
    streams: tuple[str, ...]


SOURCE_TYPES: dict[str, SourceType] = {
    kind.name: kind
    for kind in (
        SourceType(
            "stripe",
            "Stripe",
            "e094cb9a-26de-4645-8761-65c0c425d1de",
            ("customers", "charges", "invoices", "refunds"),
        ),
        SourceType(
            "hubspot",
            "HubSpot",
            "36c891d9-4bd9-43ac-bad2-10e12756272c",
            ("contacts", "companies", "deals", "tickets"),
        ),
        SourceType(
            "salesforce",
            "Salesforce",
            "b117307c-14b6-41aa-9422-947e34922962",
            ("accounts", "opportunities", "contacts", "leads"),
        ),
        SourceType(
            "github",
            "GitHub",
            "ef69ef6e-aa7f-4af1-a01d-ef775033524e",
            ("issues", "pull_requests"),
        ),
        SourceType(
            "faker",
            "Sample Data (Faker)",
            "dfd88b22-b603-4c3d-aad7-3701784586b1",
            ("users", "products", "purchases"),
        ),
    )
}


@dataclass(frozen=True)
class SeedConnection:
    """One connection: a source writing its streams to the Postgres destination."""

    connection_id: str
    name: str
    source: str  # the source type, a key of SOURCE_TYPES
    source_id: str
    streams: tuple[str, ...]
    source_title: str
    #: Short name of the connection: its tables' prefix and the seed of its rows' ids
    #: (the source type if empty, as for the four fixed connections).
    slug: str = ""
    #: ``active``, or ``deprecated`` once deleted (Airbyte keeps deleted connections).
    status: str = "active"

    @property
    def key(self) -> str:
        """What names the connection's tables and seeds its rows: ``slug`` or ``source``."""
        return self.slug or self.source

    @property
    def prefix(self) -> str:
        """Destination table prefix, e.g. ``stripe_``."""
        return f"{self.key}_"

    def table_name(self, stream: str) -> str:
        """Destination table of ``stream``, e.g. ``stripe_charges``."""
        return f"{self.prefix}{stream}"

    @property
    def table_names(self) -> tuple[str, ...]:
        """Destination tables of every stream, in sync order."""
        return tuple(self.table_name(stream) for stream in self.streams)


SEED: tuple[SeedConnection, ...] = (
    SeedConnection(
        connection_id=STRIPE_CONNECTION_ID,
        name="Stripe → Postgres",
        source="stripe",
        source_title="Stripe",
        source_id="0b7e5f2c-1a3d-4e6f-8a9b-c0d1e2f3a4b5",
        streams=("customers", "charges", "invoices"),
    ),
    SeedConnection(
        connection_id=HUBSPOT_CONNECTION_ID,
        name="HubSpot → Postgres",
        source="hubspot",
        source_title="HubSpot",
        source_id="1c8f6a3d-2b4e-4f70-9bac-d1e2f3a4b5c6",
        streams=("contacts", "companies", "deals"),
    ),
    SeedConnection(
        connection_id=SALESFORCE_CONNECTION_ID,
        name="Salesforce → Postgres",
        source="salesforce",
        source_title="Salesforce",
        source_id="2d907b4e-3c5f-4a81-8cbd-e2f3a4b5c6d7",
        streams=("accounts", "opportunities"),
    ),
    SeedConnection(
        connection_id=GITHUB_CONNECTION_ID,
        name="GitHub → Postgres",
        source="github",
        source_title="GitHub",
        source_id="3ea18c5f-4d60-4b92-9dce-f3a4b5c6d7e8",
        streams=("issues", "pull_requests"),
    ),
)

CONNECTIONS_BY_ID: dict[str, SeedConnection] = {conn.connection_id: conn for conn in SEED}
TABLE_NAMES: tuple[str, ...] = tuple(t for conn in SEED for t in conn.table_names)
#: The source types the extra connections cycle through.
EXTRA_SOURCE_TYPES: tuple[str, ...] = ("stripe", "hubspot", "salesforce", "faker")


def extra_id(kind: str, index: int) -> str:
    """Deterministic id of the ``index``-th extra ``connection`` or ``source``."""
    return str(uuid.uuid5(EXTRA_NAMESPACE, f"{kind}/{index}"))


def extra_connection(index: int) -> SeedConnection:
    """The ``index``-th extra connection (1-based), e.g. ``Source 0042 → Postgres``: its
    own source (cycling through EXTRA_SOURCE_TYPES) and the first 2-4 of its streams."""
    if index < 1:
        raise ValueError(f"extra connections count from 1, not {index}")
    kind = SOURCE_TYPES[EXTRA_SOURCE_TYPES[(index - 1) % len(EXTRA_SOURCE_TYPES)]]
    count = min(2 + (index - 1) % 3, len(kind.streams))
    label = f"Source {index:04d}"
    return SeedConnection(
        connection_id=extra_id("connection", index),
        name=f"{label} → Postgres",
        source=kind.name,
        source_id=extra_id("source", index),
        streams=kind.streams[:count],
        source_title=label,
        slug=f"source_{index:04d}",
    )


def build_seed(extra_connections: int = 0) -> tuple[SeedConnection, ...]:
    """The four fixed connections, then ``extra_connections`` deterministic extra ones."""
    if isinstance(extra_connections, bool) or not isinstance(extra_connections, int):
        raise TypeError(f"extra_connections must be an int, not {extra_connections!r}")
    if extra_connections < 0:
        raise ValueError(f"extra_connections must be >= 0, not {extra_connections}")
    return SEED + tuple(extra_connection(i) for i in range(1, extra_connections + 1))
