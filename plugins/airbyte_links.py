"""Extra links from an Airbyte task in the Airflow UI to its job and its connection in Airbyte.

The worker computes each URL when the task ends (``job_urls``, kept on the operator as
``airbyte_urls``) and Airflow stores it in XCom under the link's ``xcom_key``. The API
server never imports DAG code: it gets these classes from ``AirbyteLinksPlugin``
(``plugins/airbyte_plugin.py``) and reads the stored URL back from XCom.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from airflow.sdk import BaseOperatorLink
from airflow.serialization.definitions.operatorlink import XComOperatorLink

from plugins.airbyte_client.config import CLOUD_HOST, AirbyteSettings
from plugins.airbyte_client.models import AirbyteJob

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey

CLOUD_WEB_ROOT = "https://cloud.airbyte.com"
JOB_LINK = "Airbyte job"
CONNECTION_LINK = "Airbyte connection"


def web_root(api_root: str) -> str:
    """The Airbyte web app's root for an API root (``.../api/v1`` -> ``...``)."""
    parts = urlsplit(api_root)
    if parts.hostname == CLOUD_HOST:
        return CLOUD_WEB_ROOT
    path = parts.path.rstrip("/")
    for suffix in ("/api/public/v1", "/api/v1"):
        path = path.removesuffix(suffix)
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def connection_root(api_root: str, workspace_id: str, connection_id: str) -> str:
    """The connection's root in the Airbyte web app; its pages are under it."""
    return f"{web_root(api_root)}/workspaces/{workspace_id}/connections/{connection_id}"


def connection_url(api_root: str, workspace_id: str, connection_id: str) -> str:
    """The connection's status page in the Airbyte web app."""
    return f"{connection_root(api_root, workspace_id, connection_id)}/status"


def job_urls(
    settings: AirbyteSettings, job: AirbyteJob, workspace_id: str | None
) -> dict[str, str]:
    """Links to the job's page and the connection's page in the Airbyte web app.

    Airbyte's pages live under a workspace; without its id (the connection details were not
    available and the Connection has no ``workspace_id`` extra) there are no links.
    """
    workspace_id = workspace_id or settings.workspace_id
    if not workspace_id:
        return {}
    connection = connection_root(settings.api_root, workspace_id, job.connection_id)
    return {
        JOB_LINK: f"{connection}/job-history#{job.job_id}::0",
        CONNECTION_LINK: connection_url(settings.api_root, workspace_id, job.connection_id),
    }


class _AirbyteLink(BaseOperatorLink):
    """A link whose URL the worker computed; on the API server it is read from XCom."""

    link_name: ClassVar[str]

    @property
    def name(self) -> str:
        return self.link_name

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        urls = getattr(operator, "airbyte_urls", None)
        if isinstance(urls, dict):  # the worker, right after the task ran
            return urls.get(self.name, "")
        return XComOperatorLink(name=self.name, xcom_key=self.xcom_key).get_link(
            operator, ti_key=ti_key
        )


class AirbyteJobLink(_AirbyteLink):
    """The Airbyte job the task ran or attached to (its page in the connection's history)."""

    link_name = JOB_LINK


class AirbyteConnectionLink(_AirbyteLink):
    """The Airbyte connection the task synced."""

    link_name = CONNECTION_LINK
