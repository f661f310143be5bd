"""`make demo`: start the local Airbyte stand-in and run real syncs through the AirbyteHook.

Everything runs on embedded defaults: the stand-in listens on a free loopback port with
basic auth, the hook is configured by an ``AIRFLOW_CONN_AIRBYTE_DEFAULT`` environment
variable (as a secrets backend or External Secrets would provide it), and rows land in a
SQLite warehouse under ``.airflow/``. Prints one line per step and a summary table.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AIRFLOW_HOME = REPO / ".airflow"
WAREHOUSE = AIRFLOW_HOME / "warehouse.db"


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def main() -> int:
    AIRFLOW_HOME.mkdir(exist_ok=True)
    os.environ.setdefault("AIRFLOW_HOME", str(AIRFLOW_HOME))

    from dev.airbyte_standin.config import StandinConfig
    from dev.airbyte_standin.seed import CONNECTIONS_BY_ID
    from dev.airbyte_standin.testing import run_standin

    config = StandinConfig(
        port=0, pending_seconds=0.5, running_seconds=2.0, warehouse_url=f"sqlite:///{WAREHOUSE}"
    )
    step("Starting the local Airbyte stand-in (basic auth airbyte/password)")
    with run_standin(config) as standin:
        step(f"Airbyte stand-in at {standin.url}; warehouse {WAREHOUSE.relative_to(REPO)}")
        os.environ["AIRFLOW_CONN_AIRBYTE_DEFAULT"] = json.dumps(
            {
                "conn_type": "airbyte",
                "host": standin.url,
                "login": config.username,
                "password": config.password,
                "extra": {"poll_interval": 0.5, "max_poll_interval": 2},
            }
        )
        from plugins.airbyte_hook import AirbyteHook

        hook = AirbyteHook()
        connections = hook.list_connections()
        step(f"Airbyte lists {len(connections)} connections")
        jobs = []
        for connection in connections:
            job = hook.trigger_sync(connection.connection_id)
            step(f"Triggered sync of {connection.name!r}: job {job.job_id} ({job.status})")
            jobs.append((connection, job))
        results = []
        for connection, job in jobs:
            started = time.monotonic()
            done = hook.wait_for_job_completion(job.job_id, timeout_minutes=2)
            step(f"Job {done.job_id} {done.status} after {time.monotonic() - started:.1f}s wait")
            results.append((connection, done))
        with sqlite3.connect(WAREHOUSE) as db:
            tables = {
                t: db.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0]
                for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
    step("Stand-in stopped")
    print()
    row = "{:<24} {:>4} {:<10} {:>6} {:>8}  {}"
    print(row.format("connection", "job", "status", "rows", "bytes", "tables (total rows)"))
    for connection, job in results:
        seeded = CONNECTIONS_BY_ID[connection.connection_id]
        counts = ", ".join(f"{t}={tables.get(t, 0)}" for t in seeded.table_names)
        print(row.format(connection.name, job.job_id, job.status, job.rows, job.bytes, counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
