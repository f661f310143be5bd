"""Repository hygiene that CI enforces: ruff is clean and nothing generated is committed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GENERATED = (
    ".venv/",
    ".airflow/",
    "__pycache__/",
    ".pyc",
    ".db",
    ".sqlite",
    ".log",
    "test-artifacts/",
)


def test_ruff_is_clean():
    ruff = Path(sys.executable).with_name("ruff")
    check = subprocess.run([ruff, "check", "."], cwd=REPO, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    fmt = subprocess.run([ruff, "format", "--check", "."], cwd=REPO, capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout


def test_nothing_generated_is_committed():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert tracked
    assert [f for f in tracked if any(g in f for g in GENERATED)] == []
