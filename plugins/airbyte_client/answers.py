"""What Airbyte's answers mean: an error status as the matching ``AirbyteError`` with what to
check, a body as JSON, each naming the endpoint and what the request was about; a job answer
checked against the question it answers."""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime
from typing import Any

from plugins.airbyte_client.config import AirbyteSettings
from plugins.airbyte_client.errors import (
    AirbyteApiError,
    AirbyteAuthError,
    AirbyteConflictError,
    AirbyteNotFoundError,
    AirbytePermissionError,
    AirbyteRequestError,
    AirbyteResponseError,
    AirbyteTransientApiError,
)
from plugins.airbyte_client.models import AirbyteJob
from plugins.airbyte_client.transport import Answer, ApiRequest


def _json(body: bytes) -> Any:
    return json.loads(body.decode("utf-8"))


def checked_json(answer: Answer, request: ApiRequest, settings: AirbyteSettings) -> Any:
    """The JSON body of a successful answer; an error named after the endpoint otherwise."""
    raise_for_status(answer, request, settings)
    endpoint = request.endpoint
    try:
        return _json(answer.body)
    except ValueError:
        raise AirbyteResponseError(
            f"Airbyte answered {endpoint} with HTTP {answer.status_code} and a body that is not "
            f"JSON ({_shape(answer.body)}). Check that the API URL points at the Airbyte server "
            "API and not at its web app or a proxy error page.",
            status_code=answer.status_code,
            endpoint=endpoint,
        ) from None


def _shape(body: bytes) -> str:
    if not body.strip():
        return "empty"
    return "HTML" if body.lstrip()[:1] == b"<" else f"{len(body)} bytes"


def _error_detail(answer: Answer) -> str:
    """The server's own explanation, from a problem body or a config-API error body."""
    try:
        body = _json(answer.body)
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    text = body.get("detail") or body.get("message") or body.get("title")
    return f" Airbyte says: {str(text)[:300]}" if text else ""


def _not_found(request: ApiRequest, api_root: str) -> str:
    """What a 404 means for the thing ``request`` is about, and where to look."""
    subject = request.subject
    if subject.startswith("job "):
        return (
            f"Airbyte has no {subject} on {api_root}. A job id is only valid on the Airbyte "
            "instance that ran it: check that the Connection points at that instance, and the "
            "id in the connection's Job History in the Airbyte UI."
        )
    if subject.startswith("connection "):
        return (
            f"Airbyte has no {subject} on {api_root}. Check the connection id (Airbyte UI URL, "
            "or list them with the hook's list_connections())."
        )
    return f"no such resource on {api_root}. Check the Connection's host and API flavour."


def retry_after(answer: Answer, settings: AirbyteSettings) -> float | None:
    """The ``Retry-After`` of an answer in seconds (delta or HTTP date), at most
    ``retry_max_wait``; None when absent or unreadable."""
    value = answer.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    if not seconds >= 0:  # negative or NaN
        return None
    return min(seconds, settings.retry_max_wait)


def raise_for_status(answer: Answer, request: ApiRequest, settings: AirbyteSettings) -> None:
    """Raise the ``AirbyteError`` that matches an error status, with what to check."""
    status, endpoint = answer.status_code, request.endpoint
    if status < 400:
        return
    detail = _error_detail(answer) if status != 401 else ""
    kwargs: dict[str, Any] = {"status_code": status, "endpoint": endpoint}
    if status == 401:
        raise AirbyteAuthError(
            f"Authentication failed: Airbyte answered 401 to {endpoint}. Check the credentials "
            f"in {settings.source} (auth_type={settings.auth_type}), e.g. AIRBYTE_API_USERNAME "
            "and AIRBYTE_API_PASSWORD in External Secrets.",
            **kwargs,
        )
    if status == 403:
        raise AirbytePermissionError(
            f"Airbyte answered 403 to {endpoint}: the credentials in {settings.source} may not "
            f"do this.{detail}",
            **kwargs,
        )
    if status == 404:
        raise AirbyteNotFoundError(
            f"Airbyte answered 404 to {endpoint}: {_not_found(request, settings.api_root)}{detail}",
            **kwargs,
        )
    error: type[AirbyteApiError] = AirbyteApiError
    meaning = ""
    if status == 409:
        error, meaning = AirbyteConflictError, ": a job is already running on this connection"
    elif status == 429 or status >= 500:
        error = AirbyteTransientApiError
        kwargs["retry_after"] = retry_after(answer, settings)
    elif status in (400, 422):
        error, meaning = AirbyteRequestError, ", rejecting it as invalid"
    raise error(f"Airbyte answered HTTP {status} to {endpoint}{meaning}.{detail}", **kwargs)


def answering(
    job: AirbyteJob,
    request: ApiRequest,
    *,
    job_id: int | None = None,
    connection_id: str | None = None,
) -> AirbyteJob:
    """``job`` if it is what ``request`` asked about (that job id, that connection); an
    unreadable answer (``AirbyteResponseError``, naming both) otherwise: a proxy or cache that
    answers about another job must not make another job's outcome ours."""
    wrong_job = job_id is not None and job.job_id != job_id
    wrong_connection = connection_id is not None and job.connection_id != connection_id
    if not (wrong_job or wrong_connection):
        return job
    asked = f"job {job_id}" if job_id is not None else f"connection {connection_id}"
    raise AirbyteResponseError(
        f"Airbyte answered {request.endpoint} about {asked} with job {job.job_id} of "
        f"connection {job.connection_id}: an answer to another question (a caching proxy or "
        "a load balancer mixing answers?). It was not taken as ours.",
        endpoint=request.endpoint,
    )
