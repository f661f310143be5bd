"""The Airbyte page's HTML and JSON, rendered from a page built here: the rows in their order,
statuses, figures, charts, drift, links, notes; nothing fetched, everything escaped."""

from __future__ import annotations

import json
import re
import time

import pytest

from include.airbyte_page.model import HISTORY, Page, Row, history
from include.airbyte_page.render import MISSING, as_json, duration, render, size, sparkline
from tests.include.airbyte_page.pages import AIRBYTE, NOW, Rows, event, sample_page


def test_the_page_lists_failing_then_drifting_then_healthy_connections():
    rows = Rows(render(sample_page()))

    assert [(r["key"], r["class"]) for r in rows.rows] == [
        ("github", "failing"),
        ("salesforce", "drifting"),
        ("stripe", "healthy"),
        ("zendesk", "healthy"),
    ]


def test_a_row_shows_the_last_sync_who_started_it_and_its_figures():
    rows = Rows(render(sample_page()))

    stripe = rows.text("stripe")
    assert "succeeded" in stripe
    assert "30 min ago" in stripe
    assert "100 records · 2.5 MB · 30 s" in stripe
    assert "job 69 · started by Airbyte (its notification)" in stripe
    assert "Airbyte: active" in stripe
    github = rows.text("github")
    assert "failed 5 min ago" in github
    assert "task sync failed (try 3 of 3)" in github
    assert "records ·" not in github  # a failed job moved nothing worth showing
    assert "last succeeded 1 h ago: 108 records, 30 s" in github
    assert "streams added leads" in rows.text("salesforce")
    assert "never synced" in rows.text("zendesk")


def test_links_go_to_the_airbyte_connection_and_the_airflow_dag_and_run():
    rows = {r["key"]: r["links"] for r in Rows(render(sample_page())).rows}

    assert rows["github"] == {
        "run": "../dags/airbyte_sync__github/runs/manual__failed",
        "airbyte-link": f"{AIRBYTE}/id-g/status",
        "dag-link": "../dags/airbyte_sync__github",
    }
    assert rows["stripe"] == {"airbyte-link": f"{AIRBYTE}/id-s/status"}  # no DAG of its own
    assert rows["salesforce"] == {}  # Airbyte's workspace unknown: no link to guess


def test_each_synced_connection_gets_two_charts_of_its_last_syncs():
    parsed = Rows(render(sample_page()))
    rows = {r["key"]: r for r in parsed.rows}

    assert (rows["stripe"]["charts"], rows["stripe"]["points"]) == (2, 2 * HISTORY)
    assert (rows["github"]["charts"], rows["github"]["points"]) == (2, 2 * 8)
    assert rows["zendesk"]["charts"] == 0
    assert f"101 {MISSING} 108" in parsed.text("github")  # the records' range by the chart


def test_a_chart_puts_the_largest_value_at_the_top_and_says_each_point():
    syncs = history([event(1, 30, records=10), event(2, 20, records=50), event(3, 10, records=30)])

    spark = sparkline(syncs, "records", "records")

    assert [round(y) for _, y, _ in spark.points] == [31, 3, 17]
    assert [x for x, _, _ in spark.points] == sorted(x for x, _, _ in spark.points)
    assert spark.points[1][2] == "job 2, 2026-03-02 11:40 UTC: 50 records"
    assert (spark.low, spark.high) == ("10", "50")
    assert sparkline(syncs, "duration_seconds", "duration").high == "30 s"
    assert sparkline(history([event(1, 1, records=None)]), "records", "records") is None


def test_the_header_counts_states_and_shows_new_connections_the_drift_run_and_notes():
    html = render(sample_page())

    assert re.search(
        r"1 failing</span>\s*<span[^>]*>1 drifting</span>\s*<span[^>]*>2 healthy", html
    )
    assert "Jira → Postgres <code>id-new</code>" in html
    assert "drift checked 2 h ago" in html
    assert (
        'href="../dags/airbyte_workspace_drift/runs/scheduled__2026-03-02T00%3A00%3A00%2B00%3A00"'
    )
    assert "Airbyte (airbyte_default): ConnectError" in html


def test_the_page_fetches_nothing_and_escapes_what_it_shows():
    html = render(sample_page())

    assert not re.search(r"""(src|href)=["']?(https?:)?//(?!airbyte\.example)""", html)
    assert "<link" not in html
    assert "Zendesk &lt;b&gt;support&lt;/b&gt;" in html
    assert "<b>support</b>" not in html


def test_the_json_has_every_row_with_its_health_and_iso_times():
    data = json.loads(json.dumps(as_json(sample_page())))

    assert [(r["key"], r["health"]) for r in data["rows"]] == [
        ("github", "failing"),
        ("salesforce", "drifting"),
        ("stripe", "healthy"),
        ("zendesk", "healthy"),
    ]
    assert data["rows"][0]["last"]["at"] == "2026-03-02T11:55:00+00:00"
    assert len(data["rows"][2]["syncs"]) == HISTORY
    assert data["generated_at"] == NOW.isoformat()


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, MISSING), (512, "512 B"), (1_500_000, "1.5 MB"), (2 * 10**15, "2000.0 TB")],
)
def test_sizes(value, text):
    assert size(value) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, MISSING),
        (0.02, "< 0.1 s"),
        (0.4, "0.4 s"),
        (42, "42 s"),
        (185, "3 min 05 s"),
        (7800, "2 h 10 min"),
    ],
)
def test_durations(seconds, text):
    assert duration(seconds) == text


def test_a_hundred_connections_render_in_well_under_a_second():
    syncs = history([event(i, 20 - i) for i in range(HISTORY)])
    rows = tuple(Row(f"c{i}", f"Connection {i}", "", syncs[-1], syncs) for i in range(100))
    page = Page(NOW, rows)

    started = time.perf_counter()
    html = render(page)
    took = time.perf_counter() - started

    assert len(Rows(html).rows) == 100
    assert took < 0.5, f"rendering 100 rows took {took:.2f} s"
