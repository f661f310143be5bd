"""Great Expectations checks of the synced warehouse tables.

The checks are data, not code: ``include/gx/expectations/<suite>.json`` holds one GX 1.x
Expectation Suite per table (GX's own JSON format), and
``include/gx/checkpoints/<checkpoint>.json`` lists which table each checkpoint validates
with which suite. ``build_checkpoint`` turns them into a GX Checkpoint in a (usually
ephemeral) Data Context pointed at the warehouse.

Two ways to run a checkpoint from a DAG:

- the GX provider's operator, whose ``configure_checkpoint`` is ``checkpoint_factory``::

      GXValidateCheckpointOperator(
          task_id="stripe_postgres_checkpoint",
          configure_checkpoint=checkpoint_factory("stripe_postgres_checkpoint"),
          context_type="ephemeral",
          on_execute_callback=prepare_gx,
      )

  it pushes ``CheckpointResult.describe_dict()`` to XCom (``return_value``) and raises
  ``GXValidationFailed`` when a check fails; ``summarize`` reads that dict;
- ``run_checkpoint`` from a ``@task``: returns ``summarize``'s summary, raises
  ``DataQualityError`` listing every failed check.

Importing this module does not import Great Expectations (about 3 s): DAG files import it
at parse time, GX is imported when a checkpoint is built.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from include.warehouse import DEFAULT_CONN_ID, redact_url, sqlalchemy_url

if TYPE_CHECKING:
    from great_expectations import Checkpoint
    from great_expectations.checkpoint.checkpoint import CheckpointResult
    from great_expectations.data_context import AbstractDataContext

log = logging.getLogger(__name__)

GX_DIR = Path(__file__).resolve().parent / "gx"
SUITES_DIR = GX_DIR / "expectations"
CHECKPOINTS_DIR = GX_DIR / "checkpoints"

#: Name of the GX data source for the warehouse; a batch id is ``<datasource>-<table>``.
DATASOURCE_NAME = "warehouse"
BATCH_DEFINITION_NAME = "whole_table"
DEFAULT_RESULT_FORMAT = "SUMMARY"
#: Unexpected values quoted per failed check.
SAMPLE_SIZE = 5


class DataQualityConfigError(AirflowException):
    """A checkpoint or suite file under ``include/gx`` is missing or malformed."""


class DataQualityError(AirflowFailException):
    """The warehouse data failed its checks; retrying the check will not change the data.

    ``summary`` holds ``summarize``'s dict of the failed run.
    """

    def __init__(self, message: str, summary: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.summary = summary or {}


# --------------------------------------------------------------------------------------------
# The checkpoint and suite files (plain JSON, no GX needed)
# --------------------------------------------------------------------------------------------


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataQualityConfigError(f"{what} file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise DataQualityConfigError(f"{what} file {path} must hold a JSON object.")
    return data


def checkpoint_names() -> list[str]:
    """Names of the checkpoints defined under ``include/gx/checkpoints``."""
    return sorted(path.stem for path in CHECKPOINTS_DIR.glob("*.json"))


def load_checkpoint_spec(checkpoint_name: str) -> dict[str, Any]:
    """The checkpoint file's content, checked: ``name``, ``result_format``, ``validations``.

    Each validation is ``{"table": ..., "suite": ...}``; the suite defaults to the table name.
    """
    path = CHECKPOINTS_DIR / f"{checkpoint_name}.json"
    if not path.is_file():
        raise DataQualityConfigError(
            f"Unknown checkpoint {checkpoint_name!r}: no file {path}. "
            f"Defined checkpoints: {', '.join(checkpoint_names()) or 'none'}."
        )
    spec = _read_json(path, "Checkpoint")
    if spec.get("name", checkpoint_name) != checkpoint_name:
        raise DataQualityConfigError(
            f"Checkpoint file {path} names the checkpoint {spec['name']!r}; "
            "the name must match the file name."
        )
    validations = spec.get("validations")
    if not isinstance(validations, list) or not validations:
        raise DataQualityConfigError(f"Checkpoint file {path} has no 'validations' list.")
    checked = []
    for entry in validations:
        if not isinstance(entry, dict) or not entry.get("table"):
            raise DataQualityConfigError(
                f"Checkpoint file {path}: each validation needs a 'table', got {entry!r}."
            )
        checked.append({"table": entry["table"], "suite": entry.get("suite") or entry["table"]})
    return {
        "name": checkpoint_name,
        "description": spec.get("description", ""),
        "result_format": spec.get("result_format", DEFAULT_RESULT_FORMAT),
        "validations": checked,
    }


def load_suite_dict(suite_name: str) -> dict[str, Any]:
    """The suite file ``include/gx/expectations/<suite_name>.json`` as a dict."""
    path = SUITES_DIR / f"{suite_name}.json"
    if not path.is_file():
        raise DataQualityConfigError(f"Unknown expectation suite {suite_name!r}: no file {path}.")
    suite = _read_json(path, "Expectation suite")
    if suite.get("name", suite_name) != suite_name:
        raise DataQualityConfigError(
            f"Suite file {path} names the suite {suite['name']!r}; "
            "the name must match the file name."
        )
    if not isinstance(suite.get("expectations"), list):
        raise DataQualityConfigError(f"Suite file {path} has no 'expectations' list.")
    return {**suite, "name": suite_name}


# --------------------------------------------------------------------------------------------
# Building and running checkpoints (GX imported here, never at module import)
# --------------------------------------------------------------------------------------------


def _below_warning(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING


def prepare_gx(context: Any = None) -> None:
    """No usage statistics, no INFO chatter; call before importing GX and again after.

    It changes ``os.environ`` and logger levels, so it runs when a task runs, never when a
    DAG file is parsed: ``GXValidateCheckpointOperator(on_execute_callback=prepare_gx)``
    (the operator imports GX before it calls ``configure_checkpoint``).

    GX sets one of its loggers to INFO when imported (``data_context.types.base``, which then
    logs each ephemeral context's temp directory); a filter on it outlives that ``setLevel``.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    names = ["great_expectations"] + [
        name
        for name in list(logging.root.manager.loggerDict)
        if name.startswith("great_expectations.")
    ]
    for name in names:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING and (logger.level or name == "great_expectations"):
            logger.setLevel(logging.WARNING)
    chatty = logging.getLogger("great_expectations.data_context.types.base")
    if _below_warning not in chatty.filters:
        chatty.addFilter(_below_warning)


def _add_datasource(context: AbstractDataContext, url: str) -> Any:
    """The warehouse data source, created or replaced when its URL changed."""
    from sqlalchemy.engine import make_url

    backend = make_url(url).get_backend_name()
    sources = context.data_sources
    try:
        existing = sources.get(DATASOURCE_NAME)
    except (KeyError, ValueError, LookupError):
        existing = None
    if existing is not None and str(getattr(existing, "connection_string", "")) == url:
        return existing
    if existing is not None:
        sources.delete(DATASOURCE_NAME)
    if backend == "sqlite":
        return sources.add_sqlite(DATASOURCE_NAME, connection_string=url)
    if backend == "postgresql":
        return sources.add_postgres(DATASOURCE_NAME, connection_string=url)
    return sources.add_sql(DATASOURCE_NAME, connection_string=url)


def _batch_definition(datasource: Any, table: str) -> Any:
    try:
        asset = datasource.get_asset(table)
    except LookupError:
        asset = datasource.add_table_asset(name=table, table_name=table)
    try:
        return asset.get_batch_definition(BATCH_DEFINITION_NAME)
    except (KeyError, LookupError, ValueError):
        return asset.add_batch_definition_whole_table(BATCH_DEFINITION_NAME)


def _suite(suite_name: str) -> Any:
    import great_expectations as gx

    data = load_suite_dict(suite_name)
    data.pop("id", None)
    try:
        return gx.ExpectationSuite(**data)
    except Exception as exc:
        raise DataQualityConfigError(
            f"Suite file {SUITES_DIR / (suite_name + '.json')} is not a valid GX suite: {exc}"
        ) from exc


def build_checkpoint(
    context: AbstractDataContext, checkpoint_name: str, sqlalchemy_url: str
) -> Checkpoint:
    """Register the warehouse, its tables and the suites in ``context``; return the checkpoint.

    Adds (or reuses) the SQL data source ``warehouse`` for ``sqlalchemy_url``, one table
    asset with a whole-table batch definition per table the checkpoint covers, the suites from
    ``include/gx/expectations`` and one validation definition per table
    (``<checkpoint>:<table>``). Calling it again on the same context updates in place.
    """
    prepare_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    prepare_gx()  # again: importing GX set some of its loggers to INFO
    spec = load_checkpoint_spec(checkpoint_name)
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    datasource = _add_datasource(context, sqlalchemy_url)
    definitions = []
    for validation in spec["validations"]:
        table, suite_name = validation["table"], validation["suite"]
        suite = context.suites.add_or_update(_suite(suite_name))
        definitions.append(
            context.validation_definitions.add_or_update(
                gx.ValidationDefinition(
                    name=f"{checkpoint_name}:{table}",
                    data=_batch_definition(datasource, table),
                    suite=suite,
                )
            )
        )
    checkpoint = gx.Checkpoint(
        name=checkpoint_name,
        validation_definitions=definitions,
        result_format=spec["result_format"],
    )
    return context.checkpoints.add_or_update(checkpoint)


def checkpoint_factory(
    checkpoint_name: str, conn_id: str = DEFAULT_CONN_ID
) -> Callable[[AbstractDataContext], Checkpoint]:
    """``configure_checkpoint`` for ``GXValidateCheckpointOperator``.

    Checks at DAG parse time that the checkpoint file exists (cheap, no GX, no Connection);
    the Connection is read and GX is imported only when the operator calls the result.
    """
    load_checkpoint_spec(checkpoint_name)

    def configure_checkpoint(context: AbstractDataContext) -> Checkpoint:
        url = sqlalchemy_url(conn_id)
        log.info("Checkpoint %s against %s", checkpoint_name, redact_url(url))
        return build_checkpoint(context, checkpoint_name, url)

    configure_checkpoint.__name__ = f"configure_{checkpoint_name}"
    configure_checkpoint.__qualname__ = configure_checkpoint.__name__
    return configure_checkpoint


def run_checkpoint(checkpoint_name: str, conn_id: str = DEFAULT_CONN_ID) -> dict[str, Any]:
    """Run the checkpoint against the warehouse in an ephemeral GX context; return its summary.

    :raises DataQualityError: a check failed; the message lists each failed check.
    :raises WarehouseConnectionError: the Connection is missing or unusable.
    """
    url = sqlalchemy_url(conn_id)
    prepare_gx()
    import great_expectations as gx

    log.info("Running checkpoint %s against %s", checkpoint_name, redact_url(url))
    context = gx.get_context(mode="ephemeral")
    result = build_checkpoint(context, checkpoint_name, url).run()
    summary = summarize(result)
    if not summary["success"]:
        raise DataQualityError(failure_message(summary), summary)
    log.info(
        "Checkpoint %s passed: %d checks on %s",
        checkpoint_name,
        summary["evaluated"],
        ", ".join(summary["tables"]),
    )
    return summary


# --------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return json.loads(json.dumps(value, default=str))
    return value


def _table_from_batch_id(batch_id: str | None) -> str | None:
    if not batch_id:
        return None
    prefix = f"{DATASOURCE_NAME}-"
    return batch_id[len(prefix) :] if batch_id.startswith(prefix) else batch_id.split("-", 1)[-1]


def _exception_message(exception_info: Any) -> str | None:
    """The first exception message in GX's exception_info (flat or keyed by metric id)."""
    if not isinstance(exception_info, Mapping):
        return None
    if exception_info.get("raised_exception"):
        return str(exception_info.get("exception_message") or "raised an exception")
    for info in exception_info.values():
        message = _exception_message(info)
        if message:
            return message
    return None


def _checks(result: Any) -> Iterator[dict[str, Any]]:
    """One dict per evaluated expectation: table, type, kwargs, success, result, error."""
    if hasattr(result, "run_results"):  # a CheckpointResult object
        for validation in result.run_results.values():
            batch = (validation.meta or {}).get("active_batch_definition") or {}
            for evr in validation.results:
                config = evr.expectation_config
                kwargs = dict(config.kwargs) if config else {}
                yield {
                    "table": batch.get("data_asset_name")
                    or _table_from_batch_id(kwargs.get("batch_id")),
                    "expectation": config.type if config else None,
                    "description": getattr(config, "description", None) if config else None,
                    "kwargs": kwargs,
                    "success": bool(evr.success),
                    "result": dict(evr.result or {}),
                    "error": _exception_message(evr.exception_info),
                }
        return
    if not isinstance(result, Mapping):
        raise TypeError(
            f"summarize() takes a GX CheckpointResult or its describe_dict(), "
            f"not {type(result).__name__}"
        )
    for validation in result.get("validation_results") or []:
        for expectation in validation.get("expectations") or []:
            kwargs = dict(expectation.get("kwargs") or {})
            yield {
                "table": _table_from_batch_id(kwargs.get("batch_id")),
                "expectation": expectation.get("expectation_type"),
                "description": None,
                "kwargs": kwargs,
                "success": bool(expectation.get("success")),
                "result": dict(expectation.get("result") or {}),
                "error": _exception_message(expectation.get("exception_info")),
            }


def _failure(check: dict[str, Any]) -> dict[str, Any]:
    kwargs, result = check["kwargs"], check["result"]
    column = kwargs.get("column")
    if column is None and "column_A" in kwargs:
        column = f"{kwargs['column_A']}, {kwargs.get('column_B')}"
    if column is None and "column_list" in kwargs:
        column = ", ".join(map(str, kwargs["column_list"]))
    failure: dict[str, Any] = {
        "table": check["table"],
        "column": column,
        "expectation": check["expectation"],
        "observed_value": result.get("observed_value"),
        "unexpected_count": result.get("unexpected_count"),
        "unexpected_percent": result.get("unexpected_percent"),
        "unexpected_sample": list(result.get("partial_unexpected_list") or [])[:SAMPLE_SIZE],
    }
    if check["description"]:
        failure["description"] = check["description"]
    if "unexpected_rows_query" in kwargs:
        failure["query"] = kwargs["unexpected_rows_query"]
    if check["error"]:
        failure["error"] = check["error"]
    return _json_safe(failure)


def summarize(
    result: CheckpointResult | Mapping[str, Any], checkpoint_name: str | None = None
) -> dict[str, Any]:
    """A compact, JSON-serialisable summary of a checkpoint run.

    Takes a GX ``CheckpointResult`` or its ``describe_dict()`` (what
    ``GXValidateCheckpointOperator`` pushes to XCom). Returns ``success``, the numbers of
    ``evaluated``/``successful``/``failed`` expectations, per-table counts under ``tables``
    and one entry per failed expectation under ``failures``: ``table``, ``column`` (None for
    table-level checks), ``expectation``, ``observed_value``, ``unexpected_count``,
    ``unexpected_percent``, ``unexpected_sample`` and, where relevant, ``description``,
    ``query`` (custom SQL checks) and ``error`` (the check could not run). ``checkpoint`` is
    ``checkpoint_name`` or, for a ``CheckpointResult``, the checkpoint's own name.
    """
    checks = list(_checks(result))
    tables: dict[str, dict[str, Any]] = {}
    for check in checks:
        entry = tables.setdefault(
            str(check["table"]), {"success": True, "evaluated": 0, "failed": 0}
        )
        entry["evaluated"] += 1
        if not check["success"]:
            entry["failed"] += 1
            entry["success"] = False
    failures = [_failure(check) for check in checks if not check["success"]]
    if hasattr(result, "success"):
        success = bool(result.success)
    else:
        success = bool(result.get("success", not failures))
    summary: dict[str, Any] = {
        "success": success and not failures,
        "evaluated": len(checks),
        "successful": len(checks) - len(failures),
        "failed": len(failures),
        "tables": tables,
        "failures": failures,
    }
    name = checkpoint_name or getattr(getattr(result, "checkpoint_config", None), "name", None)
    return {"checkpoint": name, **summary}


def _describe_failure(failure: Mapping[str, Any]) -> str:
    where = failure["table"]
    if failure.get("column"):
        where = f"{where}.{failure['column']}"
    what = failure["expectation"]
    if failure.get("description"):
        what = f"{what} ({failure['description']})"
    if failure.get("error"):
        observed = f"could not run: {failure['error']}"
    elif failure.get("unexpected_count") is not None:
        observed = f"{failure['unexpected_count']} unexpected"
        if failure.get("unexpected_percent") is not None:
            observed += f" ({failure['unexpected_percent']:.1f}%)"
        if failure.get("unexpected_sample"):
            observed += f", e.g. {failure['unexpected_sample']}"
    elif "query" in failure:
        observed = f"{failure['observed_value']} rows returned by: {failure['query']}"
    else:
        observed = f"observed {failure['observed_value']!r}"
    return f"{where}: {what} — {observed}"


def failure_message(summary: Mapping[str, Any]) -> str:
    """Multi-line text naming every failed check, e.g. for a task log or a notification."""
    name = summary.get("checkpoint") or "Data quality checkpoint"
    head = (
        f"{name} failed {summary['failed']} of {summary['evaluated']} checks"
        f" on {', '.join(t for t, s in summary['tables'].items() if not s['success'])}:"
    )
    return "\n".join([head, *(f"  - {_describe_failure(f)}" for f in summary["failures"])])
