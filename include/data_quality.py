"""Great Expectations checkpoints of the synced warehouse tables, built from ``include/gx``.

Owns the checkpoint and suite files (``gx/checkpoints/*.json``, ``gx/expectations/*.json``:
loading and checking them), ``build_checkpoint`` (registers the warehouse as a data source,
its tables, the suites and the checkpoint in a GX Data Context), ``checkpoint_factory`` (the
``configure_checkpoint`` of ``GXValidateCheckpointOperator``) and ``prepare_gx`` (quiet GX,
no usage statistics; the operator's ``on_execute_callback``).

Importing this module does not import Great Expectations (about 3 s): DAG files import it
at parse time, GX is imported when a checkpoint is built.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException

from include.paths import GX_DIR
from include.warehouse import DEFAULT_CONN_ID, redact_url, sqlalchemy_url

if TYPE_CHECKING:
    from great_expectations import Checkpoint
    from great_expectations.data_context import AbstractDataContext

log = logging.getLogger(__name__)

SUITES_DIR = GX_DIR / "expectations"
CHECKPOINTS_DIR = GX_DIR / "checkpoints"

#: Name of the GX data source for the warehouse; a batch id is ``<datasource>-<table>``.
DATASOURCE_NAME = "warehouse"
BATCH_DEFINITION_NAME = "whole_table"
DEFAULT_RESULT_FORMAT = "SUMMARY"


class DataQualityConfigError(AirflowException):
    """A checkpoint or suite file under ``include/gx`` is missing or malformed."""


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
# Building checkpoints (GX imported here, never at module import)
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
