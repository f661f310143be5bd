"""``airbyte_workspace_drift`` for real (``dag.test()``) against the stand-in, after discovery
wrote the connections file: what changed in Airbyte is reported through the outbox channel,
and the run fails when an entry points at nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from dev.airbyte_standin.seed import HUBSPOT_CONNECTION_ID
from include.connections import FILE_VARIABLE
from include.discovery import main as discovery
from tests.dags.test_dag_runs import notifications, run_dag, states, xcom

pytestmark = pytest.mark.usefixtures("airflow_db", "airflow_env")
NOTHING = {"new": [], "gone": [], "inactive": [], "renamed": [], "streams": []}
HAND_WRITTEN = """\
version: 1
connections:
  stripe:
    label: Stripe → Postgres
    connection_variable: AIRBYTE_STRIPE_POSTGRES_CONNECTION_ID
    streams: [customers, charges, invoices]
"""


def run_drift(dagbag):
    return run_dag(dagbag, "airbyte_workspace_drift")


@pytest.fixture
def discovered(tmp_path, monkeypatch) -> Path:
    """A connections file with a hand-written entry and the rest discovered, in use."""
    path = tmp_path / "airbyte_connections.yaml"
    path.write_text(HAND_WRITTEN, encoding="utf-8")
    assert discovery(["--file", str(path)]) == 0
    monkeypatch.setenv(FILE_VARIABLE, str(path))
    return path


def test_drift_is_reported_and_an_entry_pointing_at_nothing_fails_the_run(
    dagbag, standin, outbox, discovered, capfd
):
    zendesk = standin.add_connection("Zendesk → Postgres", ["tickets", "users"])
    standin.delete_connection(HUBSPOT_CONNECTION_ID)
    standin.add_stream(standin.connections()[0]["connection_id"], "refunds")  # Stripe's

    run = run_drift(dagbag)

    assert str(run.state) == "failed"
    assert states(run) == {"compare_with_airbyte": "failed"}
    [message] = notifications(outbox)
    assert message["subject"] == (
        "Airbyte workspace drift: 3 finding(s); 1 entry points at nothing"
    )
    assert message["dag_id"] == "airbyte_workspace_drift"
    assert message["state"] == "failed"
    assert message["body"].splitlines() == [
        "Airbyte connections not in the connections file (1):",
        f"  - Zendesk → Postgres ({zendesk['connection_id']})",
        "Entries whose connection is gone (1):",
        f"  - hubspot_postgres: Airbyte does not list its connection_id {HUBSPOT_CONNECTION_ID}",
        "Streams changed since discovery (1):",
        "  - stripe: added refunds",
    ]
    assert message["stats"]["gone"] == [
        {
            "key": "hubspot_postgres",
            "detail": f"Airbyte does not list its connection_id {HUBSPOT_CONNECTION_ID}",
        }
    ]
    assert "AirflowFailException" in capfd.readouterr().out
    # The failed run keeps its findings for the Airbyte page.
    assert xcom(run, "compare_with_airbyte") == message["stats"]


@pytest.mark.parametrize("airflow_env", ["public", "config"], indirect=True)
def test_with_nothing_changed_the_run_succeeds_and_reports_nothing(
    dagbag, standin, outbox, discovered, airflow_env
):
    run = run_drift(dagbag)

    assert str(run.state) == "success", states(run)
    assert notifications(outbox) == []
    assert xcom(run, "compare_with_airbyte") == NOTHING


def test_drift_without_a_gone_entry_is_reported_and_the_run_succeeds(
    dagbag, standin, outbox, discovered
):
    standin.add_stream(standin.connections()[1]["connection_id"], "tickets")  # HubSpot's

    run = run_drift(dagbag)

    assert str(run.state) == "success", states(run)
    [message] = notifications(outbox)
    assert message["subject"] == "Airbyte workspace drift: 1 finding(s)"
    assert message["body"].splitlines()[-1] == "  - hubspot_postgres: added tickets"
    assert xcom(run, "compare_with_airbyte") == NOTHING | {
        "streams": [{"key": "hubspot_postgres", "added": ["tickets"], "removed": []}]
    }
