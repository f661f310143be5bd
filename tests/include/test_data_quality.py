"""Great Expectations checkpoints run for real against warehouses a sync filled.

No GX or warehouse code is mocked: the suites under ``include/gx`` run in ephemeral GX
contexts against SQLite files (and a throwaway PostgreSQL cluster) written by the Airbyte
stand-in's own ``Warehouse.sync``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
from great_expectations_provider.common.errors import GXValidationFailed
from great_expectations_provider.operators.validate_checkpoint import (
    GXValidateCheckpointOperator,
)

from dev.airbyte_standin.seed import TABLE_NAMES
from include.data_quality import (
    CHECKPOINTS_DIR,
    SUITES_DIR,
    DataQualityConfigError,
    DataQualityError,
    build_checkpoint,
    checkpoint_factory,
    checkpoint_names,
    load_checkpoint_spec,
    load_suite_dict,
    prepare_gx,
    run_checkpoint,
    summarize,
)
from include.warehouse import WarehouseConnectionNotFound
from tests.include.conftest import (
    execute,
    fill_warehouse,
    set_warehouse_connection,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
STRIPE = "stripe_postgres_checkpoint"
CHECKPOINTS = ("stripe_postgres_checkpoint", "hubspot_checkpoint", "salesforce_checkpoint")

BAD_CHARGES = """
INSERT INTO stripe_charges
    (id, customer_id, amount, currency, status, created, _airbyte_raw_id, _airbyte_extracted_at)
VALUES
    ('ch_0bad1', :customer, -500, 'usd', 'succeeded', :now, 'raw-1', :now),
    ('ch_0bad2', :customer, 1200, 'xxx', 'succeeded', :now, 'raw-2', :now),
    ('ch_0bad3', NULL, 1200, 'eur', 'succeeded', :now, 'raw-3', :now)
"""
NOW = "2026-01-01 00:00:00"


class RecordingTaskInstance:
    """Stands in for Airflow's TaskInstance: records what would go to XCom."""

    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


def first_customer(url: str) -> str:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as db:
            return db.execute(sa.text("SELECT min(id) FROM stripe_customers")).scalar_one()
    finally:
        engine.dispose()


def spoil_charges(url: str) -> None:
    """A negative amount, an unknown currency and a charge without customer."""
    execute(url, BAD_CHARGES, customer=first_customer(url), now=NOW)


def failures_by_check(summary: dict) -> dict[tuple, dict]:
    return {(f["table"], f["column"], f["expectation"]): f for f in summary["failures"]}


def checkpoint_tables(checkpoint_name: str) -> list[str]:
    """Tables the checkpoint validates, in order."""
    return [v["table"] for v in load_checkpoint_spec(checkpoint_name)["validations"]]


def run_operator(checkpoint: str) -> tuple[dict, Exception | None]:
    """Run ``GXValidateCheckpointOperator`` as a DAG does; return its XCom value and error."""
    operator = GXValidateCheckpointOperator(
        task_id=checkpoint,
        configure_checkpoint=checkpoint_factory(checkpoint),
        context_type="ephemeral",
        on_execute_callback=prepare_gx,
    )
    ti = RecordingTaskInstance()
    error = None
    context = {"ti": ti, "params": {}}
    try:
        for callback in operator.on_execute_callback:  # what the task runner does first
            callback(context)
        assert operator.execute(context=context) is None
    except GXValidationFailed as exc:
        error = exc
    return ti.pushed["return_value"], error


# --------------------------------------------------------------------------------------------
# The files under include/gx
# --------------------------------------------------------------------------------------------


def test_parsing_the_dags_leaves_environment_and_loggers_alone():
    """Preparing GX (env var, logger levels) happens when a GX task runs, not at parse time."""
    code = (
        "import json, logging, os, warnings; warnings.simplefilter('ignore')\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "before = dict(os.environ)\n"
        "bag = DagBag(dag_folder='dags', safe_mode=False)\n"
        "assert not bag.import_errors, bag.import_errors\n"
        "keys = set(os.environ) | set(before)\n"
        "changed = sorted(k for k in keys if os.environ.get(k) != before.get(k))\n"
        "gx = logging.getLogger('great_expectations')\n"
        "print(json.dumps([changed, gx.level, len(bag.dags)]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "GX_ANALYTICS_ENABLED"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    changed, gx_level, dags = json.loads(done.stdout.strip().splitlines()[-1])
    assert dags == len(list((REPO_ROOT / "dags").glob("*.py")))  # every DAG file parsed
    assert "GX_ANALYTICS_ENABLED" not in changed
    assert gx_level == logging.NOTSET


def test_importing_the_module_does_not_import_great_expectations():
    code = (
        "import sys, include.data_quality; "
        "assert 'great_expectations' not in sys.modules, 'great_expectations was imported'"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_checkpoints_cover_every_synced_table():
    assert checkpoint_names() == sorted(CHECKPOINTS)
    covered = [table for name in CHECKPOINTS for table in checkpoint_tables(name)]
    assert sorted(covered) == sorted(TABLE_NAMES)
    assert checkpoint_tables(STRIPE) == ["stripe_customers", "stripe_charges", "stripe_invoices"]


def test_every_suite_file_is_named_after_its_suite_and_used():
    used = {v["suite"] for name in CHECKPOINTS for v in load_checkpoint_spec(name)["validations"]}
    files = {path.stem for path in SUITES_DIR.glob("*.json")}
    assert files == used
    for name in files:
        suite = json.loads((SUITES_DIR / f"{name}.json").read_text())
        assert suite["name"] == name
        assert suite["expectations"], name
    for path in CHECKPOINTS_DIR.glob("*.json"):
        assert json.loads(path.read_text())["name"] == path.stem


def test_unknown_checkpoint_is_refused_when_the_dag_is_parsed():
    with pytest.raises(DataQualityConfigError, match="Defined checkpoints: hubspot_checkpoint"):
        checkpoint_factory("stripe_checkpoint")


def test_unknown_suite_is_refused():
    with pytest.raises(DataQualityConfigError, match="no file"):
        load_suite_dict("stripe_refunds")


# --------------------------------------------------------------------------------------------
# run_checkpoint on SQLite
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("checkpoint", CHECKPOINTS)
def test_checkpoint_passes_on_synced_data(sqlite_connection, checkpoint):
    summary = run_checkpoint(checkpoint)

    assert summary["success"] is True
    assert summary["checkpoint"] == checkpoint
    assert list(summary["tables"]) == checkpoint_tables(checkpoint)
    assert summary["failed"] == 0
    assert summary["failures"] == []
    assert summary["evaluated"] == summary["successful"] > 3 * len(summary["tables"])
    assert json.loads(json.dumps(summary)) == summary


def test_checkpoint_passes_after_several_syncs(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    fill_warehouse(url, syncs=3)
    set_warehouse_connection(
        monkeypatch, {"conn_type": "sqlite", "host": str(tmp_path / "warehouse.db")}
    )
    assert run_checkpoint(STRIPE)["success"] is True


def test_bad_charges_fail_with_a_readable_summary(sqlite_connection):
    spoil_charges(sqlite_connection)

    with pytest.raises(DataQualityError) as caught:
        run_checkpoint(STRIPE)

    summary = caught.value.summary
    assert summary["success"] is False
    assert summary["tables"]["stripe_charges"]["success"] is False
    assert summary["tables"]["stripe_customers"] == {
        "success": True,
        "evaluated": summary["tables"]["stripe_customers"]["evaluated"],
        "failed": 0,
    }
    failures = failures_by_check(summary)
    amount = failures["stripe_charges", "amount", "expect_column_values_to_be_between"]
    assert amount["unexpected_count"] == 1
    assert amount["unexpected_sample"] == [-500]
    currency = failures["stripe_charges", "currency", "expect_column_values_to_be_in_set"]
    assert currency["unexpected_sample"] == ["xxx"]
    assert ("stripe_charges", "customer_id", "expect_column_values_to_not_be_null") in failures
    assert summary["failed"] == len(summary["failures"]) == 3
    assert summary["successful"] == summary["evaluated"] - 3

    message = str(caught.value)
    lines = message.splitlines()
    assert lines[0] == (
        f"stripe_postgres_checkpoint failed 3 of {summary['evaluated']} checks on stripe_charges:"
    )
    assert "  - stripe_charges.amount: expect_column_values_to_be_between — 1 unexpected" in (
        message
    )
    assert "e.g. [-500]" in message
    assert (
        "  - stripe_charges.currency: expect_column_values_to_be_in_set — 1 unexpected (4.3%), "
        "e.g. ['xxx']" in lines
    )
    assert "stripe_charges.customer_id: expect_column_values_to_not_be_null — 1 unexpected" in (
        message
    )


def test_null_and_duplicate_ids_fail_where_tables_have_no_primary_key(tmp_path, monkeypatch):
    """Airbyte's Postgres destination creates no primary keys: ids are only as good as checked."""
    path = tmp_path / "warehouse.db"
    url = f"sqlite:///{path}"
    fill_warehouse(url, primary_keys=False)
    execute(
        url,
        "INSERT INTO stripe_customers SELECT NULL, 'no-id@example.com', name, created, "
        "'raw-x', _airbyte_extracted_at FROM stripe_customers LIMIT 1",
        "INSERT INTO stripe_customers SELECT id, 'not-an-email', name, created, "
        "'raw-y', _airbyte_extracted_at FROM stripe_customers WHERE id IS NOT NULL LIMIT 1",
    )
    set_warehouse_connection(monkeypatch, f"sqlite:///{path}")

    with pytest.raises(DataQualityError) as caught:
        run_checkpoint(STRIPE)

    failures = failures_by_check(caught.value.summary)
    assert set(failures) == {
        ("stripe_customers", "id", "expect_column_values_to_not_be_null"),
        ("stripe_customers", "id", "expect_column_values_to_be_unique"),
        ("stripe_customers", "email", "expect_column_values_to_match_regex"),
    }
    assert (
        failures["stripe_customers", "id", "expect_column_values_to_be_unique"]["unexpected_count"]
        == 2
    )
    assert "stripe_customers.id: expect_column_values_to_not_be_null — 1 unexpected" in str(
        caught.value
    )


def test_orphan_charges_and_fractional_amounts_fail(sqlite_connection):
    execute(
        sqlite_connection,
        "UPDATE stripe_charges SET customer_id = 'cus_unknown' WHERE id = (SELECT min(id) FROM "
        "stripe_charges)",
        "UPDATE stripe_invoices SET amount_due = 10.5 WHERE id = (SELECT min(id) FROM "
        "stripe_invoices)",
    )
    with pytest.raises(DataQualityError) as caught:
        run_checkpoint(STRIPE)

    failures = caught.value.summary["failures"]
    assert [(f["table"], f["column"], f["observed_value"]) for f in failures] == [
        ("stripe_charges", None, 1),
        ("stripe_invoices", None, 1),
    ]
    assert failures[0]["description"] == "every customer_id exists in stripe_customers.id"
    assert "stripe_charges: unexpected_rows_expectation (every customer_id exists in " in str(
        caught.value
    )
    assert "amount_due is a whole number" in failures[1]["description"]


def test_missing_column_and_empty_table(sqlite_connection):
    execute(
        sqlite_connection,
        "ALTER TABLE hubspot_contacts DROP COLUMN lifecyclestage",
        "DELETE FROM hubspot_deals",
    )
    with pytest.raises(DataQualityError) as caught:
        run_checkpoint("hubspot_checkpoint")

    failures = failures_by_check(caught.value.summary)
    row_count = failures["hubspot_deals", None, "expect_table_row_count_to_be_between"]
    assert row_count["observed_value"] == 0
    columns = failures["hubspot_contacts", None, "expect_table_columns_to_match_set"]
    assert "lifecyclestage" not in columns["observed_value"]
    missing = failures["hubspot_contacts", "lifecyclestage", "expect_column_values_to_be_in_set"]
    assert 'The column "lifecyclestage" in BatchData does not exist' in missing["error"]
    message = str(caught.value)
    assert "hubspot_deals: expect_table_row_count_to_be_between — observed 0" in message
    assert "hubspot_contacts.lifecyclestage: expect_column_values_to_be_in_set — could not run" in (
        message
    )


def test_summaries_of_the_result_and_of_its_dict_agree(sqlite_warehouse):
    import great_expectations as gx

    spoil_charges(sqlite_warehouse)
    context = gx.get_context(mode="ephemeral")
    result = build_checkpoint(context, STRIPE, sqlite_warehouse).run()

    from_result = summarize(result)
    from_dict = summarize(result.describe_dict(), checkpoint_name=STRIPE)

    def without_descriptions(summary):
        return [{k: v for k, v in f.items() if k != "description"} for f in summary["failures"]]

    assert {k: v for k, v in from_result.items() if k != "failures"} == {
        k: v for k, v in from_dict.items() if k != "failures"
    }
    assert without_descriptions(from_result) == without_descriptions(from_dict)


def test_building_twice_in_one_context_reuses_the_datasource(sqlite_warehouse):
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    for name in (*CHECKPOINTS, STRIPE):
        assert summarize(build_checkpoint(context, name, sqlite_warehouse).run())["success"]
    assert [ds.name for ds in context.data_sources.all().values()] == ["warehouse"]


# --------------------------------------------------------------------------------------------
# Through the GX provider's operator
# --------------------------------------------------------------------------------------------


def test_operator_passes_on_synced_data(sqlite_connection):
    pushed, error = run_operator(STRIPE)

    assert error is None
    assert pushed["success"] is True
    summary = summarize(pushed, checkpoint_name=STRIPE)
    assert summary["success"] is True
    assert list(summary["tables"]) == checkpoint_tables(STRIPE)


def test_operator_fails_on_bad_data_and_pushes_the_result(sqlite_connection):
    spoil_charges(sqlite_connection)

    pushed, error = run_operator(STRIPE)

    assert isinstance(error, GXValidationFailed)
    assert "expect_column_values_to_be_in_set" in str(error)
    summary = summarize(pushed, checkpoint_name=STRIPE)
    assert summary["success"] is False
    currency = failures_by_check(summary)[
        "stripe_charges", "currency", "expect_column_values_to_be_in_set"
    ]
    assert currency["unexpected_sample"] == ["xxx"]
    assert json.loads(json.dumps(summary)) == summary


def test_factory_reads_the_connection_only_when_the_task_runs(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_WAREHOUSE_DEFAULT", raising=False)
    configure = checkpoint_factory(STRIPE)  # DAG parse time: no Connection needed
    with pytest.raises(WarehouseConnectionNotFound, match="AIRFLOW_CONN_WAREHOUSE_DEFAULT"):
        configure(None)


# --------------------------------------------------------------------------------------------
# PostgreSQL: the same files, unchanged
# --------------------------------------------------------------------------------------------


def test_stripe_checkpoint_on_postgres(postgres_server, postgres_url, monkeypatch):
    fill_warehouse(postgres_url)
    database = postgres_url.rsplit("/", 1)[1]
    set_warehouse_connection(monkeypatch, postgres_server.connection(database))

    assert run_checkpoint(STRIPE)["success"] is True
    pushed, error = run_operator(STRIPE)
    assert error is None
    assert pushed["success"] is True

    spoil_charges(postgres_url)
    with pytest.raises(DataQualityError) as caught:
        run_checkpoint(STRIPE)
    assert set(failures_by_check(caught.value.summary)) == {
        ("stripe_charges", "amount", "expect_column_values_to_be_between"),
        ("stripe_charges", "currency", "expect_column_values_to_be_in_set"),
        ("stripe_charges", "customer_id", "expect_column_values_to_not_be_null"),
    }
    assert "stripe_charges.currency: expect_column_values_to_be_in_set — 1 unexpected" in str(
        caught.value
    )


@pytest.mark.parametrize("checkpoint", ["hubspot_checkpoint", "salesforce_checkpoint"])
def test_other_checkpoints_on_postgres(postgres_server, postgres_url, monkeypatch, checkpoint):
    fill_warehouse(postgres_url, syncs=2)
    database = postgres_url.rsplit("/", 1)[1]
    set_warehouse_connection(monkeypatch, postgres_server.connection(database))
    summary = run_checkpoint(checkpoint)
    assert summary["success"] is True
    assert summary["tables"][checkpoint_tables(checkpoint)[-1]]["evaluated"] > 0


def test_wrong_postgres_password_is_not_revealed(postgres_server, monkeypatch):
    wrong = "Wr0ng:p@ss/word"
    set_warehouse_connection(monkeypatch, {**postgres_server.connection(), "password": wrong})
    with pytest.raises(Exception) as caught:  # noqa: PT011 - whatever GX raises
        run_checkpoint(STRIPE)
    text = "".join(traceback.format_exception(caught.value))
    assert "password authentication failed" in text
    assert wrong not in text
    assert postgres_server.password not in text


def test_great_expectations_stays_quiet(sqlite_connection, caplog):
    caplog.set_level(logging.DEBUG)
    run_checkpoint("salesforce_checkpoint")
    run_operator("salesforce_checkpoint")
    chatter = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("great_expectations") and r.levelno < logging.WARNING
    ]
    assert chatter == []
