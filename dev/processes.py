"""Plumbing for the local processes and servers the dev tooling starts.

``stop_process_groups`` is the one way anything in ``dev/`` stops a process it started in its
own group (the stand-in, the Airflow components, Redis): SIGTERM to the group, a bounded wait,
then SIGKILL. Also ``wait_until`` (poll a condition), ``bound_socket`` and ``free_port``
(loopback ports) and ``tail`` (the end of a log, for error messages).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

#: After SIGKILL: how long to wait for each group leader to be reaped, then for the members
#: it orphaned (reaped by init) to be gone.
REAP_TIMEOUT = 10.0
ORPHAN_TIMEOUT = 5.0


def wait_until(
    predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02, what: str = ""
) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned), or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s: {what or predicate!r}")
        time.sleep(interval)


def bound_socket(host: str = "127.0.0.1") -> socket.socket:
    """A TCP socket bound to a free port of ``host`` (SO_REUSEADDR), for a server to listen on."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now (may race with other processes; fine on loopback in tests)."""
    with bound_socket(host) as sock:
        return sock.getsockname()[1]


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file ("" if it cannot be read)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def group_alive(process: subprocess.Popen) -> bool:
    """Whether any process of ``process``'s group (its pid is the group id) still exists."""
    process.poll()  # reap the group leader once it exits
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - only other users' processes
        return False
    return True


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def stop_process_groups(
    processes: Iterable[subprocess.Popen],
    timeout: float = 10.0,
    first_signal: int = signal.SIGTERM,
) -> None:
    """Stop the process group of each of ``processes`` (started with ``start_new_session``).

    ``first_signal`` (SIGTERM) to every group, even one whose leader already exited; wait up
    to ``timeout`` for all of them to be gone, then SIGKILL what is left. Returns once the
    leaders are reaped and their groups are gone (each step bounded). Idempotent.
    """
    processes = list(processes)
    for process in processes:
        _signal_group(process, first_signal)
    deadline = time.monotonic() + timeout
    while any(group_alive(p) for p in processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    for process in processes:
        if group_alive(process):
            _signal_group(process, signal.SIGKILL)
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=REAP_TIMEOUT)
    # Group members orphaned by the leader are reaped by init; give them a moment.
    with contextlib.suppress(TimeoutError):
        wait_until(
            lambda: not any(group_alive(p) for p in processes),
            timeout=ORPHAN_TIMEOUT,
            interval=0.1,
            what="process groups gone",
        )
