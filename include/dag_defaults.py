"""``default_args`` shared by the Airbyte DAGs: one owner, retries with a delay."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

OWNER = "data-platform"


def default_args(
    *, retries: int = 2, retry_delay: timedelta = timedelta(minutes=5)
) -> dict[str, Any]:
    """Task defaults: the owning team, ``retries`` with exponential backoff from ``retry_delay``.

    A retry of an Airbyte task resumes the job its first try started, or returns its result if
    it finished meanwhile (the job id is kept in the task state store), so retries are safe.
    """
    return {
        "owner": OWNER,
        "retries": retries,
        "retry_delay": retry_delay,
        "retry_exponential_backoff": True,
    }
