"""The session's real Airflow (shared with the other suites, see tests/airflow_fixtures.py)."""

from __future__ import annotations

import pytest

from tests.airflow_fixtures import SharedAirflow, shared_airflow


@pytest.fixture(scope="session")
def shared(request: pytest.FixtureRequest) -> SharedAirflow:
    return shared_airflow(request.config)
