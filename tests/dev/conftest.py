"""Fixtures for the stand-in's own tests: one shared server, reset and contract-checked per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import sqlalchemy as sa

from dev.airbyte_standin.admin_client import RunningStandin
from dev.airbyte_standin.serving import quick_config, run_standin


@pytest.fixture(scope="session")
def shared_standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStandin]:
    """One basic-auth stand-in for the whole session."""
    with run_standin(quick_config(tmp_path_factory.mktemp("standin"), auth="basic")) as running:
        yield running


def reset_and_checked(running: RunningStandin) -> Iterator[RunningStandin]:
    """``running`` reset before a test; the test fails on a contract violation."""
    running.reset()
    yield running
    violations = running.take_contract_violations()
    assert not violations, f"contract violations: {violations}"


@pytest.fixture
def standin(shared_standin: RunningStandin) -> Iterator[RunningStandin]:
    """The shared stand-in, reset before the test; fails the test on contract violations."""
    yield from reset_and_checked(shared_standin)


@pytest.fixture
def api(standin: RunningStandin) -> requests.Session:
    """A session authenticated against ``standin``."""
    session = requests.Session()
    session.headers.update(standin.auth_headers())
    return session


@pytest.fixture
def warehouse(standin: RunningStandin) -> Iterator[sa.Engine]:
    """Engine on the stand-in's warehouse, for checking what syncs wrote."""
    engine = sa.create_engine(standin.warehouse_url)
    yield engine
    engine.dispose()
