"""Run summaries: what each Airbyte source did in a DAG run, as a table and as data."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from airflow.sdk.exceptions import AirflowException

from include.connections import ConnectionEntry
from plugins.airbyte_client.contracts import JOB_ID_KEY, job_dict

log = logging.getLogger(__name__)


class SourcesFailedError(AirflowException):
    """At least one source's sync or validation failed in this run."""


def summarize_sources(sources: Iterable[ConnectionEntry], context: Mapping[str, Any]) -> list[dict]:
    """Collect each source's job id, status, rows, bytes and duration; log a table.

    Reads the XComs of the task groups ``<source.key>.sync`` and ``<source.key>.validate``.
    For a source whose sync failed, the job is looked up on Airbyte by the job id the
    operator pushed before waiting. Raises ``SourcesFailedError`` after reporting when any
    source did not validate.
    """
    # The client stack costs ~30 ms to import: loaded when the summary runs, not at parse.
    from plugins.airbyte_hook import AirbyteHook

    ti = context["ti"]
    rows: list[dict] = []
    hook: AirbyteHook | None = None
    for source in sources:
        stats = ti.xcom_pull(task_ids=f"{source.key}.validate")
        job = ti.xcom_pull(task_ids=f"{source.key}.sync")
        job_id = ti.xcom_pull(task_ids=f"{source.key}.sync", key=JOB_ID_KEY)
        if job is None and job_id is not None:
            hook = hook or AirbyteHook()
            try:
                job = job_dict(hook.get_job(job_id))
            except AirflowException as exc:
                log.warning("Could not read Airbyte job %s: %s", job_id, exc)
        job = job or {}
        rows.append(
            {
                "source": source.key,
                "job_id": job_id,
                "status": job.get("status", "not started"),
                "records": job.get("records", 0),
                "bytes": job.get("bytes", 0),
                "duration_seconds": job.get("duration_seconds"),
                "validated": stats is not None,
            }
        )
    log.info("Airbyte sources in this run:\n%s", format_table(rows))
    failed = [r["source"] for r in rows if not r["validated"]]
    if failed:
        raise SourcesFailedError(f"Sources that failed to sync or validate: {', '.join(failed)}")
    return rows


def format_table(rows: list[dict]) -> str:
    """A fixed-width text table of ``rows`` (list of same-keyed dicts)."""
    if not rows:
        return "(nothing)"
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)
