"""The sans-I/O vocabulary of the client: a ``Flow`` yields ``ApiRequest``s to send and
``Sleep``s to wait, and ``Requests`` sends one request or retries an idempotent one.

A driver (``plugins.airbyte_client.client``) sends each request and answers the flow with the
JSON body, or throws in the ``AirbyteError`` the answer meant. Retries are for idempotent
calls and transient errors only (unreachable, 5xx, 429), with exponential backoff and
jitter, never sooner than a ``Retry-After``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from plugins.airbyte_client.answers import answering
from plugins.airbyte_client.api.config import ConfigApi
from plugins.airbyte_client.api.public import PublicApi
from plugins.airbyte_client.config import AirbyteSettings, ApiFlavour
from plugins.airbyte_client.errors import TRANSIENT_ERRORS
from plugins.airbyte_client.models import AirbyteJob
from plugins.airbyte_client.transport import ApiRequest

T = TypeVar("T")


@dataclass(frozen=True)
class Sleep:
    """Pause the flow for ``seconds`` (``time.sleep`` or ``asyncio.sleep``)."""

    seconds: float


Flow = Generator[ApiRequest | Sleep, Any, T]


def api_for(flavour: ApiFlavour) -> ConfigApi | PublicApi:
    return ConfigApi() if flavour is ApiFlavour.CONFIG else PublicApi()


def backoff(settings: AirbyteSettings, attempt: int) -> float:
    """Seconds before retry ``attempt`` + 1: exponential from ``retry_min_wait``, one second of
    jitter, at most ``retry_max_wait``."""
    wait = settings.retry_min_wait * 2 ** (attempt - 1) + random.uniform(0, 1)
    return max(0.0, min(wait, settings.retry_max_wait))


class Requests:
    """One Airbyte server's API flavour, and the ways to ask it something within a flow."""

    def __init__(self, settings: AirbyteSettings, *, log: logging.Logger | None = None) -> None:
        self.settings = settings
        self.api = api_for(settings.flavour)
        self.log = log or logging.getLogger(__name__)

    @staticmethod
    def once(request: ApiRequest, parse: Callable[[Any, ApiRequest], T]) -> Flow[T]:
        """Send ``request`` once; its answer parsed with ``parse``."""
        body = yield request
        return parse(body, request)

    def retrying(self, attempt: Callable[[int], Flow[T]], what: str) -> Flow[T]:
        """Run ``attempt(number)`` until it does not raise a transient error, at most
        ``max_retries`` + 1 times, sleeping ``backoff`` in between."""
        attempts = self.settings.max_retries + 1
        for number in range(1, attempts + 1):
            try:
                return (yield from attempt(number))
            except TRANSIENT_ERRORS as exc:
                if number == attempts:
                    raise
                delay = max(backoff(self.settings, number), exc.retry_after or 0.0)
                self.log.warning(
                    "Airbyte %s failed (attempt=%d/%d): %s; retrying in %.2fs",
                    what,
                    number,
                    attempts,
                    exc,
                    delay,
                )
                yield Sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def retried(self, request: ApiRequest, parse: Callable[[Any, ApiRequest], T]) -> Flow[T]:
        """An idempotent call, retried on transient errors."""
        return (yield from self.retrying(lambda _: self.once(request, parse), request.endpoint))

    def job_answer(
        self, *, job_id: int | None = None, connection_id: str | None = None, polled: bool = False
    ) -> Callable[[Any, ApiRequest], AirbyteJob]:
        """The parser of a job answer (``polled``: to ``api.poll_job``) that must be about
        ``job_id`` / ``connection_id``."""
        parse_job = self.api.parse_polled_job if polled else self.api.parse_job

        def parse(body: Any, request: ApiRequest) -> AirbyteJob:
            job = parse_job(body, request)
            return answering(job, request, job_id=job_id, connection_id=connection_id)

        return parse
