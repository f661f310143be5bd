"""The arguments of a job, checked before any call: connection id, job type, the streams of
a per-stream job, a refresh's mode, timeouts and flags. A bad one is an ``AirbyteConfigError``
that says what is accepted (no retries, nothing started on Airbyte)."""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from plugins.airbyte_client.config import parse_bool
from plugins.airbyte_client.errors import AirbyteConfigError
from plugins.airbyte_client.models import JobType

OnConflict = Literal["attach", "fail"]
#: ``truncate``: remove the streams' records, then sync them from scratch; ``merge``: sync
#: them from scratch into the records kept (Airbyte's "Refresh your data" choices).
RefreshMode = Literal["truncate", "merge"]
REFRESH_MODES: tuple[RefreshMode, ...] = ("truncate", "merge")


#: Job types an operator may start.
STARTABLE_JOB_TYPES = (JobType.SYNC, JobType.RESET, JobType.CLEAR, JobType.REFRESH)
#: Job types that may name some streams only (the Configuration API's per-stream jobs).
PER_STREAM_JOB_TYPES = (JobType.RESET, JobType.CLEAR, JobType.REFRESH)
#: The longest wait accepted: a week.
MAX_TIMEOUT_MINUTES = 7 * 24 * 60


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


def validate_on_conflict(on_conflict: Any) -> OnConflict:
    if on_conflict not in ("attach", "fail"):
        raise AirbyteConfigError(f"on_conflict must be 'attach' or 'fail', not {on_conflict!r}")
    return on_conflict


def validate_flag(name: str, value: Any) -> bool:
    """A bool, or its rendered template: ``True``/``False``, ``true``/``false``, 1/0, yes/no."""
    try:
        return parse_bool(value)
    except ValueError:
        raise AirbyteConfigError(f"{name} {value!r} is not true or false.") from None


def validate_streams(streams: Any, job_type: JobType) -> tuple[str, ...]:
    """The stream names a reset, clear or refresh is limited to (empty: every stream), from a
    list or its rendered template (a JSON list, or names separated by commas)."""
    if streams in (None, "", [], ()):
        return ()
    if isinstance(streams, str):
        text = streams.strip()
        try:
            streams = json.loads(text) if text.startswith("[") else text.split(",")
        except ValueError:
            streams = None
    names = streams if isinstance(streams, list | tuple) else None
    if names is None or not all(isinstance(n, str) and n.strip() for n in names):
        raise AirbyteConfigError(
            f"streams {streams!r} is not a list of stream names, e.g. ['charges', 'invoices']."
        )
    if job_type not in PER_STREAM_JOB_TYPES:
        raise AirbyteConfigError(
            f"streams are for {', '.join(PER_STREAM_JOB_TYPES)} jobs; a {job_type} job syncs "
            "every stream of the connection."
        )
    return tuple(dict.fromkeys(n.strip() for n in names))


def validate_refresh_mode(mode: Any, job_type: JobType) -> RefreshMode | None:
    """A refresh's mode (None: the server's default); only a refresh has one."""
    if mode in (None, ""):
        return None
    value = str(mode).strip().lower()
    if value not in REFRESH_MODES:
        raise AirbyteConfigError(f"refresh_mode {mode!r} is not one of {', '.join(REFRESH_MODES)}.")
    if job_type is not JobType.REFRESH:
        raise AirbyteConfigError(f"refresh_mode is for refresh jobs, not {job_type} jobs.")
    return value  # type: ignore[return-value]


@dataclass(frozen=True)
class JobArguments:
    """An operator's arguments once rendered and checked."""

    connection_id: str
    job_type: JobType
    timeout_minutes: float
    wait: bool
    streams: tuple[str, ...] = ()
    refresh_mode: RefreshMode | None = None
