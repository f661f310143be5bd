"""Exceptions raised by the Airbyte client, each with a message that says what to do next.

Errors that retrying the Airflow task cannot fix (bad configuration, bad credentials,
unknown ids) derive from ``AirflowFailException`` so the task fails without burning retries.
Messages never contain a password, client secret or token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk.exceptions import AirflowException, AirflowFailException

if TYPE_CHECKING:
    from plugins.airbyte_models import AirbyteJob


class AirbyteError(AirflowException):
    """Base class of every error raised by the Airbyte client."""


class AirbyteConfigError(AirbyteError, AirflowFailException):
    """The Airflow Connection or Variables that configure Airbyte are missing or invalid."""


class AirbyteUnreachableError(AirbyteError):
    """The Airbyte server could not be reached (connection refused, DNS, timeouts)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"Connection refused or timed out talking to Airbyte at {url} ({reason}). "
            "Check that the Airbyte server is running "
            "(kubectl get pods -n integration -l app=airbyte) and that AIRBYTE_API_URL "
            "or the 'airbyte_default' Connection host points at it."
        )
        self.url = url


class AirbyteApiError(AirbyteError):
    """The Airbyte API answered with an HTTP error."""

    def __init__(self, message: str, *, status_code: int | None = None, endpoint: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.endpoint = endpoint


class AirbyteTransientApiError(AirbyteApiError):
    """A 5xx or 429 answer that persisted through every retry."""


class AirbyteAuthError(AirbyteApiError, AirflowFailException):
    """Airbyte refused the credentials (401) or the token exchange failed."""


class AirbytePermissionError(AirbyteApiError, AirflowFailException):
    """The credentials are valid but not allowed to do this (403)."""


class AirbyteNotFoundError(AirbyteApiError, AirflowFailException):
    """The connection or job id does not exist on this Airbyte server (404)."""


class AirbyteRequestError(AirbyteApiError, AirflowFailException):
    """Airbyte rejected the request as invalid (400/422)."""


class AirbyteConflictError(AirbyteApiError):
    """A sync is already running on the connection (409) and attaching to it was not allowed."""


class AirbyteResponseError(AirbyteApiError):
    """Airbyte answered with a body that is not what the API contract promises."""


class AirbyteJobError(AirbyteError):
    """Base class of errors about a job's outcome; carries the last known job."""

    def __init__(self, message: str, job: AirbyteJob) -> None:
        super().__init__(message)
        self.job = job


class AirbyteJobFailedError(AirbyteJobError):
    """The job ended in ``failed``."""


class AirbyteJobCancelledError(AirbyteJobError):
    """The job ended in ``cancelled`` (by a user, another system or a timeout)."""


class AirbyteJobTimeoutError(AirbyteJobError):
    """The job did not reach a terminal state before the deadline."""


class AirbyteJobStuckPendingError(AirbyteJobTimeoutError):
    """The job never left ``pending``/``queued`` before the deadline."""
