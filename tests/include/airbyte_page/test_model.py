"""What a row of the Airbyte page says, from Asset events, failed tasks and drift findings built
here as Airflow's REST API returns them, and the order of the rows."""

from __future__ import annotations

import random

import pytest

from include.airbyte_page.model import (
    DRIFTING,
    FAILING,
    HEALTHY,
    HISTORY,
    AirbyteSide,
    Finding,
    NewConnection,
    Row,
    Sync,
    drift_findings,
    history,
    last_sync,
    ordered,
)
from include.workspace import Findings
from plugins.airbyte_client.contracts import (
    ORIGIN_NOTIFICATION,
    ORIGIN_RECONCILED,
    ORIGIN_TASK,
    ORIGIN_WATCHDOG,
)
from tests.include.airbyte_page.pages import NOW, event, failed_task, sample_rows


@pytest.mark.parametrize(
    ("origin", "dag_id", "started_by"),
    [
        (ORIGIN_TASK, "airbyte_sync__github", "DAG task"),
        (ORIGIN_NOTIFICATION, None, "Airbyte (its notification)"),
        (ORIGIN_WATCHDOG, "airbyte_stripe_zero_poll_sync", "DAG task (its watchdog)"),
        (ORIGIN_RECONCILED, None, "found by the reconciler"),
        (None, "airbyte_stripe_to_postgres", "DAG task"),  # an event from before ``origin``
        (None, None, "unknown"),
    ],
)
def test_an_asset_event_says_what_the_sync_moved_and_who_started_it(origin, dag_id, started_by):
    sync = Sync.from_event(event(7, 10, records=1234, duration=61.5, origin=origin, dag_id=dag_id))

    assert sync is not None
    assert (sync.status, sync.job_id, sync.records, sync.bytes) == ("succeeded", 7, 1234, 2_500_000)
    assert sync.duration_seconds == 61.5
    assert sync.at.isoformat() == "2026-03-02T11:50:00+00:00"
    assert sync.started_by == started_by
    assert (sync.dag_id, sync.run_id) == (dag_id, "manual__7" if dag_id else None)
    assert not sync.failed


def test_figures_nobody_can_read_are_unknown_not_zero():
    sync = Sync.from_event(event(7, 1, records="many", duration=True))

    assert (sync.records, sync.duration_seconds) == (None, None)
    assert Sync.from_event({"extra": {}}) is None  # no timestamp: not a sync


def test_history_is_the_last_20_syncs_oldest_first_each_job_once():
    events = [event(job, 100 - job) for job in range(1, 31)]
    events.append(event(30, 0.5, origin=ORIGIN_RECONCILED))  # the same job announced again
    random.Random(4).shuffle(events)

    syncs = history(events)

    assert len(syncs) == HISTORY
    assert [s.job_id for s in syncs] == list(range(11, 31))
    assert syncs[-1].origin == ORIGIN_TASK  # the first announcement counts


@pytest.mark.parametrize(("failed_minutes_ago", "last_is_failure"), [(5, True), (60 * 24, False)])
def test_a_failed_sync_task_is_the_last_sync_only_when_it_is_newer(
    failed_minutes_ago, last_is_failure
):
    syncs = history([event(1, 120), event(2, 60)])
    failure = Sync.from_task(failed_task(failed_minutes_ago))

    last = last_sync(syncs, failure)

    assert (last is failure) is last_is_failure
    assert (Row("k", "K", "", last, syncs).health == FAILING) is last_is_failure
    assert last_sync((), failure) is failure
    assert last_sync(syncs, None) is syncs[-1]
    assert last_sync((), None) is None


def test_a_failed_try_awaiting_its_retry_is_failing_and_says_so():
    sync = Sync.from_task(failed_task(1, state="up_for_retry", try_number=1))

    assert sync.failed
    assert sync.detail == "task sync up_for_retry (try 1 of 3, a retry follows)"
    assert (sync.dag_id, sync.run_id, sync.started_by) == (
        "airbyte_sync__github",
        "manual__failed",
        "DAG task",
    )
    assert Sync.from_task(failed_task(1) | {"end_date": None}) is None


def test_drift_findings_are_sorted_by_entry_and_new_connections_kept_apart():
    drift = {
        "new": [{"connection_id": "c-9", "name": "Jira → Postgres"}],
        "gone": [{"key": "hubspot", "detail": "Airbyte does not list its connection_id c-2"}],
        "inactive": [{"key": "stripe", "detail": "'Stripe' is inactive"}],
        "renamed": [{"key": "stripe", "detail": "label 'Stripe', but Airbyte calls it 'S'"}],
        "streams": [{"key": "salesforce", "added": ["leads", "contacts"], "removed": ["x"]}],
    }

    findings = Findings.from_dict(drift)

    assert drift_findings(findings) == {
        "hubspot": (Finding("gone", "Airbyte does not list its connection_id c-2"),),
        "stripe": (
            Finding("inactive", "'Stripe' is inactive"),
            Finding("renamed", "label 'Stripe', but Airbyte calls it 'S'"),
        ),
        "salesforce": (Finding("streams", "added leads, contacts; removed x"),),
    }
    assert findings.new == (NewConnection("c-9", "Jira → Postgres"),)
    assert drift_findings(Findings()) == {}


@pytest.mark.parametrize(
    ("airbyte", "health"),
    [
        (AirbyteSide("c", "active", "Stripe"), HEALTHY),
        (AirbyteSide(), HEALTHY),  # Airbyte has not answered: nothing known against it
        (AirbyteSide("c", "inactive", "Stripe"), DRIFTING),
        (AirbyteSide(problem="Airbyte has no connection named 'Stripe'"), DRIFTING),
    ],
)
def test_what_airbyte_says_now_can_make_a_connection_drift(airbyte, health):
    syncs = history([event(1, 5)])

    assert Row("stripe", "Stripe", "", syncs[-1], syncs, airbyte=airbyte).health == health


def test_failing_connections_come_first_then_drifting_ones_then_the_rest_by_label():
    rows = sample_rows()
    rows.append(Row("alpha", "alpha → Postgres", "", findings=(Finding("gone", "x"),)))

    found = ordered(rows)

    assert [(r.key, r.health) for r in found] == [
        ("github", FAILING),
        ("alpha", DRIFTING),  # labels compare without case
        ("salesforce", DRIFTING),
        ("stripe", HEALTHY),
        ("zendesk", HEALTHY),  # never synced
    ]
    assert found[-1].last is None
    assert found[0].last.at < NOW
