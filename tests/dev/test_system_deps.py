"""``dev/system_deps.sh``, the step of ``make test`` that brings Chromium and openssl.

Each test runs the script with a PATH of its own, holding a fake ``id`` that reports an
unprivileged user, so nothing is ever installed and the tests behave the same as root or not.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "dev" / "system_deps.sh"


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A PATH directory with an ``id`` that answers uid 1000."""
    directory = tmp_path / "bin"
    directory.mkdir()
    fake_id = directory / "id"
    fake_id.write_text("#!/bin/sh\necho 1000\n")
    fake_id.chmod(0o755)
    return directory


def run(bin_dir: Path, *pairs: str, **env: str) -> subprocess.CompletedProcess:
    bash = shutil.which("bash")
    assert bash
    return subprocess.run(
        [bash, str(SCRIPT), *pairs],
        capture_output=True,
        text=True,
        env={"PATH": str(bin_dir), **env},
        check=False,
    )


def test_nothing_to_do_when_every_command_is_on_path(bin_dir: Path) -> None:
    done = run(bin_dir, "id:coreutils")
    assert done.returncode == 0, done.stderr
    assert done.stdout == done.stderr == ""


def test_a_user_who_cannot_install_gets_the_one_command_to_run(bin_dir: Path) -> None:
    done = run(bin_dir, "id:coreutils", "chromium:chromium", "openssl:openssl")
    assert done.returncode == 1
    assert "sudo apt-get install -y chromium openssl" in done.stderr


def test_chromium_env_stands_in_for_the_chromium_command(bin_dir: Path, tmp_path: Path) -> None:
    browser = tmp_path / "chrome"
    browser.write_text("#!/bin/sh\n")
    browser.chmod(0o755)
    assert run(bin_dir, "chromium:chromium").returncode == 1
    assert run(bin_dir, "chromium:chromium", CHROMIUM=str(browser)).returncode == 0
