"""
### Advanced Airbyte patterns

The seed's advanced examples in one DAG, each a branch you can read on its own:

1. **Reset**: with the param `reset_salesforce` on, the Salesforce connection is reset (its
   synced data deleted) before it syncs again from scratch. Off by default: a reset is
   destructive.
2. **Chained syncs**: HubSpot syncs only after Stripe finished successfully.
3. **Conditional sync**: Salesforce syncs only when its last successful sync is older than
   `max_age_hours`, or when the reset ran (a branch on the last Airbyte job's age).
4. **Custom notifications**: every Airbyte task reports success and failure through
   `SyncNotifier` (Airbyte job id, rows, duration), and a final task sends a digest.

Manual trigger only; the connections are the entries `stripe`, `hubspot` and `salesforce` of
`airbyte_connections.yaml`, like in the other DAGs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, task

from include.connections import load_connections
from include.dag_defaults import default_args
from include.notifications import SyncNotifier
from include.pipeline import sync_task
from plugins.airbyte_client.contracts import JOB_ID_KEY

CONNECTIONS = load_connections()
STRIPE, HUBSPOT, SALESFORCE = (CONNECTIONS.entry(k) for k in ("stripe", "hubspot", "salesforce"))


def notified(**kwargs) -> dict:
    """Operator arguments that report the task's outcome through ``SyncNotifier``."""
    return {
        "on_success_callback": SyncNotifier(title="Airbyte task"),
        "on_failure_callback": SyncNotifier(title="Airbyte task"),
        **kwargs,
    }


@dag(
    dag_id="airbyte_advanced_examples",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args=default_args(retries=1, retry_delay=timedelta(minutes=2)),
    tags=["airbyte", "examples"],
    doc_md=__doc__,
    params={
        "reset_salesforce": Param(False, type="boolean", title="Reset Salesforce first"),
        "max_age_hours": Param(6, type="number", minimum=0, title="Re-sync Salesforce after (h)"),
    },
)
def airbyte_advanced_examples():
    # 1. Reset (opt-in), then the conditional Salesforce sync decides whether to sync again.
    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def reset_requested(**context) -> bool:
        return bool(context["params"]["reset_salesforce"])

    reset = sync_task(
        SALESFORCE, **notified(task_id="reset_salesforce", job_type="reset", outlets=[])
    )

    # 2. Chained syncs: HubSpot starts when Stripe has finished.
    sync_stripe = sync_task(STRIPE, **notified(task_id="sync_stripe"))
    sync_hubspot = sync_task(HUBSPOT, **notified(task_id="sync_hubspot"))

    # 3. Conditional sync on the age of Salesforce's last successful sync.
    @task.branch(trigger_rule="none_failed")
    def salesforce_is_stale(**context) -> str:
        # The client stack loads when the task runs (~30 ms), not when the DAG is parsed.
        from plugins.airbyte_client.models import JobStatus
        from plugins.airbyte_hook import AirbyteHook

        if context["ti"].xcom_pull(task_ids="reset_salesforce", key=JOB_ID_KEY):
            return "sync_salesforce"
        hook = AirbyteHook(SALESFORCE.airbyte_conn_id)
        jobs = hook.recent_jobs(hook.resolve_connection_id(**SALESFORCE.connection))
        last = next((j for j in jobs if j.status is JobStatus.SUCCEEDED), None)
        max_age = timedelta(hours=float(context["params"]["max_age_hours"]))
        if last is None or last.updated_at is None:
            return "sync_salesforce"
        age = datetime.now(UTC) - last.updated_at
        print(f"Last Salesforce sync: job {last.job_id}, {age} ago (max {max_age})")
        return "sync_salesforce" if age > max_age else "salesforce_is_fresh"

    sync_salesforce = sync_task(SALESFORCE, **notified(task_id="sync_salesforce"))

    @task
    def salesforce_is_fresh() -> str:
        return "Salesforce synced recently; skipped."

    # 4. A digest of every Airbyte task of the run.
    @task(trigger_rule="all_done")
    def digest(**context) -> None:
        for task_id in ("reset_salesforce", "sync_stripe", "sync_hubspot", "sync_salesforce"):
            if context["ti"].xcom_pull(task_ids=task_id, key=JOB_ID_KEY) is not None:
                SyncNotifier(xcom_task_id=task_id, title=f"Digest {task_id}").notify(context)

    branch = salesforce_is_stale()
    reset_requested() >> reset >> branch
    branch >> [sync_salesforce, salesforce_is_fresh()]
    sync_stripe >> sync_hubspot
    [sync_hubspot, sync_salesforce] >> digest()


airbyte_advanced_examples()
