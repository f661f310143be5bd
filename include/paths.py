"""Filesystem locations inside the repository, wherever it is checked out or git-synced."""

from pathlib import Path

INCLUDE_DIR = Path(__file__).resolve().parent
SQL_DIR = INCLUDE_DIR / "sql"
GX_DIR = INCLUDE_DIR / "gx"
