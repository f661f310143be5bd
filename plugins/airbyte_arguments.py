"""Checks of what a DAG author passes to the Airbyte client, before any API call.

Each check takes the value as given or as a template rendered it (``"30"``, ``"False"``,
``"None"``) and returns it typed, or raises ``AirbyteConfigError`` (which fails the task
without spending retries) with a message naming the argument and what it accepts.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any

from plugins.airbyte_errors import AirbyteConfigError
from plugins.airbyte_models import JobType

#: Job types an operator may start (``refresh`` is Airbyte's own, not started from here).
STARTABLE_JOB_TYPES = (JobType.SYNC, JobType.RESET, JobType.CLEAR)
#: The longest wait accepted: a week.
MAX_TIMEOUT_MINUTES = 7 * 24 * 60
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def validate_connection_id(connection_id: Any) -> str:
    """Airbyte connection ids are UUIDs; refuse anything else before calling the API."""
    text = str(connection_id or "").strip()
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise AirbyteConfigError(
            f"{text!r} is not an Airbyte connection id (a UUID such as "
            "'9e1a6d0c-2f6e-4c1a-9a55-0d9d5c2b7e11'). Copy it from the connection's URL in the "
            "Airbyte UI or from list_connections()."
        ) from None


def validate_job_type(job_type: Any) -> JobType:
    allowed = ", ".join(STARTABLE_JOB_TYPES)
    try:
        value = JobType(str(job_type).strip().lower())
    except ValueError:
        value = None
    if value not in STARTABLE_JOB_TYPES:
        raise AirbyteConfigError(f"job_type {job_type!r} is not one of {allowed}.")
    return value


def validate_timeout_minutes(timeout_minutes: Any) -> float:
    """A number of minutes, more than 0 and at most a week."""
    try:
        if isinstance(timeout_minutes, bool):
            raise ValueError(timeout_minutes)
        minutes = float(str(timeout_minutes).strip())
    except ValueError:
        minutes = math.nan
    if not (0 < minutes <= MAX_TIMEOUT_MINUTES):
        raise AirbyteConfigError(
            f"timeout_minutes {timeout_minutes!r} is not a number of minutes above 0 and at most "
            f"{MAX_TIMEOUT_MINUTES} (a week), e.g. 60. Nothing was started on Airbyte."
        )
    return minutes


def validate_flag(name: str, value: Any) -> bool:
    """A bool, or its rendered template: ``True``/``False``, ``true``/``false``, 1/0, yes/no."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise AirbyteConfigError(f"{name} {value!r} is not true or false.")


@dataclass(frozen=True)
class JobArguments:
    """An operator's arguments once rendered and checked."""

    connection_id: str
    job_type: JobType
    timeout_minutes: float
    wait: bool
