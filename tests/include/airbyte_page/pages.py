"""Data the Airbyte page tests build: Asset events and task instances as Airflow's REST API
returns them, and the rows of a page with one connection in each state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

from include.airbyte_page.model import (
    AirbyteSide,
    Finding,
    NewConnection,
    Page,
    Row,
    Sync,
    history,
    ordered,
)
from plugins.airbyte_client.contracts import ORIGIN_NOTIFICATION, ORIGIN_TASK

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
AIRBYTE = "http://airbyte.example:8000/workspaces/w1/connections"


def event(
    job_id: int,
    minutes_ago: float,
    *,
    records: Any = 100,
    duration: Any = 30.0,
    origin: str | None = ORIGIN_TASK,
    dag_id: str | None = "airbyte_sync__github",
) -> dict[str, Any]:
    """A connection Asset event as ``GET /api/v2/assets/events`` lists it."""
    extra: dict[str, Any] = {
        "airbyte_job_id": job_id,
        "status": "succeeded",
        "records": records,
        "bytes": 2_500_000,
        "duration_seconds": duration,
    }
    if origin is not None:
        extra["origin"] = origin
    return {
        "id": job_id,
        "timestamp": (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z"),
        "extra": extra,
        "source_dag_id": dag_id,
        "source_run_id": f"manual__{job_id}" if dag_id else None,
        "source_task_id": "sync" if dag_id else None,
    }


def failed_task(minutes_ago: float, state: str = "failed", try_number: int = 3) -> dict[str, Any]:
    """A failed Airbyte task instance as ``GET .../taskInstances`` lists it."""
    return {
        "dag_id": "airbyte_sync__github",
        "dag_run_id": "manual__failed",
        "task_id": "sync",
        "state": state,
        "try_number": try_number,
        "max_tries": 2,
        "end_date": (NOW - timedelta(minutes=minutes_ago)).isoformat(),
        "operator": "AirbyteSyncOperator",
    }


def sample_rows() -> list[Row]:
    """A healthy, a never-synced, a drifting and a failing connection, in file order."""
    github = history([event(i, 60 * (9 - i), records=100 + i) for i in range(1, 9)])
    stripe = history(
        [event(50 + i, 30 * (20 - i), origin=ORIGIN_NOTIFICATION, dag_id=None) for i in range(20)]
    )
    return [
        Row(
            "stripe",
            "Stripe → Postgres",
            "Variable STRIPE",
            stripe[-1],
            stripe,
            airbyte=AirbyteSide(
                "id-s", "active", "Stripe → Postgres", url=f"{AIRBYTE}/id-s/status"
            ),
        ),
        Row("zendesk", "Zendesk <b>support</b>", "name 'Zendesk'"),
        Row(
            "salesforce",
            "Salesforce → Postgres",
            "Variable SF",
            stripe[-1],
            stripe,
            findings=(Finding("streams", "added leads"),),
            airbyte=AirbyteSide("id-sf", "active", "Salesforce → Postgres"),
        ),
        Row(
            "github",
            "GitHub → Postgres",
            "name 'GitHub → Postgres'",
            Sync.from_task(failed_task(5)),
            github,
            dag_id="airbyte_sync__github",
            airbyte=AirbyteSide("id-g", "active", "GitHub", url=f"{AIRBYTE}/id-g/status"),
        ),
    ]


def sample_page() -> Page:
    """``sample_rows`` in the page's order, with a new connection, a drift run and a note."""
    return Page(
        generated_at=NOW,
        rows=tuple(ordered(sample_rows())),
        new_connections=(NewConnection("id-new", "Jira → Postgres"),),
        drift_checked_at=NOW - timedelta(hours=2),
        drift_run=("airbyte_workspace_drift", "scheduled__2026-03-02T00:00:00+00:00"),
        notes=("Airbyte (airbyte_default): ConnectError; its connections' status is unknown",),
    )


class Rows(HTMLParser):
    """The rows of a rendered page: each ``<tr data-key>``'s key, class, links and text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []
        self._row: dict[str, Any] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "tr" and "data-key" in attributes:
            self._row = {"key": attributes["data-key"], "class": attributes["class"]}
            self._row |= {"links": {}, "text": [], "charts": 0, "points": 0}
            self.rows.append(self._row)
        elif self._row is not None and tag == "a":
            self._row["links"][attributes.get("class") or "run"] = attributes["href"]
        elif self._row is not None and tag == "svg":
            self._row["charts"] += 1
        elif self._row is not None and tag == "circle":
            self._row["points"] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._row is not None and data.strip():
            self._row["text"].append(data.strip())

    def text(self, key: str) -> str:
        """The row's text, its whitespace collapsed."""
        return " ".join(" ".join(next(r for r in self.rows if r["key"] == key)["text"]).split())
