"""DAGs from the connections file: an entry added to the file, and nothing else, is a DAG that
runs end to end against the stand-in; an entry removed takes its DAG with it."""

from __future__ import annotations

import pytest

from dev.airbyte_standin.seed import SALESFORCE_CONNECTION_ID
from include.connections import FILE_VARIABLE
from include.paths import CONNECTIONS_FILE
from tests.dags.conftest import DAGS_DIR
from tests.dags.test_dag_runs import notifications, states, sync_jobs

ADDED = """
  salesforce_hourly:
    connection_name: Salesforce → Postgres
    schedule: "@hourly"
    notify: [outbox]
    min_records: 2
"""

pytestmark = pytest.mark.usefixtures("airflow_db", "airflow_env")


@pytest.fixture
def connections_file(tmp_path, monkeypatch):
    """A copy of the repository's connections file that the DAG file reads."""
    path = tmp_path / "airbyte_connections.yaml"
    path.write_text(CONNECTIONS_FILE.read_text())
    monkeypatch.setenv(FILE_VARIABLE, str(path))
    return path


def generated_dags(connections_file):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_DIR / "airbyte_connections.py"))
    assert bag.import_errors == {}
    return bag.dags


def test_an_added_entry_is_a_dag_that_runs_end_to_end(connections_file, standin, outbox):
    connections_file.write_text(connections_file.read_text() + ADDED)
    dags = generated_dags(connections_file)
    dag = dags["airbyte_sync__salesforce_hourly"]
    assert [t.task_id for t in dag.tasks] == ["sync", "validate", "notify"]
    assert dag.get_task("sync").pool == "airbyte"
    run = dag.test()
    assert str(run.state) == "success", states(run)
    [job] = sync_jobs(standin, SALESFORCE_CONNECTION_ID)  # found by its name in Airbyte
    assert job["status"] == "succeeded"
    [message] = notifications(outbox)
    assert message["airbyte_job_id"] == job["id"]
    assert message["subject"].startswith("salesforce_hourly succeeded")


def test_a_removed_entry_takes_its_dag_with_it(connections_file):
    text = connections_file.read_text()
    assert "airbyte_sync__github" in generated_dags(connections_file)
    start = text.index("  github:")
    connections_file.write_text(text[:start])
    assert "airbyte_sync__github" not in generated_dags(connections_file)


def test_a_queued_job_is_waited_for_not_failed(connections_file, standin):
    """Airbyte queues a sync while its workers are busy: the job stays pending a while."""
    connections_file.write_text(connections_file.read_text() + ADDED)
    standin.set_durations(pending_seconds=3, running_seconds=0.5)
    run = generated_dags(connections_file)["airbyte_sync__salesforce_hourly"].test()
    assert str(run.state) == "success", states(run)
    [job] = sync_jobs(standin, SALESFORCE_CONNECTION_ID)
    assert job["status"] == "succeeded"


def test_an_entry_naming_a_connection_airbyte_does_not_have_fails_clearly(
    connections_file, standin, capfd
):
    connections_file.write_text(
        connections_file.read_text() + ADDED.replace("Salesforce →", "Nope →")
    )
    run = generated_dags(connections_file)["airbyte_sync__salesforce_hourly"].test()
    assert str(run.state) == "failed"
    assert "Airbyte has no connection named 'Nope → Postgres'" in capfd.readouterr().out
    assert standin.jobs() == []
