"""
### Airbyte reconciliation, every 10 minutes

Makes Airflow's and Airbyte's views agree, for every connection of
`airbyte_connections.yaml` (`include/receiver/reconcile.py`):

- the Asset events of every succeeded sync of the last `lookback_hours` (ended at least
  `settle_after_minutes` ago) that neither a task nor the webhook receiver created (Airbyte
  does not retry a lost notification), with the receiver's `extra` and
  `"origin": "airbyte_reconciled"`, so the DAGs scheduled on them run;
- a report of each failed job nobody reported;
- the cancellation of Airbyte jobs an `AirbyteSyncOperator` started whose task has failed for
  good (retries spent, or marked failed while no triggerer watched it).

A job Airflow or Airbyte does not answer for is left to the next try; the others go on, then
the try fails, so Airflow retries it.

Requests per run: one job listing per connection, one Airflow listing of failed Airbyte tasks
(per 100), one state read per such task, plus what it creates. The receivers' shared ledger
(`LEDGER_URL`) decides what was done already: give the workers the receiver's `LEDGER_URL`,
`AIRFLOW_API_URL`, `AIRFLOW_USERNAME` and `AIRFLOW_PASSWORD`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Param, dag, task
from airflow.sdk.exceptions import AirflowException

from include.connections import load_connections
from include.dag_defaults import default_args


@dag(
    dag_id="airbyte_reconcile",
    schedule="*/10 * * * *",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=1, retry_delay=timedelta(minutes=1)),
    tags=["airbyte", "reconcile"],
    doc_md=__doc__,
    params={
        "lookback_hours": Param(24, type="number", exclusiveMinimum=0, maximum=24 * 30),
        # Until then a job's notification, or the task waiting for it, creates its events.
        "settle_after_minutes": Param(5, type="number", minimum=0, maximum=24 * 60),
    },
)
def airbyte_reconcile():
    @task(multiple_outputs=False)  # one XCom: what it did
    def reconcile(**context: Any) -> dict[str, Any]:
        # The receiver's code costs ~0.4 s to import: loaded when the task runs, not at parse.
        from include.receiver.reconcile import count
        from include.receiver.reconcile import reconcile as reconcile_now
        from include.receiver.settings import AirflowSettings

        params = context["params"]
        lookback = timedelta(hours=float(params["lookback_hours"]))
        settle_after = timedelta(minutes=float(params["settle_after_minutes"]))
        settings = AirflowSettings()
        done = asyncio.run(reconcile_now(load_connections(), settings, lookback, settle_after))
        count(done)
        if done.unsettled:  # the retry (or the next run) settles them; the rest is done
            raise AirflowException(
                f"Airflow or Airbyte did not answer for jobs {done.unsettled}: left to the "
                "next try (the log says why); every other job was reconciled"
            )
        return done.as_dict()

    reconcile()


reconcile_dag = airbyte_reconcile()
