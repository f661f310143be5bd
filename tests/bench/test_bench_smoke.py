"""Smoke tests of ``bench/``: every benchmark script runs (reduced ``--quick`` mode, our side
only: the official provider's venv is not needed) and the report renders.

The scripts print figures and never fail on timing; these tests only check that they run
and produce every figure the report needs. All seven run at once to keep this short;
``connections_scale --quick`` leaves out its part that starts Airflow (as ``notifications``,
not run here, does), whose figures are checked on a made-up result; so are
``notification_burst``'s, which starts PostgreSQL and an Airflow on it even in ``--quick``
(what it measures, a burst against two receivers, is ``tests/include/receiver/test_burst.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import connections_scale, pool_scale
from bench.parse_cost import DAG_PARSE_GOAL_S, dag_parse_goal
from bench.polling import model, model_official_blocking, model_official_deferred, model_ours
from bench.report import render
from tests.conftest import REPO_ROOT

SCRIPTS = (
    "polling", "worker_slot", "triggerer", "parse_cost", "resilience", "connections_scale",
)  # fmt: skip
#: Seconds a script may take (all run at once on a small machine).
TIMEOUT = 90


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("bench")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    running = {}
    for name in SCRIPTS:
        log = (out / f"{name}.log").open("w")
        running[name] = (
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    f"bench.{name}",
                    "--quick",
                    "--side",
                    "ours",
                    "--json",
                    str(out / f"{name}.json"),
                ],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            ),
            log,
        )
    results = {}
    for name, (process, log) in running.items():
        rc = process.wait(timeout=TIMEOUT)
        log.close()
        tail = (out / f"{name}.log").read_text()[-3000:]
        assert rc == 0, f"bench.{name} --quick failed:\n{tail}"
        results[name] = json.loads((out / f"{name}.json").read_text())
    return results


def test_polling_runs_real_waits(quick_results):
    cases = quick_results["polling"]["cases"]
    assert {c["mode"] for c in cases} == {"blocking", "deferred"}
    for case in cases:
        assert case["ok"], case
        assert case["polls"] >= 2
        assert case["requests"] >= case["polls"] + 2  # + token + trigger
        assert case["model"]["requests"] > 0


def test_worker_slot_measures_both_phases(quick_results):
    (row,) = quick_results["worker_slot"]["lengths"]
    assert row["ok"]
    assert row["slot_s"] == pytest.approx(
        2 * row["import_s"] + row["execute_s"] + row["execute_complete_s"], abs=0.01
    )


def test_triggerer_sees_every_completion(quick_results):
    result = quick_results["triggerer"]
    assert result["events"] == result["n"] == result["completions_seen"]
    assert result["requests"] >= result["n"]
    assert result["cpu_s"] > 0
    assert result["lag_max_s"] is not None


def test_parse_cost_parses_every_dag_file_on_its_own(quick_results):
    result = quick_results["parse_cost"]
    files = [row["file"] for row in result["dag_files"]]
    dag_files = sorted(f"dags/{path.name}" for path in (Path(REPO_ROOT) / "dags").glob("*.py"))
    assert files == ["bench/dag_files/ours_minimal_sync.py", *dag_files]
    for row in result["dag_files"]:
        # dags/airbyte_connections.py holds a DAG per generated entry; every other file one.
        generated = row["file"] == "dags/airbyte_connections.py"
        assert row["dags"] >= 1 if generated else row["dags"] == 1, row
        assert row["import_errors"] == 0, row
        assert row["parse_s"] > 0
    goal = result["dag_parse_goal"]
    assert goal == dag_parse_goal(result["dag_files"])
    assert goal["files"] == len(dag_files)
    slowest = max((r for r in result["dag_files"] if r["file"] in dag_files), key=_parse_s)
    assert goal["slowest"] == slowest["file"]
    assert goal["met"] == (slowest["parse_s"] < DAG_PARSE_GOAL_S)  # timing: not asserted
    assert result["importtime_top"]["plugins.airbyte_hook"]


def _parse_s(row: dict) -> float:
    return row["parse_s"]


def _row(file: str, parse_s: float, dags: int = 1, import_errors: int = 0) -> dict:
    return {"file": file, "parse_s": parse_s, "dags": dags, "import_errors": import_errors}


def test_dag_parse_goal_is_per_file_over_dags_only():
    minimal = _row("bench/dag_files/ours_minimal_sync.py", 0.5)  # a comparison, not the goal
    rows = [minimal, _row("dags/a.py", 0.04), _row("dags/b.py", 0.09)]
    assert dag_parse_goal(rows) == {
        "goal_ms": 100,
        "files": 2,
        "slowest": "dags/b.py",
        "slowest_ms": 90.0,
        "missed": [],
        "met": True,
    }
    slow = dag_parse_goal([*rows, _row("dags/c.py", 0.1)])
    assert (slow["slowest"], slow["missed"], slow["met"]) == ("dags/c.py", ["dags/c.py"], False)
    # A file that fails to import is fast, and misses the goal all the same.
    broken = dag_parse_goal([*rows, _row("dags/d.py", 0.01, dags=0, import_errors=1)])
    assert (broken["slowest"], broken["missed"]) == ("dags/b.py", ["dags/d.py"])
    assert dag_parse_goal([_row("bench/dag_files/official_minimal_sync.py", 0.03)]) is None


def test_resilience_counts_duplicates(quick_results):
    scenarios = quick_results["resilience"]["scenarios"]
    assert set(scenarios) == {"5xx", "lost"}
    for figures in scenarios.values():
        assert figures["faulted_requests"] > 0
        assert figures["jobs_created"] >= figures["syncs"]


def test_connections_scale_parses_every_dag_file_and_discovers(quick_results):
    result = quick_results["connections_scale"]
    assert result["parts"] == ["parse", "discovery"]
    assert "pool" not in result  # starts Airflow: not in --quick
    parse = result["parse"]
    generated, others = parse["generated"], parse["others"]
    assert (generated["file"], generated["import_errors"]) == (connections_scale.GENERATED, 0)
    assert generated["dags"] == generated["expected_dags"] > 0
    dag_files = sorted(f"dags/{path.name}" for path in (Path(REPO_ROOT) / "dags").glob("*.py"))
    assert sorted([generated["file"], *(r["file"] for r in others)]) == dag_files
    for row in others:
        assert (row["dags"], row["import_errors"]) == (1, 0), row
    assert parse["others_goal"] == dag_parse_goal(others)
    extra = result["discovery"]["extra_connections"]
    for api, found in result["discovery"]["flavours"].items():
        assert (found["listed"], found["added"]) == (extra + 4, extra), api
        assert found["entries_after"] == found["entries_before"] + extra
        assert found["token_requests"] >= 1
        assert 1 <= found["requests"] <= found["bound"]
        assert (found["second_run"]["added"], found["second_run"]["written"]) == (0, False)
    assert [met for *_, met in connections_scale.goals(result)][2:] == [True, True]


def test_connections_scale_counts_jobs_at_once_from_reads():
    def job(id_: int, status: str, updated_at: float = 0.0) -> dict:
        return {"id": id_, "status": status, "updated_at": updated_at}

    reads = [
        (10.0, []),
        (11.0, [job(1, "pending"), job(2, "running")]),
        (12.0, [job(1, "running"), job(2, "succeeded", 11.5), job(3, "pending")]),
        (13.0, [job(1, "succeeded", 12.5), job(2, "succeeded", 11.5), job(3, "succeeded", 12.9)]),
    ]
    # 1 and 2 count from 10.0 (the read before the first listing them), 3 from 11.0: all three
    # overlap in [11.0, 11.5] (2 ended at 11.5), though no read listed more than two not ended.
    assert pool_scale.at_once(reads) == {
        "max_jobs_at_once": 3,
        "max_jobs_at_once_read": 2,
        "max_running_read": 1,
    }
    assert pool_scale.at_once([])["max_jobs_at_once"] == 0


#: The shape of ``bench/connections_scale.py``'s ``pool`` part (starts Airflow: not run here).
POOL = {
    "dags": 100, "slots": 10, "job_s": 7.0, "airflow_start_s": 20.0, "trigger_s": 9.5,
    "wall_s": 300.0, "runs": 100, "run_states": {"success": 99, "failed": 1},
    "runs_succeeded": 99, "not_manual_runs": 0, "trigger_retries": 2, "pool_max_occupied": 10,
    "max_jobs_at_once": 10, "max_jobs_at_once_read": 10,
    "max_running_read": 9, "jobs": 101, "duplicated_syncs": 1, "connections_without_job": 0,
    "airbyte_requests": 900, "token_requests": 200,
}  # fmt: skip


def test_connections_scale_pool_goals():
    goals = connections_scale.goals({"pool": POOL})
    assert [(ours, met) for _, ours, met in goals] == [(10, True), (99, False), (1, False)]
    assert connections_scale.goals({"pool": POOL | {"max_jobs_at_once": 11}})[0][2] is False
    text = "\n".join(connections_scale.section({"pool": POOL}))
    assert "| 100 | 99 | 10 | 10 (9) | 10 | 101 | 1 | 300.0 | 900 (200) |" in text
    assert "triggered in 9.5 s, retries: 2; pool of 10, 7-s jobs" in text
    assert connections_scale.section(None) == []
    failed = connections_scale.goals({"pool_error": "AirflowStartError: ..."})
    assert failed == [("DAGs triggered at once: failed (see `pool_error`)", None, False)]


#: The shape ``bench/notifications.py`` prints (it starts Airflow: not run in the smoke test).
def burst_round(receivers: int) -> dict:
    """A round of ``bench/notification_burst.py --quick`` as it reports one."""
    calls = {
        "GET /api/v2/assets": 4 * receivers,
        "GET /api/v2/assets/events": 40,
        "POST /api/v2/assets/events": 160,
        "POST /auth/token": receivers,
    }
    return {
        "receivers": receivers, "notifications": 40, "statuses": {"202": 40},
        "ack_p50_seconds": 0.02, "ack_p95_seconds": 0.05, "ack_max_seconds": 0.06,
        "answered_seconds": 0.2, "accepted_per_second": 200.0, "processed_seconds": 2.8,
        "processed_per_second": 14.3, "last_event_seconds": 2.9, "connection_events": 40,
        "events": 160, "duplicate_events": 0, "assets": 4, "airflow_calls": sum(calls.values()),
        "airflow_calls_by_request": calls, "airflow_calls_failed": 0,
        "airflow_calls_per_notification": round(sum(calls.values()) / 40, 2),
        "retried_notifications": 0, "tries_max": 1,
    }  # fmt: skip


#: The shape of ``bench/notification_burst.py --quick``'s result (starts Airflow: not run here).
BURST = {
    "setting": {
        "airflow_max_requests": 4, "api_server_workers": 1, "events_per_notification": 4,
        "ledger": "postgresql (shared by the round's receivers)", "metadata_db": "postgresql",
        "notification_workers": 8, "notifications": 40, "posters": 8,
    },
    "rounds": [burst_round(1), burst_round(2)],
}  # fmt: skip


NOTIFICATIONS = {
    "outside_syncs": {
        "syncs": 2,
        "p50_seconds": 0.2,
        "p95_seconds": 2.5,
        "max_seconds": 2.5,
        "receiver_requests": {"POST /api/v1/jobs/get": 2},
        "confirmations_per_sync": 1.0,
    },
    "zero_poll": {
        "runs": 1,
        "requests_per_run": [
            {"POST /a/token": 1, "POST /a/sync": 1, "POST /a/jobs/get": 2},
        ],
        "task_states": [{"start_sync": "success", "watchdog": "success"}],
        "max_requests_per_run": 4,
    },
}


def test_report_renders_both_sides(quick_results):
    results = {
        name: {"ours": {"all": doc}, "official": {"all": doc}}
        for name, doc in quick_results.items()
    }
    results["triggerer"] = {
        side: {f"--n-{n}": {**quick_results["triggerer"], "n": n} for n in (100, 500)}
        for side in ("ours", "official")
    }
    results["notifications"] = {"ours": {"all": NOTIFICATIONS}}
    results["notification_burst"] = {"ours": {"all": BURST}}
    results["connections_scale"]["ours"]["all"] |= {"pool": POOL}
    context = {
        "command": "make bench",
        "date": "today",
        "machine": {"cpu": "2 x test", "memory": "1 GiB", "os": "Linux", "python": "3.11"},
        "versions": {"apache-airflow": "3.3.0"},
        "elapsed_s": 1.0,
    }
    text = render(context, results)
    for heading in ("## Goals", "## 1.", "## 2.", "## 3.", "## 4.", "## 5.", "## 6.", "## 7."):
        assert heading in text
    assert "**Bursts** (`bench/notification_burst.py`): 40 distinct" in text
    assert "**postgresql** metadata DB" in text
    assert "`AIRFLOW_MAX_REQUESTS=4`" in text
    for r in BURST["rounds"]:
        per = f"{r['airflow_calls_per_notification']:.2f}"
        assert f"| {r['receivers']} | 40 | 40 | " in text
        assert f" | {per} | `GET /api/v2/assets` x" in text
    assert "500 concurrent waits" in text
    p95 = "| notification to asset event p95 <= 2 s (sync started outside Airflow), s | 2.50 |"
    assert f"{p95} no such path | | **NO** |" in text
    assert "| zero-poll: Airbyte requests per DAG-started sync <= 3 (" in text
    assert "<= 1/10 of official" not in text  # the ratio goals issue 21 replaced
    assert "| 1 | 2 | 1 | 1 | 4 | success |" in text  # jobs/get, sync, token: sorted
    assert "| official |" in text
    poll = "| requests x worst notice delay waiting for a 1-min sync (deferred, first sync) "
    assert f"{poll}<= 1/3 of the official deferred operator's (60 s), request-s |" in text
    parse = quick_results["parse_cost"]["dag_parse_goal"]
    assert (
        f"| every DAG file in `dags/` parses in < 100 ms, ms ({parse['files']} files, "
        f"slowest: `{parse['slowest']}`"
    ) in text
    assert f"| ours | **`{parse['slowest']}`** (slowest) | **" in text
    assert "| ours | `bench/dag_files/ours_minimal_sync.py` |" in text
    assert "enforced by `tests/test_repository.py`, not benchmarked" in text
    assert "| Airbyte jobs at once, 100 DAGs triggered at once, <= 10 (the pool) | 10 " in text
    assert "| duplicated syncs = 0 (one job per connection) | 1 | no such file | | **NO** |" in text
    assert "(public API): requests <= pages + connections" in text
    for gone in ("hook import", "airbyte_hook.py` < 400 lines", "over 60 lines"):
        assert gone not in text


def test_models_follow_each_schedule():
    # Official blocking: sleep 3 s then poll -> a 2-minute job takes 40 polls.
    assert model_official_blocking(120) == (40, 0)
    # Official deferred: poll at once, then every 60 s.
    assert model_official_deferred(120) == (3, 0)
    assert model_official_deferred(121) == (4, 59)
    # Ours: 2 s growing x1.5 to 20 s, reset on pending -> running (at 5 s).
    polls, delay = model_ours(120)
    assert 9 <= polls <= 14
    assert 0 <= delay <= 20
    assert model("ours", "deferred", 120)["requests"] == polls + 3


def test_runner_lists_no_unknown_script():
    assert all((Path(REPO_ROOT) / "bench" / f"{name}.py").exists() for name in SCRIPTS)
