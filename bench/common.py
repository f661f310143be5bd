"""Shared plumbing of the benchmarks: sides, stand-ins, Airflow Connections, timing, output.

Every benchmark script runs ONE side per process (``--side ours`` in the project's venv,
``--side official`` in ``bench/.venv-official``, which holds apache-airflow-providers-airbyte)
and prints one JSON document; ``bench/run.py`` runs both sides and writes RESULTS.md.
``end_to_end`` is the exception: one Airflow runs every side's DAGs, started from
``bench/.venv-official`` (``--side both``), whose interpreter sees both sides' code.

Both sides talk to the same local stand-in (``dev/airbyte_standin``), always in a separate
process, over the Public API (``/api/public/v1``) with client-credentials auth: the only API
and auth the official provider speaks, so the two clients do the same HTTP work.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO_ROOT / "bench"
SIDES = ("ours", "official")

# An isolated Airflow home before anything imports Airflow (no DB is needed by the benches).
os.environ.setdefault("AIRFLOW_HOME", str(REPO_ROOT / ".airflow"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO_ROOT / "dags"))
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from dev.airbyte_standin.admin_client import RunningStandin  # noqa: E402
from dev.airbyte_standin.config import StandinConfig  # noqa: E402
from dev.airbyte_standin.seed import SEED  # noqa: E402
from dev.airbyte_standin.serving import run_standin_process  # noqa: E402
from dev.processes import wait_until  # noqa: E402

if TYPE_CHECKING:  # a type only: importing it loads include.connections (~0.9 s)
    from dev.airflow_components import AirflowServer

CONNECTION_IDS = [c.connection_id for c in SEED]
CONN_ID = "airbyte_default"
#: A line of Airflow's API server access log: ``... request finished ... method=GET
#: path=/api/v2/... query=... status_code=200``.
ACCESS_LINE = re.compile(r"request finished.*?\bmethod=(\w+).*?\bpath=(\S+).*?\bstatus_code=(\d+)")


def api_log_offset(airflow: AirflowServer) -> int:
    """Where Airflow's API server log ends now: pass it to ``api_requests_since``."""
    return airflow.log_files["api-server"].stat().st_size


def api_requests_since(airflow: AirflowServer, offset: int) -> list[tuple[str, str, int]]:
    """``(method, path, status)`` of every request Airflow's API server logged from
    ``offset`` on, up to a request of the bench's own, which marks the end exactly."""
    marker = f"bench-end-{uuid.uuid4().hex}"
    airflow.api("GET", f"/{marker}")  # a 404, logged with its path
    log = airflow.log_files["api-server"]

    def logged() -> str | None:
        with log.open("rb") as stream:
            stream.seek(offset)
            text = stream.read().decode(errors="replace")
        return text if marker in text else None

    text = wait_until(logged, timeout=30, interval=0.1, what="the end marker in the access log")
    requests = []
    for line in text.splitlines():
        if marker in line:
            break
        if found := ACCESS_LINE.search(line):
            requests.append((found[1], found[2], int(found[3])))
    return requests


def parse_args(description: str, **extra: Any) -> argparse.Namespace:
    """``--side``, ``--quick`` and ``--json`` (where to write the result) plus ``extra``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--side", choices=SIDES, default="ours")
    parser.add_argument("--quick", action="store_true", help="reduced, fast mode (smoke tests)")
    parser.add_argument("--json", type=Path, default=None, help="write the result here too")
    for name, kwargs in extra.items():
        parser.add_argument(f"--{name.replace('_', '-')}", **kwargs)
    return parser.parse_args()


def emit(result: dict[str, Any], path: Path | None) -> None:
    """Print the result as JSON (and write it to ``path``)."""
    text = json.dumps(result, indent=2, sort_keys=True, default=str)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(text)


@contextmanager
def standin(
    *, pending_seconds: float = 0.2, running_seconds: float = 1.0, tick_seconds: float = 0.005
) -> Iterator[RunningStandin]:
    """A stand-in in its own process (client-credentials auth, no contract validation)."""
    with tempfile.TemporaryDirectory(prefix="bench-standin-") as tmp:
        config = StandinConfig(
            auth="token",
            pending_seconds=pending_seconds,
            running_seconds=running_seconds,
            rows_per_stream=5,
            tick_seconds=tick_seconds,
            warehouse_url=f"sqlite:///{Path(tmp) / 'warehouse.db'}",
            # Validation costs the stand-in CPU per request; the test suite covers the contract.
            validate_contract=False,
            token_expires_in=24 * 3600,
            # Distinct credentials per stand-in: the official SDK caches tokens per process
            # keyed by client id, which would leak one stand-in's token to another.
            client_id=f"bench-{uuid.uuid4().hex[:12]}",
        )
        with run_standin_process(config) as server:
            yield server


def connection_env(side: str, server: RunningStandin, **extras: Any) -> str:
    """The ``AIRFLOW_CONN_*`` JSON for ``side`` against ``server`` (Public API, client creds).

    Ours takes its tunables as extras; the official hook reads host (server URL), login
    (client id), password (client secret), schema (token URL, default
    ``v1/applications/token``, resolved against the host) and extra ``timeout``.
    """
    cfg = server.config
    conn: dict[str, Any] = {
        "conn_type": "airbyte",
        "host": server.public_api_url,
        "login": cfg.client_id,
        "password": cfg.client_secret,
    }
    if side == "ours":
        conn["extra"] = {"auth_type": "client_credentials", **extras}
    else:
        conn["extra"] = {"timeout": 10}
    return json.dumps(conn)


def use_connection(
    side: str, server: RunningStandin, conn_id: str = CONN_ID, **extras: Any
) -> None:
    """Define the Airflow Connection ``conn_id`` for ``side`` as an environment variable."""
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = connection_env(side, server, **extras)


def quiet_logs() -> None:
    """Keep hook/operator log lines (one per poll on some sides) off the benchmark output."""
    import logging

    logging.disable(logging.WARNING)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def cpu_seconds() -> float:
    """User + system CPU time of this process."""
    t = os.times()
    return t.user + t.system


def rss_kib(field: str = "VmRSS") -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process in KiB, from /proc."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so a later VmHWM is this phase's peak."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


def wait_job_terminal(server: RunningStandin, job_id: int, timeout: float = 600.0) -> float:
    """Block until the stand-in reports ``job_id`` terminal; return ``time.time()`` then.

    Reads the admin API (not logged as an API request, so it costs the clients nothing).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for job in server.jobs():
            if job["id"] == job_id and job["status"] in ("succeeded", "failed", "cancelled"):
                return time.time()
        time.sleep(0.005)
    raise TimeoutError(f"job {job_id} did not end within {timeout} s")


class FakeTI:
    """The bits of a TaskInstance the operators touch in ``execute``."""

    stats_tags: dict[str, str] = {}  # read by ResumableJobMixin

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def fake_context() -> dict[str, Any]:
    return {"ti": FakeTI()}


def compile_ours() -> None:
    """Byte-compile our packages, as a deployment's first import does (``__pycache__``).

    pip compiled the official provider at install; without this, a machine that sets
    ``PYTHONDONTWRITEBYTECODE`` would charge our side a recompile in every fresh process.
    """
    import compileall

    for package in ("plugins", "include", "dags", "bench/dag_files"):
        compileall.compile_dir(REPO_ROOT / package, quiet=1)
