"""
### Chaos-test transforms

One DAG per connection of the scenarios (Stripe, HubSpot), scheduled on its connection Asset as
a team's transform is: it declares the Asset, so Asset events (the reconciler's too) have
somewhere to go, and its runs show which events ran it.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

from include.assets import connection_asset
from include.connections import load_connections

ENTRIES = ("stripe", "hubspot")


def downstream_dag(key: str) -> str:
    """The id of the DAG scheduled on the entry ``key``'s connection Asset."""
    return f"chaos_after_{key}"


@task
def transform() -> None:
    """Stands for the team's first transform: only its run is looked at."""


for key in ENTRIES:
    with DAG(
        dag_id=downstream_dag(key),
        schedule=[connection_asset(load_connections().entry(key))],
        start_date=datetime(2025, 1, 1),
        catchup=False,
        default_args={"owner": "chaos", "retries": 0},
        tags=["chaos"],
        doc_md=__doc__,
    ):
        transform()
