"""A burst of Airbyte notifications against two receiver processes (``python -m webhook``)
sharing a PostgreSQL ledger, in front of a real Airflow on PostgreSQL (as a cluster runs it;
on SQLite, local only, the receivers' concurrent writes would meet its write lock): every
notification is
answered at once, one receiver is killed in the middle and restarted, and every job's Asset
events exist exactly once; replayed after the inbox forgot them, they create nothing."""

from __future__ import annotations

import json
import signal
import statistics
import subprocess
import time
import types
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import requests

from dev.airbyte_standin.serving import quick_config, run_standin
from dev.airflow_components import AirflowServer, run_airflow
from dev.environment import airflow_environment
from dev.processes import wait_until
from include.assets import connection_asset
from include.connections import load_connections
from include.receiver import inbox as inbox_module
from include.receiver.inbox import Inbox
from include.receiver.ledger import Ledger
from plugins.airbyte_client.contracts import JOB_ID_KEY
from tests.airflow_fixtures import STRIPE, SharedAirflow
from tests.include.receiver.conftest import TOKEN, receiver_process
from tests.include.receiver.test_airbyte_notifications import job_status, start_outside_airflow

pytestmark = pytest.mark.timeout(900)
REPO = Path(__file__).resolve().parents[3]
JOBS = 200
BURST_SECONDS = 10.0
CONNECTION_ASSET = connection_asset(load_connections().entry("stripe")).uri


@pytest.fixture(scope="module")
def pg_airflow(shared: SharedAirflow, postgres_server, tmp_path_factory) -> Iterator[SharedAirflow]:
    """An Airflow of its own whose metadata database is PostgreSQL, with a stand-in of its own
    (the session's Airflow and reconciler never see this test's syncs)."""
    home = tmp_path_factory.mktemp("airflow-pg")
    database = postgres_server.url(postgres_server.create_database())
    with run_standin(quick_config(home)) as standin:
        environment = airflow_environment(standin.url, home)
        overrides = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database}
        with run_airflow(environment, overrides=overrides) as airflow:
            airflow.wait_for_dag("airbyte_quality__stripe")  # it declares the connection's Asset
            yield SharedAirflow(airflow=airflow, standin=standin, home=home, statsd=shared.statsd)


def airbyte_connection(standin) -> str:
    """``AIRFLOW_CONN_AIRBYTE_DEFAULT`` for ``standin``: the Public API, client credentials."""
    return json.dumps(
        {
            "conn_type": "airbyte",
            "host": standin.url + "/api/public/v1",
            "login": standin.config.client_id,
            "password": standin.config.client_secret,
            "extra": {"auth_type": "client_credentials"},
        }
    )


@contextmanager
def receiver_on(
    setup: SharedAirflow, ledger_url: str, tmp_path: Path, name: str
) -> Iterator[subprocess.Popen]:
    """A receiver process of ``setup`` on ``ledger_url``; its notification URL in ``.url``."""
    env = {
        "AIRFLOW_API_URL": setup.airflow.url,
        "LEDGER_URL": ledger_url,
        "AIRFLOW_CONN_AIRBYTE_DEFAULT": airbyte_connection(setup.standin),
        "AIRFLOW_VAR_AIRBYTE_STRIPE_POSTGRES_CONNECTION_ID": STRIPE,
    }
    with receiver_process(tmp_path, name, AIRBYTE_NOTIFICATION_TOKEN=TOKEN, **env) as (url, p):
        p.url = f"{url}/airbyte/notifications/{TOKEN}"  # type: ignore[attr-defined]
        yield p


def succeeded_jobs(shared: SharedAirflow, n: int) -> list[int]:
    """``n`` Stripe syncs started outside Airflow, one after the other, all succeeded."""
    jobs = []
    for _ in range(n):
        job_id = start_outside_airflow(shared, STRIPE)
        wait_until(lambda j=job_id: job_status(shared, j) == "succeeded", timeout=60, interval=0.05)
        jobs.append(job_id)
    return jobs


def notice_status(url: str, job_id: int) -> dict:
    return requests.get(f"{url}/jobs/{job_id}", timeout=10).json()


def post(url: str, job_id: int) -> tuple[int, float, str]:
    body = {"text": "Sync succeeded", "data": {"jobId": job_id, "connection": {"id": STRIPE}}}
    started = time.monotonic()
    response = requests.post(url, json=body, timeout=30)
    return job_id, time.monotonic() - started, response.json()["status"]


def paced(urls: list[str], jobs: list[int], seconds: float, pool: ThreadPoolExecutor) -> list:
    """Post each job's notification, ``len(jobs) / seconds`` a second, alternating ``urls``."""
    start, futures = time.monotonic(), []
    for n, job_id in enumerate(jobs):
        time.sleep(max(0.0, start + n * seconds / len(jobs) - time.monotonic()))
        futures.append(pool.submit(post, urls[n % len(urls)], job_id))
    return [f.result() for f in futures]


def events_by_job(airflow: AirflowServer, uris: list[str], since: str) -> dict[str, list[int]]:
    """Every asset's events since ``since``, as the job ids they name."""
    assets = airflow.api("GET", "/assets", params={"limit": 100, "only_active": False})
    ids = {a["uri"]: a["id"] for a in assets.json()["assets"] if a["uri"] in uris}
    found: dict[str, list[int]] = {}
    for uri in uris:
        events: list[dict] = []
        while True:
            params = {"asset_id": ids[uri], "timestamp_gte": since, "limit": 100}
            page = airflow.api("GET", "/assets/events", params=params | {"offset": len(events)})
            if page.status_code == 500:  # apache/airflow#71360 while a run is queued: again
                continue
            batch = page.json()["asset_events"]
            events += batch
            if len(batch) < 100:
                break
        found[uri] = [e["extra"].get(JOB_ID_KEY) for e in events]
    return found


def test_a_burst_with_a_receiver_killed_midway_makes_every_event_exactly_once(
    pg_airflow, postgres_url, tmp_path
):
    pg_airflow.standin.notify_to(None)  # the burst is the test's own
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    jobs = succeeded_jobs(pg_airflow, JOBS)
    assets = [CONNECTION_ASSET]  # no sync ran here: the tables have no Asset yet
    api_log = pg_airflow.airflow.home / "processes" / "api-server.log"
    with ExitStack() as stack, ThreadPoolExecutor(64) as pool:
        a = stack.enter_context(receiver_on(pg_airflow, postgres_url, tmp_path, "a"))
        b = stack.enter_context(receiver_on(pg_airflow, postgres_url, tmp_path, "b"))
        half = JOBS // 2
        first = paced([a.url, b.url], jobs[:half], BURST_SECONDS / 2, pool)
        a.send_signal(signal.SIGKILL)  # in the middle of its work
        a.wait(timeout=30)
        burst_end = time.monotonic()
        a2 = stack.enter_context(receiver_on(pg_airflow, postgres_url, tmp_path, "a2"))
        second = paced([a2.url, b.url], jobs[half:], BURST_SECONDS / 2, pool)
        answers = first + second
        assert sorted(status for _, _, status in answers) == ["accepted"] * JOBS
        latencies = sorted(seconds for _, seconds, _ in answers)
        assert statistics.quantiles(latencies, n=20)[-1] < 1.0, latencies[-10:]

        def all_there() -> dict[str, list[int]] | None:
            try:  # Airflow, busy with the receivers' writes, may be slow to list
                found = events_by_job(pg_airflow.airflow, assets, since)
            except requests.Timeout:
                return None
            return found if all(set(found[u]) >= set(jobs) for u in found) else None

        found = wait_until(all_there, timeout=300, interval=5, what="every job's events")
        twice = {u: sorted(j for j, n in Counter(ids).items() if n > 1) for u, ids in found.items()}
        assert twice == {u: [] for u in assets}, twice
        took = time.monotonic() - burst_end
        print(
            f"burst of {JOBS}: answer p95 {statistics.quantiles(latencies, n=20)[-1]:.3f} s; "
            f"every event {took:.0f} s after the kill"
        )

        wait_until(  # the killed receiver's last ones: after its lease and claims
            lambda: all(notice_status(b.url, job)["state"] == "done" for job in jobs),
            timeout=300,
            interval=2,
            what="every notification done",
        )
        # A day later (the inbox forgot them): the same 200 again create nothing.
        with pytest.MonkeyPatch.context() as later:  # the inbox's clock only
            ahead = time.time() + inbox_module.JOB_MEMORY_SECONDS + 1
            later.setattr(inbox_module, "time", types.SimpleNamespace(time=lambda: ahead))
            assert Inbox(Ledger(postgres_url)).forget_old() == JOBS
        replayed = paced([a2.url, b.url], jobs, BURST_SECONDS, pool)
        assert sorted(status for _, _, status in replayed) == ["accepted"] * JOBS
        wait_until(
            lambda: all(
                (s := notice_status(b.url, job))["state"] == "done"
                and s["outcome"]["status"] == "duplicate"
                for job in jobs
            ),
            timeout=300,
            interval=2,
            what="every replay processed",
        )
    assert events_by_job(pg_airflow.airflow, assets, since) == found  # 0 new events
    assert api_log.read_bytes().count(b"QueuePool limit") == 0  # no pool timeout
