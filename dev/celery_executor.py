"""CeleryExecutor for the local Airflow: what the Helm values deploy, on loopback.

``run_airflow(..., executor="celery")`` (``dev.airflow_settings.EXECUTORS``) sets
``CELERY_SETTINGS`` and starts one ``airflow celery worker`` next to the Airflow 3
components. The broker is a Redis from Debian's ``redis-server``: ``run_redis`` starts one on
a free loopback port (no persistence, its own process group, stopped with
``dev.processes.stop_process_groups``) and its ``settings`` point Airflow at it. The Celery
result backend is the Airflow metadata database (the provider's default: ``db+`` and
``[database] sql_alchemy_conn``).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dev.processes import free_port, stop_process_groups

CELERY_SETTINGS = {
    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
    "AIRFLOW__CELERY__WORKER_CONCURRENCY": "4",
}
#: ``airflow celery worker``: task logs are read from the shared local folder (no serve-logs
#: port), and there are no other workers to synchronise with at start-up.
CELERY_WORKER_ARGS = [
    "celery",
    "worker",
    "--skip-serve-logs",
    "--without-mingle",
    "--without-gossip",
]
REDIS_START_TIMEOUT = 20.0
REDIS_STOP_TIMEOUT = 10.0
REDIS_INSTALL_HINT = "make system-deps  (as root; or: apt-get install redis-server)"


class RedisError(RuntimeError):
    """redis-server is not installed, or did not start."""


@dataclass(frozen=True)
class RedisServer:
    port: int
    process: subprocess.Popen
    log_file: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def settings(self) -> dict[str, str]:
        """The Airflow settings that make this Redis the Celery broker."""
        return {"AIRFLOW__CELERY__BROKER_URL": self.url}

    def ping(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn,
        ):
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
        return False


@contextlib.contextmanager
def run_redis(directory: Path) -> Iterator[RedisServer]:
    """``redis-server`` on a free loopback port, logging to ``directory/redis.log``."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisError(f"redis-server is not installed; run: {REDIS_INSTALL_HINT}")
    directory.mkdir(parents=True, exist_ok=True)
    port, log_file = free_port(), directory / "redis.log"
    args = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly"]
    args += ["no", "--dir", str(directory), "--logfile", str(log_file)]
    process = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    redis = RedisServer(port=port, process=process, log_file=log_file)
    try:
        deadline = time.monotonic() + REDIS_START_TIMEOUT
        while not redis.ping():
            if process.poll() is not None or time.monotonic() > deadline:
                output = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
                raise RedisError(f"redis-server did not start on port {port}:\n{output}")
            time.sleep(0.05)
        yield redis
    finally:
        stop_process_groups([process], timeout=REDIS_STOP_TIMEOUT)
