"""Filesystem locations inside the repository, wherever it is checked out or git-synced."""

from pathlib import Path

INCLUDE_DIR = Path(__file__).resolve().parent
REPO_ROOT = INCLUDE_DIR.parent
SQL_DIR = INCLUDE_DIR / "sql"
GX_DIR = INCLUDE_DIR / "gx"
#: The connections file (``include.connections``), at the root so it is easy to find.
CONNECTIONS_FILE = REPO_ROOT / "airbyte_connections.yaml"
