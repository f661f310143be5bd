"""Bench 3: triggerer scale, N trigger coroutines waiting in one event loop.

As the triggerer runs them: N triggers (``--n``) in one asyncio event loop in this process,
the stand-in in another process (its CPU is not counted). The stand-in holds three running
jobs (one per seeded connection, behaviour ``stuck_running``; it allows one running job per
connection), and trigger i watches job i mod 3: every trigger polls on its own, so the
polling cost is that of N separate jobs. After ``--end-after`` seconds a separate thread
cancels the three jobs (cancelled is terminal for both triggers) and each trigger's lag is
the time from its job's end to its event.

Measured: CPU seconds of this process while the triggers wait, peak RSS growth, API
requests (polls and token fetches), lag (p50/p95/max) against the poll interval in force
when the jobs ended, and the longest event-loop stall (a 50 ms heartbeat's overshoot: a
trigger doing blocking I/O on the loop stalls every other trigger).

Poll settings: ours its defaults (2 s growing x1.5 to 20 s); the official trigger a fixed
``--poll`` (default 5 s: a request rate like ours over the run; ``--poll 60`` is what its
operator and sensor hand it, ``trigger_poll_interval = 60``). The lag budget is the interval
in force when the jobs end, so each row says which interval it was measured against.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import threading
import time
from typing import Any

import requests

from bench.common import (
    CONNECTION_IDS,
    cpu_seconds,
    emit,
    parse_args,
    percentile,
    quiet_logs,
    reset_peak_rss,
    rss_kib,
    standin,
    use_connection,
)
from bench.sides import OURS_FACTOR, OURS_MAX_POLL, OURS_POLL, make_trigger, ours_extras

CONN_ID = "bench_triggerer"
OFFICIAL_POLL = 5.0
HEARTBEAT = 0.05
CUTOFF_GRACE = 15.0  # seconds past the worst unloaded notice time before giving up


def interval_in_force(
    side: str, end_after: float, scale: float, official_poll: float = OFFICIAL_POLL
) -> float:
    """The poll interval covering ``end_after`` s on an unloaded schedule (the lag budget)."""
    if side == "official":
        return official_poll / scale
    t, delay = 0.0, OURS_POLL / scale
    while t + delay <= end_after:
        t += delay
        delay = min(delay * OURS_FACTOR, OURS_MAX_POLL / scale)
    return delay


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))


class Watch:
    """Runs the triggers in an event loop on a daemon thread, so the measurement can stop at
    a wall-clock cut-off even when the loop is blocked (a blocked loop cannot time out)."""

    def __init__(self, triggers: list[Any]) -> None:
        self.triggers = triggers
        self.events: list[tuple[int, float, dict]] = []  # (trigger index, time, payload)
        self.stall = 0.0
        self.last_beat = time.monotonic()
        self.finished = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        async def heartbeat() -> None:
            while not self.finished.is_set():
                self.last_beat = time.monotonic()
                await asyncio.sleep(HEARTBEAT)
                self.stall = max(self.stall, time.monotonic() - self.last_beat - HEARTBEAT)

        async def one(index: int, trigger: Any) -> None:
            async for event in trigger.run():
                self.events.append((index, time.time(), event.payload))
                return

        beat = asyncio.create_task(heartbeat())
        await asyncio.gather(*(one(i, t) for i, t in enumerate(self.triggers)))
        self.finished.set()
        await beat

    def run_until(self, deadline: float) -> None:
        """Start, and return when every trigger fired or at ``deadline`` (epoch seconds)."""
        self.thread.start()
        self.finished.wait(timeout=max(0.0, deadline - time.time()))
        if not self.finished.is_set():  # cut off: count a loop blocked right now as stalled
            self.stall = max(self.stall, time.monotonic() - self.last_beat - HEARTBEAT)


def start_job(server: Any, headers: dict[str, str], connection_id: str) -> int:
    """Start a sync of ``connection_id`` through the Public API; its job id."""
    response = requests.post(
        f"{server.public_api_url}/jobs",
        json={"connectionId": connection_id, "jobType": "sync"},
        headers=headers,
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["jobId"]


def end_jobs(
    server: Any, headers: dict[str, str], job_ids: list[int], after: float, ended: dict
) -> None:
    """After ``after`` s, cancel the jobs (terminal for both triggers); note when in ``ended``."""
    time.sleep(after)
    for index, job_id in enumerate(job_ids):
        requests.delete(
            f"{server.public_api_url}/jobs/{job_id}", headers=headers, timeout=30
        ).raise_for_status()
        ended[index] = time.time()


def figures(
    args: Any, n: int, end_after: float, scale: float, budget: float, m: dict[str, Any]
) -> dict[str, Any]:
    """The result document from what one run measured (``m``)."""
    served = [r for r in m["served"] if r["method"] != "DELETE"]
    events, ended, cpu = m["events"], m["ended"], m["cpu"]
    lags = [at - ended[index % m["jobs"]] for index, at, _ in events if index % 3 in ended]
    finished = [p for _, _, p in events if p.get("status") in ("terminal", "cancelled")]
    ours = args.side == "ours"
    return {
        "bench": "triggerer",
        "side": args.side,
        "n": n,
        "end_after_s": end_after,
        "poll": f"{OURS_POLL / scale:g}-{OURS_MAX_POLL / scale:g} s adaptive"
        if ours
        else f"{args.poll / scale:g} s fixed",
        "poll_interval_s": None if ours else args.poll / scale,
        "events": len(events),
        "completions_seen": len(finished),
        "other_events": sorted(
            {str(p.get("status")) for _, _, p in events} - {"terminal", "cancelled"}
        ),
        "cpu_s": round(cpu, 3),
        "wall_s": round(m["wall"], 2),
        "cpu_ms_per_request": round(1000 * cpu / len(served), 3) if served else None,
        "rss_growth_mib": round(m["rss"] / 1024, 1),
        "kib_per_trigger": round(m["rss"] / n, 1),
        "requests": len(served),
        "token_requests": sum(1 for r in served if r["path"].endswith("/applications/token")),
        "lag_p50_s": round(percentile(lags, 50), 2),
        "lag_p95_s": round(percentile(lags, 95), 2),
        "lag_max_s": round(max(lags), 2) if lags else None,
        "lag_budget_s": round(budget, 2),
        "missed": sum(1 for lag in lags if lag > budget) + (n - len(finished)),
        "loop_stall_max_s": round(m["stall"], 3),
    }


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        n={"type": int, "default": 100, "help": "concurrent triggers"},
        end_after={"type": float, "default": 10.0, "help": "seconds until the jobs end"},
        poll={"type": float, "default": OFFICIAL_POLL, "help": "the official trigger's, s"},
    )
    quiet_logs()
    raise_fd_limit()
    n, end_after, scale = args.n, args.end_after, 1.0
    if args.quick:
        n, end_after, scale = min(n, 20), 1.5, 10.0
    with standin(pending_seconds=0.01, running_seconds=0.05) as server:
        headers = server.auth_headers()
        use_connection(args.side, server, CONN_ID, **ours_extras(scale))
        # Warm up as a running triggerer is: modules imported, one trigger run to its end.
        warm = make_trigger(
            args.side, CONN_ID, start_job(server, headers, CONNECTION_IDS[0]), poll_interval=0.1
        )
        Watch([warm]).run_until(time.time() + 30)
        server.set_job_behaviour("stuck_running", count=len(CONNECTION_IDS))
        job_ids = [start_job(server, headers, c) for c in CONNECTION_IDS]
        served_before = len(server.requests())
        ended: dict[int, float] = {}
        reset_peak_rss()
        rss_before, cpu_before, started = rss_kib(), cpu_seconds(), time.time()
        triggers = [
            make_trigger(
                args.side, CONN_ID, job_ids[i % len(job_ids)], poll_interval=args.poll / scale
            )
            for i in range(n)
        ]
        ender = threading.Thread(
            target=end_jobs, args=(server, headers, job_ids, end_after, ended), daemon=True
        )
        ender.start()
        budget = interval_in_force(args.side, end_after, scale, args.poll)
        watch = Watch(triggers)
        watch.run_until(started + end_after + 2 * budget + CUTOFF_GRACE)
        events, stall = list(watch.events), watch.stall
        cpu = cpu_seconds() - cpu_before
        wall = time.time() - started
        peak = rss_kib("VmHWM")
        ender.join(timeout=60)
        served = server.requests()[served_before:]
    measured = {"events": events, "stall": stall, "cpu": cpu, "wall": wall, "ended": ended}
    measured |= {"rss": peak - rss_before, "served": served, "jobs": len(job_ids)}
    result = figures(args, n, end_after, scale, budget, measured)
    emit(result, args.json)
    if watch.thread.is_alive():  # cut off with triggers still waiting: do not join them
        sys.stdout.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
