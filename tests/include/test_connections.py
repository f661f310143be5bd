"""The connections file: what a good file gives, and the error each kind of bad file gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from include.connections import ConnectionsFileError, load_connections, parse_connections
from include.paths import CONNECTIONS_FILE

STRIPE_ID = "2a6f1c2e-8b1d-4c3a-9f0e-1d2c3b4a5f60"
GOOD = f"""
version: 1
pool: {{name: airbyte, slots: 3}}
defaults:
  timeout_minutes: 30
  retries: 4
connections:
  billing:
    connection_id: {STRIPE_ID}
    schedule: "0 */6 * * *"
    checkpoint: stripe_postgres_checkpoint
    transforms: [stripe_daily_revenue.sql]
  crm:
    connection_variable: AIRBYTE_HUBSPOT_CONNECTION_ID
    timeout_minutes: 90
    groups: [nightly]
  named:
    connection_name: GitHub → Postgres
    schedule: {{assets: ["airbyte://billing"]}}
    wait: zero_poll
"""


def parse(text: str) -> object:
    return parse_connections(text, Path("airbyte_connections.yaml"))


def test_defaults_apply_to_every_entry_unless_it_sets_its_own():
    connections = parse(GOOD)
    billing, crm = connections.entry("billing"), connections.entry("crm")
    assert (billing.timeout_minutes, crm.timeout_minutes) == (30, 90)
    assert billing.retries == crm.retries == 4
    assert connections.pool.slots == 3
    assert billing.connection == {"connection_id": STRIPE_ID}
    assert crm.connection == {"connection_id_variable": ("AIRBYTE_HUBSPOT_CONNECTION_ID",)}
    assert connections.entry("named").connection == {"connection_name": "GitHub → Postgres"}
    assert [t.sql for t in billing.transforms] == ["stripe_daily_revenue.sql"]
    assert [e.key for e in connections.scheduled()] == ["billing", "named"]
    assert [e.key for e in connections.checked()] == ["billing"]
    assert [e.key for e in connections.group("nightly")] == ["crm"]


def test_the_repository_file_is_valid_and_holds_the_seed_sources():
    connections = load_connections(CONNECTIONS_FILE)
    assert {"stripe", "hubspot", "salesforce"} <= set(connections.connections)
    assert connections.entry("stripe").asset_uri == "airbyte://stripe_postgres"


def test_an_unknown_entry_is_named_with_the_known_ones():
    with pytest.raises(ConnectionsFileError, match=r"no entry 'nope' \(entries: \['billing'"):
        parse(GOOD).entry("nope")


BAD = [
    pytest.param(
        GOOD.replace("    wait: zero_poll", "    wiat: zero_poll"),
        "entry 'named': field 'wiat': unknown field (a typo?)",
        id="unknown field",
    ),
    pytest.param(
        GOOD.replace('"0 */6 * * *"', '"0 */6 * *"'),
        "entry 'billing': field 'schedule': '0 */6 * *' is neither a cron expression",
        id="bad cron",
    ),
    pytest.param(
        GOOD.replace("  crm:", "  billing:"),
        "line 13: the key 'billing' appears twice",
        id="duplicate key",
    ),
    pytest.param(
        GOOD.replace(STRIPE_ID, "2a6f1c2e-not-a-uuid"),
        "entry 'billing': field 'connection_id': '2a6f1c2e-not-a-uuid' is not a UUID",
        id="bad uuid",
    ),
    pytest.param(
        GOOD.replace("stripe_postgres_checkpoint", "stripe_checkpoint"),
        "entry 'billing': field 'checkpoint': no checkpoint 'stripe_checkpoint' in "
        "include/gx/checkpoints (there: ['hubspot_checkpoint'",
        id="unknown checkpoint",
    ),
    pytest.param(
        GOOD.replace("stripe_daily_revenue.sql", "revenue.sql"),
        "entry 'billing': field 'transforms.0.sql': no SQL file 'revenue.sql' in include/sql",
        id="unknown transform",
    ),
    pytest.param(
        GOOD.replace("    groups: [nightly]", f"    connection_id: {STRIPE_ID}"),
        "entry 'crm': field '(entry)': give exactly one of connection_id, connection_variable, "
        "connection_name (got connection_id, connection_variable)",
        id="two ways to name the connection",
    ),
    pytest.param(
        GOOD.replace(
            "connection_variable: AIRBYTE_HUBSPOT_CONNECTION_ID", f"connection_id: {STRIPE_ID}"
        ),
        f"entries 'billing' and 'crm' have the same connection_id '{STRIPE_ID}'",
        id="one connection in two entries",
    ),
    pytest.param(
        GOOD.replace("  crm:", "  CRM-1:"),
        "entry 'CRM-1': field 'key': String should match pattern",
        id="bad key",
    ),
    pytest.param(
        GOOD.replace("  retries: 4", "  retries: 4\n  notify: [slack]"),
        "top level: field 'defaults.notify': unknown channel(s) ['slack']; known: ['email', "
        "'outbox']",
        id="unknown channel in the defaults",
    ),
    pytest.param(
        GOOD.replace("timeout_minutes: 90", "timeout_minutes: -1"),
        "entry 'crm': field 'timeout_minutes': Input should be greater than 0",
        id="negative timeout",
    ),
    pytest.param("connections: [a, b]", "'connections' must map each entry's key", id="a list"),
    pytest.param("connections: {a: 1}", "entry 'a': must be a mapping of settings", id="scalar"),
    pytest.param("version: 1\n  bad: [", "not valid YAML", id="not YAML"),
]


@pytest.mark.parametrize(("text", "wording"), BAD)
def test_a_bad_file_names_the_file_the_entry_and_the_field(text, wording):
    with pytest.raises(ConnectionsFileError) as error:
        parse(text)
    message = str(error.value)
    assert message.startswith("airbyte_connections.yaml: ")
    assert wording in message


def test_a_missing_file_says_which(tmp_path):
    with pytest.raises(ConnectionsFileError, match=r"missing\.yaml: cannot read the connections"):
        load_connections(tmp_path / "missing.yaml")


def test_a_changed_file_is_read_again(tmp_path):
    path = tmp_path / "connections.yaml"
    path.write_text(GOOD)
    assert "crm" in load_connections(path).connections
    path.write_text(GOOD.replace("  crm:", "  sales:") + "\n")  # a new size: seen as changed
    assert "sales" in load_connections(path).connections
