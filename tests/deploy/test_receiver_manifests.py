"""Offline checks of the standalone receiver's manifests (``deploy/receiver/*.yaml``).

Schemas as for every manifest under ``deploy/`` (``test_manifests``), and the objects around
the pods: two replicas on different nodes, a Service and a PodDisruptionBudget that select
them, one port from the image through the container, ``WEBHOOK_PORT`` and the Service, and
probes on a path the receiver's real app serves without credentials. The pod itself:
``test_receiver_pod``; its NetworkPolicies: ``test_receiver_network``. Every checker has a
test that feeds it a broken copy and expects a complaint.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from include.receiver.app import create_app
from include.receiver.settings import WebhookSettings
from tests.deploy import receiver_deploy as rd
from tests.deploy import test_manifests as tm

PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
REQUIRED_PROBES = ("readinessProbe", "livenessProbe")


def manifest_docs() -> list[tuple[Path, dict]]:
    return [(path, doc) for path in rd.MANIFEST_FILES for doc in tm.load_documents(path)]


def test_receiver_files_exist_and_hold_the_objects():
    for path in (rd.DOCKERFILE, rd.DOCKERIGNORE, *rd.MANIFEST_FILES):
        assert path.is_file(), f"{tm.rel(path)} is missing"
    kinds = sorted((doc["kind"], doc["metadata"]["name"]) for _, doc in manifest_docs())
    assert kinds == sorted(
        [
            ("Deployment", rd.NAME),
            ("Service", rd.NAME),
            ("PodDisruptionBudget", rd.NAME),
            ("ExternalSecret", rd.NAME),
            ("NetworkPolicy", rd.NAME),
            ("NetworkPolicy", "airbyte-server-allow-receiver"),
        ]
    )
    assert all(item in tm.manifests() for item in manifest_docs()), "not under deploy/"


@pytest.mark.parametrize("item", manifest_docs(), ids=tm.manifest_id)
def test_receiver_manifest_validates_against_its_schema(item: tuple[Path, dict]):
    assert tm.manifest_errors(item[1]) == []


TYPOS = [
    ("Deployment", ("spec", "template", "spec", "securityContext", "runAsNonRoot"), "runAsNonroot"),
    ("Deployment", ("spec", "template", "spec", "topologySpreadConstraints", 0, "maxSkew"), "skew"),
    ("Service", ("spec", "ports", 0, "targetPort"), "targetport"),
    ("PodDisruptionBudget", ("spec", "minAvailable"), "minAvailible"),
    ("ExternalSecret", ("spec", "data", 0, "remoteRef", "key"), "kee"),
    ("NetworkPolicy", ("spec", "ingress", 0, "from"), "form"),
]


@pytest.mark.parametrize(("kind", "path", "typo"), TYPOS, ids=[t[2] for t in TYPOS])
def test_validators_reject_a_misspelt_receiver_field(kind: str, path: tuple, typo: str):
    assert tm.manifest_errors(tm.rename_key(tm.find(kind, rd.NAME), path, typo))


def test_a_misspelt_container_field_is_rejected():
    deploy = rd.deployment()
    rd.container(deploy)["securityContext"]["readOnlyRootFileSystem"] = True
    del rd.container(deploy)["securityContext"]["readOnlyRootFilesystem"]
    assert tm.manifest_errors(deploy)


# --------------------------------------------------------------------------------------------
# Replicas, Service, PodDisruptionBudget, ports
# --------------------------------------------------------------------------------------------


def spread_over_nodes(deploy: dict) -> bool:
    """Whether the scheduler may never put two replicas on one node."""
    spec, labels = rd.pod_spec(deploy), rd.pod_labels(deploy)
    for constraint in spec.get("topologySpreadConstraints") or []:
        if (
            constraint["topologyKey"] == "kubernetes.io/hostname"
            and constraint["whenUnsatisfiable"] == "DoNotSchedule"
            and constraint["maxSkew"] == 1
            and constraint.get("minDomains", 1) >= deploy["spec"]["replicas"]
            and tm.selector_matches(
                constraint.get("labelSelector") or {"matchLabels": {"": "-"}}, labels
            )
        ):
            return True
    anti = ((spec.get("affinity") or {}).get("podAntiAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or []
    return any(
        term["topologyKey"] == "kubernetes.io/hostname"
        and tm.selector_matches(term.get("labelSelector") or {"matchLabels": {"": "-"}}, labels)
        for term in anti
    )


def service_problems(deploy: dict, service: dict, budget: dict) -> list[str]:
    problems, labels = [], rd.pod_labels(deploy)
    replicas = deploy["spec"].get("replicas", 1)
    if replicas != 2:
        problems.append(f"{replicas} replicas, not 2")
    if not spread_over_nodes(deploy):
        problems.append("two replicas may land on one node")
    if not tm.selector_matches(deploy["spec"]["selector"], labels):
        problems.append("the Deployment's selector does not match its pods")
    if not tm.selector_matches(
        {"matchLabels": service["spec"].get("selector") or {"": "-"}}, labels
    ):
        problems.append("the Service does not select the receiver's pods")
    if not tm.selector_matches(budget["spec"]["selector"], labels):
        problems.append("the PodDisruptionBudget does not select the receiver's pods")
    if budget["spec"].get("minAvailable") != 1 or replicas <= 1:
        problems.append("the budget is not minAvailable 1 below the replica count")
    for doc in (service, budget):
        if doc["metadata"].get("namespace") != deploy["metadata"].get("namespace"):
            problems.append(f"the {doc['kind']} is in another namespace than the Deployment")
    return problems


def port_problems(deploy: dict, service: dict) -> list[str]:
    """The image's port, the container's, the Service's target and WEBHOOK_PORT agree."""
    (listening,) = [p["containerPort"] for p in rd.container(deploy)["ports"]]
    env = rd.pod_env(deploy, rd.rendered_secret())
    found = {
        "image EXPOSE": [int(p.split("/")[0]) for p in rd.image().expose],
        "WEBHOOK_PORT": [int(env.get("WEBHOOK_PORT") or rd.image().env.get("WEBHOOK_PORT", 0))],
        "Service targetPort": [
            rd.container_port(deploy, p.get("targetPort", p["port"]))
            for p in service["spec"]["ports"]
        ],
    }
    return [
        f"{what} {ports} != containerPort {listening}"
        for what, ports in found.items()
        if ports != [listening]
    ]


def test_two_replicas_on_different_nodes_behind_a_service_and_a_budget():
    deploy = rd.deployment()
    assert (
        service_problems(
            deploy, tm.find("Service", rd.NAME), tm.find("PodDisruptionBudget", rd.NAME)
        )
        == []
    )
    assert port_problems(deploy, tm.find("Service", rd.NAME)) == []


@pytest.mark.parametrize(
    ("target", "breakage"),
    [
        ("deploy", lambda d: d["spec"].update(replicas=1)),
        ("deploy", lambda d: d["spec"]["template"]["spec"].pop("topologySpreadConstraints")),
        (
            "deploy",
            lambda d: d["spec"]["template"]["spec"]["topologySpreadConstraints"][0].pop(
                "minDomains"
            ),
        ),
        (
            "deploy",
            lambda d: d["spec"]["template"]["spec"]["topologySpreadConstraints"][0].update(
                whenUnsatisfiable="ScheduleAnyway"
            ),
        ),
        ("service", lambda s: s["spec"]["selector"].update({"app.kubernetes.io/name": "receiver"})),
        ("budget", lambda b: b["spec"].update(minAvailable=2)),
        ("budget", lambda b: b["metadata"].update(namespace="integration")),
    ],
    ids=[
        "one-replica",
        "no-spread",
        "no-minDomains",
        "soft-spread",
        "service-selector",
        "budget-2",
        "budget-ns",
    ],
)
def test_service_check_catches_mismatches(target: str, breakage: Callable[[dict], None]):
    docs = {
        "deploy": rd.deployment(),
        "service": tm.find("Service", rd.NAME),
        "budget": tm.find("PodDisruptionBudget", rd.NAME),
    }
    breakage(docs[target])
    assert service_problems(docs["deploy"], docs["service"], docs["budget"])


@pytest.mark.parametrize(
    ("target", "breakage"),
    [
        ("deploy", lambda d: rd.container(d)["ports"][0].update(containerPort=8080)),
        ("deploy", lambda d: rd.env_item(d, "WEBHOOK_PORT").update(value="9000")),
        ("service", lambda s: s["spec"]["ports"][0].update(targetPort=8080)),
        ("service", lambda s: s["spec"]["ports"][0].update(targetPort="web")),
    ],
    ids=["container-port", "webhook-port", "target-port", "target-port-name"],
)
def test_port_check_catches_mismatches(target: str, breakage: Callable[[dict], None]):
    docs = {"deploy": rd.deployment(), "service": tm.find("Service", rd.NAME)}
    breakage(docs[target])
    assert port_problems(docs["deploy"], docs["service"])


# --------------------------------------------------------------------------------------------
# Probes: a path the receiver's app serves, without credentials
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    """The receiver's real app (its lifespan not run: the probes' route needs none of it)."""
    ledger = tmp_path_factory.mktemp("ledger") / "ledger.db"
    settings = WebhookSettings(
        webhook_secret=rd.SAMPLE_REMOTE["webhook_secret"], ledger_path=str(ledger)
    )
    return TestClient(create_app(settings))


def probe_problems(deploy: dict, client: TestClient) -> list[str]:
    served = {r.path for r in client.app.routes if "GET" in (getattr(r, "methods", None) or ())}
    spec, problems = rd.container(deploy), []
    (listening,) = [p["containerPort"] for p in spec["ports"]]
    problems += [f"no {name}" for name in REQUIRED_PROBES if name not in spec]
    for name in (p for p in PROBES if p in spec):
        get = spec[name].get("httpGet")
        if get is None:
            problems.append(f"{name} is not an HTTP GET")
            continue
        if get["path"] not in served:
            problems.append(
                f"{name}: the app serves no GET {get['path']} (it serves {sorted(served)})"
            )
        elif client.get(get["path"]).status_code != 200:
            problems.append(f"{name}: GET {get['path']} does not answer 200 without credentials")
        if rd.container_port(deploy, get["port"]) != listening:
            problems.append(f"{name}: port {get['port']} is not the container's {listening}")
    return problems


def test_probes_hit_a_path_the_app_serves(app_client: TestClient):
    assert probe_problems(rd.deployment(), app_client) == []


@pytest.mark.parametrize(
    "breakage",
    [
        lambda c: c["readinessProbe"]["httpGet"].update(path="/health"),
        lambda c: c["livenessProbe"]["httpGet"].update(path="/events"),  # POST only
        lambda c: c["startupProbe"]["httpGet"].update(port=8080),
        lambda c: c.pop("livenessProbe"),
        lambda c: c.update(readinessProbe={"tcpSocket": {"port": "http"}}),
    ],
    ids=["unknown-path", "post-only-path", "wrong-port", "no-liveness", "not-http"],
)
def test_probe_check_catches_mismatches(app_client: TestClient, breakage: Callable[[dict], None]):
    deploy = rd.deployment()
    breakage(rd.container(deploy))
    assert probe_problems(deploy, app_client)
