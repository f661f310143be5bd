"""How the client finds and normalises its configuration."""

from __future__ import annotations

import json

import pytest

from plugins.airbyte_api import ApiFlavour
from plugins.airbyte_errors import AirbyteConfigError
from plugins.airbyte_settings import AuthType, normalize_api_url, resolve_settings
from tests.conftest import airbyte_conn_env


@pytest.mark.parametrize(
    ("url", "api_type", "root", "flavour"),
    [
        ("http://airbyte-server:8000", None, "http://airbyte-server:8000/api/v1", "config"),
        (
            "http://airbyte-server:8000/",
            "public",
            "http://airbyte-server:8000/api/public/v1",
            "public",
        ),
        ("http://airbyte-server:8000/api", None, "http://airbyte-server:8000/api/v1", "config"),
        ("http://airbyte-server:8000/api/v1/", None, "http://airbyte-server:8000/api/v1", "config"),
        ("http://h:8000/api/public/v1", None, "http://h:8000/api/public/v1", "public"),
        ("http://h:8000/api/public", None, "http://h:8000/api/public/v1", "public"),
        ("https://api.airbyte.com", None, "https://api.airbyte.com/v1", "public"),
        ("https://api.airbyte.com/v1", "public", "https://api.airbyte.com/v1", "public"),
        ("airbyte-server:8001", None, "http://airbyte-server:8001/api/v1", "config"),
        ("https://proxy.example/airbyte", None, "https://proxy.example/airbyte/api/v1", "config"),
    ],
)
def test_normalize_api_url(url, api_type, root, flavour):
    assert normalize_api_url(url, api_type) == (root, ApiFlavour(flavour))


@pytest.mark.parametrize(
    ("url", "api_type", "message"),
    [
        ("", None, "AIRBYTE_API_URL"),
        ("   ", None, "is empty"),
        ("ftp://airbyte:21", None, r"not an http\(s\) URL"),
        ("http://h:8000/api/v1", "public", "drop one of the two"),
        ("http://h:8000", "graphql", "Unknown api_type"),
    ],
)
def test_normalize_api_url_refuses_bad_input(url, api_type, message):
    with pytest.raises(AirbyteConfigError, match=message):
        normalize_api_url(url, api_type)


def test_connection_settings(monkeypatch):
    airbyte_conn_env(
        monkeypatch,
        "airbyte.internal:8000",
        login="client-1",
        password="s3cret-value",
        auth_type="client_credentials",
        api_type="public",
        workspace_id="ws-1",
        max_retries="7",
    )
    s = resolve_settings("airbyte_default")
    assert s.api_root == "http://airbyte.internal:8000/api/public/v1"
    assert s.auth_type is AuthType.CLIENT_CREDENTIALS
    assert (s.login, s.secret, s.workspace_id, s.max_retries) == (
        "client-1",
        "s3cret-value",
        "ws-1",
        7,
    )
    assert "s3cret-value" not in repr(s)


def test_credentials_in_url_are_taken_out_of_it(monkeypatch):
    airbyte_conn_env(monkeypatch, "http://airbyte:pa55word@airbyte-server:8000")
    s = resolve_settings("airbyte_default")
    assert s.api_root == "http://airbyte-server:8000/api/v1"
    assert (s.auth_type, s.login, s.secret) == (AuthType.BASIC, "airbyte", "pa55word")


def test_variables_fallback(monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_AIRBYTE_API_URL", "http://airbyte-server:8000")
    monkeypatch.setenv("AIRFLOW_VAR_AIRBYTE_API_USERNAME", "airbyte")
    monkeypatch.setenv("AIRFLOW_VAR_AIRBYTE_API_PASSWORD", "pa55word")
    s = resolve_settings("airbyte_default")
    assert s.api_root == "http://airbyte-server:8000/api/v1"
    assert (s.auth_type, s.login, s.secret) == (AuthType.BASIC, "airbyte", "pa55word")
    assert "Variables" in s.source


def test_missing_connection_and_variable_names_both(monkeypatch):
    monkeypatch.delenv("AIRFLOW_VAR_AIRBYTE_API_URL", raising=False)
    with pytest.raises(AirbyteConfigError) as err:
        resolve_settings("my_airbyte")
    assert "'my_airbyte'" in str(err.value)
    assert "airflow variables set AIRBYTE_API_URL" in str(err.value)


def test_empty_url_variable(monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_AIRBYTE_API_URL", "")
    with pytest.raises(AirbyteConfigError, match="is empty"):
        resolve_settings("airbyte_default")


def test_bad_auth_type_and_tunable(monkeypatch):
    airbyte_conn_env(monkeypatch, "http://h:8000", auth_type="kerberos")
    with pytest.raises(AirbyteConfigError, match="auth_type='kerberos'"):
        resolve_settings("airbyte_default")
    airbyte_conn_env(monkeypatch, "http://h:8000", read_timeout="soon")
    with pytest.raises(AirbyteConfigError, match="read_timeout='soon' is not a number"):
        resolve_settings("airbyte_default")


def test_basic_auth_without_password_is_refused(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_AIRBYTE_DEFAULT",
        json.dumps({"conn_type": "airbyte", "host": "http://h:8000", "login": "airbyte"}),
    )
    with pytest.raises(AirbyteConfigError, match="no password"):
        resolve_settings("airbyte_default")


def test_secrets_are_registered_with_the_masker(monkeypatch):
    from airflow.sdk._shared.secrets_masker import redact

    airbyte_conn_env(
        monkeypatch,
        "http://h:8000",
        login="client-1",
        password="client-secret-0451",
        auth_type="client_credentials",
    )
    resolve_settings("airbyte_default")
    assert redact("token exchange with client-secret-0451") == "token exchange with ***"


def test_token_is_masked_once_fetched(token_conn):
    from airflow.sdk._shared.secrets_masker import redact

    from plugins.airbyte_hook import AirbyteHook

    hook = AirbyteHook()
    hook.list_connections()
    token = hook._auth.token()
    assert redact(f"Authorization: Bearer {token}") == "Authorization: Bearer ***"
