"""
### Event-driven Airbyte job

No schedule: triggered manually (Trigger DAG in the UI shows a validated form), from the
CLI, or by a webhook through the REST API, with a conf such as:

```json
{"connection_id": "2a6f1c2e-8b1d-4c3a-9f0e-1d2c3b4a5f60"}
```

Optional keys: `job_type` (`sync`, `reset`, `clear` or `refresh`), `streams` (a reset, clear
or refresh of these streams only) and `refresh_mode` (`merge` or `truncate`), which exist on
the Configuration API only, `timeout_minutes`, `min_records`, `wait` (false: start the job
and return). Airflow validates the conf against the params
below before the run is created, so a bad conf is refused with a clear message and never
reaches Airbyte.

CLI: `airflow dags trigger airbyte_event_driven_sync --conf '{"connection_id": "..."}'`.
REST: `POST /api/v2/dags/airbyte_event_driven_sync/dagRuns` with
`{"logical_date": null, "conf": {"connection_id": "..."}}`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

from include.connections import load_connections
from include.dag_defaults import default_args
from include.notifications import SyncNotifier
from include.validation import publish_job_stats, validate_sync_results
from plugins.airbyte_operator import AirbyteSyncOperator

UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


@dag(
    dag_id="airbyte_event_driven_sync",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args=default_args(retries=1, retry_delay=timedelta(minutes=2)),
    tags=["airbyte", "event-driven"],
    doc_md=__doc__,
    render_template_as_native_obj=True,
    params={
        "connection_id": Param(
            type="string",
            pattern=UUID_PATTERN,
            title="Airbyte connection id",
            description="UUID of the Airbyte connection (from its URL in the Airbyte UI).",
        ),
        "job_type": Param("sync", enum=["sync", "reset", "clear", "refresh"], title="Job type"),
        "streams": Param(
            [],
            type="array",
            items={"type": "string", "minLength": 1},
            title="Only these streams (reset, clear, refresh)",
        ),
        "refresh_mode": Param(
            None, type=["null", "string"], enum=[None, "merge", "truncate"], title="Refresh mode"
        ),
        "timeout_minutes": Param(60, type="number", exclusiveMinimum=0, maximum=1440),
        "min_records": Param(0, type="integer", minimum=0, title="Fewest records expected"),
        "wait": Param(True, type="boolean", description="Wait for the job to finish."),
    },
)
def airbyte_event_driven_sync():
    run_job = AirbyteSyncOperator(
        task_id="run_airbyte_job",
        connection_id="{{ params.connection_id }}",
        job_type="{{ params.job_type }}",
        streams="{{ params.streams | tojson }}",
        refresh_mode="{{ params.refresh_mode or '' }}",
        timeout_minutes="{{ params.timeout_minutes }}",
        wait="{{ params.wait }}",
        pool=load_connections().pool.name,
    )

    @task(multiple_outputs=False)  # the stats as one XCom
    def validate(job: dict, **context) -> dict:
        params = context["params"]
        if not params["wait"]:  # the job was only started: report it, nothing to check yet
            return publish_job_stats(job, context)
        return validate_sync_results(
            job,
            min_records=params["min_records"],
            allow_zero=params["min_records"] == 0,
            context=context,
        )

    @task
    def notify(stats: dict, **context) -> None:
        SyncNotifier(title="Event-driven Airbyte job").notify(context, stats)

    notify(validate(run_job.output))


airbyte_event_driven_sync()
