"""Airflow Assets the Airbyte DAGs update, for data-aware scheduling downstream."""

from __future__ import annotations

from airflow.sdk import Asset

from include.sources import Source


def connection_asset(source: Source) -> Asset:
    """Updated each time the source's Airbyte sync succeeds."""
    return Asset(name=f"airbyte_{source.key}", uri=f"airbyte://{source.key}_postgres")


def table_asset(table: str) -> Asset:
    """A warehouse table, updated by a sync or a transform."""
    return Asset(name=table, uri=f"warehouse://{table}")


def sync_outlets(source: Source) -> list[Asset]:
    """What a successful sync of ``source`` updates: the connection and its raw tables."""
    return [connection_asset(source), *(table_asset(t) for t in source.tables)]


DAILY_REVENUE_ASSET = table_asset("analytics_stripe_daily_revenue")
