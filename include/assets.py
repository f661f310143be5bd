"""Airflow Assets the Airbyte DAGs update, for data-aware scheduling downstream."""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias

from include.sources import Source


def connection_asset(source: Source) -> Asset:
    """Updated each time the source's Airbyte sync succeeds; its events' ``extra`` holds the
    Airbyte job id and the records and bytes, overall and per destination table."""
    return Asset(name=f"airbyte_{source.key}", uri=f"airbyte://{source.key}_postgres")


def synced_tables(source: Source) -> AssetAlias:
    """The destination tables a sync of ``source`` wrote, known only when it ran.

    Each event names the table as its OpenLineage output does, e.g.
    ``postgres://host:5432/warehouse/public/stripe_charges`` (``plugins.airbyte_client.lineage``),
    so a table has one identity in Airflow and in the lineage graph.
    """
    return AssetAlias(name=f"airbyte_{source.key}_tables")


def table_asset(table: str) -> Asset:
    """A warehouse table built by a transform."""
    return Asset(name=table, uri=f"warehouse://{table}")


def sync_outlets(source: Source) -> list[Asset | AssetAlias]:
    """What a successful sync of ``source`` updates: the connection and its raw tables."""
    return [connection_asset(source), synced_tables(source)]


DAILY_REVENUE_ASSET = table_asset("analytics_stripe_daily_revenue")
