"""Bench 1: API requests made while waiting for one sync, and how late its end is noticed.

For each job length (2 and 10 minutes by default) and each way of waiting (``blocking``: the
operator waits in the worker; ``deferred``: the operator defers and the trigger waits), a
real sync is run against a stand-in whose job lasts exactly that long, with the whole
timeline divided by ``--scale`` (10 by default: a 10-minute job takes 60 s, a 2 s poll
0.2 s). Scaling time preserves the number of requests; the measured notice delay is
multiplied back by the scale. Each case has its own stand-in process, so every request it
served (token, trigger, polls) is the client's.

The same figures are also computed from each side's poll schedule (``model_*`` below) at
full scale; the table shows both so the model is checked by the real run.
"""

from __future__ import annotations

import math
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
    wait_job_terminal,
)
from bench.sides import (
    OFFICIAL_TRIGGER_POLL,
    OFFICIAL_WAIT_SECONDS,
    OURS_FACTOR,
    OURS_MAX_POLL,
    OURS_POLL,
    OURS_QUIET_POLL,
    OURS_QUIET_SHARE,
    defer,
    event_ok,
    make_operator,
    ours_extras,
    run_trigger,
)

PENDING_SECONDS = 5.0  # of each job's length, spent pending before it runs (full scale)
MODES = ("blocking", "deferred")


# -- models (full scale) ----------------------------------------------------------------------
def _status(t: float, length: float, pending: float) -> str:
    return "pending" if t < pending else "running" if t < length else "done"


def ours_poll_times(
    length: float, pending: float = PENDING_SECONDS, quiet_until: float = 0.0
) -> list[float]:
    """When our wait polls, up to the poll that sees the job done: at once, then one per
    60 s until ``quiet_until`` (from the job history), then PollSchedule delays (2 s x1.5 up
    to 20 s, back to 2 s when the status changes)."""
    times, t = [0.0], 0.0
    while t < quiet_until:
        t += min(OURS_QUIET_POLL, quiet_until - t)
        times.append(t)
    delay, last = OURS_POLL, _status(t, length, pending)
    while last != "done":
        t += delay
        times.append(t)
        status = _status(t, length, pending)
        delay = OURS_POLL if status != last else min(delay * OURS_FACTOR, OURS_MAX_POLL)
        last = status
    return times


def model_ours(length: float, pending: float = PENDING_SECONDS) -> tuple[int, float]:
    """(polls, notice delay) of our wait on a first sync (no history)."""
    times = ours_poll_times(length, pending)
    return len(times), times[-1] - length


def model_ours_history(length: float, pending: float = PENDING_SECONDS) -> tuple[int, float]:
    """(polls, notice delay) of our wait when the connection's usual sync takes ``length``:
    one poll at once, then one per 60 s until 0.9 x length, then the schedule above."""
    times = ours_poll_times(length, pending, OURS_QUIET_SHARE * length)
    return len(times), times[-1] - length


def model_official_blocking(
    length: float, wait: float = OFFICIAL_WAIT_SECONDS
) -> tuple[int, float]:
    """(polls, delay) of ``AirbyteHook.wait_for_job``: sleep ``wait`` s, then poll; repeat.
    polls = ceil(T / w), delay = ceil(T / w) * w - T."""
    polls = max(1, math.ceil(length / wait))
    return polls, polls * wait - length


def model_official_deferred(
    length: float, poll: float = OFFICIAL_TRIGGER_POLL
) -> tuple[int, float]:
    """(polls, delay) of ``AirbyteSyncTrigger``: poll at once, then every ``poll`` s.
    polls = ceil(T / P) + 1, delay = ceil(T / P) * P - T."""
    k = math.ceil(length / poll)
    return k + 1, k * poll - length


def worst_notice_delay(side: str, mode: str, length: float, history: bool = False) -> float:
    """The longest a job ending just after the last poll before ``length`` waits to be
    noticed: the poll interval in force at the end (full scale, unloaded schedule)."""
    if side == "ours":
        quiet = OURS_QUIET_SHARE * length if history else 0.0
        times = ours_poll_times(length, PENDING_SECONDS, quiet)
    else:
        step = OFFICIAL_WAIT_SECONDS if mode == "blocking" else OFFICIAL_TRIGGER_POLL
        first = step if mode == "blocking" else 0.0  # the blocking wait sleeps first
        times = [first + k * step for k in range(math.ceil(length / step) + 1)]
        times = [t for t in times if t < length] + [next(t for t in times if t >= length)]
    before = [t for t in times if t < length]
    return times[-1] - before[-1] if before else times[-1]


def model(side: str, mode: str, length: float, history: bool = False) -> dict[str, float]:
    """Modelled polls, requests and notice delay for one wait (full scale)."""
    # Our blocking wait ends in the task, which reads the connection's details for lineage
    # (one request); a deferred wait does that in execute_complete, which is not measured.
    lineage = 1 if side == "ours" and mode == "blocking" else 0
    if side == "ours" and history:
        polls, delay = model_ours_history(length)
        tokens = 1 if mode == "blocking" else 2
        # + trigger + token(s) + the one request for the connection's job history
        requests = polls + 2 + tokens + lineage
        worst = worst_notice_delay(side, mode, length, history)
        return {
            "polls": polls,
            "requests": requests,
            "notice_delay_s": round(delay, 2),
            "worst_notice_delay_s": round(worst, 2),
        }
    if side == "ours":
        polls, delay = model_ours(length)
    elif mode == "blocking":
        polls, delay = model_official_blocking(length)
    else:
        polls, delay = model_official_deferred(length)
    tokens = 1 if mode == "blocking" else 2  # the trigger builds its own client
    requests = polls + 1 + tokens + lineage
    worst = worst_notice_delay(side, mode, length)
    return {
        "polls": polls,
        "requests": requests,
        "notice_delay_s": round(delay, 2),
        "worst_notice_delay_s": round(worst, 2),
    }


# -- measurement -------------------------------------------------------------------------------
def observe_end(server: Any, earlier: set[int], length: float, ended: dict[str, float]) -> None:
    """Put the end of the new job (not one of ``earlier``) in ``ended["at"]``."""
    time.sleep(max(0.0, length - 0.3))
    jobs = []
    while not jobs:
        jobs = [j for j in server.jobs() if j["id"] not in earlier]
        time.sleep(0.005)
    ended["at"] = wait_job_terminal(server, jobs[0]["id"])


def wait(side: str, mode: str, operator: Any, scale: float) -> bool:
    """Wait for the operator's sync as ``mode`` does; whether it ended well."""
    if mode == "deferred":
        trigger, _ = defer(side, operator, scale=scale)
        return event_ok(side, run_trigger(trigger))
    try:
        operator.execute(fake_context())
    except Exception:
        return False
    return True


def measure_case(
    side: str, mode: str, minutes: float, scale: float, history: bool = False
) -> dict[str, Any]:
    """One real sync of ``minutes`` (scaled by ``scale``) waited for in ``mode``.

    With ``history``, an earlier sync of the same length runs first (not counted), as for
    a connection a DAG syncs on a schedule; our operator then polls from that history.
    """
    length = minutes * 60 / scale
    pending = PENDING_SECONDS / scale
    conn_id = f"bench_{mode}_{str(minutes).replace('.', '_')}_{int(history)}"
    with standin(pending_seconds=pending, running_seconds=length - pending) as server:
        use_connection(side, server, conn_id, **ours_extras(scale))
        earlier: set[int] = set()
        if history:
            make_operator(side, conn_id, CONNECTION_IDS[0], deferrable=False, scale=scale).execute(
                fake_context()
            )
            earlier = {j["id"] for j in server.jobs()}
        seen = len(server.requests())
        operator = make_operator(
            side, conn_id, CONNECTION_IDS[0], deferrable=mode == "deferred", scale=scale
        )
        ended: dict[str, float] = {}
        started = time.time()
        observer = threading.Thread(
            target=observe_end, args=(server, earlier, length, ended), daemon=True
        )
        observer.start()
        ok = wait(side, mode, operator, scale)
        noticed = time.time()
        observer.join(timeout=30)
        served = [r for r in server.requests()[seen:] if not r["path"].endswith("/health")]
    polls = sum(1 for r in served if r["method"] == "GET" and "/jobs/" in r["path"])
    delay = (noticed - ended["at"]) * scale if "at" in ended else float("nan")
    return {
        "side": side,
        "mode": mode,
        "history": history,
        "minutes": minutes,
        "scale": scale,
        "ok": ok,
        "requests": len(served),
        "polls": polls,
        "token_requests": sum(1 for r in served if r["path"].endswith("/applications/token")),
        "notice_delay_s": round(delay, 2),
        "wall_s": round(time.time() - started, 2),
        "model": model(side, mode, minutes * 60, history),
    }


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        scale={"type": float, "default": 10.0, "help": "time divisor (default 10)"},
        minutes={"type": float, "nargs": "+", "default": [2.0, 10.0]},
    )
    quiet_logs()
    scale, minutes = args.scale, args.minutes
    if args.quick:
        scale, minutes = 100.0, [1.0]
    histories = (False, True) if args.side == "ours" else (False,)
    cases = [(mode, m, h) for m in minutes for mode in MODES for h in histories]
    results: list[dict[str, Any]] = [{}] * len(cases)
    errors: list[BaseException] = []

    def run(index: int, mode: str, m: float, history: bool) -> None:
        try:
            results[index] = measure_case(args.side, mode, m, scale, history)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, *case)) for i, case in enumerate(cases)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    emit({"bench": "polling", "side": args.side, "cases": results}, args.json)


if __name__ == "__main__":
    main()
