"""The seeded workspace: fixed ids, connections and the streams each one syncs."""

from __future__ import annotations

from dataclasses import dataclass

WORKSPACE_ID = "5ae6b09b-fdec-41af-aaf7-7d94cfc33ef6"
ORGANIZATION_ID = "00000000-0000-0000-0000-000000000000"
CUSTOMER_ID = "3f5c0b8e-2a7d-4d6e-9c1b-7e4a2f9d8c10"
DESTINATION_ID = "b8a3c1d2-4e5f-4a6b-8c7d-9e0f1a2b3c4d"

STRIPE_CONNECTION_ID = "2a6f1c2e-8b1d-4c3a-9f0e-1d2c3b4a5f60"
HUBSPOT_CONNECTION_ID = "7c9e4b1a-3d2f-4e5a-8b6c-0f1e2d3c4b5a"
SALESFORCE_CONNECTION_ID = "d41e7f3b-6a5c-4b8d-9e2f-3a4b5c6d7e8f"


@dataclass(frozen=True)
class SeedConnection:
    """One seeded connection: a source writing its streams to the Postgres destination."""

    connection_id: str
    name: str
    source: str
    source_id: str
    streams: tuple[str, ...]
    source_title: str

    @property
    def prefix(self) -> str:
        """Destination table prefix, e.g. ``stripe_``."""
        return f"{self.source}_"

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
)

CONNECTIONS_BY_ID: dict[str, SeedConnection] = {conn.connection_id: conn for conn in SEED}
TABLE_NAMES: tuple[str, ...] = tuple(t for conn in SEED for t in conn.table_names)
