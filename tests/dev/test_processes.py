"""``dev.processes`` on real process groups: SIGTERM, a bounded wait, then SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dev.processes import free_port, group_alive, stop_process_groups, tail, wait_until

#: Ignores SIGTERM, says so, then sleeps.
STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
    " print('ready', flush=True); time.sleep(60)"
)
#: Starts a STUBBORN child in its group, prints the child's pid once it is ready, then sleeps
#: (SIGTERM ends it, the child stays).
PARENT = (
    "import subprocess, sys, time;"
    f" child = subprocess.Popen([sys.executable, '-c', {STUBBORN!r}], stdout=subprocess.PIPE);"
    " child.stdout.readline(); print(child.pid, flush=True); time.sleep(60)"
)


@pytest.fixture
def start_group() -> Iterator[Callable[[str], tuple[subprocess.Popen, str]]]:
    """``start(code)``: ``python -c code`` in a new process group; returns it and its first
    line of output. Whatever a failed test leaves is SIGKILLed."""
    started: list[subprocess.Popen] = []

    def start(code: str) -> tuple[subprocess.Popen, str]:
        process = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        started.append(process)
        return process, process.stdout.readline().strip()

    yield start
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        process.stdout.close()


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_group_that_ignores_sigterm_is_sigkilled_after_the_timeout(start_group):
    process, ready = start_group(STUBBORN)
    assert ready == "ready"
    started = time.monotonic()
    stop_process_groups([process], timeout=0.5)
    elapsed = time.monotonic() - started
    assert process.returncode == -signal.SIGKILL
    assert not group_alive(process)
    assert 0.5 <= elapsed < 5


def test_a_group_that_obeys_sigterm_stops_without_waiting_out_the_timeout(start_group):
    process, _ = start_group("import time; print('ready', flush=True); time.sleep(60)")
    started = time.monotonic()
    stop_process_groups([process], timeout=30)
    assert process.returncode == -signal.SIGTERM
    assert time.monotonic() - started < 5


def test_a_stubborn_member_of_the_group_dies_with_its_leader(start_group):
    process, child = start_group(PARENT)
    stop_process_groups([process], timeout=0.5)
    assert process.returncode == -signal.SIGTERM  # the leader obeyed; its child did not
    assert gone(int(child))
    assert not group_alive(process)


def test_a_group_whose_leader_already_exited_is_still_stopped(start_group):
    process, child = start_group(PARENT)
    process.kill()
    process.wait(timeout=10)
    assert group_alive(process)  # the child lives on in the group
    stop_process_groups([process], timeout=0.5)
    assert gone(int(child))
    assert not group_alive(process)


def test_several_groups_share_one_wait_and_stopping_again_is_harmless(start_group):
    first, _ = start_group(STUBBORN)
    second, _ = start_group(STUBBORN)
    started = time.monotonic()
    stop_process_groups([first, second], timeout=0.5)
    assert time.monotonic() - started < 5
    assert (first.returncode, second.returncode) == (-signal.SIGKILL, -signal.SIGKILL)
    stop_process_groups([first, second], timeout=0.5)


def test_the_first_signal_can_be_sigkill(start_group):
    process, _ = start_group("import time; print('ready', flush=True); time.sleep(60)")
    stop_process_groups([process], first_signal=signal.SIGKILL)
    assert process.returncode == -signal.SIGKILL


def test_wait_until_returns_the_truthy_result_or_times_out():
    values = iter([0, None, "done"])
    assert wait_until(lambda: next(values), interval=0) == "done"
    with pytest.raises(TimeoutError, match="never"):
        wait_until(lambda: False, timeout=0.05, what="never")


def test_free_port_and_tail(tmp_path: Path):
    assert 0 < free_port() < 65536
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(50)))
    assert tail(log, 2) == "line 48\nline 49"
    assert tail(tmp_path / "missing.log") == ""
