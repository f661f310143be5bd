"""The auth flow over real loopback HTTP, in both client kinds.

Client credentials against the token stand-in: one token per process and credentials,
refreshed once on expiry, fetched again on a transient failure, never through a redirect.
Basic and bearer headers against a tiny recording server (``tests.fake_http``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from dev.airbyte_standin.seed import HUBSPOT_CONNECTION_ID, STRIPE_CONNECTION_ID
from plugins.airbyte_client.client import AirbyteClient, AsyncAirbyteClient
from plugins.airbyte_client.config import AirbyteSettings, ApiFlavour, AuthType
from plugins.airbyte_client.errors import AirbyteAuthError, AirbyteConfigError
from tests.fake_http import Recorded, fake_server, json_reply

FAST = {
    "retry_min_wait": 0.01,
    "retry_max_wait": 0.05,
    "max_retries": 3,
    "connect_timeout": 1.0,
    "read_timeout": 2.0,
    "total_timeout": 3.0,
}
CLIENT_ID, CLIENT_SECRET = "standin-client", "standin-secret"


@pytest.fixture(params=["blocking", "async"])
def mode(request) -> str:
    return request.param


@pytest.fixture
def standin(token_standin):
    """The client-credentials stand-in with an empty request log; keeps the contract."""
    token_standin.reset()
    yield token_standin
    token_standin.assert_contract_kept()


def token_settings(
    standin, flavour: str = "config", *, secret: str = CLIENT_SECRET, source: str = "test"
) -> AirbyteSettings:
    root = standin.config_api_url if flavour == "config" else standin.public_api_url
    return AirbyteSettings(
        api_root=root,
        flavour=ApiFlavour(flavour),
        source=source,
        auth_type=AuthType.CLIENT_CREDENTIALS,
        login=CLIENT_ID,
        secret=secret,
        **FAST,
    )


def run_calls(
    settings: AirbyteSettings,
    mode: str,
    *calls: Callable[[Any], Any],
    fresh: bool = False,
    concurrent: bool = False,
) -> list[Any]:
    """``calls`` on one client of ``mode`` (``fresh``: forget the process's cached token
    first; ``concurrent``: the async client runs them all at once on its event loop)."""
    if mode == "blocking":
        with AirbyteClient(settings) as client:
            if fresh:
                client.auth.exchange.invalidate()
            return [call(client) for call in calls]

    async def main() -> list[Any]:
        async with AsyncAirbyteClient(settings) as client:
            if fresh:
                client.auth.exchange.invalidate()
            if concurrent:
                return list(await asyncio.gather(*(call(client) for call in calls)))
            return [await call(client) for call in calls]

    return asyncio.run(main())


def info(connection_id: str) -> Callable[[Any], Any]:
    return lambda client: client.get_connection_info(connection_id)


def token_requests(log: list[dict]) -> list[dict]:
    return [r for r in log if r["path"].endswith("/applications/token")]


def api_requests(log: list[dict]) -> list[dict]:
    return [r for r in log if not r["path"].endswith("/applications/token")]


# --- client credentials ----------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["config", "public"])
def test_one_token_serves_every_request_of_a_client(standin, mode, flavour):
    calls = [info(STRIPE_CONNECTION_ID), info(HUBSPOT_CONNECTION_ID), info(STRIPE_CONNECTION_ID)]
    found = run_calls(token_settings(standin, flavour), mode, *calls, fresh=True)
    assert [c.connection_id for c in found] == [
        STRIPE_CONNECTION_ID,
        HUBSPOT_CONNECTION_ID,
        STRIPE_CONNECTION_ID,
    ]
    log = standin.requests()
    assert [r["status"] for r in token_requests(log)] == [200]
    assert [r["status"] for r in api_requests(log)] == [200, 200, 200]


def test_concurrent_first_requests_on_the_event_loop_fetch_one_token(standin):
    calls = [info(STRIPE_CONNECTION_ID)] * 5
    run_calls(token_settings(standin), "async", *calls, fresh=True, concurrent=True)
    log = standin.requests()
    assert len(token_requests(log)) == 1
    assert [r["status"] for r in api_requests(log)] == [200] * 5


def test_clients_with_the_same_credentials_share_one_token(standin):
    first, second = token_settings(standin), token_settings(standin)  # equal, not the same
    with AirbyteClient(first) as blocking:
        blocking.auth.exchange.invalidate()
        blocking.get_connection_info(STRIPE_CONNECTION_ID)
        shared = blocking.auth.exchange
    run_calls(second, "async", info(HUBSPOT_CONNECTION_ID))
    run_calls(second, "blocking", info(HUBSPOT_CONNECTION_ID))
    with AirbyteClient(second) as third:
        assert third.auth.exchange is shared
    assert len(token_requests(standin.requests())) == 1


def test_other_credentials_never_use_the_cached_token(standin, mode):
    run_calls(token_settings(standin), mode, info(STRIPE_CONNECTION_ID), fresh=True)
    wrong = token_settings(standin, secret=f"wrong-{uuid.uuid4()}")
    with pytest.raises(AirbyteAuthError, match="refused the client id/secret") as err:
        run_calls(wrong, mode, info(STRIPE_CONNECTION_ID))
    assert "wrong-" not in str(err.value)
    log = standin.requests()
    assert [r["status"] for r in token_requests(log)] == [200, 401]
    assert len(api_requests(log)) == 1  # nothing was sent with the other client's token


def test_expired_token_is_refreshed_once_and_the_request_replayed(standin, mode):
    settings = token_settings(standin)
    run_calls(settings, mode, info(STRIPE_CONNECTION_ID))  # a token is cached
    seen = len(standin.requests())
    assert standin.expire_tokens() >= 1
    (found,) = run_calls(settings, mode, info(HUBSPOT_CONNECTION_ID))
    assert found.connection_id == HUBSPOT_CONNECTION_ID
    after = [(r["path"].rsplit("/", 2)[-2:], r["status"]) for r in standin.requests()[seen:]]
    assert after == [
        (["connections", "get"], 401),
        (["applications", "token"], 200),
        (["connections", "get"], 200),
    ]


def test_concurrent_requests_with_an_expired_token_refresh_it_once(standin):
    settings = token_settings(standin)
    run_calls(settings, "async", info(STRIPE_CONNECTION_ID))
    seen = len(standin.requests())
    standin.expire_tokens()
    calls = [info(STRIPE_CONNECTION_ID)] * 4
    assert len(run_calls(settings, "async", *calls, concurrent=True)) == 4
    after = standin.requests()[seen:]
    assert len(token_requests(after)) == 1
    statuses = [r["status"] for r in api_requests(after)]
    assert statuses.count(200) == 4
    assert set(statuses) <= {200, 401}


def test_token_endpoint_that_fails_transiently_is_asked_again(standin, mode):
    standin.inject("status", path="/api/v1/applications/token", status=503)
    (found,) = run_calls(token_settings(standin), mode, info(STRIPE_CONNECTION_ID), fresh=True)
    assert found.connection_id == STRIPE_CONNECTION_ID
    assert [r["status"] for r in token_requests(standin.requests())] == [503, 200]


def test_token_request_never_follows_a_redirect_even_to_the_same_server(standin, mode):
    settings = token_settings(standin)
    token_url = f"{settings.api_root}/applications/token"
    standin.inject("redirect", path="/api/v1/applications/token", location=token_url)
    with pytest.raises(AirbyteConfigError, match="the token request never follows a redirect") as e:
        run_calls(settings, mode, info(STRIPE_CONNECTION_ID), fresh=True)
    assert CLIENT_SECRET not in str(e.value)
    log = standin.requests()
    assert [r["status"] for r in log] == [307]  # not followed, and no API request without it


def test_token_request_uses_the_settings_of_the_client_that_sends_it(standin):
    secret = f"wrong-{uuid.uuid4()}"  # an exchange no other test made
    first = token_settings(standin, secret=secret, source="Airflow Connection 'first'")
    second = token_settings(standin, secret=secret, source="Airflow Connection 'second'")
    AirbyteClient(first).close()
    with pytest.raises(AirbyteAuthError) as err:
        run_calls(second, "blocking", info(STRIPE_CONNECTION_ID))
    assert "'second'" in str(err.value)


# --- headers and token lifetime, as a recording server receives them ------------------


class TokenEndpoint:
    """Issues ``token-<n>``; a client id ``expires=<value>/<anything>`` gets that
    ``expires_in`` (a JSON value), any other client id none."""

    issued = 0

    @classmethod
    def respond(cls, request: Recorded):
        if not request.path.endswith("/applications/token"):
            return json_reply({})
        cls.issued += 1
        client_id = json.loads(request.body)["client_id"]
        expires = {}
        if client_id.startswith("expires="):
            expires = {"expires_in": json.loads(client_id.removeprefix("expires=").split("/")[0])}
        return json_reply({"access_token": f"token-{cls.issued}", **expires})


@pytest.fixture(scope="module")
def recording_server():
    with fake_server(TokenEndpoint.respond) as server:
        yield server


@pytest.fixture
def recorder(recording_server):
    """The module's recording server, with nothing received or issued yet."""
    recording_server.received.clear()
    TokenEndpoint.issued = 0
    return recording_server


def recording_settings(url: str, auth_type: AuthType, login: str | None, secret: str | None):
    return AirbyteSettings(
        api_root=f"{url}/api/v1",
        flavour=ApiFlavour.CONFIG,
        source="test",
        auth_type=auth_type,
        login=login,
        secret=secret,
        **FAST,
    )


def health(client):
    return client.health()


@pytest.mark.parametrize(
    ("auth_type", "login", "secret", "header"),
    [
        (
            AuthType.BASIC,
            "ünï",
            "pä$$wörd€:@/",
            "Basic " + base64.b64encode("ünï:pä$$wörd€:@/".encode()).decode(),
        ),
        (AuthType.BEARER, None, "static-token", "Bearer static-token"),
        (AuthType.NONE, None, None, None),
    ],
    ids=["basic-utf8", "bearer", "none"],
)
def test_header_as_the_server_receives_it(recorder, mode, auth_type, login, secret, header):
    run_calls(recording_settings(recorder.url, auth_type, login, secret), mode, health)
    (request,) = recorder.received
    assert request.path == "/api/v1/health"
    assert {k.lower(): v for k, v in request.headers.items()}.get("authorization") == header


def test_token_without_expires_in_is_kept(recorder, mode):
    """Airbyte 1.x's Configuration API gives no ``expires_in``: its 180 s default applies."""
    settings = recording_settings(recorder.url, AuthType.CLIENT_CREDENTIALS, "no-expiry", "s")
    run_calls(settings, mode, health, health, fresh=True)
    bearers = [r.headers.get("Authorization") for r in recorder.received if "health" in r.path]
    assert bearers == ["Bearer token-1", "Bearer token-1"]


def test_token_lifetime_comes_from_expires_in(recorder):
    settings = recording_settings(
        recorder.url, AuthType.CLIENT_CREDENTIALS, f"expires=3600/{uuid.uuid4()}", "s"
    )
    with AirbyteClient(settings) as client:
        client.health()
        kept_for = client.auth.exchange.refresh_at - time.monotonic()
    assert 3600 - 61 < kept_for <= 3600 - 60  # refreshed a minute before it expires


@pytest.mark.parametrize("expires_in", [0, -5, 1e-9, "NaN"])
def test_absurd_token_lifetime_uses_a_floor_logged_once(recorder, mode, expires_in, caplog):
    """An ``expires_in`` of 0, negative, tiny or not a number would cost one token request
    per API call (20 deferred waits made 166 in 3 s): tokens are kept for the floor."""
    login = f"expires={json.dumps(expires_in)}/{uuid.uuid4()}"
    if expires_in == "NaN":
        login = f"expires=NaN/{uuid.uuid4()}"
    settings = recording_settings(recorder.url, AuthType.CLIENT_CREDENTIALS, login, "s")
    with caplog.at_level(logging.WARNING, logger="plugins.airbyte_client.auth"):
        run_calls(settings, mode, *[health] * 20, fresh=True, concurrent=True)
        run_calls(settings, mode, health)
    assert TokenEndpoint.issued == 1
    bearers = {r.headers.get("Authorization") for r in recorder.received if "health" in r.path}
    assert bearers == {"Bearer token-1"}
    floor_logs = [r for r in caplog.records if "keeping tokens for 30 s" in r.getMessage()]
    assert len(floor_logs) == 1


def test_missing_token_endpoint_is_not_retried(standin, mode):
    standin.inject("status", path="/api/v1/applications/token", status=404, count=4)
    with pytest.raises(AirflowFailException, match=r"no token endpoint at .*\(HTTP 404\)") as err:
        run_calls(token_settings(standin), mode, info(STRIPE_CONNECTION_ID), fresh=True)
    assert CLIENT_SECRET not in str(err.value)
    assert len(token_requests(standin.requests())) == 1
