"""``AirbyteClient`` and ``AsyncAirbyteClient``: the flows of ``Operations`` driven over HTTP.

Both build their ``httpx`` client in ``transport.build_client`` with the one auth flow of
``auth.AirbyteAuth``; they differ only in how a request is sent and how a pause is waited
(``time.sleep`` or ``asyncio.sleep``). Each endpoint is one line on each side, as httpx pairs
``Client`` and ``AsyncClient``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any, ClassVar, NoReturn, Self, TypeVar

import httpx

from plugins.airbyte_client.answers import checked_json
from plugins.airbyte_client.arguments import OnConflict, RefreshMode
from plugins.airbyte_client.auth import AirbyteAuth
from plugins.airbyte_client.config import AirbyteSettings
from plugins.airbyte_client.core import Operations
from plugins.airbyte_client.errors import AirbyteError
from plugins.airbyte_client.flows import Flow, Sleep
from plugins.airbyte_client.models import (
    AirbyteConnection,
    AirbyteJob,
    ConnectionDetails,
    JobType,
)
from plugins.airbyte_client.transport import ApiRequest, asend, build_client, send
from plugins.airbyte_client.wait import Step

T = TypeVar("T")


class _Base:
    #: Which kind of ``httpx`` client ``transport.build_client`` makes for this driver.
    asynchronous: ClassVar[bool]

    def __init__(
        self,
        settings: AirbyteSettings,
        *,
        on_conflict: OnConflict = "attach",
        log: logging.Logger | None = None,
    ) -> None:
        self.settings = settings
        self.ops = Operations(settings, on_conflict=on_conflict, log=log)
        self.auth = AirbyteAuth(settings, token_as_form=self.ops.api.token_as_form)
        self.http = build_client(settings, self.auth, asynchronous=self.asynchronous)

    def _answer_of(self, request: ApiRequest, answer: Any) -> Any:
        return checked_json(answer, request, self.settings)


class AirbyteClient(_Base):
    """Blocking client of one Airbyte server (a worker, the CLI, the API server's plugins)."""

    asynchronous = False
    http: httpx.Client

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def run(self, flow: Flow[T]) -> T:
        """Drive ``flow`` to its result: send its requests, sleep its pauses."""
        try:
            step = next(flow)
            while True:
                if isinstance(step, Sleep):
                    time.sleep(step.seconds)
                    step = flow.send(None)
                    continue
                try:
                    request = step.to_httpx(self.settings.api_root)
                    timeout = step.total_timeout(self.settings)
                    answer = send(self.http, request, self.settings, total_timeout=timeout)
                    body = self._answer_of(step, answer)
                except AirbyteError as exc:
                    step = flow.throw(exc)
                else:
                    step = flow.send(body)
        except StopIteration as stop:
            return stop.value

    def submit_job(
        self,
        connection_id: str,
        job_type: JobType | str = "sync",
        *,
        streams: Sequence[str] | None = None,
        refresh_mode: RefreshMode | None = None,
    ) -> AirbyteJob:
        flow = self.ops.submit_job(
            connection_id, job_type, streams=streams, refresh_mode=refresh_mode
        )
        return self.run(flow)

    def get_job(self, job_id: int) -> AirbyteJob:
        return self.run(self.ops.get_job(job_id))

    def cancel_job(self, job_id: int) -> AirbyteJob:
        return self.run(self.ops.cancel_job(job_id))

    def recent_jobs(self, connection_id: str, job_type: JobType | str = "sync") -> list[AirbyteJob]:
        return self.run(self.ops.recent_jobs(connection_id, job_type))

    def find_running_job(
        self,
        connection_id: str,
        job_type: JobType | str = "sync",
        created_since: float | None = None,
    ) -> AirbyteJob | None:
        return self.run(self.ops.find_running_job(connection_id, job_type, created_since))

    def usual_duration(self, connection_id: str, job_type: JobType | str = "sync") -> float | None:
        return self.run(self.ops.usual_duration(connection_id, job_type))

    def quiet_until(self, job: AirbyteJob) -> float | None:
        return self.run(self.ops.quiet_until(job))

    def watch(self, job_id: int, deadline: float, quiet_until: float | None = None) -> Step:
        return self.run(self.ops.watch(job_id, deadline, quiet_until))

    def wait_for_job_completion(
        self, job_id: int, timeout_minutes: float = 60.0, **kw: Any
    ) -> AirbyteJob:
        return self.run(self.ops.wait_for_job_completion(job_id, timeout_minutes, **kw))

    def complete(self, job: AirbyteJob) -> AirbyteJob:
        return self.run(self.ops.complete(job))

    def abandon(self, job_id: int, error: AirbyteError, cancel: bool) -> NoReturn:
        self.run(self.ops.abandon(job_id, error, cancel))

    def handle_timeout(
        self,
        job_id: int,
        job: AirbyteJob | None,
        timeout_minutes: float,
        cancel: bool,
        last_error: AirbyteError | None = None,
    ) -> NoReturn:
        self.run(self.ops.handle_timeout(job_id, job, timeout_minutes, cancel, last_error))

    def get_connection_info(self, connection_id: str) -> AirbyteConnection:
        return self.run(self.ops.get_connection_info(connection_id))

    def get_connection_details(self, connection_id: str) -> ConnectionDetails:
        return self.run(self.ops.get_connection_details(connection_id))

    def list_connections(
        self, workspace_id: str | None = None, **kw: Any
    ) -> list[AirbyteConnection]:
        return self.run(self.ops.list_connections(workspace_id, **kw))

    def health(self) -> Any:
        return self.run(self.ops.health())


class AsyncAirbyteClient(_Base):
    """The same client on the event loop (the triggerer, the webhook receiver): never blocks it.

    Use it as ``async with AsyncAirbyteClient(settings) as client: await client.get_job(1)``.
    """

    asynchronous = True
    http: httpx.AsyncClient

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, *exc: type[BaseException] | BaseException | TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def run(self, flow: Flow[T]) -> T:
        """Drive ``flow`` to its result: send its requests, await its pauses."""
        try:
            step = next(flow)
            while True:
                if isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                    step = flow.send(None)
                    continue
                try:
                    request = step.to_httpx(self.settings.api_root)
                    timeout = step.total_timeout(self.settings)
                    answer = await asend(self.http, request, self.settings, total_timeout=timeout)
                    body = self._answer_of(step, answer)
                except AirbyteError as exc:
                    step = flow.throw(exc)
                else:
                    step = flow.send(body)
        except StopIteration as stop:
            return stop.value

    async def submit_job(
        self,
        connection_id: str,
        job_type: JobType | str = "sync",
        *,
        streams: Sequence[str] | None = None,
        refresh_mode: RefreshMode | None = None,
    ) -> AirbyteJob:
        flow = self.ops.submit_job(
            connection_id, job_type, streams=streams, refresh_mode=refresh_mode
        )
        return await self.run(flow)

    async def get_job(self, job_id: int) -> AirbyteJob:
        return await self.run(self.ops.get_job(job_id))

    async def cancel_job(self, job_id: int) -> AirbyteJob:
        return await self.run(self.ops.cancel_job(job_id))

    async def recent_jobs(
        self, connection_id: str, job_type: JobType | str = "sync"
    ) -> list[AirbyteJob]:
        return await self.run(self.ops.recent_jobs(connection_id, job_type))

    async def find_running_job(
        self,
        connection_id: str,
        job_type: JobType | str = "sync",
        created_since: float | None = None,
    ) -> AirbyteJob | None:
        return await self.run(self.ops.find_running_job(connection_id, job_type, created_since))

    async def usual_duration(
        self, connection_id: str, job_type: JobType | str = "sync"
    ) -> float | None:
        return await self.run(self.ops.usual_duration(connection_id, job_type))

    async def quiet_until(self, job: AirbyteJob) -> float | None:
        return await self.run(self.ops.quiet_until(job))

    async def watch(self, job_id: int, deadline: float, quiet_until: float | None = None) -> Step:
        return await self.run(self.ops.watch(job_id, deadline, quiet_until))

    async def wait_for_job_completion(
        self, job_id: int, timeout_minutes: float = 60.0, **kw: Any
    ) -> AirbyteJob:
        return await self.run(self.ops.wait_for_job_completion(job_id, timeout_minutes, **kw))

    async def complete(self, job: AirbyteJob) -> AirbyteJob:
        return await self.run(self.ops.complete(job))

    async def abandon(self, job_id: int, error: AirbyteError, cancel: bool) -> NoReturn:
        await self.run(self.ops.abandon(job_id, error, cancel))

    async def handle_timeout(
        self,
        job_id: int,
        job: AirbyteJob | None,
        timeout_minutes: float,
        cancel: bool,
        last_error: AirbyteError | None = None,
    ) -> NoReturn:
        await self.run(self.ops.handle_timeout(job_id, job, timeout_minutes, cancel, last_error))

    async def get_connection_info(self, connection_id: str) -> AirbyteConnection:
        return await self.run(self.ops.get_connection_info(connection_id))

    async def get_connection_details(self, connection_id: str) -> ConnectionDetails:
        return await self.run(self.ops.get_connection_details(connection_id))

    async def list_connections(
        self, workspace_id: str | None = None, **kw: Any
    ) -> list[AirbyteConnection]:
        return await self.run(self.ops.list_connections(workspace_id, **kw))

    async def health(self) -> Any:
        return await self.run(self.ops.health())
