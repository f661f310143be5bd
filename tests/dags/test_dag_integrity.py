"""Every DAG file imports cleanly, without parse-time I/O, and follows the house rules."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from include.assets import connection_asset, sync_outlets
from include.connections import load_connections
from tests.dags.conftest import DAGS_DIR

STRIPE = load_connections().entry("stripe")

EXPECTED_DAGS = {
    "airbyte_stripe_to_postgres",
    "airbyte_multi_source_sync",
    "airbyte_event_driven_sync",
    "airbyte_advanced_examples",
    "airbyte_stripe_zero_poll_sync",
    "airbyte_reconcile",
    "airbyte_workspace_drift",
    # generated from airbyte_connections.yaml
    "airbyte_quality__stripe",
    "airbyte_quality__hubspot",
    "airbyte_quality__salesforce",
    "airbyte_sync__github",
}
DAG_FILES = sorted(p.name for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))


@pytest.mark.parametrize("dag_file", DAG_FILES)
def test_dag_file_imports_without_errors_or_parse_time_io(dagbag, dag_file):
    errors = {path: err for path, err in dagbag.import_errors.items() if path.endswith(dag_file)}
    assert errors == {}


def test_the_expected_dags_exist(dagbag):
    assert set(dagbag.dag_ids) == EXPECTED_DAGS


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAGS))
def test_house_rules(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.doc_md
    assert dag.doc_md.strip().startswith("###")
    assert "airbyte" in dag.tags
    assert dag.catchup is False
    for task in dag.tasks:
        assert task.owner == "data-platform", task.task_id
        assert task.retries >= 1 or task.task_id == "summary", task.task_id
        assert task.retry_delay >= timedelta(minutes=1), task.task_id


def test_stripe_runs_every_six_hours_one_run_at_a_time(dagbag):
    dag = dagbag.dags["airbyte_stripe_to_postgres"]
    assert dag.schedule == timedelta(hours=6)
    assert dag.max_active_runs == 1
    assert {t.task_id for t in dag.tasks} >= {
        "sync_stripe",
        "validate_sync",
        "stripe_postgres_checkpoint",
        "transform_stripe_daily_revenue",
        "notify",
    }


def test_stripe_quality_runs_on_every_stripe_sync_asset_event(dagbag):
    dag = dagbag.dags["airbyte_quality__stripe"]
    assert [a.uri for a in dag.timetable.asset_condition.objects] == [connection_asset(STRIPE).uri]
    assert connection_asset(STRIPE).uri.startswith("airbyte://stripe_postgres")
    assert {t.task_id for t in dag.tasks} == {
        "sync_details",
        "stripe_postgres_checkpoint",
        "transform_stripe_daily_revenue",
        "notify",
    }


def test_zero_poll_sync_starts_then_only_a_deferred_watchdog_waits(dagbag):
    dag = dagbag.dags["airbyte_stripe_zero_poll_sync"]
    start, watchdog = dag.get_task("start_sync"), dag.get_task("watchdog")
    assert start.wait is False
    assert not start.outlets  # the notification (or the watchdog) announces the sync
    assert watchdog.upstream_task_ids == {"start_sync"}
    assert [a.uri for a in watchdog.inlets] == [connection_asset(STRIPE).uri]
    assert watchdog.outlets == sync_outlets(STRIPE)  # connection Asset and tables alias


def test_multi_source_syncs_in_parallel_and_always_summarises(dagbag):
    dag = dagbag.dags["airbyte_multi_source_sync"]
    syncs = [t for t in dag.tasks if t.task_id.endswith(".sync")]
    assert sorted(t.task_id for t in syncs) == ["hubspot.sync", "salesforce.sync", "stripe.sync"]
    for sync in syncs:
        assert not sync.upstream_task_ids  # nothing holds one source back for another
    summary = dag.get_task("summary")
    assert summary.trigger_rule == "all_done"
    assert summary.upstream_task_ids == {
        "stripe.validate",
        "hubspot.validate",
        "salesforce.validate",
    }


def test_event_driven_params_declare_the_trigger_form(dagbag):
    dag = dagbag.dags["airbyte_event_driven_sync"]
    assert dag.schedule is None
    params = dag.params
    assert set(params.keys()) == {
        "connection_id",
        "job_type",
        "streams",
        "refresh_mode",
        "timeout_minutes",
        "min_records",
        "wait",
    }
    schema = params.get_param("connection_id").schema
    assert schema["type"] == "string"
    assert "pattern" in schema
    assert params.get_param("job_type").schema["enum"] == ["sync", "reset", "clear", "refresh"]
    assert params.get_param("refresh_mode").schema["enum"] == [None, "merge", "truncate"]


def validated_conf(dagbag, conf: dict) -> dict:
    """What Airflow does with a trigger's conf before it creates the run."""
    params = copy.deepcopy(dagbag.dags["airbyte_event_driven_sync"].params)
    params.update(conf)
    return params.validate()


@pytest.mark.parametrize(
    ("conf", "problem"),
    [
        ({}, "connection_id"),
        ({"connection_id": "abc-123-def-456"}, "does not match"),
        (
            {"connection_id": "2a6f1c2e-8b1d-4c3a-9f0e-1d2c3b4a5f60", "job_type": "drop"},
            "is not one of",
        ),
        (
            {"connection_id": "2a6f1c2e-8b1d-4c3a-9f0e-1d2c3b4a5f60", "timeout_minutes": -1},
            "less than",
        ),
    ],
)
def test_event_driven_refuses_bad_conf(dagbag, conf, problem):
    from airflow.sdk.definitions.param import ParamValidationError

    with pytest.raises(ParamValidationError, match=problem):
        validated_conf(dagbag, conf)


def test_event_driven_accepts_the_seed_conf(dagbag):
    conf = validated_conf(dagbag, {"connection_id": "2a6f1c2e-8b1d-4c3a-9f0e-1d2c3b4a5f60"})
    assert conf["job_type"] == "sync"


def test_stripe_emits_assets_for_what_it_refreshes(dagbag):
    from airflow.sdk import Asset, AssetAlias

    dag = dagbag.dags["airbyte_stripe_to_postgres"]
    outlets = [
        outlet
        for task_id in ("sync_stripe", "transform_stripe_daily_revenue")
        for outlet in dag.get_task(task_id).outlets
    ]
    # Airflow normalises "scheme://name" to "scheme://name/"
    uris = {o.uri.rstrip("/") for o in outlets if isinstance(o, Asset)}
    assert uris == {"airbyte://stripe_postgres", "warehouse://analytics_stripe_daily_revenue"}
    # The raw tables' Assets are named at run time, like their OpenLineage outputs.
    assert [o.name for o in outlets if isinstance(o, AssetAlias)] == ["airbyte_stripe_tables"]
