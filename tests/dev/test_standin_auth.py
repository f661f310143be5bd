"""Auth modes: basic, client-credential tokens (incl. expiry) and none."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from dev.airbyte_standin import WORKSPACE_ID
from dev.airbyte_standin.admin_client import RunningStandin
from dev.airbyte_standin.serving import quick_config, run_standin

LIST = "/api/v1/connections/list"
PUBLIC_LIST = "/api/public/v1/connections"


def call(standin: RunningStandin, headers: dict[str, str] | None = None, auth=None):
    return requests.post(
        f"{standin.url}{LIST}",
        json={"workspaceId": WORKSPACE_ID},
        headers=headers,
        auth=auth,
        timeout=5,
    )


def public_call(standin: RunningStandin, headers: dict[str, str] | None = None):
    return requests.get(f"{standin.url}{PUBLIC_LIST}", headers=headers, timeout=5)


@pytest.fixture(scope="module")
def token_standin(tmp_path_factory) -> Iterator[RunningStandin]:
    config = quick_config(tmp_path_factory.mktemp("token"), auth="token", client_id="app-1")
    with run_standin(config) as running:
        yield running


@pytest.fixture(scope="module")
def open_standin(tmp_path_factory) -> Iterator[RunningStandin]:
    with run_standin(quick_config(tmp_path_factory.mktemp("open"), auth="none")) as running:
        yield running


def test_basic_auth_good_credentials(standin) -> None:
    assert call(standin, auth=("airbyte", "password")).status_code == 200


def test_basic_auth_bad_or_missing_credentials_are_401_without_echo(standin) -> None:
    wrong = call(standin, auth=("airbyte", "s3cr3t-guess"))
    missing = call(standin)
    public = requests.get(f"{standin.url}{PUBLIC_LIST}", auth=("x", "s3cr3t-guess"), timeout=5)
    for response in (wrong, missing, public):
        assert response.status_code == 401
        assert "s3cr3t-guess" not in response.text
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert public.headers["content-type"] == "application/problem+json"


def test_health_and_admin_are_open(standin) -> None:
    assert requests.get(f"{standin.public_api_url}/health", timeout=5).status_code == 200
    assert requests.get(f"{standin.url}/_standin/jobs", timeout=5).status_code == 200


def test_token_from_config_endpoint_works_on_both_apis(token_standin) -> None:
    token = requests.post(
        f"{token_standin.config_api_url}/applications/token",
        json={"client_id": "app-1", "client_secret": token_standin.config.client_secret},
        timeout=5,
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert call(token_standin, headers).status_code == 200
    assert public_call(token_standin, headers).status_code == 200
    assert call(token_standin, auth=("airbyte", "password")).status_code == 401


def test_token_from_public_form_endpoint(token_standin) -> None:
    response = requests.post(
        f"{token_standin.public_api_url}/applications/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "app-1",
            "client_secret": token_standin.config.client_secret,
        },
        timeout=5,
    )
    assert response.status_code == 200
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    assert public_call(token_standin, headers).status_code == 200


def test_wrong_client_credentials_are_401(token_standin) -> None:
    config_api = requests.post(
        f"{token_standin.config_api_url}/applications/token",
        json={"client_id": "app-1", "client_secret": "leaked-guess"},
        timeout=5,
    )
    public_api = requests.post(
        f"{token_standin.public_api_url}/applications/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "x",
            "client_secret": "leaked-guess",
        },
        timeout=5,
    )
    for response in (config_api, public_api):
        assert response.status_code == 401
        assert "leaked-guess" not in response.text
    token_standin.take_contract_violations()  # 401 is not declared for the token endpoints


def test_unknown_and_expired_tokens_are_401(token_standin) -> None:
    assert call(token_standin, {"Authorization": "Bearer made-up"}).status_code == 401
    headers = token_standin.auth_headers()
    assert call(token_standin, headers).status_code == 200
    assert token_standin.expire_tokens() >= 1
    expired = call(token_standin, headers)
    assert expired.status_code == 401
    assert "expired" in expired.json()["message"]
    assert call(token_standin, token_standin.auth_headers()).status_code == 200  # a fresh one


def test_no_auth_mode_accepts_anonymous_calls(open_standin) -> None:
    assert call(open_standin).status_code == 200
    assert public_call(open_standin).status_code == 200
