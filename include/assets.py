"""Airflow Assets the Airbyte DAGs update, for data-aware scheduling downstream."""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias

from include.connections import ConnectionEntry


def connection_asset(entry: ConnectionEntry) -> Asset:
    """Updated each time the entry's Airbyte sync succeeds; its events' ``extra`` holds the
    Airbyte job id and the records and bytes, overall and per destination table.

    Its URI is ``airbyte://<key>`` unless the entry sets ``asset_uri``."""
    return Asset(name=f"airbyte_{entry.key}", uri=entry.asset_uri or f"airbyte://{entry.key}")


def synced_tables(entry: ConnectionEntry) -> AssetAlias:
    """The destination tables a sync of ``entry`` wrote, known only when it ran.

    Each event names the table as its OpenLineage output does, e.g.
    ``postgres://host:5432/warehouse/public/stripe_charges`` (``plugins.airbyte_client.lineage``),
    so a table has one identity in Airflow and in the lineage graph.
    """
    return AssetAlias(name=f"airbyte_{entry.key}_tables")


def table_asset(table: str) -> Asset:
    """A warehouse table built by a transform."""
    return Asset(name=table, uri=f"warehouse://{table}")


def sync_outlets(entry: ConnectionEntry) -> list[Asset | AssetAlias]:
    """What a successful sync of ``entry`` updates: the connection and its raw tables."""
    return [connection_asset(entry), synced_tables(entry)]
