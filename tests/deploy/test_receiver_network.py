"""The standalone receiver's NetworkPolicies (``deploy/receiver/networkpolicies.yaml``).

``airbyte-receiver`` selects the receiver's pods and restricts both directions: ingress only
from Airbyte's namespace, on the container's port; egress to DNS, the pods the Airbyte
server policy (``deploy/security/networkpolicies/airbyte.yaml``) guards on its API ports, the
Airflow api-server pods the chart labels on the port of ``AIRFLOW_API_URL`` (whose host is
the chart's api-server Service), and the ports of the ledger's and the SMTP server's URLs.
``airbyte-server-allow-receiver`` makes the Airbyte server accept the receiver on those API
ports. Every checker has a test that feeds it a broken copy and expects a complaint.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.deploy import receiver_deploy as rd
from tests.deploy import test_manifests as tm

SERVER_ALLOW = "airbyte-server-allow-receiver"
#: Namespaces that must not be admitted besides Airbyte's.
OTHER_NAMESPACES = (tm.NAMESPACE, "default", "kube-system")


def ingress_ports(rules: list[dict], deploy: dict) -> set[tuple[str, int | None]]:
    """The rules' ports, a port name resolved as the receiver's container names it."""
    return {
        (p.get("protocol", "TCP"), rd.container_port(deploy, p["port"]))
        for rule in rules
        for p in rule.get("ports") or []
    }


def ingress_problems(policy: dict, deploy: dict) -> list[str]:
    spec, problems = policy["spec"], []
    (listening,) = [p["containerPort"] for p in rd.container(deploy)["ports"]]
    if policy["metadata"].get("namespace") != deploy["metadata"].get("namespace"):
        problems.append("the policy is not in the receiver's namespace")
    if not tm.selector_matches(spec["podSelector"], rd.pod_labels(deploy)):
        problems.append("the policy does not select the receiver's pods")
    if not {"Ingress", "Egress"} <= set(spec.get("policyTypes") or []):
        problems.append("the policy does not restrict both ingress and egress")
    airbyte = tm.namespace_labels(rd.AIRBYTE_NAMESPACE)
    for rule in spec.get("ingress") or []:
        peers = rule.get("from") or []
        if not peers:
            problems.append("an ingress rule admits every source")
        if not rule.get("ports") or ingress_ports([rule], deploy) != {("TCP", listening)}:
            problems.append(f"an ingress rule admits ports other than TCP {listening}")
        for peer in peers:
            namespaces = peer.get("namespaceSelector")
            if "ipBlock" in peer or namespaces is None:
                problems.append(f"ingress peer {peer} is not a namespace selector")
            elif not tm.selector_matches(namespaces, airbyte) or any(
                tm.selector_matches(namespaces, tm.namespace_labels(other))
                for other in OTHER_NAMESPACES
            ):
                problems.append(f"ingress peer {peer} is not exactly Airbyte's namespace")
    if not spec.get("ingress"):
        problems.append("no ingress rule: Airbyte's notifications cannot arrive")
    return problems


def reaches(rule: dict, namespace: str, labels: dict[str, str], home: str) -> bool:
    """Whether one of the rule's peers selects pods with ``labels`` in ``namespace``."""
    for peer in rule.get("to") or []:
        if "ipBlock" in peer:
            continue
        namespaces = peer.get("namespaceSelector")
        in_namespace = (
            namespace == home
            if namespaces is None
            else tm.selector_matches(namespaces, tm.namespace_labels(namespace))
        )
        if in_namespace and tm.selector_matches(peer.get("podSelector"), labels):
            return True
    return False


def url_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or {"http": 80, "https": 443}.get(parts.scheme, 0)


def egress_problems(policy: dict, deploy: dict, airbyte_policy: dict, values: dict) -> list[str]:
    rules, home, problems = policy["spec"].get("egress") or [], policy["metadata"]["namespace"], []
    env = rd.pod_env(deploy, rd.rendered_secret())
    problems += [
        "an egress rule allows everything" for r in rules if not r.get("to") and not r.get("ports")
    ]
    dns = [r for r in rules if reaches(r, "kube-system", {"k8s-app": "kube-dns"}, home)]
    if not {("UDP", 53), ("TCP", 53)} <= tm.rule_ports(dns):
        problems.append("egress does not allow DNS")
    server = airbyte_policy["spec"]["podSelector"].get("matchLabels") or {}
    to_airbyte = [
        r for r in rules if reaches(r, airbyte_policy["metadata"]["namespace"], server, home)
    ]
    api_ports = tm.rule_ports(airbyte_policy["spec"]["ingress"])
    if not to_airbyte or not api_ports <= tm.rule_ports(to_airbyte):
        problems.append(f"egress does not reach the Airbyte server on {sorted(api_ports)}")
    url = env.get("AIRFLOW_API_URL", "")
    service = (urlsplit(url).hostname or "").split(".")
    if service[0] != f"{tm.RELEASE}-api-server" or service[1:2] not in ([], [tm.NAMESPACE]):
        problems.append(f"AIRFLOW_API_URL {url} is not the chart's api-server Service")
    api_server = tm.pod_labels(values, "api-server")
    to_api = [r for r in rules if reaches(r, tm.NAMESPACE, api_server, home)]
    if ("TCP", url_port(url)) not in tm.rule_ports(to_api):
        problems.append(f"egress does not reach the api-server pods on {url_port(url)}")
    smtp = json.loads(env.get("AIRFLOW_CONN_SMTP_DEFAULT", "{}"))
    needed = {
        "the ledger": url_port(env.get("LEDGER_URL", "")) or 5432,
        "SMTP": int(smtp.get("port", 25)),
    }
    for what, port in needed.items():
        if ("TCP", port) not in tm.rule_ports(rules):
            problems.append(f"egress does not allow {what} (TCP {port})")
    return problems


def server_allow_problems(
    allow: dict, deploy: dict, airbyte_policy: dict, receiver_policy: dict
) -> list[str]:
    """The Airbyte server admits the receiver on every port its egress uses to reach it."""
    spec, problems = allow["spec"], []
    if allow["metadata"].get("namespace") != airbyte_policy["metadata"]["namespace"]:
        problems.append("the policy is not in Airbyte's namespace")
    if spec["podSelector"] != airbyte_policy["spec"]["podSelector"]:
        problems.append("the policy does not select the pods the Airbyte server policy selects")
    home = deploy["metadata"]["namespace"]
    admitting = [
        rule
        for rule in spec.get("ingress") or []
        for peer in rule.get("from") or []
        if "namespaceSelector" in peer
        and tm.selector_matches(peer["namespaceSelector"], tm.namespace_labels(home))
        and (peer.get("podSelector") or {}).get("matchLabels")
        and tm.selector_matches(peer["podSelector"], rd.pod_labels(deploy))
    ]
    server = airbyte_policy["spec"]["podSelector"].get("matchLabels") or {}
    used = tm.rule_ports(
        [
            r
            for r in receiver_policy["spec"]["egress"]
            if reaches(r, allow["metadata"]["namespace"], server, home)
        ]
    )
    if not admitting or not used <= tm.rule_ports(admitting):
        problems.append(f"the Airbyte server does not admit the receiver's pods on {sorted(used)}")
    return problems


def documents() -> dict[str, Any]:
    return {
        "policy": tm.find("NetworkPolicy", rd.NAME),
        "allow": tm.find("NetworkPolicy", SERVER_ALLOW),
        "airbyte": tm.find("NetworkPolicy", rd.AIRBYTE_SERVER_POLICY),
        "deploy": rd.deployment(),
        "values": tm.load_values(),
    }


def all_problems(docs: dict[str, Any]) -> list[str]:
    return [
        *ingress_problems(docs["policy"], docs["deploy"]),
        *egress_problems(docs["policy"], docs["deploy"], docs["airbyte"], docs["values"]),
        *server_allow_problems(docs["allow"], docs["deploy"], docs["airbyte"], docs["policy"]),
    ]


def test_receiver_talks_only_to_airbyte_airflow_its_ledger_and_dns():
    assert all_problems(documents()) == []


BREAKAGES: list[tuple[str, str, Callable[[dict], Any]]] = [
    ("open-ingress", "policy", lambda p: p["spec"]["ingress"][0].pop("from")),
    (
        "any-namespace",
        "policy",
        lambda p: p["spec"]["ingress"][0]["from"][0].update(namespaceSelector={}),
    ),
    (
        "own-namespace",
        "policy",
        lambda p: p["spec"]["ingress"][0]["from"].append({"podSelector": {}}),
    ),
    (
        "ip-block",
        "policy",
        lambda p: p["spec"]["ingress"][0]["from"].append({"ipBlock": {"cidr": "0.0.0.0/0"}}),
    ),
    ("all-ports", "policy", lambda p: p["spec"]["ingress"][0].pop("ports")),
    ("other-port", "policy", lambda p: p["spec"]["ingress"][0]["ports"][0].update(port=8080)),
    ("ingress-only", "policy", lambda p: p["spec"].update(policyTypes=["Ingress"])),
    ("pods", "policy", lambda p: p["spec"]["podSelector"]["matchLabels"].update(app="receiver")),
    ("no-dns", "policy", lambda p: p["spec"]["egress"].pop(0)),
    (
        "no-airbyte",
        "policy",
        lambda p: p["spec"]["egress"][1]["to"][0]["podSelector"]["matchLabels"].update(
            component="webapp"
        ),
    ),
    ("one-api-port", "policy", lambda p: p["spec"]["egress"][1]["ports"].pop()),
    (
        "no-api-server",
        "policy",
        lambda p: p["spec"]["egress"][2]["to"][0]["podSelector"]["matchLabels"].update(
            component="scheduler"
        ),
    ),
    ("no-ledger", "policy", lambda p: p["spec"]["egress"].pop(3)),
    ("no-smtp", "policy", lambda p: p["spec"]["egress"].pop(4)),
    ("open-egress", "policy", lambda p: p["spec"]["egress"].append({})),
    (
        "api-url",
        "deploy",
        lambda d: rd.env_item(d, "AIRFLOW_API_URL").update(value="http://airflow-webserver:8080"),
    ),
    (
        "api-url-port",
        "deploy",
        lambda d: rd.env_item(d, "AIRFLOW_API_URL").update(value="http://airflow-api-server:8443"),
    ),
    (
        "allow-namespace",
        "allow",
        lambda a: a["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"].update(
            {"kubernetes.io/metadata.name": "default"}
        ),
    ),
    ("allow-any-pod", "allow", lambda a: a["spec"]["ingress"][0]["from"][0].update(podSelector={})),
    ("allow-one-port", "allow", lambda a: a["spec"]["ingress"][0]["ports"].pop()),
    (
        "allow-pods",
        "allow",
        lambda a: a["spec"]["podSelector"]["matchLabels"].update(component="worker"),
    ),
]


@pytest.mark.parametrize(
    ("target", "breakage"), [b[1:] for b in BREAKAGES], ids=[b[0] for b in BREAKAGES]
)
def test_network_check_catches_mismatches(target: str, breakage: Callable[[dict], Any]):
    docs = documents()
    breakage(docs[target])
    assert all_problems(docs)
