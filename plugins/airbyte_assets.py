"""What an Airflow asset event says about the Airbyte sync behind it.

Both writers of sync asset events use these: the webhook receiver (Airbyte's notification,
``origin="airbyte_notification"``) and the zero-poll watchdog (``origin="watchdog"``). The
job id in ``extra`` is what lets each see that the other already wrote the event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plugins.airbyte_models import AirbyteJob


def job_event_extra(job: AirbyteJob, origin: str) -> dict[str, Any]:
    """``extra`` of the asset events for the succeeded sync ``job``."""
    return {
        "job_id": job.job_id,
        "connection_id": job.connection_id,
        "records": job.rows,
        "bytes": job.bytes,
        "duration_seconds": job.duration_seconds,
        "origin": origin,
    }


def names_job(extra: Mapping[str, Any] | None, job_id: int) -> bool:
    """Whether an asset event's ``extra`` was written for Airbyte job ``job_id``."""
    return isinstance(extra, Mapping) and str(extra.get("job_id")) == str(job_id)
