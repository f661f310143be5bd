"""Great Expectations checkpoints run for real against warehouses a sync filled.

Each checkpoint runs as the DAGs run it: ``GXValidateCheckpointOperator`` with
``configure_checkpoint=checkpoint_factory(name)``, ``context_type="ephemeral"`` and
``prepare_gx`` as ``on_execute_callback``, executed against SQLite files (and a throwaway
PostgreSQL cluster) written by the Airbyte stand-in's own ``Warehouse.sync``. No GX or
warehouse code is mocked. What the tests read is what a DAG run leaves behind: the
``CheckpointResult.describe_dict()`` the operator pushes to XCom and the
``GXValidationFailed`` it raises.
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
    DATASOURCE_NAME,
    SUITES_DIR,
    DataQualityConfigError,
    checkpoint_factory,
    checkpoint_names,
    load_checkpoint_spec,
    load_suite_dict,
    prepare_gx,
)
from include.warehouse import WarehouseConnectionNotFound
from tests.include.conftest import (
    ROWS_PER_STREAM,
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
BAD_CHARGE_CHECKS = {
    ("stripe_charges", "amount", "expect_column_values_to_be_between"),
    ("stripe_charges", "currency", "expect_column_values_to_be_in_set"),
    ("stripe_charges", "customer_id", "expect_column_values_to_not_be_null"),
}


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


def checkpoint_tables(checkpoint_name: str) -> list[str]:
    """Tables the checkpoint validates, in order."""
    return [v["table"] for v in load_checkpoint_spec(checkpoint_name)["validations"]]


# --------------------------------------------------------------------------------------------
# Running the operator as a DAG does, and reading what it leaves behind
# --------------------------------------------------------------------------------------------


def run_operator(checkpoint: str, ti: RecordingTaskInstance) -> None:
    """Run the checkpoint's ``GXValidateCheckpointOperator`` as the task runner does:
    ``on_execute_callback`` first, then ``execute``; raises what the task would."""
    operator = GXValidateCheckpointOperator(
        task_id=checkpoint,
        configure_checkpoint=checkpoint_factory(checkpoint),
        context_type="ephemeral",
        on_execute_callback=prepare_gx,
    )
    context = {"ti": ti, "params": {}}
    for callback in operator.on_execute_callback:
        callback(context)
    assert operator.execute(context=context) is None


def passes(checkpoint: str) -> dict:
    """Run the operator, which must succeed; return the result it pushed to XCom."""
    ti = RecordingTaskInstance()
    run_operator(checkpoint, ti)
    result = ti.pushed["return_value"]
    assert result["success"] is True
    assert json.loads(json.dumps(result)) == result  # XCom stores it as JSON
    return result


def fails(checkpoint: str) -> tuple[dict, GXValidationFailed]:
    """Run the operator, which must fail the task; return its XCom result and the error."""
    ti = RecordingTaskInstance()
    with pytest.raises(GXValidationFailed) as caught:
        run_operator(checkpoint, ti)
    result = ti.pushed["return_value"]
    assert result["success"] is False
    assert json.loads(json.dumps(result)) == result
    assert caught.value.xcom_location == f"Task '{checkpoint}' -> XCom key 'return_value'"
    return result, caught.value


def table_of(check: dict) -> str:
    """The table a check ran on: GX's batch id is ``<datasource>-<table>``."""
    return check["kwargs"]["batch_id"].removeprefix(f"{DATASOURCE_NAME}-")


def by_table(result: dict) -> dict[str, dict]:
    """The validation result of each table, in the checkpoint's order."""
    return {table_of(v["expectations"][0]): v for v in result["validation_results"]}


def failed(result: dict) -> list[dict]:
    return [c for v in result["validation_results"] for c in v["expectations"] if not c["success"]]


def failed_checks(result: dict) -> dict[tuple, dict]:
    """The failed checks keyed by (table, column or None, expectation type)."""
    return {
        (table_of(c), c["kwargs"].get("column"), c["expectation_type"]): c for c in failed(result)
    }


def description(check: dict) -> str:
    """The ``description`` the suite file gives the check (GX leaves it out of the result)."""
    kwargs = {k: v for k, v in check["kwargs"].items() if k != "batch_id"}
    suite = load_suite_dict(table_of(check))["expectations"]
    [text] = [e["description"] for e in suite if e["kwargs"] == kwargs]
    return text


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
        "files = {os.path.basename(d.fileloc) for d in bag.dags.values()}\n"
        "print(json.dumps([changed, gx.level, sorted(files)]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "GX_ANALYTICS_ENABLED"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    changed, gx_level, files = json.loads(done.stdout.strip().splitlines()[-1])
    assert files == sorted(p.name for p in (REPO_ROOT / "dags").glob("*.py"))  # every file parsed
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
    # GitHub's tables (the demo's generated DAG) have no checkpoint.
    assert sorted(covered) == sorted(t for t in TABLE_NAMES if not t.startswith("github_"))
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


def test_factory_reads_the_connection_only_when_the_task_runs(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_WAREHOUSE_DEFAULT", raising=False)
    configure = checkpoint_factory(STRIPE)  # DAG parse time: no Connection needed
    with pytest.raises(WarehouseConnectionNotFound, match="AIRFLOW_CONN_WAREHOUSE_DEFAULT"):
        configure(None)


# --------------------------------------------------------------------------------------------
# Passing checkpoints (SQLite)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("checkpoint", CHECKPOINTS)
def test_checkpoint_passes_on_synced_data(sqlite_connection, checkpoint):
    result = passes(checkpoint)

    tables = by_table(result)
    assert list(tables) == checkpoint_tables(checkpoint)
    assert result["statistics"]["unsuccessful_validations"] == 0
    assert failed(result) == []
    for validation in tables.values():
        statistics = validation["statistics"]
        assert statistics["unsuccessful_expectations"] == 0
        assert statistics["evaluated_expectations"] == statistics["successful_expectations"] > 3


def test_checkpoint_passes_after_several_syncs(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    fill_warehouse(url, syncs=3)
    set_warehouse_connection(
        monkeypatch, {"conn_type": "sqlite", "host": str(tmp_path / "warehouse.db")}
    )
    charges = by_table(passes(STRIPE))["stripe_charges"]["expectations"]
    [row_count] = [c for c in charges if c["expectation_type"].startswith("expect_table_row_count")]
    assert row_count["result"]["observed_value"] == 3 * ROWS_PER_STREAM


def test_checkpoint_reuses_the_datasource_when_configured_twice_in_one_context(
    sqlite_connection,
):
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    for name in (*CHECKPOINTS, STRIPE):
        assert checkpoint_factory(name)(context).run().success is True
    assert [ds.name for ds in context.data_sources.all().values()] == ["warehouse"]


# --------------------------------------------------------------------------------------------
# Failing checkpoints (SQLite): the task fails, XCom says which checks and why
# --------------------------------------------------------------------------------------------


def test_bad_charges_fail_the_task_and_xcom_names_each_check(sqlite_connection):
    spoil_charges(sqlite_connection)

    result, error = fails(STRIPE)

    tables = by_table(result)
    assert tables["stripe_charges"]["success"] is False
    assert tables["stripe_customers"]["success"] is True
    assert tables["stripe_customers"]["statistics"]["unsuccessful_expectations"] == 0
    charges = tables["stripe_charges"]["statistics"]
    assert charges["unsuccessful_expectations"] == 3
    assert charges["successful_expectations"] == charges["evaluated_expectations"] - 3
    failures = failed_checks(result)
    assert set(failures) == BAD_CHARGE_CHECKS
    amount = failures["stripe_charges", "amount", "expect_column_values_to_be_between"]
    assert amount["result"]["unexpected_count"] == 1
    assert amount["result"]["partial_unexpected_list"] == [-500]
    currency = failures["stripe_charges", "currency", "expect_column_values_to_be_in_set"]
    assert currency["result"]["unexpected_count"] == 1
    assert round(currency["result"]["unexpected_percent"], 1) == 4.3
    assert currency["result"]["partial_unexpected_list"] == ["xxx"]
    customer = failures["stripe_charges", "customer_id", "expect_column_values_to_not_be_null"]
    assert customer["result"]["unexpected_count"] == 1

    assert error.failed_expectation_types == sorted(check for _, _, check in BAD_CHARGE_CHECKS)
    assert error.statistics == result["statistics"]
    assert str(error).splitlines() == [
        "Great Expectations data validation failed.",
        f"Full validation result available at: Task '{STRIPE}' -> XCom key 'return_value'",
        "Statistics:",
        "  evaluated_validations: 3",
        f"  success_percent: {result['statistics']['success_percent']}",
        "  successful_validations: 2",
        "  unsuccessful_validations: 1",
        "Failed expectation types (3):",
        "  - expect_column_values_to_be_between",
        "  - expect_column_values_to_be_in_set",
        "  - expect_column_values_to_not_be_null",
    ]


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

    result, error = fails(STRIPE)

    failures = failed_checks(result)
    assert set(failures) == {
        ("stripe_customers", "id", "expect_column_values_to_not_be_null"),
        ("stripe_customers", "id", "expect_column_values_to_be_unique"),
        ("stripe_customers", "email", "expect_column_values_to_match_regex"),
    }
    unique = failures["stripe_customers", "id", "expect_column_values_to_be_unique"]
    assert unique["result"]["unexpected_count"] == 2
    not_null = failures["stripe_customers", "id", "expect_column_values_to_not_be_null"]
    assert not_null["result"]["unexpected_count"] == 1
    email = failures["stripe_customers", "email", "expect_column_values_to_match_regex"]
    assert email["result"]["partial_unexpected_list"] == ["not-an-email"]
    assert "expect_column_values_to_be_unique" in error.failed_expectation_types


def test_orphan_charges_and_fractional_amounts_fail(sqlite_connection):
    execute(
        sqlite_connection,
        "UPDATE stripe_charges SET customer_id = 'cus_unknown' WHERE id = (SELECT min(id) FROM "
        "stripe_charges)",
        "UPDATE stripe_invoices SET amount_due = 10.5 WHERE id = (SELECT min(id) FROM "
        "stripe_invoices)",
    )
    result, error = fails(STRIPE)

    failures = failed(result)
    assert [
        (table_of(f), f["expectation_type"], f["result"]["observed_value"]) for f in failures
    ] == [
        ("stripe_charges", "unexpected_rows_expectation", 1),
        ("stripe_invoices", "unexpected_rows_expectation", 1),
    ]
    assert "customer_id NOT IN" in failures[0]["kwargs"]["unexpected_rows_query"]
    assert description(failures[0]) == "every customer_id exists in stripe_customers.id"
    assert "amount_due is a whole number" in description(failures[1])
    assert error.failed_expectation_types == ["unexpected_rows_expectation"]


def test_missing_column_and_empty_table(sqlite_connection):
    execute(
        sqlite_connection,
        "ALTER TABLE hubspot_contacts DROP COLUMN lifecyclestage",
        "DELETE FROM hubspot_deals",
    )
    result, error = fails("hubspot_checkpoint")

    failures = failed_checks(result)
    row_count = failures["hubspot_deals", None, "expect_table_row_count_to_be_between"]
    assert row_count["result"]["observed_value"] == 0
    columns = failures["hubspot_contacts", None, "expect_table_columns_to_match_set"]
    assert "lifecyclestage" not in columns["result"]["observed_value"]
    assert columns["result"]["details"]["mismatched"]["missing"] == ["lifecyclestage"]
    # The check on the missing column could not run: failed, with no values counted.
    missing = failures["hubspot_contacts", "lifecyclestage", "expect_column_values_to_be_in_set"]
    assert missing["result"] == {}
    assert error.failed_expectation_types == [
        "expect_column_values_to_be_in_set",
        "expect_table_columns_to_match_set",
        "expect_table_row_count_to_be_between",
    ]


def test_missing_table_fails_the_task_before_any_check(sqlite_connection):
    from great_expectations.datasource.fluent.interfaces import TestConnectionError

    execute(sqlite_connection, "DROP TABLE stripe_invoices")
    ti = RecordingTaskInstance()

    with pytest.raises(TestConnectionError, match="no such table: stripe_invoices"):
        run_operator(STRIPE, ti)
    assert ti.pushed == {}  # nothing ran, nothing pushed


def test_xcom_holds_the_whole_checkpoint_result(sqlite_connection):
    """The operator pushes the ``describe_dict()`` of the very checkpoint the factory built."""
    import great_expectations as gx

    spoil_charges(sqlite_connection)
    direct = checkpoint_factory(STRIPE)(gx.get_context(mode="ephemeral")).run()

    result, _ = fails(STRIPE)
    assert result == json.loads(json.dumps(direct.describe_dict()))


# --------------------------------------------------------------------------------------------
# PostgreSQL: the same files, unchanged
# --------------------------------------------------------------------------------------------


def postgres_connection(monkeypatch, postgres_server, postgres_url) -> None:
    database = postgres_url.rsplit("/", 1)[1]
    set_warehouse_connection(monkeypatch, postgres_server.connection(database))


def test_stripe_checkpoint_on_postgres(postgres_server, postgres_url, monkeypatch):
    fill_warehouse(postgres_url)
    postgres_connection(monkeypatch, postgres_server, postgres_url)

    assert list(by_table(passes(STRIPE))) == checkpoint_tables(STRIPE)

    spoil_charges(postgres_url)
    result, error = fails(STRIPE)
    failures = failed_checks(result)
    assert set(failures) == BAD_CHARGE_CHECKS
    currency = failures["stripe_charges", "currency", "expect_column_values_to_be_in_set"]
    assert currency["result"]["unexpected_count"] == 1
    assert currency["result"]["partial_unexpected_list"] == ["xxx"]
    assert "expect_column_values_to_be_in_set" in error.failed_expectation_types


@pytest.mark.parametrize("checkpoint", ["hubspot_checkpoint", "salesforce_checkpoint"])
def test_other_checkpoints_on_postgres(postgres_server, postgres_url, monkeypatch, checkpoint):
    fill_warehouse(postgres_url, syncs=2)
    postgres_connection(monkeypatch, postgres_server, postgres_url)
    last = by_table(passes(checkpoint))[checkpoint_tables(checkpoint)[-1]]
    assert last["statistics"]["evaluated_expectations"] > 0


def test_wrong_postgres_password_is_not_revealed(postgres_server, monkeypatch):
    wrong = "Wr0ng:p@ss/word"
    set_warehouse_connection(monkeypatch, {**postgres_server.connection(), "password": wrong})
    ti = RecordingTaskInstance()
    with pytest.raises(Exception) as caught:  # noqa: PT011 - whatever GX raises
        run_operator(STRIPE, ti)
    text = "".join(traceback.format_exception(caught.value))
    assert "password authentication failed" in text
    assert wrong not in text
    assert postgres_server.password not in text
    assert ti.pushed == {}


def test_great_expectations_stays_quiet(sqlite_connection, caplog):
    caplog.set_level(logging.DEBUG)
    passes("salesforce_checkpoint")
    passes("hubspot_checkpoint")
    chatter = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("great_expectations") and r.levelno < logging.WARNING
    ]
    assert chatter == []
