"""
### Airflow DAGs generated from `airbyte_connections.yaml`

Each entry with a `schedule` gets `airbyte_sync__<key>`; each entry with a `checkpoint` or
`transforms` gets `airbyte_quality__<key>`, scheduled on its connection's Asset. Adding an
entry to the file adds its DAGs; removing it removes them. See `include/connection_dags.py`.
"""

from __future__ import annotations

from include.connection_dags import connection_dags

connection_dags()
