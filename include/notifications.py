"""Notifications about Airbyte syncs: one message, delivered through pluggable channels.

``SyncNotifier`` is an Airflow 3 notifier (usable as ``on_success_callback`` /
``on_failure_callback`` or called from a task). It renders a message with the DAG run, the
task's state and the Airbyte job id and figures (the ``SyncStats`` a task passes in, or for
callbacks the XComs of ``plugins.airbyte_client.contracts``), then hands it to each channel:

- ``EmailChannel``: the seed's e-mail, through Airflow's SMTP connection (``smtp_default``);
  recipients from the Variable ``AIRBYTE_NOTIFY_EMAILS`` (comma-separated).
- ``OutboxChannel``: appends the message as a JSON line to a file (the Variable
  ``AIRBYTE_NOTIFY_OUTBOX``); what the demo uses, and a model for chat/webhook channels.

A channel is any object with ``send(message: SyncMessage) -> None``. Without explicit
channels the notifier reads the Variable ``AIRBYTE_NOTIFY_CHANNELS`` when it runs
(comma-separated names from ``CHANNELS``; default ``email``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from airflow.sdk import BaseNotifier, Variable

from plugins.airbyte_client.contracts import JOB_ID_KEY, STATS_KEY

CHANNELS_VARIABLE = "AIRBYTE_NOTIFY_CHANNELS"
EMAILS_VARIABLE = "AIRBYTE_NOTIFY_EMAILS"
OUTBOX_VARIABLE = "AIRBYTE_NOTIFY_OUTBOX"
DEFAULT_EMAILS = "data-team@example.com"


@dataclass(frozen=True)
class SyncMessage:
    """What a notification says, independent of the channel."""

    subject: str
    body: str
    dag_id: str
    run_id: str
    task_id: str | None
    state: str
    airbyte_job_id: int | None
    stats: dict[str, Any] = field(default_factory=dict)


class Channel(Protocol):
    def send(self, message: SyncMessage) -> None: ...


class EmailChannel:
    """E-mail through Airflow's SMTP provider."""

    def __init__(self, smtp_conn_id: str = "smtp_default", to: str | None = None) -> None:
        self.smtp_conn_id = smtp_conn_id
        self.to = to

    def send(self, message: SyncMessage) -> None:
        # The SMTP provider costs ~9 ms to import: loaded when a message is sent, not at parse.
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        recipients = self.to or Variable.get(EMAILS_VARIABLE, default=DEFAULT_EMAILS)
        with SmtpHook(smtp_conn_id=self.smtp_conn_id) as smtp:
            smtp.send_email_smtp(
                to=[r.strip() for r in recipients.split(",") if r.strip()],
                subject=message.subject,
                html_content=f"<pre>{message.body}</pre>",
            )


class OutboxChannel:
    """Appends each message as one JSON line to a file."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path

    def send(self, message: SyncMessage) -> None:
        path = self.path or Variable.get(OUTBOX_VARIABLE, default=None)
        if not path:
            raise ValueError(
                f"OutboxChannel needs a path: set the Variable {OUTBOX_VARIABLE} to a file path."
            )
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as outbox:
            outbox.write(json.dumps(asdict(message), default=str) + "\n")


CHANNELS: dict[str, type[Channel]] = {"email": EmailChannel, "outbox": OutboxChannel}


def channels_named(names: tuple[str, ...] | None) -> tuple[Channel, ...]:
    """The channels ``names`` (an entry's ``notify``), or when None the configured ones."""
    if names is None:
        return configured_channels()
    return tuple(CHANNELS[n]() for n in names)


def configured_channels() -> tuple[Channel, ...]:
    """The channels named by the Variable ``AIRBYTE_NOTIFY_CHANNELS`` (default: e-mail)."""
    names = [n.strip() for n in Variable.get(CHANNELS_VARIABLE, default="email").split(",")]
    unknown = [n for n in names if n and n not in CHANNELS]
    if unknown:
        raise ValueError(
            f"Unknown notification channel(s) {unknown} in the Variable {CHANNELS_VARIABLE}; "
            f"use a comma-separated list of {sorted(CHANNELS)}."
        )
    return tuple(CHANNELS[n]() for n in names if n)


class SyncNotifier(BaseNotifier):
    """Tell people how an Airbyte sync went, with its job id, rows and duration.

    :param channels: where to deliver; by default the channels the Variable
        ``AIRBYTE_NOTIFY_CHANNELS`` names when the notification is sent.
    :param xcom_task_id: the task whose ``airbyte_job_id``/``airbyte_sync_stats`` XComs to
        report (defaults to the task the callback runs for).
    """

    def __init__(
        self,
        channels: tuple[Channel, ...] | None = None,
        *,
        xcom_task_id: str | None = None,
        title: str = "Airbyte sync",
    ) -> None:
        super().__init__()
        self.channels = channels
        self.xcom_task_id = xcom_task_id
        self.title = title

    def render(self, context: Any, stats: dict[str, Any] | None = None) -> SyncMessage:
        """The message; ``stats`` (a task's ``SyncStats`` XComArg) or else the XComs of
        ``xcom_task_id`` (a callback has no XComArg to receive)."""
        ti = context.get("ti") or context.get("task_instance")
        dag_run = context.get("dag_run")
        task_id = self.xcom_task_id or (ti.task_id if ti is not None else None)
        job_id = stats.get("job_id") if stats else None
        if stats is None and ti is not None and task_id is not None:
            job_id = ti.xcom_pull(task_ids=task_id, key=JOB_ID_KEY)
            stats = ti.xcom_pull(task_ids=task_id, key=STATS_KEY)
        stats = stats or {}
        # The Airbyte job's own status when known; else the task's (a callback's context).
        raw_state = getattr(ti, "state", None) or getattr(dag_run, "state", None) or "unknown"
        state = str(stats.get("status") or getattr(raw_state, "value", raw_state))
        dag_id = getattr(dag_run, "dag_id", None) or getattr(ti, "dag_id", "?")
        run_id = getattr(dag_run, "run_id", None) or getattr(ti, "run_id", "?")
        verb = "failed" if "fail" in state.lower() or context.get("exception") else "succeeded"
        lines = [
            f"DAG: {dag_id}",
            f"Run: {run_id}",
            f"Task: {task_id}",
            f"State: {state}",
            f"Airbyte job: {job_id if job_id is not None else 'not started'}",
        ]
        if stats:
            lines.append(
                f"Rows: {stats.get('records')}  Bytes: {stats.get('bytes')}  "
                f"Duration: {stats.get('duration_seconds')} s"
            )
        if context.get("exception"):
            lines.append(f"Error: {context['exception']}")
        return SyncMessage(
            subject=f"{self.title} {verb}: {dag_id} (job {job_id})",
            body="\n".join(lines),
            dag_id=str(dag_id),
            run_id=str(run_id),
            task_id=task_id,
            state=state,
            airbyte_job_id=job_id,
            stats=stats,
        )

    def notify(self, context: Any, stats: dict[str, Any] | None = None) -> None:
        """Send the message; from a task, pass the stats it received as ``stats``."""
        message = self.render(context, stats)
        channels = self.channels if self.channels is not None else configured_channels()
        for channel in channels:
            channel.send(message)
        self.log.info("Notification sent through %d channel(s): %s", len(channels), message.subject)
