"""Airbyte's workspace notifications: a POST to a webhook URL when a sync job ends.

Like Airbyte's ``notifications.success.webhook`` / ``failure.webhook`` settings: when a sync
succeeds or fails, the stand-in POSTs Airbyte's Slack-shaped body (``text``, ``blocks`` and
``data`` with ``jobId``, ``connection``, figures, ``success``...) to the configured URL,
once per job, whoever started the job. Nothing is signed (Airbyte does not sign either).

The URL comes from ``StandinConfig.notification_url`` (``--notification-url``) or at run time
from the admin API: ``PUT /_standin/notifications {"url": ..., "drop": n}``, where ``drop``
loses the next n notifications (what a network blip does). ``GET /_standin/notifications``
lists what was sent (job id, success, the answer's status and how long it took).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

import requests
from fastapi import APIRouter, Request

from dev.airbyte_standin.job_model import Job
from dev.airbyte_standin.jobs import JobStore
from dev.airbyte_standin.seed import DESTINATION_ID, WORKSPACE_ID, SeedConnection
from dev.airbyte_standin.state import json_object

log = logging.getLogger(__name__)
SEND_TIMEOUT = 10.0
WEB_APP = "http://localhost:8000"


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def notification_body(job: Job, connection: SeedConnection) -> dict[str, Any]:
    """What Airbyte POSTs for a finished sync job of ``connection``."""
    success = job.status == "succeeded"
    error = (
        None
        if success
        else next(
            (a.failure_reason for a in reversed(job.attempts) if a.failure_reason),
            job.failure_reason,
        )
    )
    workspace_url = f"{WEB_APP}/workspaces/{WORKSPACE_ID}"
    connection_url = f"{workspace_url}/connections/{job.connection_id}"
    started = job.started_at or job.created_at
    verb = "succeeded" if success else "failed"
    text = f"Your connection {connection.name} {verb}. Job {job.id}: {connection_url}"
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        "data": {
            "workspace": {"id": WORKSPACE_ID, "name": "Default Workspace", "url": workspace_url},
            "connection": {"id": job.connection_id, "name": connection.name, "url": connection_url},
            "source": {
                "id": connection.source_id,
                "name": connection.source.title(),
                "url": f"{workspace_url}/source/{connection.source_id}",
            },
            "destination": {
                "id": DESTINATION_ID,
                "name": "Postgres",
                "url": f"{workspace_url}/destination/{DESTINATION_ID}",
            },
            "jobId": job.id,
            "startedAt": _iso(started),
            "finishedAt": _iso(job.updated_at),
            "bytesEmitted": job.bytes,
            "bytesCommitted": job.bytes,
            "recordsEmitted": job.records,
            "recordsCommitted": job.records,
            "recordsFilteredOut": 0,
            "bytesFilteredOut": 0,
            "errorMessage": error,
            "errorType": None if success else "system_error",
            "errorOrigin": None if success else "source",
            "success": success,
            "durationInSeconds": int(job.updated_at - started),
            "durationFormatted": f"{int(job.updated_at - started)} sec",
        },
    }


class NotificationSender:
    """A thread that notices sync jobs ending and POSTs their notification, once each."""

    def __init__(self, store: JobStore, url: str | None, interval: float) -> None:
        self.store = store
        self.url = url
        self.interval = interval
        self.drop = 0
        self.sent: list[dict[str, Any]] = []
        self._seen: set[int] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="standin-notify", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=SEND_TIMEOUT + 5)

    def configure(self, url: str | None, drop: int) -> None:
        with self._lock:
            self.url, self.drop = url, drop

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.scan()
            except Exception:  # keep notifying whatever one job did
                log.exception("notification sender failed")

    def scan(self) -> None:
        """Notify every sync job that ended since the last scan (none from before start)."""
        with self.store.lock:
            ended = [j for j in self.store.list() if j.terminal]
            if self._seen is None:  # first scan: jobs that ended before the start are old news
                self._seen = {j.id for j in ended}
                return
            new = [j for j in ended if j.id not in self._seen]
            self._seen.update(j.id for j in new)
            bodies = {}
            for job in filter(self._due, new):
                # None only for a job kept across a restart whose connection was added at run time
                connection = self.store.connections.find(job.connection_id)
                if connection is not None:
                    bodies[job.id] = notification_body(job, connection)
        for job_id, body in bodies.items():
            self._send(job_id, body)

    @staticmethod
    def _due(job: Job) -> bool:
        return job.job_type == "sync" and job.status in ("succeeded", "failed")

    def _send(self, job_id: int, body: dict[str, Any]) -> None:
        with self._lock:
            url, dropped = self.url, self.drop > 0
            if dropped:
                self.drop -= 1
        record: dict[str, Any] = {"job_id": job_id, "success": body["data"]["success"]}
        if url is None or dropped:
            record["status"] = "dropped" if dropped else "no url"
        else:
            sent_at = time.monotonic()
            record["sent_at"] = time.time()  # epoch, to compare with what the receiver did
            try:
                answer = requests.post(url, json=body, timeout=SEND_TIMEOUT)
                record["status"] = answer.status_code
            except requests.RequestException as exc:
                record["status"] = type(exc).__name__
            record["seconds"] = round(time.monotonic() - sent_at, 4)
        with self._lock:
            self.sent.append(record)


router = APIRouter(prefix="/_standin/notifications")


@router.put("")
async def configure(request: Request) -> dict[str, Any]:
    spec = await json_object(request, 400)
    sender: NotificationSender = request.app.state.notifier
    sender.configure(spec.get("url"), int(spec.get("drop") or 0))
    return {"url": sender.url, "drop": sender.drop}


@router.get("")
def sent(request: Request) -> list[dict[str, Any]]:
    sender: NotificationSender = request.app.state.notifier
    with sender._lock:
        return list(sender.sent)
