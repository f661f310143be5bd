"""``bench/reconcile_cost.py`` without Airflow: which lines of the API server's access log are
the reconciler's, and the rows it adds to section 7 (the measurement itself runs in
``make bench``, in the Airflow of the ``pool`` part)."""

from __future__ import annotations

from bench import reconcile_cost
from bench.common import ACCESS_LINE

#: A line of Airflow 3.3's API server access log, as it writes it.
LINE = (
    "2026-12-05T17:41:19.828723Z [info     ] request finished               [http.access] "
    "client_addr=127.0.0.1:42060 duration_us=4460 loc=http_access_log.py:130 method=GET "
    "path=/api/v2/assets query=uri_pattern=airbyte%3A%2F%2Fx status_code=200"
)


def test_an_access_log_line_gives_method_path_and_status():
    found = ACCESS_LINE.search(LINE)
    assert found is not None
    assert (found[1], found[2], int(found[3])) == ("GET", "/api/v2/assets", 200)


def test_only_the_reconcilers_requests_are_counted_by_kind():
    logged = [
        ("POST", "/auth/token", 201),
        ("GET", "/api/v2/assets", 200),
        ("GET", "/api/v2/assets/events", 200),
        ("GET", "/api/v2/assets/events", 200),
        ("POST", "/api/v2/assets/events", 200),
        ("GET", "/api/v2/dags/d/dagRuns/r/taskInstances/sync/state-store/k", 200),
        # the bench polling its run, the task runner's Execution API: not the reconciler's
        ("GET", "/api/v2/dags/airbyte_reconcile/dagRuns/manual__1", 200),
        ("PATCH", "/execution/task-instances/0190/run", 204),
    ]
    calls = reconcile_cost.airflow_calls(logged)
    assert calls == {
        "POST /auth/token": 1,
        "GET /api/v2/assets": 1,
        "GET /api/v2/assets/events": 2,
        "POST /api/v2/assets/events": 1,
        "GET /api/v2/dags/…/taskInstances/…/state-store/k": 1,
    }


RUN = {
    "state": "success",
    "task_s": 12.34,
    "airbyte_requests": 104,
    "airbyte_token_requests": 1,
    "airflow_requests": 210,
    "airflow_calls": {"GET /api/v2/assets/events": 100, "GET /api/v2/assets": 104},
    "events_created": 0,
    "unreadable": 0,
}


def test_section_rows_say_each_runs_cost_per_connection():
    text = "\n".join(reconcile_cost.section({"connections": 104, "runs": [RUN, RUN]}))
    assert "| 1 | success | 12.3 | 104 (1) | 210 | 3.0 | 0 | 0 |" in text
    assert "| 2 | success |" in text
    assert "`GET /api/v2/assets/events` x100" in text
    assert reconcile_cost.section(None) == []
