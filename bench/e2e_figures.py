"""The figures of ``bench/end_to_end.py`` from what it read, its report section and goals.

Pure functions of the data (task instances as the REST API gives them, task log lines, the
stand-in's jobs and request log), so the smoke test checks them on made-up data.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from datetime import datetime
from typing import Any

from bench.common import percentile

OURS_SIDES = ("ours_deferred", "ours_blocking", "ours_zero_poll")
OFFICIAL_SIDES = ("official_deferred", "official_blocking", "official_sensor")
#: How each side waits, as the report names it.
SIDE_LABELS = {
    "ours_deferred": "ours, deferred (default; 2 s x1.5 to 20 s, history-aware)",
    "ours_blocking": "ours, blocking (same schedule, in the worker)",
    "ours_zero_poll": "ours, zero-poll (notification -> Asset event -> downstream DAG)",
    "official_deferred": "official `AirbyteTriggerSyncOperator(deferrable=True)` (60 s, shipped)",
    "official_blocking": "official `AirbyteTriggerSyncOperator` blocking (`wait_seconds=3`)",
    "official_sensor": "official `asynchronous=True` >> `AirbyteJobSensor(deferrable=True)` (60 s)",
}
DEFERRED_LINE = "Pausing task as DEFERRED"
RESUMED_LINE = "::group::Pre Execute"  # the first line each run of a task process logs
#: What the executor's task supervisor logs when a task process ends (the scheduler's log,
#: LocalExecutor): how long the workload held its worker, for each run of a task instance.
WORKLOAD_LINE = re.compile(
    r"Workload finished\b.*?\bduration=([0-9.]+).*?\bfinal_state=(\w+).*?\bworkload_id=([\w-]+)"
)
#: Goals (issue 21): poll mode against the official deferred operator, push mode absolute.
POLL_SHARE, PUSH_MAX_REQUESTS, PUSH_P95_S, SLOT_MAX_S = 1 / 3, 3, 5.0, 5.0


def timestamp(value: str | None) -> float | None:
    """Epoch seconds of an ISO-8601 time from Airflow (None stays None)."""
    return None if value is None else datetime.fromisoformat(value).timestamp()


def log_times(text: str) -> list[tuple[float, str]]:
    """(epoch seconds, event) of each JSON line of a task log; other lines are skipped."""
    lines = []
    for raw in text.splitlines():
        try:
            line = json.loads(raw)
            lines.append((timestamp(line["timestamp"]), str(line.get("event", ""))))
        except (ValueError, KeyError, TypeError):
            continue
    return lines


def deferred_seconds(lines: list[tuple[float, str]]) -> float:
    """Time the task spent deferred: from each ``Pausing task as DEFERRED`` line to the next
    ``::group::Pre Execute`` line (the resumed process starting the task again)."""
    total, paused = 0.0, None
    for at, event in lines:
        if event.startswith(DEFERRED_LINE):
            paused = at
        elif event.startswith(RESUMED_LINE) and paused is not None:
            total, paused = total + at - paused, None
    return total


def workload_seconds(scheduler_log: str) -> tuple[dict[str, float], set[str]]:
    """Seconds each task instance (by id) held a worker, summed over its runs (a deferred
    task runs twice), from the supervisor's ``Workload finished`` lines; and the ids whose
    last run is among them (a final state other than ``deferred``)."""
    held: dict[str, float] = {}
    ended: set[str] = set()
    for found in WORKLOAD_LINE.finditer(scheduler_log):
        seconds, state, ti_id = float(found[1]), found[2], found[3]
        held[ti_id] = held.get(ti_id, 0.0) + seconds
        if state != "deferred":
            ended.add(ti_id)
    return held, ended


def slot_seconds(ti: dict[str, Any], log_text: str) -> float:
    """Worker-slot seconds of one task instance: its running time (``end_date`` -
    ``start_date``; Airflow keeps the first ``start_date`` across a deferral) less the time
    it spent deferred, read from its own log."""
    start, end = timestamp(ti.get("start_date")), timestamp(ti.get("end_date"))
    if start is None or end is None:
        return math.nan
    return max(0.0, end - start - deferred_seconds(log_times(log_text)))


def sync_figures(
    job: dict[str, Any],
    tis: list[dict[str, Any]],
    downstream: dict[str, Any] | None,
    slots: dict[str, float],
    waiter: str | None,
    held: dict[str, float] | None = None,
) -> dict[str, Any]:
    """One sync: job end -> downstream start, job end -> the waiting task's end (``waiter``,
    None for zero-poll), worker-slot seconds of its Airbyte tasks (``slots`` by task id) and
    how long their processes held an executor worker (``held``, by task instance id)."""
    ended = job["updated_at"]
    start = timestamp((downstream or {}).get("start_date"))
    by_id = {ti["task_id"]: ti for ti in tis}
    noticed = timestamp(by_id.get(waiter, {}).get("end_date")) if waiter else None
    workloads = [(held or {}).get(ti.get("id"), math.nan) for ti in tis]
    return {
        "job_id": job["id"],
        "job_status": job["status"],
        "states": {ti["task_id"]: ti["state"] for ti in tis}
        | {"downstream": (downstream or {}).get("state")},
        "to_downstream_s": None if start is None else round(start - ended, 3),
        "notice_s": None if noticed is None else round(noticed - ended, 3),
        "slot_s": round(sum(slots.values()), 3),
        "slots": {task: round(s, 3) for task, s in slots.items()},
        "workload_s": round(sum(workloads), 3),
    }


def batch_figures(syncs: list[dict[str, Any]], served: list[dict[str, Any]]) -> dict[str, Any]:
    """A side's runs at one job length: latency percentiles, requests and slots per sync."""
    lags = [s["to_downstream_s"] for s in syncs if s["to_downstream_s"] is not None]
    notices = [s["notice_s"] for s in syncs if s["notice_s"] is not None]
    calls = Counter(f"{r['method']} {r['path']}" for r in served)
    tokens = sum(n for call, n in calls.items() if call.endswith("/applications/token"))
    n = max(1, len(syncs))
    slots = [s["slot_s"] for s in syncs if not math.isnan(s["slot_s"])]
    held = [s["workload_s"] for s in syncs if not math.isnan(s.get("workload_s", math.nan))]
    return {
        "syncs": len(syncs),
        "downstream_started": len(lags),
        "to_downstream_p50_s": round(percentile(lags, 50), 2) if lags else None,
        "to_downstream_p95_s": round(percentile(lags, 95), 2) if lags else None,
        "notice_max_s": round(max(notices), 2) if notices else None,
        "requests": sum(calls.values()),
        "requests_per_sync": round(sum(calls.values()) / n, 2),
        "token_requests": tokens,
        "calls": dict(sorted(calls.items())),
        "slot_per_sync_s": round(sum(slots) / len(slots), 3) if slots else None,
        "slot_max_s": round(max(slots), 3) if slots else None,
        "workload_per_sync_s": round(sum(held) / len(held), 3) if held else None,
    }


def job_lengths(doc: dict[str, Any], job_s: float) -> str:
    """How long the jobs of the ``job_s`` row ran, in seconds: ``20`` or, when the runs of a
    side are spread over the official poll interval, ``20-65``."""
    runs, spread = doc.get("runs", 1), doc.get("settings", {}).get("spread_s", 0.0)
    longest = job_s + spread * (runs - 1) / runs
    return f"{job_s:g}" if longest == job_s else f"{job_s:g}-{longest:g}"


def _batch(doc: dict[str, Any], side: str, job_s: float) -> dict[str, Any] | None:
    return next(
        (b for b in doc.get("batches", []) if (b["side"], b["job_s"]) == (side, job_s)), None
    )


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**NO**")


def _n(value: Any, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _product(b: dict[str, Any] | None) -> float | None:
    """Requests per sync x worst notice delay (the slowest run's)."""
    if not b or b["figures"]["notice_max_s"] is None:
        return None
    return b["figures"]["requests_per_sync"] * max(0.0, b["figures"]["notice_max_s"])


def goals(doc: dict[str, Any] | None) -> list[tuple[str, str, str, bool | None]]:
    """(goal, ours, official, met) of every job length measured: the summary's rows."""
    rows: list[tuple[str, str, str, bool | None]] = []
    doc = doc or {}
    for job_s in doc.get("lengths", []):
        jobs = f"{job_lengths(doc, job_s)}-s jobs"
        ref = _batch(doc, "official_deferred", job_s)
        ref_p95 = (ref or {}).get("figures", {}).get("to_downstream_p95_s")
        for side in ("ours_deferred", "ours_blocking"):
            b = _batch(doc, side, job_s)
            if not b:
                continue
            p95, mine, theirs = b["figures"]["to_downstream_p95_s"], _product(b), _product(ref)
            both = None not in (p95, ref_p95)
            rows.append((
                f"end-to-downstream p95, {jobs}, {side} <= 1/3 of official deferred, s",
                _n(p95), _n(ref_p95), p95 <= POLL_SHARE * ref_p95 if both else None,
            ))  # fmt: skip
            both = None not in (mine, theirs)
            rows.append((
                f"requests x worst notice delay, {jobs}, {side} <= 1/3 of official "
                "deferred, request-s", _n(mine, 0), _n(theirs, 0),
                mine <= POLL_SHARE * theirs if both else None,
            ))  # fmt: skip
        if b := _batch(doc, "ours_zero_poll", job_s):
            f = b["figures"]
            rows.append((
                f"zero-poll: Airbyte requests per sync <= {PUSH_MAX_REQUESTS}, {jobs}",
                _n(f["requests_per_sync"], 2), "no such path",
                f["requests_per_sync"] <= PUSH_MAX_REQUESTS,
            ))  # fmt: skip
            p95 = f["to_downstream_p95_s"]
            rows.append((
                f"zero-poll: end-to-downstream p95 <= {PUSH_P95_S:g} s, {jobs}, s",
                _n(p95), "no such path", None if p95 is None else p95 <= PUSH_P95_S,
            ))  # fmt: skip
        if b := _batch(doc, "ours_deferred", job_s):
            slot, ref_slot = b["figures"]["slot_max_s"], (ref or {}).get("figures", {})
            rows.append((
                f"worker-slot seconds per deferred sync < {SLOT_MAX_S:g} s in Airflow, "
                f"{jobs} (slowest run), s", _n(slot, 2),
                _n(ref_slot.get("slot_max_s"), 2), None if slot is None else slot < SLOT_MAX_S,
            ))  # fmt: skip
    if doc.get("error"):
        rows.append(("end-to-end benchmark ran: failed (see `error`)", "n/a", "n/a", False))
    return rows


def _spread(doc: dict[str, Any]) -> str:
    """How the runs of a side differ in job length, said for the report (or nothing)."""
    runs, spread = doc.get("runs", 1), doc.get("settings", {}).get("spread_s", 0.0)
    if runs < 2 or not spread:
        return ""
    step = spread / runs
    return (
        f"each run's job is {step:g} s longer than the one before, so the ends of a side's "
        f"{runs} jobs fall {step:g} s apart in a {spread:g}-s poll interval, as unrelated "
        "syncs' ends do (a figure does not hang on where one job's end meets a poll); "
    )


def section(doc: dict[str, Any] | None) -> list[str]:
    """Section 8 of ``bench/RESULTS.md`` (nothing if the bench did not run)."""
    if not doc:
        return []
    s = doc.get("settings", {})
    out = [
        "## 8. End to end in a real Airflow: from a sync's end to the next task's start",
        "",
        f"`bench/end_to_end.py`: one Airflow {doc.get('airflow', '')} (scheduler, triggerer, "
        "dag-processor, api-server; LocalExecutor, SQLite metadata DB, Airflow's default "
        f"scheduler loop: {s.get('scheduler', 'n/a')}), every component run by "
        f"`{doc.get('interpreter', '?')}` ({doc.get('interpreter_note', '')}); one stand-in "
        f"for every side. Jobs: {s.get('pending_s', 'n/a')} s pending, then running, "
        f"{doc.get('runs', '?')} runs per side at once, the sides one after another; "
        f"{_spread(doc)}every "
        "connection synced once before the measured run (as a scheduled DAG's is). "
        "*to downstream*: the stand-in's end of the job -> the downstream task's "
        "`start_date`; *notice*: -> the waiting task's `end_date`; requests: every Airbyte "
        "request while the side's runs were live (tokens included) / runs; slot: the Airbyte "
        "tasks' running time (`end_date` - `start_date`) less their time deferred (from their "
        "logs: `Pausing task as DEFERRED` to the resumed process's first line); *worker held*: "
        "how long their processes held an executor worker (the supervisor's `Workload "
        "finished` durations, from starting the process to noticing its exit, which can lag "
        "the task's last log line by up to the supervisor's 5 s heartbeat wait).",
        "",
        "| side | job | runs ok | to downstream p50 / p95 s | notice max s "
        "| requests / sync (tokens) | slot s / sync (max) | worker held s / sync |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for b in doc.get("batches", []):
        f = b["figures"]
        ok = sum(1 for x in b["syncs"] if x["states"].get("downstream") == "success")
        out.append(
            f"| {SIDE_LABELS.get(b['side'], b['side'])} | {job_lengths(doc, b['job_s'])} s "
            f"| {ok}/{f['syncs']} "
            f"| {_n(f['to_downstream_p50_s'])} / {_n(f['to_downstream_p95_s'])} "
            f"| {_n(f['notice_max_s'])} | {f['requests_per_sync']:.2f} ({f['token_requests']}) "
            f"| {_n(f['slot_per_sync_s'], 2)} ({_n(f['slot_max_s'], 2)}) "
            f"| {_n(f.get('workload_per_sync_s'), 2)} |"
        )
    if doc.get("error"):
        out += ["", f"The run stopped early: `{doc['error'][:500]}`"]
    return [*out, ""]
