"""The settings ``make airflow`` and the test sessions' Airflow run with (nothing is started)."""

from __future__ import annotations

from dev.airflow_settings import component_args, server_environment
from dev.environment import airflow_environment, caller_overrides


def test_deferrable_is_the_default_and_the_executor_is_local(tmp_path):
    env = server_environment(airflow_environment("http://127.0.0.1:1", tmp_path), 8080)
    assert env["AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"] == "True"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"


def test_the_callers_airflow_settings_win(tmp_path):
    overrides = caller_overrides(
        {
            "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "False",
            "AIRFLOW__CORE__PARALLELISM": "9",
            "AIRFLOW_HOME": "/elsewhere",  # not an AIRFLOW__ setting: the local home stays
            "PATH": "/bin",
        }
    )
    assert set(overrides) == {
        "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE",
        "AIRFLOW__CORE__PARALLELISM",
    }
    env = server_environment(
        airflow_environment("http://127.0.0.1:1", tmp_path), 8080, overrides=overrides
    )
    assert env["AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"] == "False"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "9"
    assert env["AIRFLOW_HOME"] == str(tmp_path)


def test_the_password_file_holds_the_login_and_each_executor_has_its_components(tmp_path):
    env = server_environment(
        airflow_environment("http://127.0.0.1:1", tmp_path), 8080, username="u", password="p"
    )
    passwords = tmp_path / "simple_auth_manager_passwords.json"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == str(passwords)
    assert passwords.read_text() == '{"u": "p"}\n'
    assert passwords.stat().st_mode & 0o777 == 0o600
    assert env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:8080"
    local, celery = component_args("local"), component_args("celery")
    assert set(celery) - set(local) == {"celery-worker"}
    assert local["api-server"](8080) == ["api-server", "--host", "127.0.0.1", "--port", "8080"]
