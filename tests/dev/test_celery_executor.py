"""The Redis broker of the CeleryExecutor set-up (``dev.celery_executor``).

The CeleryExecutor itself runs in ``tests/chaos``: every crash scenario runs on it as well as
on the LocalExecutor, plus one in which a worker dies mid-sync.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dev.celery_executor import run_redis


def test_redis_broker_starts_on_loopback_and_stops(tmp_path: Path):
    with run_redis(tmp_path) as redis:
        assert redis.ping()
        assert redis.url == f"redis://127.0.0.1:{redis.port}/0"
        assert redis.settings() == {"AIRFLOW__CELERY__BROKER_URL": redis.url}
    assert not redis.ping()
    assert redis.process.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(redis.process.pid, 0)
