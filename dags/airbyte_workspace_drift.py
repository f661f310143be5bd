"""
### Airbyte workspace drift

Once a day, compares `airbyte_connections.yaml` with what Airbyte lists (every page, the file's
`workspace_id` or every workspace, on each Airbyte server the entries use) and reports where they
disagree (`include/workspace.py`):

- connections in Airbyte that no entry names (`make connections` adds them);
- entries whose connection is gone (deleted, never there, or its Variable unset);
- entries whose connection is not active, or was renamed (its `label` is no longer its name);
- streams added or removed since discovery recorded an entry's `streams`.

Findings go to the log, to the notification channels of the Variable
`AIRBYTE_NOTIFY_CHANNELS` and to the task's XCom (also when the run fails), which the
Airbyte page of Airflow's UI shows. The run fails when an entry points at nothing: that
entry's syncs would fail too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowFailException

from include.connections import load_connections
from include.dag_defaults import default_args


@dag(
    dag_id="airbyte_workspace_drift",
    schedule="@daily",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["airbyte", "airbyte_connections.yaml", "drift"],
    doc_md=__doc__,
)
def airbyte_workspace_drift():
    @task(multiple_outputs=False)  # one XCom: the findings by kind
    def compare_with_airbyte(**context: Any) -> dict[str, Any]:
        # The client stack costs ~30 ms to import: loaded when the task runs, not at parse.
        from include.workspace import check_workspace, report

        findings = check_workspace(load_connections())
        report(findings, context)
        if findings.points_at_nothing:
            # The findings stay readable (the Airbyte page shows the last ones) when it fails.
            context["ti"].xcom_push(key="return_value", value=findings.as_dict())
            raise AirflowFailException(findings.render())
        return findings.as_dict()

    compare_with_airbyte()


airbyte_workspace_drift()
