"""One real Airflow 3 per test session, shared by the tests that need one.

Starting Airflow costs ~15 s, so it (LocalExecutor, for ``tests/webhook``, ``tests/e2e``,
``tests/deploy`` and ``tests/plugins``) starts at most once per session, the first time a
test asks for it, and stops when pytest unconfigures (``config.add_cleanup``). Each
directory's conftest exposes it as the ``airflow`` fixture through ``shared_airflow``; a
fixture imported into two conftests would be two fixtures and start Airflow twice. (The
chaos scenarios, which kill its processes, start their own Airflow per executor,
CeleryExecutor included: ``tests/chaos``.)

Behind it: a fast Airbyte stand-in (thread in this process) whose warehouse is the
``warehouse_default`` Connection of ``dev/airflow.env``, and ``dev.airflow_components``'s
``run_airflow`` on a free loopback port with a throwaway Airflow home. Its StatsD metrics go
to a receiver in this process (``tests/statsd.py``), which ``tests/deploy`` reads.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

from dev.airbyte_standin.admin_client import RunningStandin
from dev.airbyte_standin.serving import quick_config, run_standin
from dev.airflow_components import AirflowServer, run_airflow
from dev.environment import airflow_environment
from tests.statsd import StatsdReceiver, run_statsd_receiver

EVENT_DAG = "airbyte_event_driven_sync"
STRIPE = "2a6f1c2e-8b1d-4c3a-9f0e-1d2c3b4a5f60"
DAG_IDS = (
    "airbyte_advanced_examples",
    "airbyte_event_driven_sync",
    "airbyte_multi_source_sync",
    "airbyte_stripe_to_postgres",
    "airbyte_quality__stripe",
    "airbyte_stripe_zero_poll_sync",
)
#: Generous: the first test that asks for Airflow waits for it to start (~15 s, more on a
#: busy 2-core machine) and then for a real run.
TIMEOUT = 300


class RunningSystem(Protocol):
    """A running Airflow and its stand-in: ``SharedAirflow``, or the chaos suite's ``Chaos``."""

    airflow: AirflowServer
    standin: RunningStandin


@dataclass
class SharedAirflow:
    airflow: AirflowServer
    standin: RunningStandin
    home: Path
    statsd: StatsdReceiver


_KEY = pytest.StashKey["SharedAirflow | BaseException"]()


def _start(config: pytest.Config) -> SharedAirflow:
    stack = contextlib.ExitStack()
    home = Path(tempfile.mkdtemp(prefix="airflow-server-"))
    stack.callback(shutil.rmtree, home, ignore_errors=True)
    config.add_cleanup(stack.close)
    standin = stack.enter_context(run_standin(quick_config(home)))
    statsd = stack.enter_context(run_statsd_receiver())
    environment = {**airflow_environment(standin.url, home), **statsd.environment()}
    airflow = stack.enter_context(run_airflow(environment))
    airflow.unpause(EVENT_DAG)
    for dag_id in DAG_IDS:
        airflow.wait_for_dag(dag_id)
    return SharedAirflow(airflow=airflow, standin=standin, home=home, statsd=statsd)


def shared_airflow(config: pytest.Config) -> SharedAirflow:
    """The session's Airflow, started on first use; a failed start is not retried."""
    if _KEY not in config.stash:
        try:
            config.stash[_KEY] = _start(config)
        except BaseException as error:
            config.stash[_KEY] = error
            raise
    shared = config.stash[_KEY]
    if isinstance(shared, BaseException):
        pytest.fail(f"the session Airflow failed to start: {shared}", pytrace=False)
    return shared
