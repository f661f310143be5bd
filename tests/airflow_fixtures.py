"""One real Airflow 3 per executor and test session, shared by the tests that need one.

Starting Airflow costs ~15 s, so each (LocalExecutor for ``tests/webhook``, ``tests/e2e`` and
``tests/deploy``; CeleryExecutor for ``tests/dev/test_celery_executor.py``) starts at most
once per session, the first time a test asks for it, and stops when pytest unconfigures
(``config.add_cleanup``). Each directory's
conftest exposes it as the ``airflow`` fixture through ``shared_airflow``; a fixture
imported into two conftests would be two fixtures and start Airflow twice.

Behind it: a fast Airbyte stand-in (thread in this process) whose warehouse is the
``warehouse_default`` Connection of ``dev/airflow.env``, and ``dev.airflow_server``'s
``run_airflow`` on a free loopback port with a throwaway Airflow home. Its StatsD metrics go
to a receiver in this process (``tests/statsd.py``), which ``tests/deploy`` reads. The Celery
one also runs a Redis broker (``dev.celery_executor.run_redis``) and ``CELERY_FAILOVER``.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from dev.airbyte_standin.testing import RunningStandin, quick_config, run_standin
from dev.airflow_server import DEFAULT_EXECUTOR, AirflowServer, run_airflow
from dev.celery_executor import run_redis
from dev.environment import airflow_environment
from tests.statsd import StatsdReceiver, run_statsd_receiver

EVENT_DAG = "airbyte_event_driven_sync"
STRIPE = "2a6f1c2e-8b1d-4c3a-9f0e-1d2c3b4a5f60"
DAG_IDS = (
    "airbyte_advanced_examples",
    "airbyte_event_driven_sync",
    "airbyte_multi_source_sync",
    "airbyte_stripe_to_postgres",
)
#: Generous: the first test that asks for Airflow waits for it to start (~15 s, more on a
#: busy 2-core machine) and then for a real run.
TIMEOUT = 300
#: The Celery Airflow runs the worker-kill test: the sync blocks on its worker (as a task
#: that is not deferred does), a task whose worker died is noticed within seconds instead of
#: 5 minutes, and its retry is not delayed by the DAG's backoff.
CELERY_FAILOVER = {
    "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "False",
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "10",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "1",
    "AIRFLOW__CORE__MAX_TASK_RETRY_DELAY": "1",
}
#: Its Airbyte jobs run long enough for a worker to be killed mid-sync: a sync whose first
#: attempt is retried (``incomplete_then_succeed``) runs ~40 s, and the retry of a task whose
#: worker died starts ~20 s after the kill (heartbeat timeout, detection, queueing).
CELERY_STANDIN = {"pending_seconds": 0.5, "running_seconds": 20}


@dataclass
class SharedAirflow:
    airflow: AirflowServer
    standin: RunningStandin
    home: Path
    statsd: StatsdReceiver


_KEYS = {
    executor: pytest.StashKey["SharedAirflow | BaseException"]()
    for executor in (DEFAULT_EXECUTOR, "celery")
}


def _start(config: pytest.Config, executor: str) -> SharedAirflow:
    stack = contextlib.ExitStack()
    home = Path(tempfile.mkdtemp(prefix=f"airflow-server-{executor}-"))
    stack.callback(shutil.rmtree, home, ignore_errors=True)
    config.add_cleanup(stack.close)
    celery = executor == "celery"
    standin = stack.enter_context(
        run_standin(quick_config(home, **(CELERY_STANDIN if celery else {})))
    )
    statsd = stack.enter_context(run_statsd_receiver())
    environment = {**airflow_environment(standin.url, home), **statsd.environment()}
    if celery:
        environment |= stack.enter_context(run_redis(home / "redis")).settings() | CELERY_FAILOVER
    airflow = stack.enter_context(run_airflow(environment, executor=executor))
    airflow.unpause(EVENT_DAG)
    for dag_id in DAG_IDS:
        airflow.wait_for_dag(dag_id)
    return SharedAirflow(airflow=airflow, standin=standin, home=home, statsd=statsd)


def shared_airflow(config: pytest.Config, executor: str = DEFAULT_EXECUTOR) -> SharedAirflow:
    """The session's Airflow on ``executor``, started on first use; a failed start is not
    retried."""
    key = _KEYS[executor]
    if key not in config.stash:
        try:
            config.stash[key] = _start(config, executor)
        except BaseException as error:
            config.stash[key] = error
            raise
    shared = config.stash[key]
    if isinstance(shared, BaseException):
        pytest.fail(f"the session {executor} Airflow failed to start: {shared}", pytrace=False)
    return shared
