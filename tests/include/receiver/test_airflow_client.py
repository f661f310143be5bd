"""``AirflowClient`` against the session's real Airflow (what it asks, counted on the wire) and
against a server that drops a kept-alive connection after a 500, as Airflow's uvicorn does."""

from __future__ import annotations

import asyncio
import json
import socket
import socketserver
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from include.assets import connection_asset
from include.connections import load_connections
from include.receiver import airflow_client
from include.receiver.airflow_client import AirflowClient, AirflowUnavailable
from tests.airflow_fixtures import TIMEOUT, SharedAirflow
from tests.include.receiver.conftest import receiver_settings

pytestmark = pytest.mark.timeout(TIMEOUT)
#: Declared by ``airbyte_quality__stripe`` (scheduled on it).
DECLARED = connection_asset(load_connections().entry("stripe")).uri
UNDECLARED = "airbyte://no_dag_declares_this"


class Counting(httpx.AsyncBaseTransport):
    """Real HTTP, with the path of every request kept."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_a_burst_asks_an_assets_id_once_and_an_undeclared_asset_again_after_a_while(
    shared: SharedAirflow, monkeypatch
):
    transport = Counting()

    async def lookups() -> tuple[list[int | None], list[int | None], int | None]:
        client = AirflowClient(receiver_settings(shared.airflow.url), transport=transport)
        try:
            burst = await asyncio.gather(*(client.asset_id(DECLARED) for _ in range(8)))
            undeclared = [await client.asset_id(UNDECLARED) for _ in range(3)]
            monkeypatch.setattr(airflow_client, "UNDECLARED_SECONDS", 0.0)  # "a while" later
            return burst, undeclared, await client.asset_id(UNDECLARED)
        finally:
            await client.aclose()

    burst, undeclared, later = asyncio.run(lookups())

    assert isinstance(burst[0], int)
    assert burst == [burst[0]] * 8
    assert undeclared == [None] * 3
    assert later is None
    # The declared asset once for the burst; the undeclared one once, then once more later.
    assert transport.paths.count("/api/v2/assets") == 3


class UvicornAfter500(socketserver.ThreadingTCPServer):
    """HTTP/1.1 on loopback, keep-alive. The first ``GET /api/v2/assets/events`` is answered
    500, and the connection is then reset as soon as its next request arrives, unread (uvicorn
    closes the connection once the app's exception is logged). Every other request gets a JSON
    answer. ``seen``: (connection number, request line) of every request read."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[tuple[int, str]] = []
        self.failed = False
        self.connections = 0
        self.lock = threading.Lock()

    def answer(self, line: str) -> tuple[int, dict]:
        with self.lock:
            if line.startswith("GET /api/v2/assets/events") and not self.failed:
                self.failed = True
                return 500, {"detail": "Internal Server Error"}
        if line.startswith("POST /auth/token"):
            return 201, {"access_token": "header.eyJleHAiOiA0MTAyNDQ0ODAwfQ.signature"}
        if line.startswith("POST"):
            return 201, {"id": 1}
        return 200, {"asset_events": []}


class _Handler(socketserver.StreamRequestHandler):
    server: UvicornAfter500

    def handle(self) -> None:
        with self.server.lock:
            self.server.connections += 1
            number = self.server.connections
        while line := self.rfile.readline().decode().strip():
            headers = {}
            while header := self.rfile.readline().decode().strip():
                name, _, value = header.partition(":")
                headers[name.lower()] = value.strip()
            self.rfile.read(int(headers.get("content-length", 0)))
            self.server.seen.append((number, line))
            status, body = self.server.answer(line)
            payload = json.dumps(body).encode()
            self.wfile.write(
                f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
                f"content-length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            if status == 500:  # wait for the next request on this connection, then reset it
                self.connection.recv(1, socket.MSG_PEEK)
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.server.seen.append((number, "reset"))
                return


@contextmanager
def uvicorn_after_500() -> Iterator[tuple[AirflowClient, UvicornAfter500]]:
    server = UvicornAfter500()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        yield AirflowClient(receiver_settings(url)), server
    finally:
        server.shutdown()
        server.server_close()


def test_a_read_on_a_connection_dropped_after_a_500_is_asked_again_on_a_new_one():
    async def twice(client: AirflowClient) -> list[dict]:
        try:
            with pytest.raises(AirflowUnavailable, match="answered 500"):
                await client.asset_events(1)
            return await client.asset_events(1)
        finally:
            await client.aclose()

    with uvicorn_after_500() as (client, server):
        assert asyncio.run(twice(client)) == []
    # The second read went on the first's connection, which was reset unread; then on a new one.
    [first, again] = [n for n, line in server.seen if "/assets/events" in line]
    assert (first, "reset") in server.seen
    assert again != first


def test_a_write_after_a_500_goes_on_a_new_connection_and_is_not_lost():
    async def read_then_write(client: AirflowClient) -> dict:
        try:
            with pytest.raises(AirflowUnavailable, match="answered 500"):
                await client.asset_events(1)
            return await client.create_asset_event(1, {"airbyte_job_id": 7})
        finally:
            await client.aclose()

    with uvicorn_after_500() as (client, server):
        assert asyncio.run(read_then_write(client)) == {"id": 1}
    [read_on] = [n for n, line in server.seen if line.startswith("GET")]
    [token_on] = [n for n, line in server.seen if line.startswith("POST /auth")]
    [write_on] = [n for n, line in server.seen if line.startswith("POST /api")]
    assert write_on not in (read_on, token_on)  # each write on a connection of its own
