"""The Airflow plugin of this repository: the Airbyte task's extra links, the webhook receiver
served by the API server, and the "Airbyte" page of Airflow's navigation.

Airflow 3's API server never imports DAG code; it learns of operator links and apps from
plugins. Point ``[core] plugins_folder`` at this directory (``AIRFLOW__CORE__PLUGINS_FOLDER``,
set by ``dev/environment.py`` and ``deploy/helm/values-airflow.yaml``) with the repository root
on ``PYTHONPATH``; ``plugins/.airflowignore`` keeps Airflow from loading the other modules here
as plugins.

This module registers the product with Airflow, so it is the one module under ``plugins/``
that may use ``include/`` (``tests/structure.py``: the ``registration`` layer).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from airflow.configuration import conf
from airflow.plugins_manager import AirflowPlugin

from plugins.airbyte_links import AirbyteConnectionLink, AirbyteJobLink

#: Where the API server serves the Airbyte page, under Airflow's own path (``[api] base_url``).
PAGE_PREFIX = "/airbyte-page"
_ROOT = urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


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


class AirbytePagePlugin(AirflowPlugin):
    """The "Airbyte" page (``include.airbyte_page``): every connection of the connections file
    with its last syncs, drift and links, shown in Airflow's UI (in a frame, under
    ``/plugin/airbyte``) from the app under ``/airbyte-page``."""

    name = "airbyte_page"
    external_views = [
        {
            "name": "Airbyte",
            "href": f"{_ROOT}{PAGE_PREFIX}/",
            "icon": f"{_ROOT}{PAGE_PREFIX}/icon.svg",
            "destination": "nav",
            "url_route": "airbyte",
            "nav_top_level": True,
        }
    ]

    @cached_property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        # FastAPI, Jinja2 and the client stack: only the API server reads this attribute, so
        # the page is imported here, when it does (once: Airflow reads it again for /plugins).
        from include.airbyte_page.app import create_app

        return [{"app": create_app(), "url_prefix": PAGE_PREFIX, "name": "Airbyte page"}]
