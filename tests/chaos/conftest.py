"""A real multi-process Airflow per executor, shared by the chaos scenarios, and ways to hurt it.

``chaos`` is parametrised by executor (a name of ``dev.airflow_settings.EXECUTORS``); each
parameter starts one Airflow (``run_airflow``) with short heartbeat, health-check and retry
settings, the DAGs of ``tests/chaos/dags`` and a stand-in *process* whose jobs live in a
state database, so it can be killed and restarted on the same port mid-run. Scenarios run
one after another on it; each starts from a reset stand-in where jobs run until the test
lets them finish (``finish_jobs``).
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from dev.airbyte_standin.admin_client import RunningStandin
from dev.airbyte_standin.seed import STRIPE_CONNECTION_ID
from dev.airbyte_standin.serving import quick_config, run_standin_process
from dev.airflow_components import AirflowServer, run_airflow
from dev.celery_executor import run_redis
from dev.environment import airflow_environment
from dev.processes import tail
from dev.processes import wait_until as _wait_until
from tests.chaos.dags.downstream import ENTRIES as DOWNSTREAM
from tests.chaos.dags.downstream import downstream_dag

CHAOS_DAGS = Path(__file__).resolve().parent / "dags"
TASK_ID = "sync"
CONNECTION_ID = STRIPE_CONNECTION_ID
#: Until a test lets them finish, jobs run "forever".
FOREVER = 3600.0
#: Short failure detection, so a scenario takes seconds (the defaults are minutes).
CHAOS_SETTINGS = {
    "AIRFLOW__CORE__DAGS_FOLDER": str(CHAOS_DAGS),
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "5",
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "6",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
}
#: Deadline of any one wait on the running system (a loaded 2-core machine is slow).
WAIT = 120.0
EXECUTORS = ["local", "celery"]


def is_poll(request: dict[str, Any]) -> bool:
    """Whether a request the stand-in served looked a job up, on either API flavour."""
    path = request["path"]
    public_job = request["method"] == "GET" and path.startswith("/api/public/v1/jobs/")
    return public_job or path.startswith("/api/v1/jobs/get")


def wait_until(predicate, what: str, timeout: float = WAIT) -> Any:
    return _wait_until(predicate, timeout=timeout, interval=0.25, what=what)


@dataclass(frozen=True)
class Sync:
    """A chaos run, its task instance (first try) and the Airbyte job it stored."""

    dag_id: str
    run_id: str
    ti: dict[str, Any]
    job_id: int


@dataclass
class Chaos:
    """One running Airflow and stand-in, with the moves and checks of the scenarios."""

    executor: str
    airflow: AirflowServer
    standin: RunningStandin
    stack: contextlib.ExitStack = field(repr=False)
    standin_log: Path = field(repr=False)

    # --- runs ------------------------------------------------------------------------------

    def trigger(self, mode: str, flavour: str = "public") -> tuple[str, str]:
        """Start a run of ``chaos_<mode>`` (on the Public API; ``_config`` on the
        Configuration API); returns (dag_id, run_id)."""
        dag_id = f"chaos_{mode}" + ("_config" if flavour == "config" else "")
        run = self.airflow.trigger(dag_id, {"connection_id": CONNECTION_ID})
        return dag_id, run["dag_run_id"]

    def task(self, dag_id: str, run_id: str, task_id: str = TASK_ID) -> dict[str, Any]:
        """The run's sync task instance, or its ``task_id`` (REST API)."""
        return self.airflow._ok(
            self.airflow.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")
        )

    def wait_task(
        self, dag_id: str, run_id: str, state: str, try_number: int = 1, task_id: str = TASK_ID
    ) -> dict:
        def reached() -> dict | None:
            ti = self.task(dag_id, run_id, task_id)
            return ti if ti["state"] == state and ti["try_number"] >= try_number else None

        return wait_until(reached, f"{dag_id} task {task_id} {state} (try {try_number})")

    def stored_job_id(self, dag_id: str, run_id: str) -> int | None:
        """The job id the operator keeps in the task's state store (REST API)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{TASK_ID}/state-store"
        response = self.airflow.api("GET", f"{path}/airbyte_job_id")
        return int(response.json()["value"]) if response.status_code == 200 else None

    def wait_stored(self, dag_id: str, run_id: str) -> int:
        return wait_until(lambda: self.stored_job_id(dag_id, run_id), "the job id stored")

    def finished_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.airflow.wait_for_run(dag_id, run_id, timeout=WAIT)

    def start_sync(self, mode: str, flavour: str = "public") -> Sync:
        """A run of ``chaos_<mode>`` whose task waits (runs or defers) on its stored job; a
        deferred one only once the scheduler has seen its first run end (``wait_deferral_ended``).
        """
        dag_id, run_id = self.trigger(mode, flavour)
        ti = self.wait_task(dag_id, run_id, "running" if mode == "blocking" else "deferred")
        sync = Sync(dag_id, run_id, ti, self.wait_stored(dag_id, run_id))
        if mode == "deferred":
            self.wait_deferral_ended(sync)
        return sync

    def wait_deferral_ended(self, sync: Sync) -> None:
        """Wait until the scheduler has processed the executor's event for the run that
        deferred (the TI is ``deferred`` as soon as the task said so, but its worker reports the
        end of that run seconds later on a loaded machine).

        Until then a scenario that lets the trigger fire early races Airflow: the resumed run
        keeps the same try number, and if the deferring run's "success" reaches the scheduler
        after the resumed run was queued, the scheduler takes it for a run of the queued try
        that died ("finished with state success, but the task instance's state attribute is
        queued") and fails the try, so the task needs a second one. The scheduler logs the
        event it processed (``TaskInstance Finished: ...``); the metadata database keeps no
        trace of it.
        """
        log = self.airflow.log_files["scheduler"]
        marks = (f"ti_id={sync.ti['id']},", "state=deferred,", "TaskInstance Finished:")

        def noted() -> bool:
            return any(
                all(mark in line for mark in marks)
                for line in log.read_text(errors="replace").splitlines()
            )

        wait_until(noted, f"the scheduler saw the deferring run of {sync.ti['id']} end")

    def assert_synced_once(self, sync: Sync, tries: int) -> None:
        """The run succeeded after ``tries`` tries, returning its one Airbyte job, which
        succeeded; no other job ran and none is left running."""
        assert self.finished_run(sync.dag_id, sync.run_id)["state"] == "success"
        assert self.task(sync.dag_id, sync.run_id)["try_number"] == tries
        path = f"/dags/{sync.dag_id}/dagRuns/{sync.run_id}/taskInstances/{TASK_ID}"
        returned = self.airflow._ok(self.airflow.api("GET", f"{path}/xcomEntries/return_value"))
        assert returned["value"]["job_id"] == sync.job_id
        self.assert_one_job("succeeded")

    # --- processes -------------------------------------------------------------------------

    def task_process(self, ti_id: str) -> psutil.Process:
        """The task runner process of a task instance (it titles itself with the TI id)."""

        def find() -> psutil.Process | None:
            for process in psutil.process_iter(["cmdline"]):
                if f"airflow worker -- {ti_id}" in " ".join(process.info["cmdline"] or ()):
                    return process
            return None

        return wait_until(find, f"the task process of {ti_id}")

    def kill_task(self, ti: dict[str, Any]) -> None:
        """SIGKILL the task's process, as the OOM killer would; wait until it is gone."""
        process = self.task_process(ti["id"])
        process.kill()
        process.wait(timeout=30)

    def stop_standin(self) -> None:
        """SIGKILL the Airbyte stand-in: the server is down, its port refuses connections."""
        assert self.standin.process is not None
        self.standin.process.kill()
        self.standin.process.wait(timeout=30)

    def start_standin(self) -> None:
        """Bring the stand-in back on the same port with the jobs of its state database."""
        self.standin = self.stack.enter_context(
            run_standin_process(
                self.standin.config, port=self.standin.config.port, log_file=self.standin_log
            )
        )

    # --- Airbyte jobs ----------------------------------------------------------------------

    def jobs(self) -> list[dict[str, Any]]:
        return self.standin.jobs()

    def polls(self) -> int:
        """How many times the job was looked up (by the waiting task or trigger)."""
        return sum(1 for r in self.standin.requests() if is_poll(r))

    def wait_polled(self) -> None:
        """Wait until something polls the job again: the wait for it has really begun."""
        seen = self.polls()
        wait_until(lambda: self.polls() > seen, "the job polled")

    def finish_jobs(self) -> None:
        """Let running jobs (and any later ones) end now."""
        self.standin.set_durations(running_seconds=0)

    def wait_job(self, job_id: int, status: str) -> dict[str, Any]:
        return wait_until(
            lambda: next(
                (j for j in self.jobs() if j["id"] == job_id and j["status"] == status), None
            ),
            f"Airbyte job {job_id} {status}",
        )

    def celery_results(self) -> list[str]:
        """States of the Celery task results in the metadata database (CeleryExecutor)."""
        with sqlite3.connect(self.airflow.home / "airflow.db") as db:
            return [status for (status,) in db.execute("SELECT status FROM celery_taskmeta")]

    def assert_one_job(self, status: str) -> dict[str, Any]:
        """Exactly one Airbyte job for the run's try chain, in ``status``; none left running."""
        jobs = self.jobs()
        assert len(jobs) == 1, f"expected one Airbyte job, got {jobs}"
        assert jobs[0]["status"] == status, jobs
        return jobs[0]


@pytest.fixture(scope="session", params=EXECUTORS)
def chaos_airflow(request: pytest.FixtureRequest) -> Iterator[Chaos]:
    executor = request.param
    with contextlib.ExitStack() as stack:
        home = Path(tempfile.mkdtemp(prefix=f"airflow-chaos-{executor}-"))
        stack.callback(shutil.rmtree, home, ignore_errors=True)
        config = quick_config(
            home,
            pending_seconds=0.2,
            running_seconds=FOREVER,
            state_url=f"sqlite:///{home / 'standin-state.db'}",
        )
        standin_log = home / "standin.log"
        standin = stack.enter_context(run_standin_process(config, log_file=standin_log))
        environment = airflow_environment(standin.url, home)
        if executor == "celery":
            environment |= stack.enter_context(run_redis(home / "redis")).settings()
        airflow = stack.enter_context(
            run_airflow(environment, executor=executor, overrides=CHAOS_SETTINGS)
        )
        for mode in ("blocking", "deferred"):
            airflow.unpause(f"chaos_{mode}")
            airflow.unpause(f"chaos_{mode}_config")
        airflow.unpause("airbyte_reconcile")
        for key in DOWNSTREAM:
            airflow.unpause(downstream_dag(key))
        yield Chaos(executor, airflow, standin, stack, standin_log)


@pytest.fixture
def chaos(chaos_airflow: Chaos) -> Iterator[Chaos]:
    """The executor's Airflow, with a reset stand-in whose jobs run until told to finish."""
    chaos_airflow.airflow.restart_dead()  # a scenario that killed a component leaves none dead
    chaos_airflow.standin.reset()
    chaos_airflow.standin.set_durations(pending_seconds=0.2, running_seconds=FOREVER)
    yield chaos_airflow
    chaos_airflow.standin.assert_contract_kept()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[Any]:
    """A failed scenario shows the tail of every component's log and of the stand-in's."""
    report = yield
    chaos = getattr(item, "funcargs", {}).get("chaos")
    if report.failed and isinstance(chaos, Chaos):
        task_logs = sorted(
            (chaos.airflow.home / "logs").glob("dag_id=*/run_id=*/task_id=*/*.log"),
            key=lambda path: path.stat().st_mtime,
        )[-3:]
        logs = {
            **chaos.airflow.log_files,
            "stand-in": chaos.standin_log,
            **{str(path.relative_to(chaos.airflow.home)): path for path in task_logs},
        }
        for name, path in logs.items():
            report.sections.append((f"{name} log (tail)", tail(path, 60)))
    return report
