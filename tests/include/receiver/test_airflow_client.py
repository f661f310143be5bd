"""``AirflowClient`` against the session's real Airflow: what it asks Airflow, counted on the
wire."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from include.assets import connection_asset
from include.connections import load_connections
from include.receiver import airflow_client
from include.receiver.airflow_client import AirflowClient
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
