"""How the client finds and normalises its configuration."""

from __future__ import annotations

import json

import pytest

from plugins.airbyte_client.config import ApiFlavour, AuthType, normalize_api_url
from plugins.airbyte_client.errors import AirbyteConfigError
from plugins.airbyte_hook import resolve_settings
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
    with pytest.raises(AirbyteConfigError, match="read_timeout='soon' is not valid: use a number"):
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
    token = hook.client.auth.exchange.token
    assert redact(f"Authorization: Bearer {token}") == "Authorization: Bearer ***"


@pytest.mark.parametrize(
    ("host", "port", "root"),
    [
        ("http://[::1]:8000", None, "http://[::1]:8000/api/v1"),
        ("[::1]", 8000, "http://[::1]:8000/api/v1"),
        ("::1", 8000, "http://[::1]:8000/api/v1"),  # how a conn URI with [::1] is parsed
        ("https://[2001:db8::5]/airbyte", None, "https://[2001:db8::5]/airbyte/api/v1"),
    ],
)
def test_ipv6_hosts_keep_their_brackets(monkeypatch, host, port, root):
    conn = {"conn_type": "http", "host": host, "port": port}
    monkeypatch.setenv("AIRFLOW_CONN_AIRBYTE_DEFAULT", json.dumps(conn))
    assert resolve_settings("airbyte_default").api_root == root


def test_bad_port_is_a_clear_error_without_the_password(monkeypatch):
    airbyte_conn_env(monkeypatch, "http://airbyte:Sup3r-s3cret@airbyte-server:80000")
    with pytest.raises(AirbyteConfigError, match="bad port") as err:
        resolve_settings("airbyte_default")
    assert "Sup3r-s3cret" not in str(err.value)
    assert "airbyte-server" in str(err.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://airbyte:Xy7/kLm9Q@airbyte-server:8000",  # was: "bad port", with the password
        "http://airbyte:1234/kLm9Q@127.0.0.1:9",  # was: host airbyte:1234, secret in the path
        "http://airbyte:a?kLm9Q@airbyte-server:8000",
        "http://airbyte:a#kLm9Q@airbyte-server:8000/api/public/v1",
    ],
    ids=["slash-then-letters", "slash-then-digits", "question-mark", "hash"],
)
def test_reserved_characters_in_url_credentials_are_refused_without_the_secret(monkeypatch, url):
    airbyte_conn_env(monkeypatch, url)
    with pytest.raises(AirbyteConfigError, match="not percent-encoded") as err:
        resolve_settings("airbyte_default")
    assert "kLm9Q" not in str(err.value)
    assert "%2F" in str(err.value)
    assert f"***@{url.rpartition('@')[2]}" in str(err.value)


def test_credentials_in_the_host_url_are_percent_decoded(monkeypatch):
    airbyte_conn_env(monkeypatch, "http://us%40er:p%C3%A4%3Ass%2F@airbyte-server:8000")
    s = resolve_settings("airbyte_default")
    assert (s.login, s.secret) == ("us@er", "pä:ss/")
    assert s.auth_type is AuthType.BASIC


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"verify": "maybe"}, "verify='maybe' is not valid: use true or false"),
        ({"total_timeout": 0}, "total_timeout=0 is not valid"),
        ({"max_response_bytes": -1}, "max_response_bytes=-1 is not valid"),
        ({"read_timeout": "nan"}, "read_timeout='nan' is not valid"),
    ],
)
def test_bad_limits_and_tls_settings_are_refused(monkeypatch, extra, message):
    airbyte_conn_env(monkeypatch, "http://h:8000", **extra)
    with pytest.raises(AirbyteConfigError, match=message):
        resolve_settings("airbyte_default")


def test_limits_and_tls_extras(monkeypatch):
    airbyte_conn_env(
        monkeypatch,
        "https://h",
        verify="false",
        ca_bundle="/etc/company-ca.pem",
        total_timeout="45",
        max_response_bytes=1024,
        max_decompressed_bytes="4096",
        max_unreadable_polls=2,
        max_pages=7,
    )
    s = resolve_settings("airbyte_default")
    assert (s.verify, s.ca_bundle, s.total_timeout) == (False, "/etc/company-ca.pem", 45.0)
    assert (s.max_response_bytes, s.max_decompressed_bytes) == (1024, 4096)
    assert (s.max_unreadable_polls, s.max_pages) == (2, 7)
