"""What an Airflow asset event says about the Airbyte sync behind it, whoever emitted it.

Three writers put a sync's facts on asset events: the operator's outlets
(``plugins.airbyte_lineage``), the webhook receiver (Airbyte's notification,
``origin="airbyte_notification"``) and the zero-poll watchdog (``origin="watchdog"``). All
use ``job_extra``'s keys, so ``airbyte_job_id`` lets each see that another already announced
the job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plugins.airbyte_lineage import job_extra
from plugins.airbyte_models import AirbyteJob

JOB_ID_KEY = "airbyte_job_id"


def job_event_extra(job: AirbyteJob, origin: str) -> dict[str, Any]:
    """``extra`` of the asset events for the finished ``job``, announced by ``origin``."""
    return {**job_extra(job), "duration_seconds": job.duration_seconds, "origin": origin}


def names_job(extra: Mapping[str, Any] | None, job_id: int) -> bool:
    """Whether an asset event's ``extra`` was written for Airbyte job ``job_id``."""
    return isinstance(extra, Mapping) and str(extra.get(JOB_ID_KEY)) == str(job_id)
