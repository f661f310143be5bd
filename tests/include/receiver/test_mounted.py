"""The receiver served by the session's real Airflow API server (the plugin's ``fastapi_apps``),
with ``dev/airflow.env``'s secrets as ``make airflow`` has them: the README's curl example."""

from __future__ import annotations

import pytest
import requests
from dotenv import dotenv_values

from dev.environment import ENV_FILE
from dev.processes import wait_until
from include.receiver.mount import URL_PREFIX
from tests.airflow_fixtures import STRIPE, TIMEOUT, SharedAirflow
from tests.include.receiver.test_airbyte_notifications import (
    events_per_asset,
    job_status,
    outcome,
    start_outside_airflow,
)

pytestmark = pytest.mark.timeout(TIMEOUT)
TOKEN = dotenv_values(ENV_FILE)["AIRBYTE_NOTIFICATION_TOKEN"]


def test_the_api_server_serves_the_receiver_and_the_readme_example_works(
    shared: SharedAirflow, stripe_assets
):
    shared.airflow.unpause("airbyte_quality__stripe")
    job_id = start_outside_airflow(shared, STRIPE)
    wait_until(lambda: job_status(shared, job_id) == "succeeded", timeout=60, what="job")
    url = f"{shared.airflow.url}{URL_PREFIX}/airbyte/notifications/{TOKEN}"
    body = {"text": "Sync succeeded", "data": {"jobId": job_id}}  # the README's curl
    answer = requests.post(url, json=body, timeout=60)
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "accepted"
    done = outcome(url, job_id)  # the README's second curl: what became of it
    assert (done["status"], sorted(done["created"])) == ("asset_events", sorted(stripe_assets))
    assert events_per_asset(shared, job_id, stripe_assets) == dict.fromkeys(stripe_assets, 1)
    again = requests.post(url, json=body, timeout=60)
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")


def test_the_mounted_receiver_refuses_a_wrong_token_and_keeps_airflow_login_its_own(
    shared: SharedAirflow,
):
    wrong = f"{shared.airflow.url}{URL_PREFIX}/airbyte/notifications/{'x' * len(TOKEN)}"
    assert requests.post(wrong, json={"text": "hi"}, timeout=30).status_code == 404
    health = requests.get(f"{shared.airflow.url}{URL_PREFIX}/healthz", timeout=30)
    assert health.json() == {"status": "ok"}
    # Airflow's own API still wants its login.
    assert requests.get(f"{shared.airflow.url}/api/v2/dags", timeout=30).status_code == 401
