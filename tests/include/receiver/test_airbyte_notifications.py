"""Airbyte's notifications end to end: the stand-in notifies the receiver, which confirms the
job with the stand-in and creates asset events in the real Airflow, whose asset-scheduled DAG
runs. Every case is judged by the asset events and DAG runs Airflow ends up with."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import requests

from dev.airbyte_standin import HUBSPOT_CONNECTION_ID
from dev.processes import wait_until
from include.assets import connection_asset
from include.connections import load_connections
from include.receiver.reconcile import Reconciled, reconcile
from plugins.airbyte_client.contracts import names_job
from tests.airflow_fixtures import STRIPE, TIMEOUT, RunningSystem, SharedAirflow
from tests.include.receiver.conftest import QUALITY_DAG, TOKEN, receiver_settings

pytestmark = pytest.mark.timeout(TIMEOUT)
CONNECTION_ASSET = connection_asset(load_connections().entry("stripe")).uri


def start_outside_airflow(shared: RunningSystem, connection_id: str = STRIPE) -> int:
    """Start a sync through the stand-in's API, as Airbyte's scheduler or UI would."""
    response = requests.post(
        f"{shared.standin.config_api_url}/connections/sync",
        json={"connectionId": connection_id},
        headers=shared.standin.auth_headers(),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["job"]["id"]


def cancel_outside_airflow(shared: SharedAirflow, job_id: int) -> None:
    """Cancel a job through the stand-in's API, as a user in Airbyte's UI would."""
    requests.post(
        f"{shared.standin.config_api_url}/jobs/cancel",
        json={"id": job_id},
        headers=shared.standin.auth_headers(),
        timeout=10,
    )


def job_status(shared: RunningSystem, job_id: int) -> str:
    response = requests.post(
        f"{shared.standin.config_api_url}/jobs/get",
        json={"id": job_id},
        headers=shared.standin.auth_headers(),
        timeout=10,
    )
    return response.json()["job"]["status"]


def asset_events(shared: RunningSystem, uri: str, job_id: int) -> list[dict]:
    """Airflow's events on the asset ``uri`` whose extra names Airbyte job ``job_id``."""
    params = {"uri_pattern": uri, "only_active": False}
    assets = shared.airflow.api("GET", "/assets", params=params).json()["assets"]
    [asset_id] = [a["id"] for a in assets if a["uri"] == uri]
    # Airflow 3.3.0 answers 500 while a run an event created is queued (apache/airflow#71360).
    response = wait_until(
        lambda: (
            (
                r := shared.airflow.api(
                    "GET", "/assets/events", params={"asset_id": asset_id, "limit": 100}
                )
            ).status_code
            == 200
            and r
        ),
        timeout=60,
        interval=0.2,
        what="Airflow listing asset events",
    )
    events = response.json()["asset_events"]
    return [e for e in events if names_job(e.get("extra"), job_id)]


def events_per_asset(shared: RunningSystem, job_id: int, uris: list[str]) -> dict[str, int]:
    return {uri: len(asset_events(shared, uri, job_id)) for uri in uris}


def quality_runs_for(shared: RunningSystem, job_id: int, dag_id: str = QUALITY_DAG) -> list[dict]:
    """Runs of the quality DAG (or ``dag_id``) that consumed an asset event of Airbyte job
    ``job_id``."""
    found = []
    for run in shared.airflow.list_runs(dag_id):
        run_id = quote(run["dag_run_id"], safe="")
        path = f"/dags/{dag_id}/dagRuns/{run_id}/upstreamAssetEvents"
        response = shared.airflow.api("GET", path)
        if response.status_code == 500:  # a run its events created is queued (#71360): later
            continue
        response.raise_for_status()
        events = response.json()["asset_events"]
        if any(names_job(e.get("extra"), job_id) for e in events):
            found.append(run)
    return found


def notify(intake: str, job_id: int | None, connection_id: str = STRIPE, **body) -> dict:
    """POST a notification as Airbyte shapes it (anyone who knows the URL can); the answer:
    202 ``accepted``, or 200 (``duplicate``, ``ignored``)."""
    payload = {"text": "Your connection succeeded", "blocks": [], **body}
    if job_id is not None:
        payload["data"] = {
            "jobId": job_id,
            "connection": {"id": connection_id, "name": "Stripe → Postgres", "url": "x"},
            "success": True,
            "recordsCommitted": 10**9,
        }
    response = requests.post(intake, json=payload, timeout=30)
    assert response.status_code == (202 if response.json()["status"] == "accepted" else 200)
    return response.json()


def notification_status(intake: str, job_id: int) -> dict | None:
    """The receiver's record of the job's notification (``GET .../jobs/<id>``), or None."""
    response = requests.get(f"{intake}/jobs/{job_id}", timeout=10)
    assert response.status_code in (200, 404), response.text
    return response.json() if response.status_code == 200 else None


def outcome(intake: str, job_id: int, timeout: float = 90) -> dict:
    """What the receiver did with the job's notification, once it is done with it."""
    status = wait_until(
        lambda: (s := notification_status(intake, job_id)) and s["state"] == "done" and s,
        timeout=timeout,
        interval=0.2,
        what=f"the notification of job {job_id} processed",
    )
    return status["outcome"]


def looked_at_again(intake: str, job_id: int) -> dict:
    """The job's notification once a try has given it back to be looked at later."""
    return wait_until(
        lambda: (s := notification_status(intake, job_id)) and s["attempts"] >= 1 and s,
        timeout=60,
        interval=0.2,
        what=f"a try of job {job_id}'s notification",
    )


def outbox_messages(outbox: Path, job_id: int) -> list[dict]:
    if not outbox.exists():
        return []
    lines = [json.loads(line) for line in outbox.read_text().splitlines() if line.strip()]
    return [m for m in lines if m["airbyte_job_id"] == job_id]


def test_a_sync_started_outside_airflow_makes_one_event_per_asset_and_one_quality_run(
    stripe_assets, shared, intake
):
    job_id = start_outside_airflow(shared)
    wait_until(
        lambda: all(events_per_asset(shared, job_id, stripe_assets).values()),
        timeout=60,
        interval=0.2,
        what=f"asset events of job {job_id}",
    )
    assert events_per_asset(shared, job_id, stripe_assets) == dict.fromkeys(stripe_assets, 1)
    [event] = asset_events(shared, CONNECTION_ASSET, job_id)
    assert event["extra"]["origin"] == "airbyte_notification"
    assert event["extra"]["records"] == 60
    assert event["extra"]["bytes"] > 0
    assert event["extra"]["connection_id"] == STRIPE
    assert "duration_seconds" in event["extra"]

    [run] = wait_until(
        lambda: quality_runs_for(shared, job_id), timeout=60, interval=0.5, what="quality run"
    )
    run_id = quote(run["dag_run_id"], safe="")
    finished = shared.airflow.wait_for_run(QUALITY_DAG, run_id, timeout=180)
    assert finished["state"] == "success"
    tasks = {t["task_id"]: t["state"] for t in shared.airflow.task_instances(QUALITY_DAG, run_id)}
    assert set(tasks.values()) == {"success"}, tasks
    assert len(quality_runs_for(shared, job_id)) == 1
    sent = [r for r in shared.standin.notifications_sent() if r["job_id"] == job_id]
    assert [(r["success"], r["status"]) for r in sent] == [(True, 202)]


def test_a_receiver_on_the_configuration_api_confirms_the_same_way(
    stripe_assets, shared, intake, make_receiver
):
    url = make_receiver(
        shared.airflow.url, airbyte_notification_token=TOKEN, airbyte_conn_id="airbyte_config_api"
    )
    shared.standin.notify_to(f"{url}/airbyte/notifications/{TOKEN}")
    try:
        job_id = start_outside_airflow(shared)
        wait_until(
            lambda: all(events_per_asset(shared, job_id, stripe_assets).values()),
            timeout=60,
            interval=0.2,
            what=f"asset events of job {job_id}",
        )
    finally:
        shared.standin.notify_to(intake)
    assert events_per_asset(shared, job_id, stripe_assets) == dict.fromkeys(stripe_assets, 1)
    confirmations = [r for r in shared.standin.requests() if r["path"] == "/api/v1/jobs/get"]
    assert confirmations, "the receiver confirmed through the Configuration API"


def test_a_redelivered_notification_creates_no_event(stripe_assets, shared, intake):
    job_id = start_outside_airflow(shared)
    wait_until(
        lambda: all(events_per_asset(shared, job_id, stripe_assets).values()),
        timeout=60,
        interval=0.2,
    )
    done = outcome(intake, job_id)
    assert (done["status"], sorted(done["created"])) == ("asset_events", sorted(stripe_assets))
    for _ in range(2):
        again = notify(intake, job_id)
        assert again["status"] == "duplicate"
    assert notification_status(intake, job_id)["attempts"] == 0  # processed once
    assert events_per_asset(shared, job_id, stripe_assets) == dict.fromkeys(stripe_assets, 1)


def test_forged_notification_of_an_unknown_job_creates_no_event(stripe_assets, shared, intake):
    assert notify(intake, 987654321)["status"] == "accepted"
    answer = outcome(intake, 987654321)
    assert answer["status"] == "ignored"
    assert "does not know" in answer["detail"]
    assert events_per_asset(shared, 987654321, stripe_assets) == dict.fromkeys(stripe_assets, 0)


def test_forged_notification_of_a_running_job_creates_no_event(stripe_assets, shared, intake):
    shared.standin.set_job_behaviour("stuck_running", STRIPE)
    job_id = start_outside_airflow(shared)
    try:
        wait_until(lambda: job_status(shared, job_id) == "running", timeout=30)
        assert notify(intake, job_id)["status"] == "accepted"
        status = looked_at_again(intake, job_id)
        assert "the job is running" in status["outcome"]["detail"]
        assert events_per_asset(shared, job_id, stripe_assets) == dict.fromkeys(stripe_assets, 0)
    finally:
        cancel_outside_airflow(shared, job_id)


def test_a_failed_job_is_reported_once_and_creates_no_event(stripe_assets, shared, intake, outbox):
    reason = "Stripe answered 401: the API key was revoked"
    shared.standin.set_job_behaviour("fail", STRIPE, failure_reason=reason)
    job_id = start_outside_airflow(shared)
    # Airbyte's own failure notification arrives; a forged "success" for it changes nothing.
    wait_until(lambda: outbox_messages(outbox, job_id), timeout=60, interval=0.2)
    forged = notify(intake, job_id)
    assert forged["status"] == "duplicate"
    [message] = outbox_messages(outbox, job_id)
    assert message["state"] == "failed"
    assert reason in message["body"]
    assert str(job_id) in message["subject"]
    assert events_per_asset(shared, job_id, stripe_assets) == dict.fromkeys(stripe_assets, 0)


def test_a_notification_naming_another_connection_creates_no_event(stripe_assets, shared, intake):
    job_id = start_outside_airflow(shared)
    wait_until(
        lambda: all(events_per_asset(shared, job_id, stripe_assets).values()),
        timeout=60,
        interval=0.2,
    )
    assert notify(intake, job_id, connection_id=HUBSPOT_CONNECTION_ID)["status"] == "duplicate"
    shared.standin.notify_to(None)  # only the forged notification names the next job
    try:
        job_id = start_outside_airflow(shared)
        wait_until(lambda: job_status(shared, job_id) == "succeeded", timeout=30)
        assert notify(intake, job_id, connection_id=HUBSPOT_CONNECTION_ID)["status"] == "accepted"
        answer = outcome(intake, job_id)
    finally:
        shared.standin.notify_to(intake)
    assert answer["status"] == "ignored"
    assert "another connection" in answer["detail"]
    assert events_per_asset(shared, job_id, stripe_assets) == dict.fromkeys(stripe_assets, 0)


def test_a_connection_no_dag_syncs_creates_no_event(shared, intake):
    job_id = start_outside_airflow(shared, HUBSPOT_CONNECTION_ID)  # no Variable names it here
    wait_until(lambda: job_status(shared, job_id) == "succeeded", timeout=30)
    answer = outcome(intake, job_id)  # of the stand-in's own notification
    assert answer == {
        "status": "ignored",
        "detail": "No DAG here syncs this connection.",
        "job_id": job_id,
    }


def test_airbytes_test_message_is_acknowledged_and_ignored(intake):
    answer = notify(intake, None, text="Hello World! This is a test from Airbyte.")
    assert answer["status"] == "ignored"


def test_a_text_only_body_as_google_chat_gets_it_is_acknowledged_and_ignored(shared, intake):
    """Airbyte's Google Chat webhook body has only ``text``: no job to confirm (the
    reconciler finds the job); acknowledged so that Airbyte does not count a failure."""
    served = len(shared.standin.requests())
    text = "Your connection Stripe → Postgres succeeded. Job 12: https://airbyte/..."
    response = requests.post(intake, json={"text": text}, timeout=30)
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert len(shared.standin.requests()) == served  # nothing to confirm


def test_a_notification_of_a_queued_job_creates_no_event(stripe_assets, shared, intake):
    shared.standin.set_job_behaviour("stuck_pending", STRIPE)
    job_id = start_outside_airflow(shared)
    try:
        assert notify(intake, job_id)["status"] == "accepted"
        status = looked_at_again(intake, job_id)
        assert "the job is pending" in status["outcome"]["detail"]
        assert events_per_asset(shared, job_id, stripe_assets) == dict.fromkeys(stripe_assets, 0)
    finally:
        cancel_outside_airflow(shared, job_id)


def test_a_success_that_moved_nothing_claims_no_data(stripe_assets, shared, intake):
    """Airbyte records some launch failures as succeeded with 0 bytes (airbytehq/airbyte
    #85355): its notification says success, but no Asset event says that data arrived."""
    shared.standin.set_job_behaviour("empty_success", STRIPE)
    job_id = start_outside_airflow(shared)
    wait_until(lambda: job_status(shared, job_id) == "succeeded", timeout=30)
    wait_until(
        lambda: [r for r in shared.standin.notifications_sent() if r["job_id"] == job_id],
        timeout=30,
        what="Airbyte's notification",
    )
    assert outcome(intake, job_id) == {
        "status": "ignored",
        "detail": "The job moved no data: no asset was updated.",
        "job_id": job_id,
    }
    assert events_per_asset(shared, job_id, stripe_assets) == dict.fromkeys(stripe_assets, 0)


def sync_summary(job_id: int, *, success: bool) -> dict:
    """A body with every field of Airbyte's ``SyncSummary``, as its webhooks send it."""
    ref = {"id": STRIPE, "name": "Stripe → Postgres", "url": "https://airbyte/connection"}
    data = {
        "workspace": {"id": "w", "name": "Default Workspace", "url": "https://airbyte/w"},
        "connection": ref,
        "source": {"id": "s", "name": "Stripe", "url": "https://airbyte/s"},
        "destination": {"id": "d", "name": "Postgres", "url": "https://airbyte/d"},
        "jobId": job_id,
        "startedAt": "2026-01-01T00:00:00Z",
        "finishedAt": "2026-01-01T00:01:00Z",
        "bytesEmitted": 1000,
        "bytesCommitted": 1000,
        "recordsEmitted": 10,
        "recordsCommitted": 10,
        "recordsFilteredOut": 0,
        "bytesFilteredOut": 0,
        "errorMessage": None if success else "java.lang.RuntimeException: boom\n\tat ...",
        "errorType": None if success else "system_error",
        "errorOrigin": None if success else "source",
        "success": success,
        "durationInSeconds": 60,
        "durationFormatted": "1 min",
    }
    text = f"Your connection Stripe → Postgres {'succeeded' if success else 'failed'}."
    return {"text": text, "blocks": [{"type": "section", "text": {"text": text}}], "data": data}


def test_a_full_sync_summary_is_read_and_confirmed(stripe_assets, shared, intake):
    """Every ``SyncSummary`` field present (nulls included): the job id is a hint, confirmed
    with Airbyte; the body's own figures are never taken for the events'."""
    shared.standin.notify_to(intake, drop=1)  # the stand-in's own notification is lost
    job_id = start_outside_airflow(shared)
    wait_until(lambda: job_status(shared, job_id) == "succeeded", timeout=30)
    response = requests.post(intake, json=sync_summary(job_id, success=True), timeout=30)
    assert response.status_code == 202, response.text
    assert outcome(intake, job_id)["status"] == "asset_events"
    assert events_per_asset(shared, job_id, stripe_assets) == dict.fromkeys(stripe_assets, 1)
    [event] = asset_events(shared, CONNECTION_ASSET, job_id)
    assert event["extra"]["records"] == 60  # Airbyte's answer, not the body's 10


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"data": {"jobId": "x"}}'])
def test_a_body_that_is_not_a_notification_is_400(intake, body):
    response = requests.post(intake, data=body, timeout=30)
    assert response.status_code == 400


def test_a_wrong_token_is_404_and_confirms_nothing(shared, intake):
    served = len(shared.standin.requests())
    wrong = intake[: -len(TOKEN)] + TOKEN[:-1] + "x"
    response = requests.post(wrong, json={"data": {"jobId": 1}}, timeout=30)
    assert response.status_code == 404
    assert TOKEN not in response.text
    assert len(shared.standin.requests()) == served


def test_a_source_outside_the_allowed_networks_is_403(shared, outbox, make_receiver):
    url = make_receiver(
        shared.airflow.url,
        airbyte_notification_token=TOKEN,
        airbyte_allowed_networks="10.0.0.0/8, fd00::/8",
    )
    response = requests.post(
        f"{url}/airbyte/notifications/{TOKEN}", json={"data": {"jobId": 1}}, timeout=30
    )
    assert response.status_code == 403
    allowed = make_receiver(
        shared.airflow.url, airbyte_notification_token=TOKEN, airbyte_allowed_networks="127.0.0.0/8"
    )
    response = requests.post(f"{allowed}/airbyte/notifications/{TOKEN}", json={}, timeout=30)
    assert response.status_code == 200


@dataclass
class FlakyAirflow:
    """A proxy in front of the real Airflow: its URL, the asset-event POSTs it refused and
    every request it passed on (``METHOD path``, without the query)."""

    url: str
    refused: list[str] = field(default_factory=list)
    forwarded: list[str] = field(default_factory=list)


@contextmanager
def flaky_airflow(airflow_url: str, refuse: set[int] = frozenset()) -> Iterator[FlakyAirflow]:
    """A proxy that answers the asset-event POSTs numbered in ``refuse`` (from 1) with 503
    (without passing them on) and forwards everything else."""
    posts = itertools.count(1)
    target = httpx.Client(base_url=airflow_url, timeout=30)
    proxy = FlakyAirflow(url="")

    class Proxy(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            event = self.command == "POST" and self.path == "/api/v2/assets/events"
            if event and next(posts) in refuse:
                proxy.refused.append(self.path)
                return self._answer(503, b'{"detail": "busy"}', "application/json")
            proxy.forwarded.append(f"{self.command} {self.path.split('?')[0]}")
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            answer = target.request(self.command, self.path, content=body, headers=headers)
            kind = answer.headers.get("content-type", "application/json")
            self._answer(answer.status_code, answer.content, kind)

        def _answer(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _forward

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        target.close()


def notified_through_flaky_airflow(
    shared, intake: str, make_receiver, refuse: set[int]
) -> tuple[int, dict, dict, FlakyAirflow]:
    """A sync only a receiver behind ``flaky_airflow(refuse)`` hears of: its job id, what the
    receiver did, its record of the notification, and the proxy."""
    shared.standin.notify_to(None)  # only this receiver hears of the job
    try:
        with flaky_airflow(shared.airflow.url, refuse) as proxy:
            receiver = make_receiver(proxy.url, airbyte_notification_token=TOKEN)
            job_id = start_outside_airflow(shared)
            wait_until(lambda: job_status(shared, job_id) == "succeeded", timeout=60, what="job")
            intake_url = f"{receiver}/airbyte/notifications/{TOKEN}"
            assert notify(intake_url, job_id)["status"] == "accepted"
            answer = outcome(intake_url, job_id)
            return job_id, answer, notification_status(intake_url, job_id), proxy
    finally:
        shared.standin.notify_to(intake)


def test_airflow_refusing_an_event_for_a_moment_loses_nothing(
    stripe_assets, shared, intake, make_receiver
):
    """Airflow answers 503 to two asset-event POSTs: the receiver tries again later, from its
    inbox, and every asset still gets its one event."""
    job_id, answer, status, proxy = notified_through_flaky_airflow(
        shared, intake, make_receiver, refuse={1, 2}
    )
    assert len(proxy.refused) == 2
    assert status["attempts"] == 2  # two tries given back, the third done
    assert answer["status"] == "asset_events"
    assert sorted(answer["created"]) == sorted(stripe_assets)
    assert events_per_asset(shared, job_id, stripe_assets) == dict.fromkeys(stripe_assets, 1)


def test_a_try_refused_after_its_first_event_makes_the_rest_on_the_next_try(
    stripe_assets, shared, intake, make_receiver
):
    """The connection's event is created, a table's is refused: the receiver's own event is
    no task's announcement, so the next try creates the tables' events, each once."""
    job_id, answer, _, proxy = notified_through_flaky_airflow(
        shared, intake, make_receiver, refuse={2}
    )
    assert len(proxy.refused) == 1
    assert answer["status"] == "asset_events"
    assert events_per_asset(shared, job_id, stripe_assets) == dict.fromkeys(stripe_assets, 1)


def lost_syncs(shared, n: int) -> tuple[list[int], timedelta]:
    """``n`` syncs Airbyte ran and nobody was told of (notifications off meanwhile), and a
    lookback that reaches these jobs only."""
    started = time.monotonic()
    shared.standin.notify_to(None)  # the notifications are lost
    jobs: list[int] = []
    for _ in range(n):
        jobs.append(start_outside_airflow(shared))
        wait_until(lambda: job_status(shared, jobs[-1]) == "succeeded", timeout=60, what="job")
    return jobs, timedelta(seconds=time.monotonic() - started + 2)


def test_the_reconciler_leaves_a_job_airflow_refused_to_the_next_try_and_goes_on(
    stripe_assets, shared, intake
):
    """Airflow refuses the first event of a reconcile run: that job is left unsettled, the
    other lost syncs get their events in the same run, and the next run finishes the first."""
    try:
        jobs, lookback = lost_syncs(shared, 3)
        with flaky_airflow(shared.airflow.url, refuse={1}) as proxy:
            settings = receiver_settings(proxy.url)
            first = asyncio.run(reconcile(load_connections(), settings, lookback, timedelta()))
            second = asyncio.run(reconcile(load_connections(), settings, lookback, timedelta()))
    finally:
        shared.standin.notify_to(intake)
    assert len(proxy.refused) == 1
    [left] = first.unsettled
    assert sorted(first.events_created) == sorted(set(jobs) - {left})
    assert (second.unsettled, list(second.events_created)) == ([], [left])
    for job_id in jobs:
        assert events_per_asset(shared, job_id, stripe_assets) == dict.fromkeys(stripe_assets, 1)


def test_a_reconcile_run_over_settled_jobs_only_lists_each_connections_jobs(
    stripe_assets, shared, intake
):
    """Once a job's events all exist the ledger says so for good: the next run asks Airbyte for
    each entry's job list and nothing else, and Airflow for no Asset at all."""
    try:
        jobs, lookback = lost_syncs(shared, 2)
        settings = receiver_settings(shared.airflow.url)
        first = asyncio.run(reconcile(load_connections(), settings, lookback, timedelta()))
        served = len(shared.standin.requests())
        with flaky_airflow(shared.airflow.url) as proxy:
            again = receiver_settings(proxy.url, ledger_path=settings.ledger_path)
            second = asyncio.run(reconcile(load_connections(), again, lookback, timedelta()))
        asked = {f"{r['method']} {r['path']}" for r in shared.standin.requests()[served:]}
    finally:
        shared.standin.notify_to(intake)
    assert sorted(first.events_created) == sorted(jobs)
    assert (second.events_created, second.unsettled) == ({}, [])
    listings = {"GET /api/public/v1/jobs", "POST /api/v1/jobs/list"}
    tokens = {"POST /api/public/v1/applications/token", "POST /api/v1/applications/token"}
    assert asked & listings, asked
    assert asked <= listings | tokens, asked
    assert not [r for r in proxy.forwarded if "/assets" in r], proxy.forwarded


def test_two_receivers_and_the_reconciler_on_one_ledger_at_once_make_one_event(
    stripe_assets, shared, intake, make_receiver, postgres_url
):
    """Two replicas sharing a PostgreSQL ledger each get the notification ten times, and the
    reconciler runs, all at the same moment: every asset gets exactly one event for the job."""
    shared.standin.notify_to(None)  # only these two receivers hear of the job
    try:
        settings = {"airbyte_notification_token": TOKEN, "ledger_url": postgres_url}
        receivers = [
            f"{make_receiver(shared.airflow.url, **settings)}/airbyte/notifications/{TOKEN}"
            for _ in range(2)
        ]
        started = time.monotonic()
        job_id = start_outside_airflow(shared)
        wait_until(lambda: job_status(shared, job_id) == "succeeded", timeout=60, what="job")
        start = threading.Barrier(21)

        def deliver(n: int) -> dict:
            start.wait()
            return notify(receivers[n % 2], job_id)

        def reconcile_now() -> Reconciled:
            reconciler = receiver_settings(shared.airflow.url, ledger_url=postgres_url)
            lookback = timedelta(seconds=time.monotonic() - started + 2)  # this job's only
            start.wait()
            return asyncio.run(reconcile(load_connections(), reconciler, lookback, timedelta()))

        with ThreadPoolExecutor(21) as pool:
            reconciled = pool.submit(reconcile_now)
            answers = list(pool.map(deliver, range(20)))
            by_reconciler = reconciled.result().events_created.get(job_id, [])
        done = outcome(receivers[0], job_id)
    finally:
        shared.standin.notify_to(intake)
    assert sorted(a["status"] for a in answers) == ["accepted"] + ["duplicate"] * 19
    assert done["status"] in ("asset_events", "duplicate")  # its last try's word
    assert set(by_reconciler) <= set(stripe_assets)
    assert events_per_asset(shared, job_id, stripe_assets) == dict.fromkeys(stripe_assets, 1)


def test_a_failure_notification_with_a_500_kib_stack_trace_is_reported_once(shared, intake, outbox):
    """Airbyte puts the stack trace in ``errorMessage``: the body is far over the signed
    events' 64 KiB cap, and the failure is still reported, once, quoting its start."""
    shared.standin.set_job_behaviour("fail", STRIPE)
    shared.standin.notify_to(intake, drop=1)  # the stand-in's own notification is lost
    job_id = start_outside_airflow(shared)
    wait_until(lambda: job_status(shared, job_id) == "failed", timeout=30)
    body = sync_summary(job_id, success=False)
    trace = "java.lang.RuntimeException: boom\n" + "\tat io.airbyte.Worker.run\n" * 21_000
    body["data"]["errorMessage"] = trace
    assert len(json.dumps(body)) > 500 * 1024
    first = requests.post(intake, json=body, timeout=30)
    assert first.status_code == 202, first.text[:300]
    assert outcome(intake, job_id)["status"] == "failure_reported"
    again = requests.post(intake, json=body, timeout=30)
    assert again.json()["status"] == "duplicate"
    [message] = outbox_messages(outbox, job_id)
    assert "java.lang.RuntimeException: boom" in message["body"]
    assert len(message["body"]) < 4000  # a quote of the trace, not all of it
