"""The runner of ``make bench`` (``bench/run.py``) and the figures of ``bench/end_to_end.py``.

The runner runs real script subprocesses: ``tests/bench/failing_benchmark.py`` exits 1 as
a broken benchmark would, ``passing_benchmark.py`` writes its JSON. The end-to-end
benchmark starts Airflow, so it is not run here: its figures are computed on made-up data
shaped as Airflow's REST API, its task logs, its scheduler log and the stand-in give them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench import e2e_figures, run
from bench.polling import worst_notice_delay
from bench.report import render
from tests.conftest import REPO_ROOT

FAILING = ("tests.bench.failing_benchmark", "ours", ())
PASSING = ("tests.bench.passing_benchmark", "ours", ())


def test_a_failing_benchmark_makes_the_run_exit_1_and_is_named_in_the_report(tmp_path):
    out = tmp_path / "RESULTS.md"
    argv = ["--quick", "--out", str(out), "--raw", str(tmp_path / "raw")]
    code = run.main(argv, planner=lambda *_: [[[FAILING], [PASSING]]])
    assert code == 1
    text = out.read_text()
    assert "## Failed benchmarks" in text
    assert "| `tests.bench.failing_benchmark` | ours |  | 1 |" in text
    assert "| `tests.bench.failing_benchmark` (ours) ran | failed | | | **NO** |" in text
    assert "passing_benchmark" not in text  # it ran: nothing to say about it
    saved = json.loads((tmp_path / "raw" / "all.json").read_text())
    assert saved["results"]["tests.bench.passing_benchmark"]["ours"]["all"]["side"] == "ours"


def test_a_run_where_every_benchmark_passes_exits_0(tmp_path):
    out = tmp_path / "RESULTS.md"
    argv = ["--quick", "--out", str(out), "--raw", str(tmp_path / "raw")]
    assert run.main(argv, planner=lambda *_: [[[PASSING]]]) == 0
    assert "Failed benchmarks" not in out.read_text()


def test_runner_keeps_each_result_and_each_failure(tmp_path):
    runner = run.Runner({"ours": Path(run.sys.executable)}, tmp_path, quick=True)
    runner.log.write_text("")
    runner.run([[[FAILING, PASSING]]])
    assert runner.results == {
        "tests.bench.failing_benchmark": {"ours": {"all": None}},
        "tests.bench.passing_benchmark": {"ours": {"all": {"bench": "passing", "side": "ours"}}},
    }
    assert runner.failed == [
        {"bench": "tests.bench.failing_benchmark", "side": "ours", "args": "", "exit": 1}
    ]
    assert "failing_benchmark: something went wrong" in runner.log.read_text()


def test_the_plan_names_existing_scripts_and_runs_the_official_trigger_as_shipped():
    jobs = [
        job for phase in run.plan(["ours", "official"], False) for lane in phase for job in lane
    ]
    assert all((REPO_ROOT / "bench" / f"{module}.py").exists() for module, _, _ in jobs)
    triggerer = {(side, extra) for module, side, extra in jobs if module == "triggerer"}
    assert ("official", ("--n", "500", "--poll", "60")) in triggerer
    assert ("official", ("--n", "500", "--poll", "5")) in triggerer
    assert ("ours", ("--n", "500")) in triggerer
    assert ("end_to_end", "both", ()) in jobs
    quick = [job for phase in run.plan(["ours"], True) for lane in phase for job in lane]
    assert {side for _, side, _ in quick} == {"ours"}
    assert ("notification_burst", "ours", ()) in jobs
    assert ("notification_burst", "ours", ()) in quick


def test_worst_notice_delay_is_the_interval_in_force_at_the_end():
    assert worst_notice_delay("official", "deferred", 120) == 60  # polls at 0, 60, 120
    assert worst_notice_delay("official", "deferred", 121) == 60
    assert worst_notice_delay("official", "blocking", 120) == 3
    assert worst_notice_delay("ours", "deferred", 120) == 20  # ramped to the 20 s cap
    # With history: one poll at 60 s, then from 0.9 x 120 s the ramp 2, 3, 4.5, 6.75 s.
    assert worst_notice_delay("ours", "deferred", 120, history=True) == pytest.approx(6.75)


# -- end_to_end's figures on made-up data -------------------------------------------------------
SCHEDULER_LOG = """\
2026-12-05T16:55:11.766199Z [info     ] Workload finished              [supervisor] \
duration=0.25 exit_code=0 final_state=deferred loc=supervisor.py:2534 workload_id=ti-1 \
workload_type=ExecuteTask
2026-12-05T16:55:12.1Z [info     ] Received executor event with state success
2026-12-05T16:56:12.0Z [info     ] Workload finished              [supervisor] \
duration=0.5 exit_code=0 final_state=success loc=supervisor.py:2534 workload_id=ti-1 \
workload_type=ExecuteTask
2026-12-05T16:56:13.0Z [info     ] Workload finished              [supervisor] \
duration=6.0 exit_code=0 final_state=success loc=supervisor.py:2534 workload_id=ti-2 \
workload_type=ExecuteTask
"""


def _line(second: float, event: str) -> str:
    return json.dumps({"timestamp": f"2026-12-05T10:00:{second:06.3f}Z", "event": event})


#: A deferred task's log: two runs of a task process, the trigger's lines elsewhere.
DEFERRED_LOG = "\n".join([
    _line(1.0, "::group::Pre Execute"), _line(1.5, "Airbyte job submitted: job_id=7"),
    _line(1.6, "Pausing task as DEFERRED. "), _line(1.65, "::endgroup::"),
    "not JSON: skipped",
    _line(30.0, "::group::Pre Execute"), _line(30.4, "Airbyte job finished: job_id=7"),
])  # fmt: skip


def _ti(task_id: str, start: str, end: str, **more) -> dict:
    return {"task_id": task_id, "start_date": start, "end_date": end, "state": "success"} | more


def test_worker_slot_seconds_are_running_time_less_time_deferred():
    ti = _ti("sync", "2026-12-05T10:00:00.900Z", "2026-12-05T10:00:30.500Z", id="ti-1")
    # Running 29.6 s, of which deferred from 1.6 s (paused) to 30.0 s (the resumed process).
    assert e2e_figures.slot_seconds(ti, DEFERRED_LOG) == pytest.approx(29.6 - 28.4)
    blocking = _ti("sync", "2026-12-05T10:00:00Z", "2026-12-05T10:00:07.5Z")
    assert e2e_figures.slot_seconds(blocking, "") == 7.5
    assert math.isnan(e2e_figures.slot_seconds(ti | {"end_date": None}, DEFERRED_LOG))


def test_worker_held_from_the_supervisors_lines_summed_over_a_tasks_runs():
    held, ended = e2e_figures.workload_seconds(SCHEDULER_LOG)
    assert held == {"ti-1": 0.75, "ti-2": 6.0}
    assert ended == {"ti-1", "ti-2"}
    assert e2e_figures.workload_seconds(SCHEDULER_LOG.split("\n2026")[0])[1] == set()
    job = {"id": 7, "status": "succeeded", "updated_at": _at(20.0)}
    tis = [_ti("sync", "2026-12-05T10:00:00Z", "2026-12-05T10:00:21Z", id="ti-1")]
    one = e2e_figures.sync_figures(job, tis, None, {"sync": 1.2}, "sync", held)
    assert (one["slot_s"], one["workload_s"], one["notice_s"]) == (1.2, 0.75, 1.0)
    assert one["to_downstream_s"] is None  # no downstream task ran


def _sync(job_id: int, ended: float, downstream_start: str, waiter_end: str | None) -> dict:
    job = {"id": job_id, "status": "succeeded", "updated_at": ended}
    tis = [_ti("sync", "2026-12-05T10:00:00Z", waiter_end or "2026-12-05T10:00:01Z")]
    downstream = _ti("downstream", downstream_start, downstream_start)
    waiter = "sync" if waiter_end else None
    return e2e_figures.sync_figures(job, tis, downstream, {"sync": 0.5}, waiter)


def _at(second: float) -> float:
    return e2e_figures.timestamp(f"2026-12-05T10:00:{second:06.3f}Z")


def test_a_sync_is_measured_from_the_jobs_end_and_a_batch_per_sync():
    one = _sync(1, _at(20.0), "2026-12-05T10:00:26.000Z", "2026-12-05T10:00:24.000Z")
    assert (one["to_downstream_s"], one["notice_s"], one["slot_s"]) == (6.0, 4.0, 0.5)
    assert one["states"] == {"sync": "success", "downstream": "success"}
    syncs = [one] + [_sync(i, _at(20.0), f"2026-12-05T10:00:{20 + i}.000Z", None) for i in (2, 3)]
    served = [
        {"method": "POST", "path": "/api/public/v1/applications/token"},
        {"method": "POST", "path": "/api/public/v1/jobs"},
        *[{"method": "GET", "path": "/api/public/v1/jobs/1"}] * 4,
    ]
    figures = e2e_figures.batch_figures(syncs, served)
    assert figures["to_downstream_p50_s"] == 3.0  # of 2, 3 and 6 s
    assert figures["to_downstream_p95_s"] == 6.0
    assert (figures["requests"], figures["requests_per_sync"], figures["token_requests"]) == (
        6,
        2.0,
        1,
    )
    assert (figures["notice_max_s"], figures["slot_per_sync_s"]) == (4.0, 0.5)
    assert figures["workload_per_sync_s"] is None  # no supervisor line read


def _batch(side: str, p95: float, requests: float, notice: float | None, slot: float) -> dict:
    figures = {
        "syncs": 4,
        "to_downstream_p50_s": p95 / 2,
        "to_downstream_p95_s": p95,
        "notice_max_s": notice,
        "requests_per_sync": requests,
        "token_requests": 1,
        "slot_per_sync_s": slot,
        "slot_max_s": slot,
    }
    sync = {"states": {"downstream": "success"}}
    return {"side": side, "job_s": 120.0, "syncs": [sync] * 4, "figures": figures}


END_TO_END = {
    "lengths": [120.0],
    "runs": 4,
    "airflow": "3.3.0",
    "interpreter": "bench/.venv-official/bin/python",
    "interpreter_note": "the project's venv plus apache-airflow-providers-airbyte 6.2.0",
    "settings": {"pending_s": 5.0, "spread_s": 60.0, "scheduler": "idle sleep 1 s, heartbeats 5 s"},
    "batches": [
        _batch("ours_deferred", 12.0, 14.0, 10.0, 0.8),  # 140 request-s, 12 s
        _batch("ours_blocking", 25.0, 20.0, 20.0, 121.0),  # 400 request-s: missed
        _batch("ours_zero_poll", 1.5, 3.0, None, 0.6),
        _batch("official_deferred", 45.0, 7.0, 60.0, 0.3),  # 420 request-s, 45 s
        _batch("official_blocking", 4.0, 43.0, 3.0, 124.0),
        _batch("official_sensor", 50.0, 9.0, 60.0, 0.9),
    ],
}


def test_end_to_end_goals_against_the_official_deferred_operator_and_absolute():
    rows = {
        goal: (ours, official, met) for goal, ours, official, met in e2e_figures.goals(END_TO_END)
    }
    side = "120-165-s jobs, ours_deferred <= 1/3 of official deferred"
    assert rows[f"end-to-downstream p95, {side}, s"] == ("12.0", "45.0", True)
    assert rows[f"requests x worst notice delay, {side}, request-s"] == ("140", "420", True)
    blocking = "120-165-s jobs, ours_blocking <= 1/3 of official deferred"
    assert rows[f"end-to-downstream p95, {blocking}, s"] == ("25.0", "45.0", False)
    assert rows[f"requests x worst notice delay, {blocking}, request-s"][2] is False
    assert rows["zero-poll: Airbyte requests per sync <= 3, 120-165-s jobs"] == (
        "3.00",
        "no such path",
        True,
    )
    assert rows["zero-poll: end-to-downstream p95 <= 5 s, 120-165-s jobs, s"][2] is True
    slot = "worker-slot seconds per deferred sync < 5 s in Airflow, 120-165-s jobs (slowest run), s"
    assert rows[slot] == ("0.80", "0.30", True)
    failed = e2e_figures.goals({"error": "AirflowStartError: ..."})
    assert failed == [("end-to-end benchmark ran: failed (see `error`)", "n/a", "n/a", False)]


def test_the_report_renders_the_end_to_end_section_and_the_official_trigger_at_60_s():
    trigger = {
        "n": 500, "cpu_s": 1.0, "cpu_ms_per_request": 1.0, "rss_growth_mib": 1.0,
        "kib_per_trigger": 1.0, "requests": 10, "token_requests": 1, "lag_p50_s": 1.0,
        "lag_p95_s": 1.0, "lag_max_s": 1.0, "lag_budget_s": 60.0, "missed": 0,
        "loop_stall_max_s": 0.1,
    }  # fmt: skip
    results = {
        "end_to_end": {"both": {"all": END_TO_END}},
        "triggerer": {
            "ours": {"--n-500": trigger},
            "official": {"--n-500---poll-5": trigger | {"missed": 404}, "--n-500---poll-60": None},
        },
    }
    context = {
        "command": "make bench",
        "date": "today",
        "machine": {"cpu": "2 x test", "memory": "1 GiB", "os": "Linux", "python": "3.11"},
        "versions": {},
        "elapsed_s": 1.0,
        "failed": [
            {"bench": "triggerer", "side": "official", "args": "--n 500 --poll 60", "exit": 1}
        ],
    }
    text = render(context, results)
    assert "## 8. End to end in a real Airflow" in text
    assert (
        "| ours, zero-poll (notification -> Asset event -> downstream DAG) | 120-165 s | 4/4 "
        in text
    )
    assert "each run's job is 15 s longer than the one before" in text
    assert "| official | 500 | 5 s fixed |" in text
    assert "| official | 500 | 60 s fixed (as shipped) | run failed |" in text
    assert "| 0 | 404 at 5 s, n/a at 60 s |" in text
    assert "`bench/.venv-official/bin/python` (the project's venv plus apache-airflow-prov" in text
