"""`make connections`: discovery (``python -m include.discovery``) against the local Airbyte
stand-in, with ``airbyte_default`` and the seed's Variables given as ``make airflow`` gives
them: ``AIRFLOW_CONN_*``/``AIRFLOW_VAR_*`` environment variables from ``dev/airflow.env``.

With ``AIRBYTE_STANDIN_URL`` set (the stand-in ``make airflow`` prints) it reads that one;
otherwise it starts a stand-in of its own for the run. Its arguments go to the command, e.g.
``make connections ARGS="--dry-run"``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

from dev.airbyte_standin.serving import quick_config, run_standin
from dev.environment import AIRFLOW_HOME, REPO, airflow_environment


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    url = os.environ.get("AIRBYTE_STANDIN_URL")
    with contextlib.ExitStack() as stack:
        if not url:
            AIRFLOW_HOME.mkdir(exist_ok=True)
            url = stack.enter_context(run_standin(quick_config(AIRFLOW_HOME))).url
            print(f"==> Airbyte stand-in at {url} (started for this run)", flush=True)
        environment = {**os.environ, **airflow_environment(url)}
        command = [sys.executable, "-m", "include.discovery", *args]
        return subprocess.run(command, env=environment, cwd=REPO, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
