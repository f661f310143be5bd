"""The reconciler's cost per run (``dags/airbyte_reconcile.py``), measured in the Airflow of
bench 7's ``pool`` part once its syncs have ended: every connection of the file has one
succeeded job of the last hour, announced by its task.

The DAG is triggered as an operator would run it by hand (every job of the last hour, none
left to settle), ``RUNS`` times in a row. Per run: the reconcile task's running time (Airflow's
``start_date`` to ``end_date``), the Airbyte requests the stand-in served meanwhile (nothing
else calls Airbyte then), the requests Airflow's API server logged for the reconciler (its
access log, less the bench's own polling of the run and the task runner's Execution API), and
what the run did (its XCom). A second run finds every job settled in the shared ledger.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from typing import Any
from urllib.parse import quote

from bench.common import api_log_offset, api_requests_since
from bench.report_sections import header, row

DAG_ID, TASK_ID = "airbyte_reconcile", "reconcile"
CONF = {"lookback_hours": 1, "settle_after_minutes": 0}
RUNS = 2
RUN_TIMEOUT_S = 900.0
#: Requests in the API server's log that are not the reconciler's: the bench unpausing and
#: polling its DAG, the task runner's Execution API.
_NOT_OURS = (f"/api/v2/dags/{DAG_ID}", "/execution/")


def _call(path: str) -> str:
    """An API path with its ids folded (``/api/v2/assets/{id}/...``), for counting by kind."""
    folded = re.sub(r"/\d+(?=/|$)", "/{id}", path)
    return re.sub(
        r"/dags/[^/]+/dagRuns/[^/]+/taskInstances/[^/]+", "/dags/…/taskInstances/…", folded
    )


def airflow_calls(requests: list[tuple[str, str, int]]) -> Counter[str]:
    """The reconciler's requests among those the API server logged, by method and path."""
    return Counter(
        f"{m} {_call(path)}" for m, path, _ in requests if not path.startswith(_NOT_OURS)
    )


def one_run(airflow: Any, standin: Any) -> dict[str, Any]:
    """Trigger one reconcile run, wait for it; what it cost."""
    offset, served = api_log_offset(airflow), len(standin.requests())
    run_id = quote(airflow.trigger(DAG_ID, CONF)["dag_run_id"], safe="")
    run = airflow.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT_S)
    ti = airflow._ok(airflow.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{TASK_ID}"))
    calls = airflow_calls(api_requests_since(airflow, offset))
    airbyte = standin.requests()[served:]
    path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{TASK_ID}/xcomEntries/return_value"
    done = airflow.api("GET", path)
    did = done.json()["value"] if done.status_code == 200 else {}
    started, ended = (datetime.fromisoformat(ti[k]) for k in ("start_date", "end_date"))
    return {
        "state": run["state"],
        "task_s": round((ended - started).total_seconds(), 2),
        "airbyte_requests": sum(1 for r in airbyte if not r["path"].endswith("/token")),
        "airbyte_token_requests": sum(1 for r in airbyte if r["path"].endswith("/token")),
        "airflow_requests": sum(calls.values()),
        "airflow_calls": dict(calls.most_common()),
        "events_created": len(did.get("events_created", {})),
        "unreadable": len(did.get("unreadable", [])),
    }


def measure(airflow: Any, standin: Any, connections: int) -> dict[str, Any]:
    """``RUNS`` reconcile runs in a row over a file of ``connections`` entries."""
    return {"connections": connections, "runs": [one_run(airflow, standin) for _ in range(RUNS)]}


def section(doc: dict[str, Any] | None) -> list[str]:
    """The reconciler's rows of section 7 (nothing when it was not measured)."""
    if not doc:
        return []
    out = [
        "",
        f"**Reconciler** (`airbyte_reconcile` over the same {doc['connections']} entries, "
        "the pool's with one succeeded job of the last hour each, announced by its task; triggered "
        f"with `{CONF}`, {len(doc['runs'])} runs in a row; Airflow requests from the API "
        "server's access log).",
        "",
        *header(
            "run", "state", "task s", "Airbyte requests (tokens)", "Airflow requests",
            "per connection (Airbyte + Airflow)", "events created", "unreadable entries",
        ),
    ]  # fmt: skip
    for i, r in enumerate(doc["runs"], 1):
        per = (r["airbyte_requests"] + r["airflow_requests"]) / max(1, doc["connections"])
        out.append(
            row(
                i, r["state"], f"{r['task_s']:.1f}",
                f"{r['airbyte_requests']} ({r['airbyte_token_requests']})",
                r["airflow_requests"], f"{per:.1f}", r["events_created"], r["unreadable"],
            )
        )  # fmt: skip
    if doc["runs"]:
        calls = ", ".join(f"`{c}` x{n}" for c, n in doc["runs"][-1]["airflow_calls"].items())
        out += ["", f"Airflow requests of the last run by kind: {calls}."]
    return out
