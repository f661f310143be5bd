"""The Airflow plugin of this repository: the Airbyte task's extra links, and the webhook
receiver served by the API server.

Airflow 3's API server never imports DAG code; it learns of operator links and apps from
plugins. Point ``[core] plugins_folder`` at this directory (``AIRFLOW__CORE__PLUGINS_FOLDER``,
set by ``dev/environment.py`` and ``deploy/helm/values-airflow.yaml``) with the repository root
on ``PYTHONPATH``; ``plugins/.airflowignore`` keeps Airflow from loading the other modules here
as plugins.

This module registers the product with Airflow, so it is the one module under ``plugins/``
that may use ``include/`` (``tests/structure.py``: the ``registration`` layer).
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from plugins.airbyte_links import AirbyteConnectionLink, AirbyteJobLink


class AirbyteLinksPlugin(AirflowPlugin):
    """Links from an ``AirbyteSyncOperator`` task to its Airbyte job and connection."""

    name = "airbyte_links"
    operator_extra_links = [AirbyteJobLink(), AirbyteConnectionLink()]


class AirbyteReceiverPlugin(AirflowPlugin):
    """The webhook receiver (``include.receiver``) under ``/airbyte-receiver`` of the API
    server, when its environment configures it."""

    name = "airbyte_receiver"

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        # Importing the receiver costs ~0.4 s; every component loads plugins, only the API
        # server reads this attribute: imported here, when it does.
        from include.receiver.mount import receiver_apps

        return receiver_apps()
