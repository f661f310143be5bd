"""The standalone receiver's environment (``deploy/receiver/receiver.yaml``) and its Secret
(``deploy/receiver/externalsecret.yaml``).

- Environment: every variable the container gets is one the receiver reads: a field of its
  settings (``WebhookSettings``, read from the model), the Connection it confirms jobs
  through or the one its e-mail channel sends with (``AIRFLOW_CONN_<ID>``), or a Variable it
  looks up (the connections file's ``connection_variable``s, the notification channels);
  secrets come from the Secret, never as plain values; several replicas share a ledger URL.
- Secret: the ExternalSecret renders exactly the keys the pod takes from it, and its rendering
  configures the receiver: the settings validate, the Airbyte Connection is the Public API
  with client credentials, the SMTP Connection is STARTTLS submission.
- Docs: deploy/README.md's section on the standalone receiver names every key of the Secret.

The pod's hardening and resources: ``test_receiver_hardening``.

Every checker has a test that feeds it a broken copy and expects a complaint.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import SecretStr

from include.connections import load_connections
from include.notifications import CHANNELS_VARIABLE, EMAILS_VARIABLE, OUTBOX_VARIABLE, EmailChannel
from include.receiver.settings import WebhookSettings
from tests.deploy import receiver_deploy as rd
from tests.deploy import test_manifests as tm

#: Settings the receiver cannot work without in a cluster.
REQUIRED = ("WEBHOOK_SECRET", "AIRBYTE_NOTIFICATION_TOKEN", "AIRFLOW_API_URL", "AIRFLOW_USERNAME")


def settings_fields() -> dict[str, bool]:
    """Environment name of each settings field -> whether it holds a secret."""
    prefix = WebhookSettings.model_config.get("env_prefix", "")
    return {
        f"{prefix}{name}".upper(): SecretStr
        in (field.annotation, *typing.get_args(field.annotation))
        for name, field in WebhookSettings.model_fields.items()
    }


def receiver_variables() -> dict[str, tuple[str, ...]]:
    """The Airflow Variables the receiver looks up: per connections-file entry the names
    that may hold its connection id, and the notification channels' settings."""
    found = {
        key: (entry.connection_variable,)
        if isinstance(entry.connection_variable, str)
        else tuple(entry.connection_variable)
        for key, entry in load_connections().connections.items()
        if entry.connection_variable
    }
    found["channels"] = (CHANNELS_VARIABLE, EMAILS_VARIABLE, OUTBOX_VARIABLE)
    return found


def env_problems(deploy: dict, external_secret: dict) -> list[str]:
    spec, problems = rd.container(deploy), []
    items = spec.get("env") or []
    names = [item["name"] for item in items]
    plain = {item["name"]: str(item["value"]) for item in items if "value" in item}
    fields = settings_fields()
    conn_id = (
        plain.get("AIRBYTE_CONN_ID") or WebhookSettings.model_fields["airbyte_conn_id"].default
    )
    connections = {f"AIRFLOW_CONN_{c.upper()}" for c in (conn_id, EmailChannel().smtp_conn_id)}
    variables = {f"AIRFLOW_VAR_{v}" for names_ in receiver_variables().values() for v in names_}
    if spec.get("envFrom"):
        problems.append("envFrom loads variables nobody checks; name each one")
    problems += [f"{n} is set twice" for n in sorted({n for n in names if names.count(n) > 1})]
    for name in names:
        if name not in fields and name not in connections and name not in variables:
            problems.append(f"{name} is read by nothing in the receiver")
        elif (fields.get(name) or name.startswith("AIRFLOW_CONN_")) and name in plain:
            problems.append(f"{name} is a secret given as a plain value")
    missing = [n for n in (*REQUIRED, f"AIRFLOW_CONN_{conn_id.upper()}") if n not in names]
    problems += [f"{n} is not set" for n in missing]
    for key, candidates in receiver_variables().items():
        if key != "channels" and not any(f"AIRFLOW_VAR_{c}" in names for c in candidates):
            problems.append(f"no AIRFLOW_VAR_ of {candidates}: notifications of {key} are ignored")
    if deploy["spec"].get("replicas", 1) > 1 and "LEDGER_URL" not in names:
        problems.append("several replicas without LEDGER_URL: each would keep its own ledger")
    if plain.get("WEBHOOK_HOST", rd.image().env.get("WEBHOOK_HOST")) not in ("0.0.0.0", "::"):  # noqa: S104
        problems.append(
            "WEBHOOK_HOST is not every interface: the kubelet and Service cannot connect"
        )
    return problems + secret_ref_problems(deploy, external_secret)


def secret_ref_problems(deploy: dict, external_secret: dict) -> list[str]:
    """The pod's ``secretKeyRef``s and the keys the ExternalSecret renders are the same."""
    problems = []
    target = external_secret["spec"]["target"].get("name") or external_secret["metadata"]["name"]
    rendered = set(external_secret["spec"]["target"]["template"]["data"])
    referenced = set()
    for item in rd.container(deploy).get("env") or []:
        ref = (item.get("valueFrom") or {}).get("secretKeyRef")
        if ref is None:
            continue
        referenced.add(ref["key"])
        if ref["name"] != target or ref["key"] not in rendered:
            problems.append(
                f"{item['name']}: the Secret {target} has no {ref['name']}/{ref['key']}"
            )
        if ref.get("optional"):
            problems.append(f"{item['name']}: an optional secret hides a missing key")
    problems += [f"the Secret's {key} is used by nothing" for key in sorted(rendered - referenced)]
    if external_secret["metadata"].get("namespace") != deploy["metadata"].get("namespace"):
        problems.append("the ExternalSecret is not in the Deployment's namespace")
    return problems


def test_every_env_var_is_one_the_receiver_reads():
    assert env_problems(rd.deployment(), tm.find("ExternalSecret", rd.NAME)) == []


def test_settings_fields_are_read_from_the_model():
    fields = settings_fields()
    assert fields["WEBHOOK_SECRET"] is True
    assert fields["LEDGER_URL"] is True
    assert fields["WEBHOOK_PORT"] is False


def _plain(item: dict, value: str) -> None:
    item.pop("valueFrom")
    item["value"] = value


ENV_BREAKAGES = [
    (
        "unknown-setting",
        "deploy",
        lambda d: rd.container(d)["env"].append({"name": "WEBHOOK_SECRETS", "value": "x"}),
        "WEBHOOK_SECRETS is read by nothing",
    ),
    (
        "unused-connection",
        "deploy",
        lambda d: rd.container(d)["env"].append(
            {
                "name": "AIRFLOW_CONN_WAREHOUSE_DEFAULT",
                "valueFrom": rd.env_item(d, "LEDGER_URL")["valueFrom"],
            }
        ),
        "AIRFLOW_CONN_WAREHOUSE_DEFAULT is read by nothing",
    ),
    (
        "other-conn-id",
        "deploy",
        lambda d: rd.env_item(d, "AIRBYTE_CONN_ID").update(value="airbyte_cloud"),
        "AIRFLOW_CONN_AIRBYTE_CLOUD is not set",
    ),
    (
        "plain-secret",
        "deploy",
        lambda d: _plain(rd.env_item(d, "WEBHOOK_SECRET"), "0123456789abcdef"),
        "WEBHOOK_SECRET is a secret given as a plain value",
    ),
    (
        "no-ledger",
        "deploy",
        lambda d: rd.container(d)["env"].remove(rd.env_item(d, "LEDGER_URL")),
        "several replicas without LEDGER_URL",
    ),
    (
        "variable-missing",
        "deploy",
        lambda d: rd.container(d)["env"].remove(
            rd.env_item(d, "AIRFLOW_VAR_AIRBYTE_HUBSPOT_CONNECTION_ID")
        ),
        "notifications of hubspot are ignored",
    ),
    (
        "loopback",
        "deploy",
        lambda d: rd.env_item(d, "WEBHOOK_HOST").update(value="127.0.0.1"),
        "WEBHOOK_HOST is not every interface",
    ),
    (
        "unrendered-key",
        "deploy",
        lambda d: rd.env_item(d, "AIRFLOW_PASSWORD")["valueFrom"]["secretKeyRef"].update(
            key="PASSWORD"
        ),
        "has no airbyte-receiver/PASSWORD",
    ),
    (
        "optional",
        "deploy",
        lambda d: rd.env_item(d, "AIRFLOW_PASSWORD")["valueFrom"]["secretKeyRef"].update(
            optional=True
        ),
        "an optional secret",
    ),
    (
        "envFrom",
        "deploy",
        lambda d: rd.container(d).update(envFrom=[{"secretRef": {"name": "airbyte-receiver"}}]),
        "envFrom loads variables nobody checks",
    ),
    (
        "target",
        "secret",
        lambda s: s["spec"]["target"].update(name="receiver"),
        "the Secret receiver has no",
    ),
    (
        "unused-key",
        "secret",
        lambda s: s["spec"]["target"]["template"]["data"].update(EXTRA="{{ .ledger_url }}"),
        "EXTRA is used by nothing",
    ),
]


@pytest.mark.parametrize(
    ("target", "breakage", "expected"),
    [case[1:] for case in ENV_BREAKAGES],
    ids=[case[0] for case in ENV_BREAKAGES],
)
def test_env_check_catches_mismatches(target: str, breakage: Callable[[dict], Any], expected: str):
    docs = {"deploy": rd.deployment(), "secret": tm.find("ExternalSecret", rd.NAME)}
    breakage(docs[target])
    problems = env_problems(docs["deploy"], docs["secret"])
    assert any(expected in problem for problem in problems), problems


def test_rendered_secret_configures_the_receiver(monkeypatch: pytest.MonkeyPatch):
    from airflow.providers.smtp.hooks.smtp import SmtpHook
    from airflow.sdk import BaseHook

    from plugins.airbyte_client.config import AuthType
    from plugins.airbyte_hook import resolve_settings

    env = rd.pod_env(rd.deployment(), rd.rendered_secret())
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = WebhookSettings()
    assert settings.webhook_secret.get_secret_value() == rd.SAMPLE_REMOTE["webhook_secret"]
    assert settings.airflow_password.get_secret_value() == rd.SAMPLE_REMOTE["airflow_password"]
    assert settings.ledger_database == rd.SAMPLE_REMOTE["ledger_url"]
    assert settings.ledger_database.startswith("postgresql+psycopg2://")

    airbyte = resolve_settings(settings.airbyte_conn_id)
    assert airbyte.auth_type is AuthType.CLIENT_CREDENTIALS
    assert airbyte.api_root == f"{rd.SAMPLE_REMOTE['airbyte_url']}/api/public/v1"
    assert (airbyte.login, airbyte.secret, airbyte.workspace_id) == (
        rd.SAMPLE_REMOTE["airbyte_client_id"],
        rd.SAMPLE_REMOTE["airbyte_client_secret"],
        rd.SAMPLE_REMOTE["airbyte_workspace_id"],
    )

    smtp = SmtpHook(EmailChannel().smtp_conn_id)
    smtp.smtp_connection = BaseHook.get_connection(smtp.smtp_conn_id)
    assert (smtp.host, smtp.port, smtp.smtp_user, smtp.smtp_password) == (
        "smtp.example.com",
        587,
        "alerts",
        'sm"tp',
    )
    assert (smtp.use_ssl, smtp.smtp_starttls, smtp.from_email) == (
        False,
        True,
        "airflow@example.com",
    )


def test_deploy_readme_documents_every_secret_key():
    readme = (tm.DEPLOY / "README.md").read_text(encoding="utf-8")
    section = readme.partition("## 7. Standalone webhook receiver")[2].partition("\n## ")[0]
    assert section, "deploy/README.md has no section on the standalone receiver"
    keys = tm.find("ExternalSecret", rd.NAME)["spec"]["target"]["template"]["data"]
    assert [key for key in keys if f"`{key}`" not in section] == []
