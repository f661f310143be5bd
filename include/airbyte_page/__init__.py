"""The "Airbyte" page of Airflow's UI: every entry of the connections file with its last sync,
its last 20 syncs as small charts, its drift findings and links to Airbyte and Airflow.

One module per concern: ``model`` (what a row says, and the order of the rows), ``airflow_api``
(Airflow's REST API read with the requesting user's token), ``airbyte_status`` (what Airbyte
says of the connections, cached), ``gather`` (the page's data from both), ``render`` (HTML and
inline SVG) and ``app`` (the FastAPI app the API server mounts, with its auth check).
``plugins/airbyte_plugin.py`` mounts it and adds it to Airflow's navigation.
"""
