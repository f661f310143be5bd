"""dev/airflow.env: the local Connections and Variables are valid and point at the stand-in."""

from __future__ import annotations

from dev.environment import airflow_environment
from plugins.airbyte_client.config import ApiFlavour, AuthType
from plugins.airbyte_hook import resolve_settings


def test_env_file_configures_airbyte_and_the_warehouse(monkeypatch, tmp_path):
    environment = airflow_environment("http://127.0.0.1:4567", airflow_home=tmp_path)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    settings = resolve_settings("airbyte_default")  # Airbyte as its users run it
    assert settings.api_root == "http://127.0.0.1:4567/api/public/v1"
    assert settings.flavour is ApiFlavour.PUBLIC
    assert settings.auth_type is AuthType.CLIENT_CREDENTIALS
    config_api = resolve_settings("airbyte_config_api")
    assert config_api.api_root == "http://127.0.0.1:4567/api/v1"
    assert config_api.flavour is ApiFlavour.CONFIG
    assert (config_api.login, config_api.secret) == (settings.login, settings.secret)
    assert str(tmp_path / "warehouse.db") in environment["AIRFLOW_CONN_WAREHOUSE_DEFAULT"]
    assert environment["AIRFLOW_VAR_AIRBYTE_NOTIFY_OUTBOX"] == f"{tmp_path}/notifications.jsonl"
    assert environment["AIRFLOW__CORE__DAGS_FOLDER"].endswith("/dags")


def test_env_file_names_every_connection_id_variable_the_dags_read(tmp_path):
    from include.connections import load_connections

    environment = airflow_environment("http://127.0.0.1:4567", airflow_home=tmp_path)
    entries = load_connections().connections.values()
    variables = [e.connection_variable[0] for e in entries if e.connection_variable]
    assert variables
    for variable in variables:
        assert f"AIRFLOW_VAR_{variable}" in environment
