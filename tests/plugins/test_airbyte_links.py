"""Where the Airbyte task's extra links point (the API server side: test_airbyte_plugin.py)."""

from __future__ import annotations

import pytest

from dev.airbyte_standin.seed import STRIPE_CONNECTION_ID, WORKSPACE_ID
from plugins.airbyte_client.models import AirbyteJob
from plugins.airbyte_hook import AirbyteHook
from plugins.airbyte_links import (
    CONNECTION_LINK,
    JOB_LINK,
    AirbyteConnectionLink,
    AirbyteJobLink,
    job_urls,
    web_root,
)
from plugins.airbyte_operator import AirbyteSyncOperator
from plugins.airbyte_plugin import AirbyteLinksPlugin
from tests.conftest import airbyte_conn_env


@pytest.mark.parametrize(
    ("api_root", "web"),
    [
        ("http://airbyte:8000/api/v1", "http://airbyte:8000"),
        (
            "https://airbyte.example.com/airbyte/api/public/v1",
            "https://airbyte.example.com/airbyte",
        ),
        ("https://api.airbyte.com/v1", "https://cloud.airbyte.com"),
    ],
)
def test_web_root_of_each_api_root(api_root, web):
    assert web_root(api_root) == web


def job() -> AirbyteJob:
    return AirbyteJob(
        job_id=42, connection_id=STRIPE_CONNECTION_ID, job_type="sync", status="succeeded"
    )


def test_links_use_the_connections_workspace(monkeypatch):
    airbyte_conn_env(monkeypatch, "http://airbyte:8000")
    urls = job_urls(AirbyteHook().settings, job(), WORKSPACE_ID)
    base = f"http://airbyte:8000/workspaces/{WORKSPACE_ID}/connections/{STRIPE_CONNECTION_ID}"
    assert urls == {JOB_LINK: f"{base}/job-history#42::0", CONNECTION_LINK: f"{base}/status"}


def test_links_fall_back_to_the_connection_extra_workspace_then_to_none(monkeypatch):
    airbyte_conn_env(monkeypatch, "http://airbyte:8000", workspace_id="ws-1")
    assert "/workspaces/ws-1/" in job_urls(AirbyteHook().settings, job(), None)[JOB_LINK]
    airbyte_conn_env(monkeypatch, "http://airbyte:8000")
    assert job_urls(AirbyteHook().settings, job(), None) == {}


def test_worker_side_link_is_the_url_the_operator_computed():
    op = AirbyteSyncOperator(task_id="sync", connection_id=STRIPE_CONNECTION_ID)
    assert AirbyteJobLink().get_link(op, ti_key=None) == ""  # nothing known: disabled link
    op.airbyte_urls = {JOB_LINK: "http://a/job", CONNECTION_LINK: "http://a/conn"}
    assert AirbyteJobLink().get_link(op, ti_key=None) == "http://a/job"
    assert AirbyteConnectionLink().get_link(op, ti_key=None) == "http://a/conn"
    # The API server gets the same link classes from the plugin (it never imports DAG code).
    assert [type(link) for link in op.operator_extra_links] == [
        type(link) for link in AirbyteLinksPlugin.operator_extra_links
    ]
