"""The session's real Airflow (shared with the other suite, see tests/airflow_fixtures.py) and
a headless Chromium page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.airflow_fixtures import SharedAirflow, shared_airflow
from tests.e2e import browser


@pytest.fixture(scope="session")
def shared(request: pytest.FixtureRequest) -> SharedAirflow:
    return shared_airflow(request.config)


@pytest.fixture
def browser_page() -> Iterator:
    with browser.browser_page() as page:
        yield page
