"""The local Airflow environment shared by `make demo` and `make airflow`.

An Airflow home inside the repository (``.airflow/``, ignored by git) on SQLite, the repo's
``dags/`` as DAG folder and ``plugins/`` as plugins folder, the Connections, Variables and
OpenLineage settings of ``dev/airflow.env``, and deferrable operators by default: both have
something running triggers (``make airflow`` a triggerer, ``dag.test()`` runs them inline).
The entry points let the caller's ``AIRFLOW__*`` settings win (``caller_overrides``), e.g.
``AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE=False``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from string import Template

from dotenv import dotenv_values

REPO = Path(__file__).resolve().parents[1]
AIRFLOW_HOME = REPO / ".airflow"
ENV_FILE = REPO / "dev" / "airflow.env"


def airflow_environment(standin_url: str, airflow_home: Path = AIRFLOW_HOME) -> dict[str, str]:
    """Environment variables for an Airflow process talking to the stand-in at ``standin_url``."""
    placeholders = {"AIRBYTE_STANDIN_URL": standin_url, "AIRFLOW_HOME": str(airflow_home)}
    values = dotenv_values(ENV_FILE, interpolate=False)
    return {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        # airbyte_plugin.py: the API server learns the Airbyte task's extra links from it.
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True",
        "PYTHONPATH": str(REPO),
        **{
            key: Template(value).substitute(placeholders)
            for key, value in values.items()
            if value is not None
        },
    }


def caller_overrides(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The ``AIRFLOW__SECTION__KEY`` settings of ``environ`` (this process's by default)."""
    environ = dict(os.environ) if environ is None else environ
    return {key: value for key, value in environ.items() if key.startswith("AIRFLOW__")}


def apply(environment: dict[str, str]) -> None:
    """Put ``environment`` into this process (before Airflow is imported)."""
    os.environ.update(environment)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def migrate_metadata_db(environment: dict[str, str]) -> None:
    """Create or upgrade the SQLite metadata database of the local Airflow home."""
    Path(environment["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env={**os.environ, **environment},
        check=True,
        capture_output=True,
    )
