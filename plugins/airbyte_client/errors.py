"""Exceptions raised by the Airbyte client, each with a message that says what to do next.

Errors that retrying the Airflow task cannot fix (bad configuration, bad credentials,
unknown ids) derive from ``AirflowFailException`` so the task fails without burning retries.
Messages never contain a password, client secret or token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

from airflow.sdk.exceptions import AirflowException, AirflowFailException

if TYPE_CHECKING:
    from plugins.airbyte_client.models import AirbyteJob

#: Attributes an error carries across the trigger boundary besides its message.
_EVENT_ATTRIBUTES = ("status_code", "endpoint", "url")


class AirbyteError(AirflowException):
    """Base class of every error raised by the Airbyte client."""

    #: Seconds the server asked us to wait before the next request (``Retry-After``).
    retry_after: float | None = None

    def to_event(self) -> dict[str, Any]:
        """The error as JSON for a trigger event; ``error_from_event`` rebuilds it."""
        # Instance attributes only: AirflowException's class attribute ``status_code`` (500)
        # would make an error that never had an HTTP status claim one.
        attributes = {a: self.__dict__[a] for a in _EVENT_ATTRIBUTES if a in self.__dict__}
        return {"error": type(self).__name__, "message": str(self), **attributes}

    def with_message(self, message: str) -> Self:
        """A copy of this error (same class and attributes) that says ``message``."""
        copy = type(self).__new__(type(self))
        Exception.__init__(copy, message)
        copy.__dict__.update(self.__dict__)
        return copy


def error_from_event(event: dict[str, Any]) -> AirbyteError:
    """The error a trigger reported, with its class: a 401 in the triggerer fails the task
    without retries exactly as it does in a worker."""
    classes = {cls.__name__: cls for cls in _subclasses(AirbyteError)}
    cls = classes.get(str(event.get("error")), AirbyteError)
    restored = cls.__new__(cls)
    Exception.__init__(restored, str(event.get("message", event)))
    restored.__dict__.update({a: event[a] for a in _EVENT_ATTRIBUTES if a in event})
    return restored


def _subclasses(cls: type) -> list[type]:
    return [cls, *(s for sub in cls.__subclasses__() for s in _subclasses(sub))]


class AirbyteConfigError(AirbyteError, AirflowFailException):
    """The Airflow Connection or Variables that configure Airbyte are missing or invalid."""


class AirbyteUnreachableError(AirbyteError):
    """The Airbyte server could not be reached (connection refused, DNS, timeouts)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"Connection refused or timed out talking to Airbyte at {url} ({reason}). "
            "Check that the Airbyte server is running "
            "(kubectl get pods -n integration -l app=airbyte) and that the Airflow Connection's "
            "host (or the Variable AIRBYTE_API_URL) points at it."
        )
        self.url = url


class AirbyteApiError(AirbyteError):
    """The Airbyte API answered with an HTTP error."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        endpoint: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.endpoint = endpoint
        if retry_after is not None:
            self.retry_after = retry_after


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


#: Errors worth another try: the request may succeed if sent again a little later.
TRANSIENT_ERRORS = (AirbyteUnreachableError, AirbyteTransientApiError)
