"""The session's real Airflow (shared with tests/e2e, see tests/airflow_fixtures.py) and
webhook receivers served over real HTTP on loopback."""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from dev.processes import free_port, wait_until
from dev.webhook_server import serve_receiver, serve_receiver_process
from include.assets import connection_asset
from include.connections import load_connections
from include.receiver import WebhookSettings
from tests.airflow_fixtures import DAG_IDS, STRIPE, SharedAirflow, shared_airflow

REPO = Path(__file__).resolve().parents[3]
SECRET = "test-webhook-secret-0123456789"
TOKEN = "notification-token-0123456789abcdef"
QUALITY_DAG = "airbyte_quality__stripe"


@pytest.fixture(scope="session")
def shared(request: pytest.FixtureRequest) -> SharedAirflow:
    return shared_airflow(request.config)


def receiver_settings(airflow_url: str, **overrides) -> WebhookSettings:
    """Settings for a test receiver; each gets its own ledger file unless one is given."""
    settings = {
        "ledger_path": str(Path(tempfile.mkdtemp(prefix="webhook-ledger-")) / "ledger.db"),
        "webhook_secret": SECRET,
        "airflow_api_url": airflow_url,
        "airflow_username": "admin",
        "airflow_password": "admin",
        "retry_after_seconds": 7,
        **overrides,
    }
    return WebhookSettings(**settings)


def quiesce(shared: SharedAirflow) -> None:
    """Wait until nothing else talks to Airbyte or loads Airflow: earlier tests' DAG runs (the
    quality runs their Asset events started among them) and jobs are done."""

    def quiet() -> bool:
        params = {"state": ["queued", "running"], "limit": 1}
        for dag_id in DAG_IDS:
            runs = shared.airflow.api("GET", f"/dags/{dag_id}/dagRuns", params=params)
            if shared.airflow._ok(runs)["total_entries"]:
                return False
        jobs = shared.standin.jobs()
        return all(j["status"] in ("succeeded", "failed", "cancelled") for j in jobs)

    wait_until(quiet, timeout=240, interval=0.5, what="no DAG run or Airbyte job in flight")


@pytest.fixture(scope="module")
def receiver(shared: SharedAirflow) -> Iterator[str]:
    """A receiver wired to the session's Airflow, once earlier tests' runs are done (a
    2-core machine running them answers the receiver slowly)."""
    quiesce(shared)
    with serve_receiver(receiver_settings(shared.airflow.url)) as url:
        yield url


@pytest.fixture
def make_receiver() -> Iterator[Callable[..., str]]:
    """Start extra receivers with other settings for one test."""
    with contextlib.ExitStack() as stack:
        yield lambda airflow_url, **kw: stack.enter_context(
            serve_receiver(receiver_settings(airflow_url, **kw))
        )


@pytest.fixture(scope="module")
def outbox(shared: SharedAirflow, tmp_path_factory) -> Iterator[Path]:
    """The receiver's configuration, the way a deployment gives it: AIRFLOW_CONN_/VAR_ env
    (``airbyte_default`` on the Public API, ``airbyte_config_api`` on the Configuration API,
    both with the stand-in's client credentials)."""
    path = tmp_path_factory.mktemp("outbox") / "notifications.jsonl"
    standin = shared.standin.config
    with pytest.MonkeyPatch.context() as env:
        for conn_id, root in (
            ("AIRBYTE_DEFAULT", "/api/public/v1"),
            ("AIRBYTE_CONFIG_API", "/api/v1"),
        ):
            conn = {
                "conn_type": "airbyte",
                "host": shared.standin.url + root,
                "login": standin.client_id,
                "password": standin.client_secret,
                "extra": {"auth_type": "client_credentials"},
            }
            env.setenv(f"AIRFLOW_CONN_{conn_id}", json.dumps(conn))
        env.setenv("AIRFLOW_VAR_AIRBYTE_STRIPE_POSTGRES_CONNECTION_ID", STRIPE)
        env.setenv("AIRFLOW_VAR_AIRBYTE_NOTIFY_CHANNELS", "outbox")
        env.setenv("AIRFLOW_VAR_AIRBYTE_NOTIFY_OUTBOX", str(path))
        yield path


@pytest.fixture(scope="session")
def stripe_tables(shared: SharedAirflow) -> list[str]:
    """The URIs of the Stripe tables' Assets, registered the way a deployment gets them:
    ``airbyte_stripe_to_postgres`` ran once, and its sync task's lineage emitted them
    through the ``AssetAlias`` of ``include.assets.sync_outlets``."""
    dag_id = "airbyte_stripe_to_postgres"
    shared.airflow.unpause(dag_id)  # catchup off: one run for the latest 6-hour interval
    try:
        [run] = wait_until(
            lambda: shared.airflow.list_runs(dag_id), timeout=120, interval=0.5, what="a run"
        )
        finished = shared.airflow.wait_for_run(dag_id, quote(run["dag_run_id"], safe=""), 240)
    finally:
        shared.airflow.api("PATCH", f"/dags/{dag_id}", json={"is_paused": True})
    assert finished["state"] == "success", finished
    params = {"limit": 100, "only_active": False}
    assets = shared.airflow.api("GET", "/assets", params=params).json()["assets"]
    tables = sorted(
        a["uri"]
        for a in assets
        if "stripe_" in a["uri"] and not a["uri"].startswith(("airbyte://", "warehouse://"))
    )
    assert len(tables) == 3, [a["uri"] for a in assets]
    return tables


@pytest.fixture(scope="session")
def stripe_assets(stripe_tables: list[str]) -> list[str]:
    """Every Asset a Stripe sync announces: the connection's and its three tables'."""
    return [connection_asset(load_connections().entry("stripe")).uri, *stripe_tables]


@pytest.fixture(scope="module")
def intake(shared: SharedAirflow, outbox: Path, stripe_tables: list[str]) -> Iterator[str]:
    """The notification URL of a receiver that the session's stand-in notifies."""
    shared.airflow.unpause(QUALITY_DAG)
    settings = receiver_settings(shared.airflow.url, airbyte_notification_token=TOKEN)
    with serve_receiver(settings) as url:
        notify_url = f"{url}/airbyte/notifications/{TOKEN}"
        shared.standin.notify_to(notify_url)
        try:
            yield notify_url
        finally:
            shared.standin.notify_to(None)


@contextlib.contextmanager
def receiver_process(
    tmp_path: Path, name: str = "receiver", **env: str
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``python -m webhook`` as its own process (``dev.webhook_server``) with the tests'
    secret, a ledger file of its own and an Airflow nobody listens on unless ``env`` says
    otherwise; its output in ``tmp_path/<name>.log``. Yields its URL and the process."""
    settings = {
        "WEBHOOK_SECRET": SECRET,
        "AIRFLOW_API_URL": f"http://127.0.0.1:{free_port()}",
        "LEDGER_PATH": str(tmp_path / f"{name}-ledger.db"),
        **env,
    }
    with serve_receiver_process(settings, tmp_path / f"{name}.log") as running:
        yield running
