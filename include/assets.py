"""Airflow Assets the Airbyte DAGs update, for data-aware scheduling downstream."""

from __future__ import annotations

from airflow.sdk import Asset

from include.sources import Source


def connection_asset(source: Source) -> Asset:
    """Updated each time the source's Airbyte sync succeeds."""
    return Asset(name=f"airbyte_{source.key}", uri=f"airbyte://{source.key}_postgres")


DAILY_REVENUE_ASSET = Asset(
    name="analytics_stripe_daily_revenue", uri="warehouse://analytics_stripe_daily_revenue"
)
