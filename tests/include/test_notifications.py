"""SyncNotifier: the message, and its delivery by e-mail (a real SMTP server) and outbox."""

from __future__ import annotations

import email
import json
from email.message import Message

import pytest
from aiosmtpd.controller import Controller

from dev.processes import free_port
from include.notifications import (
    EmailChannel,
    OutboxChannel,
    SyncMessage,
    SyncNotifier,
    configured_channels,
)

JOB_STATS = {"job_id": 42, "records": 150, "bytes": 20480, "duration_seconds": 31.0}


class XComTaskInstance:
    """Stands in for Airflow's TaskInstance: XComs of the sync task and its identity."""

    task_id = "notify"
    dag_id = "airbyte_stripe_to_postgres"
    run_id = "manual__2026-11-25"
    state = "success"

    def xcom_pull(self, task_ids: str, key: str):
        assert task_ids == "sync_stripe"
        return {"airbyte_job_id": 42, "airbyte_sync_stats": JOB_STATS}.get(key)


class Inbox:
    """aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(monkeypatch):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": controller.port,
                "extra": {
                    "disable_tls": True,
                    "disable_ssl": True,
                    "from_email": "airflow@example.com",
                },
            }
        ),
    )
    yield inbox
    controller.stop()


def test_message_carries_the_airbyte_job_id_rows_and_duration():
    message = SyncNotifier(xcom_task_id="sync_stripe", title="Stripe").render(
        {"ti": XComTaskInstance()}
    )
    assert message.airbyte_job_id == 42
    assert message.subject == "Stripe succeeded: airbyte_stripe_to_postgres (job 42)"
    assert "Rows: 150  Bytes: 20480  Duration: 31.0 s" in message.body


def test_failure_message_says_so_and_includes_the_error():
    context = {"ti": XComTaskInstance(), "exception": RuntimeError("Airbyte job 42 failed: boom")}
    message = SyncNotifier(xcom_task_id="sync_stripe").render(context)
    assert message.subject.startswith("Airbyte sync failed")
    assert "Error: Airbyte job 42 failed: boom" in message.body


def test_email_through_the_smtp_connection(smtp_server, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_VAR_AIRBYTE_NOTIFY_EMAILS", "data-team@example.com, oncall@example.com"
    )
    SyncNotifier((EmailChannel(),), xcom_task_id="sync_stripe").notify({"ti": XComTaskInstance()})
    [mail] = smtp_server.messages
    assert mail["To"] == "data-team@example.com, oncall@example.com"
    assert "(job 42)" in mail["Subject"]
    body = "".join(
        part.get_payload(decode=True).decode() for part in mail.walk() if not part.is_multipart()
    )
    assert "Airbyte job: 42" in body


def test_outbox_appends_json_lines(tmp_path):
    path = tmp_path / "outbox.jsonl"
    notifier = SyncNotifier((OutboxChannel(str(path)),), xcom_task_id="sync_stripe")
    notifier.notify({"ti": XComTaskInstance()})
    notifier.notify({"ti": XComTaskInstance()})
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [m["airbyte_job_id"] for m in lines] == [42, 42]
    assert lines[0]["stats"]["records"] == 150


def test_channels_come_from_the_variable_when_sending(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_VAR_AIRBYTE_NOTIFY_CHANNELS", "outbox, email")
    assert [type(c) for c in configured_channels()] == [OutboxChannel, EmailChannel]
    monkeypatch.setenv("AIRFLOW_VAR_AIRBYTE_NOTIFY_CHANNELS", "pager")
    with pytest.raises(ValueError, match="Unknown notification channel"):
        configured_channels()


def test_outbox_without_a_path_says_which_variable_to_set(monkeypatch):
    monkeypatch.delenv("AIRFLOW_VAR_AIRBYTE_NOTIFY_OUTBOX", raising=False)
    message = SyncMessage("s", "b", "d", "r", None, "success", 1)
    with pytest.raises(ValueError, match="AIRBYTE_NOTIFY_OUTBOX"):
        OutboxChannel().send(message)
