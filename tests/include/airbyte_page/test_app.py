"""The Airbyte page as the session's real Airflow serves it, over real HTTP: in the navigation,
refused to anyone without a valid Airflow token, and every entry of the connections file for a
logged-in user, by token or by the UI's cookie; with Airbyte unreachable it still shows what
Airflow knows, and says so."""

from __future__ import annotations

import asyncio
import time

import httpx
import jwt
import pytest
import requests

from dev.processes import free_port
from include.airbyte_page.airbyte_status import AirbyteStatus
from include.airbyte_page.airflow_api import AirflowReader, AirflowRefused, EventCache
from include.airbyte_page.gather import gather
from include.airbyte_page.render import render
from include.connections import FILE_VARIABLE, load_connections
from tests.airflow_fixtures import TIMEOUT, SharedAirflow
from tests.conftest import airbyte_conn_env

pytestmark = pytest.mark.timeout(TIMEOUT)
PAGE = "/airbyte-page"
KEYS = set(load_connections().connections)


def page_url(shared: SharedAirflow, path: str) -> str:
    return f"{shared.airflow.url}{PAGE}{path}"


def token_expired_an_hour_ago(shared: SharedAirflow) -> str:
    """A token of the same user, signed with Airflow's own secret, that expired."""
    real = shared.airflow.token()
    header = jwt.get_unverified_header(real)
    claims = jwt.decode(real, options={"verify_signature": False})
    past = int(time.time()) - 7200
    claims |= {"iat": past, "nbf": past, "exp": past + 3600}
    secret = shared.airflow.env["AIRFLOW__API_AUTH__JWT_SECRET"]
    return jwt.encode(claims, secret, algorithm=header["alg"], headers={"kid": header["kid"]})


def test_the_page_is_in_airflows_navigation(shared):
    plugins = shared.airflow.api("GET", "/plugins").json()["plugins"]
    [plugin] = [p for p in plugins if p["name"] == "airbyte_page"]

    assert plugin["external_views"] == [
        {
            "name": "Airbyte",
            "href": f"{PAGE}/",
            "icon": f"{PAGE}/icon.svg",
            "icon_dark_mode": None,
            "url_route": "airbyte",
            "category": None,
            "nav_top_level": True,
            "destination": "nav",
        }
    ]
    assert [app["url_prefix"] for app in plugin["fastapi_apps"]] == [PAGE]
    icon = requests.get(page_url(shared, "/icon.svg"), timeout=10)
    assert icon.headers["content-type"] == "image/svg+xml"


# The local Airflow's JWT secret is shorter than PyJWT recommends for HS512; Airflow signs with
# it all the same, and so does the expired token made here.
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("path", ["/", "/data"])
@pytest.mark.parametrize(
    ("credentials", "status"),
    [
        pytest.param({}, 401, id="anonymous"),
        pytest.param({"cookies": {"_token": "forged"}}, 403, id="forged-cookie"),
        pytest.param({"headers": {"Authorization": "Bearer a.b.c"}}, 403, id="forged-token"),
        pytest.param("expired", 401, id="expired-token"),
    ],
)
def test_without_a_valid_airflow_token_the_page_and_its_data_are_refused(
    shared, path, credentials, status
):
    if credentials == "expired":
        credentials = {"headers": {"Authorization": f"Bearer {token_expired_an_hour_ago(shared)}"}}

    response = requests.get(page_url(shared, path), timeout=30, **credentials)

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert not any(key in response.text for key in KEYS), response.text


def test_a_logged_in_user_gets_every_entry_of_the_connections_file(shared):
    token = shared.airflow.token()

    started = time.perf_counter()
    response = requests.get(
        page_url(shared, "/data"), headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    took = time.perf_counter() - started

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    data = response.json()
    assert {row["key"] for row in data["rows"]} == KEYS
    assert {row["health"] for row in data["rows"]} <= {"failing", "drifting", "healthy"}
    github = next(row for row in data["rows"] if row["key"] == "github")
    assert github["label"] == "GitHub → Postgres"
    assert github["named_by"] == "name 'GitHub → Postgres'"
    assert github["dag_id"] == "airbyte_sync__github"  # Airflow has parsed its DAG
    assert took < 5, f"the data took {took:.1f} s"


def test_the_ui_cookie_opens_the_page(shared):
    token = shared.airflow.token()

    response = requests.get(page_url(shared, "/"), cookies={"_token": token}, timeout=30)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'self'" in response.headers["content-security-policy"]
    for key in KEYS:
        assert f'data-key="{key}"' in response.text


def test_with_airbyte_unreachable_the_page_shows_what_airflow_knows_and_says_so(
    shared, monkeypatch
):
    monkeypatch.delenv(FILE_VARIABLE, raising=False)  # the repository's file, as Airflow's
    airbyte_conn_env(monkeypatch, f"http://127.0.0.1:{free_port()}", login="a", password="b")

    async def page(token: str):
        async with httpx.AsyncClient(base_url=shared.airflow.url, timeout=30) as http:
            reader = AirflowReader(http, token, EventCache())
            return await gather(load_connections(), reader, AirbyteStatus())

    found = asyncio.run(page(shared.airflow.token()))

    assert {row.key for row in found.rows} == KEYS
    assert all(row.airbyte.status is None and row.airbyte.url is None for row in found.rows)
    [note] = [n for n in found.notes if n.startswith("Airbyte (airbyte_default)")]
    assert "AirbyteUnreachableError: Connection refused" in note
    assert note.endswith("its connections' status is unknown")
    assert "AirbyteUnreachableError: Connection refused" in render(found)
    with pytest.raises(AirflowRefused) as refused:
        asyncio.run(page("not-a-token"))
    assert refused.value.status_code == 403  # Airflow's own answer to the token


def test_an_assets_events_are_read_again_only_after_a_new_event(shared, monkeypatch):
    monkeypatch.delenv(FILE_VARIABLE, raising=False)
    airbyte_conn_env(monkeypatch, f"http://127.0.0.1:{free_port()}", login="a", password="b")
    github = shared.airflow.api("GET", "/assets", params={"name_pattern": "airbyte_github"})
    [asset] = [a for a in github.json()["assets"] if a["name"] == "airbyte_github"]

    def announce(job_id: int) -> None:  # as the reconciler announces a sync it found
        extra = {"airbyte_job_id": job_id, "records": 5, "origin": "airbyte_reconciled"}
        body = {"asset_id": asset["id"], "extra": extra}
        shared.airflow.api("POST", "/assets/events", json=body).raise_for_status()

    async def views(token: str) -> list[int]:
        """How often each of four page views listed GitHub's events."""
        listed: list[str] = []

        async def seen(request: httpx.Request) -> None:
            if request.url.path == "/api/v2/assets/events":
                listed.append(request.url.params["asset_id"])

        hooks = {"request": [seen]}
        async with httpx.AsyncClient(base_url=shared.airflow.url, event_hooks=hooks) as http:
            cache, airbyte, counts = EventCache(), AirbyteStatus(), []
            for view in range(4):
                if view in (0, 2):
                    await asyncio.to_thread(announce, 990_000 + view)
                del listed[:]
                found = await gather(load_connections(), AirflowReader(http, token, cache), airbyte)
                assert {row.key for row in found.rows} == KEYS
                counts.append(listed.count(str(asset["id"])))
        return counts

    # Once; not again without a new event; once after one; not again.
    assert asyncio.run(views(shared.airflow.token())) == [1, 0, 1, 0]
