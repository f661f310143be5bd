"""The Airflow plugin of this repository: the Airbyte task's extra links.

Airflow 3's API server never imports DAG code; it learns of operator links from plugins.
Point ``[core] plugins_folder`` at this directory (``AIRFLOW__CORE__PLUGINS_FOLDER``, set by
``dev/environment.py`` and ``deploy/helm/values-airflow.yaml``) with the repository root on
``PYTHONPATH``; ``plugins/.airflowignore`` keeps Airflow from loading the other modules
here as plugins.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from plugins.airbyte_links import AirbyteConnectionLink, AirbyteJobLink


class AirbyteLinksPlugin(AirflowPlugin):
    """Links from an ``AirbyteSyncOperator`` task to its Airbyte job and connection."""

    name = "airbyte_links"
    operator_extra_links = [AirbyteJobLink(), AirbyteConnectionLink()]
