"""Bench 5: resilience under load: parallel syncs while the API fails in bursts.

Each round runs three syncs in parallel (one per seeded connection: the stand-in, like
Airbyte, allows one running job per connection) with the blocking operator, after queueing
faults on the stand-in:

* ``5xx``: 503 x4 on ``POST /jobs`` (trigger) and 502 x6 on ``GET /jobs/{id}`` (polls);
* ``lost``: 2 triggers whose job IS created but whose answer is cut off mid-body (what a
  proxy timeout or a dropped connection does: the sync started, the client cannot know).

A task that raises is retried as Airflow would (``retries=2``, 1 s delay; an
``AirflowFailException`` is not retried). Counted: API requests, requests that hit a fault,
task attempts, syncs that ended failed, and duplicated syncs (jobs beyond one per sync,
from the stand-in's own job list; must be 0).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from bench.common import (
    CONNECTION_IDS,
    emit,
    fake_context,
    parse_args,
    quiet_logs,
    standin,
    use_connection,
)
from bench.sides import make_operator, ours_extras, retryable

CONN_ID = "bench_resilience"
TASK_RETRIES, RETRY_DELAY = 2, 1.0
SCALE = 30.0  # poll schedules / 30: ours 0.067-0.67 s, the official wait 0.1 s
FAULTS = {
    "5xx": [
        {
            "kind": "status",
            "status": 503,
            "count": 4,
            "path": "/api/public/v1/jobs",
            "method": "POST",
        },
        {
            "kind": "status",
            "status": 502,
            "count": 6,
            "path": "/api/public/v1/jobs/",
            "method": "GET",
        },
    ],
    "lost": [
        {"kind": "lost_response", "count": 2, "path": "/api/public/v1/jobs", "method": "POST"},
    ],
}


def run_task(side: str, connection_id: str) -> dict[str, Any]:
    """One task with Airflow-style retries; returns attempts and whether it succeeded."""
    attempts = 0
    while True:
        attempts += 1
        operator = make_operator(side, CONN_ID, connection_id, deferrable=False, scale=SCALE)
        try:
            operator.execute(fake_context())
            return {"attempts": attempts, "ok": True}
        except Exception as exc:
            if attempts > TASK_RETRIES or not retryable(exc):
                return {"attempts": attempts, "ok": False, "error": type(exc).__name__}
            time.sleep(RETRY_DELAY)


def run_round(side: str, server: Any, scenario: str) -> dict[str, Any]:
    server.reset()
    for fault in FAULTS[scenario]:
        server.inject(**fault)
    outcomes: list[dict[str, Any]] = [{}] * len(CONNECTION_IDS)

    def task(index: int, connection_id: str) -> None:
        outcomes[index] = run_task(side, connection_id)

    threads = [threading.Thread(target=task, args=(i, c)) for i, c in enumerate(CONNECTION_IDS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    served = [r for r in server.requests() if not r["path"].endswith("/health")]
    jobs = server.jobs()
    per_connection = {c: sum(1 for j in jobs if j["connection_id"] == c) for c in CONNECTION_IDS}
    return {
        "syncs": len(CONNECTION_IDS),
        "failed": sum(1 for o in outcomes if not o["ok"]),
        "task_attempts": sum(o["attempts"] for o in outcomes),
        "requests": len(served),
        "faulted_requests": sum(1 for r in served if r["fault"]),
        "jobs_created": len(jobs),
        "duplicates": sum(max(0, n - 1) for n in per_connection.values()),
        "errors": sorted({o["error"] for o in outcomes if "error" in o}),
    }


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], rounds={"type": int, "default": 3})
    quiet_logs()
    rounds = 1 if args.quick else args.rounds
    scenarios: dict[str, dict[str, Any]] = {}
    with standin(pending_seconds=0.05, running_seconds=0.3) as server:
        use_connection(
            args.side,
            server,
            CONN_ID,
            **ours_extras(SCALE, retry_min_wait=0.05, retry_max_wait=0.5, read_timeout=5),
        )
        for scenario in FAULTS:
            totals: dict[str, Any] = {}
            for _ in range(rounds):
                for key, value in run_round(args.side, server, scenario).items():
                    if isinstance(value, list):
                        totals[key] = sorted(set(totals.get(key, [])) | set(value))
                    else:
                        totals[key] = totals.get(key, 0) + value
            scenarios[scenario] = totals
    emit(
        {"bench": "resilience", "side": args.side, "rounds": rounds, "scenarios": scenarios},
        args.json,
    )


if __name__ == "__main__":
    main()
