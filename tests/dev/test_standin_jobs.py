"""Job lifecycle, real warehouse writes, resets, cancellation and job behaviours."""

from __future__ import annotations

import requests
import sqlalchemy as sa

from dev.airbyte_standin import (
    CONNECTIONS_BY_ID,
    HUBSPOT_CONNECTION_ID,
    SALESFORCE_CONNECTION_ID,
    STRIPE_CONNECTION_ID,
)
from dev.airbyte_standin.admin_client import RunningStandin
from dev.processes import wait_until

TERMINAL = ("succeeded", "failed", "cancelled")


def start(api, standin: RunningStandin, connection_id: str, action: str = "sync") -> int:
    response = api.post(
        f"{standin.config_api_url}/connections/{action}",
        json={"connectionId": connection_id},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return response.json()["job"]["id"]


def job_info(api, standin: RunningStandin, job_id: int) -> dict:
    return api.post(f"{standin.config_api_url}/jobs/get", json={"id": job_id}, timeout=5).json()


def wait_status(api, standin, job_id: int, *statuses: str, timeout: float = 5.0) -> dict:
    wanted = statuses or TERMINAL
    return wait_until(
        lambda: (info := job_info(api, standin, job_id))["job"]["status"] in wanted and info,
        timeout=timeout,
        what=f"job {job_id} in {wanted}",
    )


def counts(engine: sa.Engine, connection_id: str) -> dict[str, int]:
    conn = CONNECTIONS_BY_ID[connection_id]
    inspector = sa.inspect(engine)
    with engine.connect() as db:
        return {
            table: db.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
            if inspector.has_table(table)
            else 0
            for table in conn.table_names
        }


def clear_tables(api, standin, connection_id: str) -> None:
    wait_status(api, standin, start(api, standin, connection_id, "reset"), "succeeded")


def test_sync_goes_pending_running_succeeded_and_writes_rows(api, standin, warehouse) -> None:
    clear_tables(api, standin, STRIPE_CONNECTION_ID)
    job_id = start(api, standin, STRIPE_CONNECTION_ID)
    seen = {job_info(api, standin, job_id)["job"]["status"]}
    wait_until(
        lambda: seen.add(job_info(api, standin, job_id)["job"]["status"]) or "running" in seen
    )
    info = wait_status(api, standin, job_id, "succeeded")
    assert "pending" in seen

    rows = standin.config.rows_per_stream
    assert counts(warehouse, STRIPE_CONNECTION_ID) == {
        "stripe_customers": rows,
        "stripe_charges": rows,
        "stripe_invoices": rows,
    }
    stats = info["job"]["aggregatedStats"]
    assert stats["recordsEmitted"] == stats["recordsCommitted"] == 3 * rows
    assert stats["bytesEmitted"] == stats["bytesCommitted"] > 0
    per_stream = {
        s["streamName"]: s["recordsCommitted"] for s in info["job"]["streamAggregatedStats"]
    }
    assert per_stream == {"customers": rows, "charges": rows, "invoices": rows}
    [attempt] = info["attempts"]
    assert attempt["attempt"]["status"] == "succeeded"
    assert attempt["attempt"]["recordsSynced"] == 3 * rows


def test_rows_are_typed_and_charges_reference_customers(api, standin, warehouse) -> None:
    clear_tables(api, standin, STRIPE_CONNECTION_ID)
    wait_status(api, standin, start(api, standin, STRIPE_CONNECTION_ID), "succeeded")
    with warehouse.connect() as db:
        orphans = db.execute(
            sa.text(
                "SELECT COUNT(*) FROM stripe_charges c "
                "LEFT JOIN stripe_customers k ON k.id = c.customer_id WHERE k.id IS NULL"
            )
        ).scalar_one()
        charge = db.execute(sa.text("SELECT * FROM stripe_charges LIMIT 1")).mappings().one()
    assert orphans == 0
    assert charge["status"] in ("succeeded", "failed", "refunded")
    assert isinstance(charge["amount"], int)
    assert charge["_airbyte_raw_id"]
    assert charge["_airbyte_extracted_at"]


def test_second_sync_appends_new_rows_deterministically(api, standin, warehouse) -> None:
    clear_tables(api, standin, HUBSPOT_CONNECTION_ID)
    wait_status(api, standin, start(api, standin, HUBSPOT_CONNECTION_ID), "succeeded")
    with warehouse.connect() as db:
        first_ids = set(db.execute(sa.text("SELECT id FROM hubspot_contacts")).scalars())
    wait_status(api, standin, start(api, standin, HUBSPOT_CONNECTION_ID), "succeeded")
    with warehouse.connect() as db:
        all_ids = set(db.execute(sa.text("SELECT id FROM hubspot_contacts")).scalars())
    rows = standin.config.rows_per_stream
    assert len(first_ids) == rows
    assert len(all_ids) == 2 * rows
    assert first_ids < all_ids
    # After a reset the same rows come back: content depends only on the row's position.
    clear_tables(api, standin, HUBSPOT_CONNECTION_ID)
    wait_status(api, standin, start(api, standin, HUBSPOT_CONNECTION_ID), "succeeded")
    with warehouse.connect() as db:
        assert set(db.execute(sa.text("SELECT id FROM hubspot_contacts")).scalars()) == first_ids


def test_sync_while_running_is_409(api, standin) -> None:
    job_id = start(api, standin, SALESFORCE_CONNECTION_ID)
    response = api.post(
        f"{standin.config_api_url}/connections/sync",
        json={"connectionId": SALESFORCE_CONNECTION_ID},
        timeout=5,
    )
    assert response.status_code == 409
    assert "already running" in response.json()["message"]
    assert [j["id"] for j in standin.jobs()] == [job_id]
    wait_status(api, standin, job_id)


def test_reset_and_clear_empty_the_tables(api, standin, warehouse) -> None:
    wait_status(api, standin, start(api, standin, SALESFORCE_CONNECTION_ID), "succeeded")
    assert all(counts(warehouse, SALESFORCE_CONNECTION_ID).values())
    for action, config_type in (("reset", "reset_connection"), ("clear", "clear")):
        info = wait_status(api, standin, start(api, standin, SALESFORCE_CONNECTION_ID, action))
        assert info["job"]["configType"] == config_type
        assert info["job"]["status"] == "succeeded"
        assert info["job"]["aggregatedStats"]["recordsCommitted"] == 0
        assert set(counts(warehouse, SALESFORCE_CONNECTION_ID).values()) == {0}
        wait_status(api, standin, start(api, standin, SALESFORCE_CONNECTION_ID), "succeeded")


def test_cancel_running_job_writes_nothing(api, standin, warehouse) -> None:
    clear_tables(api, standin, STRIPE_CONNECTION_ID)
    job_id = start(api, standin, STRIPE_CONNECTION_ID)
    wait_status(api, standin, job_id, "running")
    cancelled = api.post(f"{standin.config_api_url}/jobs/cancel", json={"id": job_id}, timeout=5)
    assert cancelled.json()["job"]["status"] == "cancelled"
    # Stays cancelled past the point where it would have finished, and wrote nothing.
    wait_status(api, standin, start(api, standin, HUBSPOT_CONNECTION_ID))
    assert job_info(api, standin, job_id)["job"]["status"] == "cancelled"
    assert set(counts(warehouse, STRIPE_CONNECTION_ID).values()) == {0}


def test_cancel_terminal_job_returns_it_unchanged(api, standin) -> None:
    job_id = start(api, standin, HUBSPOT_CONNECTION_ID)
    wait_status(api, standin, job_id, "succeeded")
    response = api.post(f"{standin.config_api_url}/jobs/cancel", json={"id": job_id}, timeout=5)
    assert response.status_code == 200
    assert response.json()["job"]["status"] == "succeeded"


def test_behaviour_fail_reports_failure_reason(api, standin, warehouse) -> None:
    clear_tables(api, standin, STRIPE_CONNECTION_ID)
    standin.set_job_behaviour("fail", failure_reason="Stripe API key revoked")
    info = wait_status(api, standin, start(api, standin, STRIPE_CONNECTION_ID))
    assert info["job"]["status"] == "failed"
    [attempt] = info["attempts"]
    failures = attempt["attempt"]["failureSummary"]["failures"]
    assert failures[0]["externalMessage"] == "Stripe API key revoked"
    assert set(counts(warehouse, STRIPE_CONNECTION_ID).values()) == {0}


def test_behaviour_incomplete_then_succeed(api, standin) -> None:
    standin.set_job_behaviour("incomplete_then_succeed")
    job_id = start(api, standin, HUBSPOT_CONNECTION_ID)
    wait_status(api, standin, job_id, "incomplete")
    info = wait_status(api, standin, job_id, "succeeded")
    assert [a["attempt"]["status"] for a in info["attempts"]] == ["failed", "succeeded"]


def test_behaviour_stuck_pending_until_cancelled(api, standin) -> None:
    standin.set_job_behaviour("stuck_pending", connection_id=SALESFORCE_CONNECTION_ID)
    other = start(api, standin, HUBSPOT_CONNECTION_ID)  # not the targeted connection
    stuck = start(api, standin, SALESFORCE_CONNECTION_ID)
    wait_status(api, standin, other, "succeeded")  # several pending periods have passed
    assert job_info(api, standin, stuck)["job"]["status"] == "pending"
    api.post(f"{standin.config_api_url}/jobs/cancel", json={"id": stuck}, timeout=5)
    assert job_info(api, standin, stuck)["job"]["status"] == "cancelled"


def test_behaviour_count_applies_to_next_jobs_only(api, standin) -> None:
    standin.set_job_behaviour("fail", count=1)
    first = wait_status(api, standin, start(api, standin, HUBSPOT_CONNECTION_ID))
    second = wait_status(api, standin, start(api, standin, HUBSPOT_CONNECTION_ID))
    assert (first["job"]["status"], second["job"]["status"]) == ("failed", "succeeded")


def test_durations_change_jobs_in_flight(api, standin) -> None:
    standin.set_durations(running_seconds=3600)
    try:
        job_id = start(api, standin, HUBSPOT_CONNECTION_ID)
        wait_status(api, standin, job_id, "running")
        standin.set_durations(running_seconds=0)
        assert wait_status(api, standin, job_id)["job"]["status"] == "succeeded"
    finally:
        standin.set_durations(running_seconds=standin.config.running_seconds)


def test_one_connections_jobs_run_as_long_as_set_for_it(api, standin) -> None:
    standin.set_durations(running_seconds=3600, connection_id=HUBSPOT_CONNECTION_ID)
    try:
        slow = start(api, standin, HUBSPOT_CONNECTION_ID)
        other = start(api, standin, SALESFORCE_CONNECTION_ID)
        assert wait_status(api, standin, other)["job"]["status"] == "succeeded"
        assert job_info(api, standin, slow)["job"]["status"] == "running"
        standin.set_durations(running_seconds=0, connection_id=HUBSPOT_CONNECTION_ID)
        assert wait_status(api, standin, slow)["job"]["status"] == "succeeded"
        standin.set_durations(connection_id=HUBSPOT_CONNECTION_ID)
        standin.set_durations(running_seconds=3600)  # reaches HubSpot's jobs again
        again = start(api, standin, HUBSPOT_CONNECTION_ID)
        wait_status(api, standin, again, "running")
        standin.set_durations(running_seconds=0)
        assert wait_status(api, standin, again)["job"]["status"] == "succeeded"
    finally:
        standin.set_durations(connection_id=HUBSPOT_CONNECTION_ID)  # the general setting again
        standin.set_durations(running_seconds=standin.config.running_seconds)


def test_bad_durations_are_refused(standin) -> None:
    for body in (
        {"running_seconds": -1},
        {"running_seconds": "soon"},
        {"speed": 2},
        {"pending_seconds": 1, "connection_id": HUBSPOT_CONNECTION_ID},
        {"running_seconds": 1, "connection_id": "no-such-connection"},
    ):
        response = requests.post(f"{standin.url}/_standin/durations", json=body, timeout=5)
        assert response.status_code == 400, body
