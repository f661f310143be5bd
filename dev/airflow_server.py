"""`make airflow`: the Airbyte stand-in and a local Airflow 3, supervised until Ctrl-C.

``python -m dev.airflow_server`` starts the Airbyte stand-in and Airflow
(``dev.airflow_components.run_airflow``) with its UI on http://127.0.0.1:8080
(``AIRFLOW_PORT`` changes the port), prints how to log in and trigger a DAG, and runs until
Ctrl-C (or SIGTERM) as a small supervisor: ``AIRFLOW__*`` variables of the caller's
environment override the local settings, and a component (or the stand-in) that dies is
restarted and logged, not the whole stack stopped; one that keeps dying stops everything with
its output. ``EXECUTOR=celery`` runs it on CeleryExecutor with a local Redis broker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from dotenv import dotenv_values

from dev.airbyte_standin.admin_client import RunningStandin
from dev.airbyte_standin.config import StandinConfig
from dev.airbyte_standin.seed import CONNECTIONS_BY_ID
from dev.airbyte_standin.serving import StandinStartError, quick_config, run_standin_process
from dev.airflow_components import AirflowServer, AirflowStartError, note_restart, run_airflow
from dev.airflow_settings import DEFAULT_EXECUTOR, EXECUTORS
from dev.celery_executor import RedisError, run_redis
from dev.environment import AIRFLOW_HOME, ENV_FILE, airflow_environment, caller_overrides
from dev.processes import tail
from include.receiver.mount import URL_PREFIX

#: How often ``make airflow`` looks for dead components.
SUPERVISE_INTERVAL = 1.0
#: The DAGs ``make airflow`` unpauses.
UNPAUSED_DAGS = ("airbyte_event_driven_sync", "airbyte_quality__stripe")


def main() -> int:
    port = int(os.environ.get("AIRFLOW_PORT", "8080"))
    executor = os.environ.get("EXECUTOR", DEFAULT_EXECUTOR)
    if executor not in EXECUTORS:
        print(f"==> EXECUTOR={executor}: use one of {', '.join(EXECUTORS)}", file=sys.stderr)
        return 2
    AIRFLOW_HOME.mkdir(exist_ok=True)
    # Ctrl-C and SIGTERM both unwind through the context managers of ``supervise``.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    config = standin_config(port)
    overrides = caller_overrides()
    for key in sorted(overrides):
        print(f"==> {key} from your environment overrides the local setting", flush=True)
    try:
        supervise(config, port=port, executor=executor, overrides=overrides)
    except KeyboardInterrupt:
        print("\n==> Stopped Airflow and the stand-in", flush=True)
        return 0
    except (AirflowStartError, StandinStartError, RedisError) as error:
        print(f"==> {error}", file=sys.stderr)
        return 1


def standin_config(port: int) -> StandinConfig:
    """The stand-in of ``make airflow``: jobs of a few seconds, kept in ``.airflow/``. It
    notifies the receiver the API server on ``port`` serves (with ``dev/airflow.env``'s token),
    or, with ``AIRBYTE_NOTIFICATION_TOKEN`` exported, ``make webhook`` (``WEBHOOK_PORT``)."""
    config = quick_config(
        AIRFLOW_HOME,
        pending_seconds=0.5,
        running_seconds=3,
        rows_per_stream=50,
        state_url=f"sqlite:///{AIRFLOW_HOME / 'standin-state.db'}",
    )
    token = os.environ.get("AIRBYTE_NOTIFICATION_TOKEN")
    if token:  # `make webhook` with the same token receives the stand-in's notifications
        receiver = f"http://127.0.0.1:{os.environ.get('WEBHOOK_PORT', '8090')}"
    else:
        token = dotenv_values(ENV_FILE)["AIRBYTE_NOTIFICATION_TOKEN"]
        receiver = f"http://127.0.0.1:{port}{URL_PREFIX}"
    config.notification_url = f"{receiver}/airbyte/notifications/{token}"
    return config


def supervise(
    config: StandinConfig, *, port: int, executor: str, overrides: dict[str, str]
) -> None:
    """Start the stand-in, Redis (for ``celery``) and Airflow, then restart whatever dies,
    forever; everything stops when an exception (Ctrl-C included) unwinds."""
    with contextlib.ExitStack() as stack:
        standin = SupervisedStandin(stack, config, AIRFLOW_HOME / "processes" / "standin.log")
        print(f"==> Airbyte stand-in at {standin.url}", flush=True)
        print(f"==> Starting Airflow (home {AIRFLOW_HOME}); this takes ~30 s", flush=True)
        environment = airflow_environment(standin.url, AIRFLOW_HOME)
        if executor == "celery":
            redis = stack.enter_context(run_redis(AIRFLOW_HOME / "redis"))
            print(f"==> CeleryExecutor, Redis broker at {redis.url}", flush=True)
            environment.update(redis.settings())
        airflow = stack.enter_context(
            run_airflow(environment, port=port, executor=executor, overrides=overrides)
        )
        for dag_id in UNPAUSED_DAGS:
            airflow.unpause(dag_id)
        _print_banner(airflow, standin.url, CONNECTIONS_BY_ID)
        while True:
            time.sleep(SUPERVISE_INTERVAL)
            airflow.restart_dead()
            standin.restart_if_dead()


class SupervisedStandin:
    """The stand-in process of ``make airflow``: restarted on the same port when it dies; its
    jobs survive in its state database."""

    def __init__(self, stack: contextlib.ExitStack, config: StandinConfig, log_file: Path):
        self.stack, self.config, self.log_file = stack, config, log_file
        log_file.parent.mkdir(parents=True, exist_ok=True)
        self.restarts: list[float] = []
        self.running = self._start(port=None)
        self.url = self.running.url

    def _start(self, port: int | None) -> RunningStandin:
        return self.stack.enter_context(
            run_standin_process(self.config, port=port, log_file=self.log_file)
        )

    def restart_if_dead(self) -> bool:
        process = self.running.process
        if process is None or (code := process.poll()) is None:
            return False
        what = "the Airbyte stand-in"
        self.restarts = note_restart(self.restarts, what, code, self.log_file)
        print(f"==> {what} exited with {code}; restarting it. Its output:", flush=True)
        print(tail(self.log_file, 15), flush=True)
        self.running = self._start(port=self.running.config.port)
        return True


def _print_banner(airflow: AirflowServer, standin_url: str, connections: dict) -> None:
    stripe = next(c for c in connections.values() if "stripe" in c.name.lower())
    print(
        f"""
Airflow UI     {airflow.url}   (login {airflow.username} / {airflow.password})
Airbyte        {standin_url}   (stand-in; client id standin-client, secret standin-secret)
Component logs {airflow.home}/processes/
Airbyte connection ids:""",
        flush=True,
    )
    for connection_id, connection in connections.items():
        print(f"  {connection.name:<28} {connection_id}")
    print(
        f"""
Trigger the event-driven DAG (unpaused) through the REST API:

  TOKEN=$(curl -s -X POST {airflow.url}/auth/token -H 'Content-Type: application/json' \\
    -d '{{"username": "{airflow.username}", "password": "{airflow.password}"}}' \\
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -s -X POST {airflow.url}/api/v2/dags/airbyte_event_driven_sync/dagRuns \\
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
    -d '{{"logical_date": null, "conf": {{"connection_id": "{stripe.connection_id}"}}}}'

Ctrl-C stops everything.""",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
