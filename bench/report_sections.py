"""The sections of ``bench/RESULTS.md`` that tabulate one benchmark each, and the helpers
``bench.report`` shares with them."""

from __future__ import annotations

import math
from typing import Any

from bench.parse_cost import DAG_PARSE_GOAL_S, dag_parse_goal
from bench.polling import worst_notice_delay

NA = "n/a"


def num(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NA
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def header(*columns: str) -> list[str]:
    """A Markdown table's first two lines."""
    return [row(*columns), "|" + "---|" * len(columns)]


def row(*cells: Any) -> str:
    """A Markdown table's row."""
    return "| " + " | ".join(map(str, cells)) + " |"


def ratio(ours: Any, official: Any) -> str:
    numbers = all(isinstance(x, int | float) for x in (ours, official))
    return f"{ours / official:.2f}" if numbers and official != 0 else NA


def met(ok: bool | None) -> str:
    return NA if ok is None else ("yes" if ok else "**NO**")


def get(results: dict, bench: str, side: str) -> list[dict[str, Any]]:
    """Every result document of ``bench`` for ``side`` (skipping failed runs)."""
    return [d for d in results.get(bench, {}).get(side, {}).values() if d]


def one(results: dict, bench: str, side: str) -> dict[str, Any] | None:
    return next(iter(get(results, bench, side)), None)


def case(
    results: dict, side: str, mode: str, minutes: float, history: bool = False
) -> dict[str, Any] | None:
    for c in (one(results, "polling", side) or {}).get("cases", []):
        if c and (c["mode"], c["minutes"], c.get("history", False)) == (mode, minutes, history):
            return c
    return None


def trigger_key(key: str, side: str) -> tuple[int, float | None]:
    """(N, the official trigger's interval; None for ours) of a triggerer result's key, e.g.
    ``--n-500---poll-60`` (the runner joins the script's arguments with ``-``; without
    ``--poll`` the official trigger ran at the script's default, 5 s)."""
    words = [w for w in key.split("-") if w]
    given = dict(zip(words[::2], words[1::2], strict=False))
    poll = float(given.get("poll", 5)) if side == "official" else None
    return int(given.get("n", 0)), poll


def trig(
    results: dict, side: str, n: int, poll: float | None = None
) -> tuple[bool, dict[str, Any] | None]:
    """(ran, result) of the triggerer run of ``side`` with N = ``n`` (official: at ``poll``)."""
    for key, doc in results.get("triggerer", {}).get(side, {}).items():
        if trigger_key(key, side) == (n, poll if side == "official" else None):
            return True, doc
    return False, None


def polling(results: dict) -> list[str]:
    out = [
        "## 1. Requests while waiting for one sync, and notice delay",
        "",
        "Real syncs against a stand-in job of exactly that length (5 s pending, then running), "
        "with every timeline divided by the scale (requests are scale-free; delays are "
        "multiplied back). *model* is the same figure computed from the side's poll schedule at "
        "full scale (checks the real run, and vice versa). Requests = token + trigger + polls. "
        "*worst*: the longest any job ending near T waits to be noticed, the poll interval in "
        "force at T on the side's schedule (the goals' worst notice delay).",
        "",
        "| side | wait | history | job | requests (model) | polls | token req. "
        "| notice delay s (model) | worst s | scale |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for side in ("ours", "official"):
        doc = one(results, "polling", side)
        for c in (doc or {}).get("cases", []):
            if not c:
                continue
            mo, length, history = c["model"], c["minutes"] * 60, bool(c.get("history"))
            out.append(
                f"| {side} | {c['mode']} | {'yes' if c.get('history') else 'no'} "
                f"| {c['minutes']:g} min | {c['requests']} "
                f"({mo['requests']}) | {c['polls']} | {c['token_requests']} "
                f"| {num(c['notice_delay_s'], 1)} ({num(mo['notice_delay_s'], 1)}) "
                f"| {num(worst_notice_delay(side, c['mode'], length, history), 2)} "
                f"| 1/{c['scale']:g} |"
            )
    out += [
        "",
        "Models (T = job length, first poll right after the trigger):",
        "",
        "* ours (blocking and deferred alike, `PollSchedule`): polls at t0 = 0, "
        "t(k+1) = t(k) + d(k), d = 2 s x 1.5^k capped at 20 s, reset to 2 s when the status "
        "changes (pending -> running). Past the ramp (2+3+4.5+6.75+10.1+15.2 = 41.6 s) it is "
        "one poll per 20 s: polls(T) ~ 7 + ceil((T - 41.6 - 5) / 20) for T > 47 s, "
        "delay <= 20 s.",
        "* ours with history (a connection synced before, as a scheduled DAG's is; the "
        "operator reads the connection's recent jobs once): one poll at once, then one per "
        "60 s until 0.9 x the usual duration, then the schedule above: polls(T) ~ "
        "1 + ceil(0.9 T / 60) + a few close polls; requests add one for the job history.",
        "* official blocking (`AirbyteHook.wait_for_job`, wait_seconds = 3): sleep, then poll: "
        "polls(T) = ceil(T / 3), delay <= 3 s.",
        "* official deferred (`AirbyteSyncTrigger`, poll_interval = 60 set by the operator): "
        "polls(T) = ceil(T / 60) + 1, delay <= 60 s.",
        "* tokens: 1 per hook for both (a deferred sync has two: the worker's and the "
        "triggerer's). The official SDK caches tokens per process, so its deferred row shows 1 "
        "(worker and trigger shared this benchmark process); in a deployment it is 2.",
        "",
    ]
    return out


def worker_slot(results: dict) -> list[str]:
    out = [
        "## 2. Worker-slot seconds per deferred sync",
        "",
        "Fresh processes per sync; slot = 2 x operator-module import (the task process and the "
        "resumed one both parse the DAG file) + `execute` until it defers + `execute_complete`. "
        "Not counted, for both: process start and importing Airflow. Medians.",
        "",
        *header(
            "side", "job length", "module import s", "execute s", "execute_complete s", "slot s"
        ),
    ]
    for side in ("ours", "official"):
        doc = one(results, "worker_slot", side)
        out += [
            row(
                side,
                f"{r['job_seconds']:g} s",
                num(r["import_s"], 3),
                num(r["execute_s"], 3),
                num(r["execute_complete_s"], 4),
                num(r["slot_s"], 3),
            )
            for r in (doc or {}).get("lengths", [])
        ]
    return [*out, ""]


def triggerer(results: dict) -> list[str]:
    out = [
        "## 3. Triggerer scale: N triggers in one event loop",
        "",
        "N trigger coroutines in one asyncio loop (the stand-in in another process), watching "
        "jobs that end 10 s after the start. CPU = this process from creating the triggers to "
        "the last event; RSS = peak growth over the warmed-up process; lag = job end -> event; "
        "budget = the poll interval in force at the end on an unloaded schedule, so each row is "
        "judged against its own interval; missed = lag > budget or no event before the "
        "cut-off; stall = longest the loop could not run (50 ms heartbeat). Ours: its default "
        "schedule (2 s x1.5 to 20 s). Official: fixed 5 s (a request rate like ours) and fixed "
        "60 s, what its operator and sensor hand `AirbyteSyncTrigger` "
        "(`trigger_poll_interval = 60`; the trigger itself has no default). A run is cut off 2 "
        "budgets + 15 s after the jobs end; a trigger without an event by then counts as "
        "missed, and 0 requests means no trigger got past its set-up (client, token) before "
        "the cut-off.",
        "",
        "| side | N | interval | CPU s | CPU ms/request | RSS MiB (KiB/trigger) "
        "| requests (tokens) | lag p50 / p95 / max s | budget s | missed | loop stall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    runs = results.get("triggerer", {})
    keys = {(*trigger_key(k, s), s) for s in ("ours", "official") for k in runs.get(s, {})}
    for n, poll, side in sorted(keys, key=lambda k: (k[0], k[2] != "ours", k[1] or 0)):
        _, d = trig(results, side, n, poll)
        interval = "2-20 s adaptive" if side == "ours" else f"{poll:g} s fixed"
        if poll == 60:
            interval += " (as shipped)"
        if not d:
            out.append(f"| {side} | {n} | {interval} | run failed | | | | | | | |")
            continue
        out.append(
            f"| {side} | {n} | {interval} | {num(d['cpu_s'], 1)} "
            f"| {num(d['cpu_ms_per_request'], 1)} "
            f"| {num(d['rss_growth_mib'], 0)} ({num(d['kib_per_trigger'], 0)}) "
            f"| {d['requests']} ({d['token_requests']}) "
            f"| {num(d['lag_p50_s'], 1)} / {num(d['lag_p95_s'], 1)} / "
            f"{num(d['lag_max_s'], 1)} | {num(d['lag_budget_s'], 2)} "
            f"| {d['missed']} | {num(d['loop_stall_max_s'], 2)} |"
        )
    return [*out, ""]


def parse(results: dict) -> list[str]:
    reps = {s: (one(results, "parse_cost", s) or {}).get("reps") for s in ("ours", "official")}
    out = [
        "## 4. DAG parse cost",
        "",
        "DAG parse = `DagBag(file)` in a process with Airflow and DagBag already imported (as "
        "the DAG processor parses a file), one file per measurement, median over fresh "
        f"processes (ours: {reps['ours'] or NA}, official: {reps['official'] or NA} per file). "
        "The goal applies to each file in `dags/` (the slowest in bold); the two one-task DAGs in "
        "`bench/dag_files/` compare the sides' operators and are not part of it.",
        "",
        f"| side | DAG file | parse ms | < {DAG_PARSE_GOAL_S * 1000:g} ms | DAGs | import errors |",
        "|---|---|---|---|---|---|",
    ]
    for side in ("ours", "official"):
        rows = (one(results, "parse_cost", side) or {}).get("dag_files", [])
        goal = dag_parse_goal(rows)
        for r in rows:
            name, ms = f"`{r['file']}`", num(r["parse_s"] * 1000, 0)
            if goal and r["file"] == goal["slowest"]:
                name, ms = f"**{name}** (slowest)", f"**{ms}**"
            verdict = (
                met(r["file"] not in goal["missed"])
                if goal and r["file"].startswith("dags/")
                else "(comparison)"
            )
            out.append(
                f"| {side} | {name} | {ms} | {verdict} | {r['dags']} | {r['import_errors']} |"
            )
    d = one(results, "parse_cost", "ours")
    for module, rows in (d or {}).get("importtime_top", {}).items():
        out += [
            "",
            f"For information (no goal): what `import {module}` loads beyond airflow.sdk "
            "(`-X importtime`, self time summed per package, one run):",
            "",
            *header("package", "self ms", "share"),
        ]
        out += [
            row(f"`{r['package']}`", num(r["self_s"] * 1000, 1), f"{r['share']:.0%}") for r in rows
        ]
    return [*out, ""]


def resilience(results: dict) -> list[str]:
    out = [
        "## 5. Resilience under load",
        "",
        "Rounds of 3 parallel blocking syncs (one per connection) with faults queued on the "
        "stand-in; a failed task is retried as Airflow would (retries=2). `5xx`: 503 x4 on the "
        "trigger, 502 x6 on polls per round; `lost`: 2 triggers per round whose job is created "
        "but whose answer is cut off. Duplicates come from the stand-in's own job list.",
        "",
        *header(
            "side", "faults", "syncs", "requests", "hit a fault", "task attempts", "failed syncs",
            "jobs created", "duplicated syncs",
        ),
    ]  # fmt: skip
    figures = (
        "syncs", "requests", "faulted_requests", "task_attempts", "failed", "jobs_created",
        "duplicates",
    )  # fmt: skip
    for scenario in ("5xx", "lost"):
        for side in ("ours", "official"):
            d = one(results, "resilience", side)
            s = (d or {}).get("scenarios", {}).get(scenario)
            if s:
                out.append(row(side, scenario, *(s[f] for f in figures)))
    return [*out, ""]


def notifications(results: dict) -> list[str]:
    o = one(results, "notifications", "ours")
    burst = one(results, "notification_burst", "ours")
    if not o and not burst:
        return []
    out = ["## 6. Airbyte's notifications (ours only: the official provider has no such path)", ""]
    if o:
        out += notification_latency(o)
    return out + notification_burst(burst)


def notification_latency(o: dict[str, Any]) -> list[str]:
    outside, zero = o["outside_syncs"], o["zero_poll"]
    runs = zero["requests_per_run"]
    calls = sorted({call for run in runs for call in run})
    out = [
        "`bench/notifications.py`: a real Airflow 3 (SQLite metadata DB), the webhook receiver "
        "and a client-credentials stand-in that notifies the receiver when a sync ends.",
        "",
        f"**Syncs started outside Airflow** ({outside['syncs']}, through the stand-in's API): "
        "time from the notification being sent to the connection Asset's event existing in "
        f"Airflow: p50 {num(outside['p50_seconds'], 3)} s, p95 "
        f"{num(outside['p95_seconds'], 3)} s, max {num(outside['max_seconds'], 3)} s; the "
        f"receiver's answer (202 once recorded): p50 {num(outside.get('ack_p50_seconds'), 3)} "
        f"s, p95 {num(outside.get('ack_p95_seconds'), 3)} s. "
        "Airbyte requests by the receiver: "
        + ", ".join(f"`{k}` x{v}" for k, v in sorted(outside["receiver_requests"].items()))
        + " (the token is cached across syncs).",
        "",
        f"**Zero-poll DAG runs** ({zero['runs']}, `airbyte_stripe_zero_poll_sync`): every "
        "Airbyte request while each run was live, by any component; the requests do not "
        "depend on the job's length (nothing polls).",
        "",
        "| run | " + " | ".join(f"`{c}`" for c in calls) + " | total | watchdog |",
        "|---|" + "---|" * (len(calls) + 2),
    ]
    for i, (run, states) in enumerate(zip(runs, zero["task_states"], strict=True), 1):
        cells = " | ".join(str(run.get(c, 0)) for c in calls)
        out.append(f"| {i} | {cells} | {sum(run.values())} | {states.get('watchdog', NA)} |")
    return [*out, ""]


def notification_burst(doc: dict[str, Any] | None) -> list[str]:
    """Section 6's bursts (``bench/notification_burst.py``)."""
    if not doc:
        return []
    s = doc["setting"]
    out = [
        f"**Bursts** (`bench/notification_burst.py`): {s['notifications']} distinct success "
        f"notifications posted by {s['posters']} threads at once, against fresh `python -m "
        "webhook` processes sharing one PostgreSQL ledger, in front of a real Airflow 3 with a "
        f"**{s['metadata_db']}** metadata DB (API server: {s['api_server_workers']} worker), "
        f"`AIRFLOW_MAX_REQUESTS={s['airflow_max_requests']}`, "
        f"`NOTIFICATION_WORKERS={s['notification_workers']}`; each notification makes "
        f"{s['events_per_notification']} Asset events (the connection's and its tables'). "
        "Everything runs on the machine above. *accepted*: N / (first post to last "
        f"answer), a closed loop of {s['posters']} posts in flight. *processed*: from the "
        "first post to the last connection Asset event (Airflow's timestamps); *last event*: "
        "to the last event of any Asset. Airflow calls: the receivers' requests to Airflow's "
        "REST API, counted in its access log until every notification was processed (tokens "
        "and asset-id lookups included); `GET /api/v2/assets/events` is each notification's "
        "one look for a task's event of the job, a page per 100 of the connection's events "
        "since the job began (the N jobs are one connection's, begun just before the burst).",
        "",
        *header(
            "receivers", "N", "202s", "ack p50 / p95 / max s", "accepted /s", "processed /s (s)",
            "last event s", "Airflow calls / notification", "calls", "retried", "duplicates",
        ),
    ]  # fmt: skip
    for r in doc["rounds"]:
        calls = ", ".join(f"`{k}` x{v}" for k, v in r["airflow_calls_by_request"].items())
        out.append(
            row(
                r["receivers"],
                r["notifications"],
                r["statuses"].get("202", 0),
                f"{num(r['ack_p50_seconds'], 3)} / {num(r['ack_p95_seconds'], 3)} / "
                f"{num(r['ack_max_seconds'], 3)}",
                num(r["accepted_per_second"], 1),
                f"{num(r['processed_per_second'], 1)} ({num(r['processed_seconds'], 1)})",
                num(r["last_event_seconds"], 1),
                num(r["airflow_calls_per_notification"], 2),
                calls
                + (f"; {r['airflow_calls_failed']} failed" if r["airflow_calls_failed"] else ""),
                r["retried_notifications"],
                r["duplicate_events"],
            )
        )
    return [*out, ""]
