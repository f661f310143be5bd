"""The product's reconciliation DAG (``dags/airbyte_reconcile.py``) in the chaos Airflow,
whose DAG folder is this one."""

from dags.airbyte_reconcile import reconcile_dag

__all__ = ["reconcile_dag"]
