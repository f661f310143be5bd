"""The Airbyte sources this repository orchestrates, and the Variables naming their connections.

Where the seed uses two names for one setting, the first is preferred and the second is
read when the first is not set.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """One Airbyte connection (source → warehouse) as the DAGs know it."""

    key: str
    label: str
    variables: tuple[str, ...]
    tables: tuple[str, ...]
    checkpoint: str


STRIPE = Source(
    key="stripe",
    label="Stripe → Postgres",
    variables=("AIRBYTE_STRIPE_POSTGRES_CONNECTION_ID", "AIRBYTE_STRIPE_CONNECTION_ID"),
    tables=("stripe_customers", "stripe_charges", "stripe_invoices"),
    checkpoint="stripe_postgres_checkpoint",
)
HUBSPOT = Source(
    key="hubspot",
    label="HubSpot → Postgres",
    variables=("AIRBYTE_HUBSPOT_CONNECTION_ID",),
    tables=("hubspot_contacts", "hubspot_companies", "hubspot_deals"),
    checkpoint="hubspot_checkpoint",
)
SALESFORCE = Source(
    key="salesforce",
    label="Salesforce → Postgres",
    variables=("AIRBYTE_SALESFORCE_CONNECTION_ID",),
    tables=("salesforce_accounts", "salesforce_opportunities"),
    checkpoint="salesforce_checkpoint",
)
SOURCES = (STRIPE, HUBSPOT, SALESFORCE)
