"""The standalone receiver's deployment files as the tests read them: the Dockerfile, the
manifests under ``deploy/receiver/``, the pod's environment with the ExternalSecret rendered
from sample remote values, and the runtime dependencies ``requirements.txt`` installs."""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.dockerfile import Image, parse
from tests.deploy.test_manifests import DEPLOY, REPO_ROOT, find, render_secret

RECEIVER_DIR = DEPLOY / "receiver"
DOCKERFILE = RECEIVER_DIR / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
MANIFEST_FILES = tuple(
    RECEIVER_DIR / name for name in ("receiver.yaml", "externalsecret.yaml", "networkpolicies.yaml")
)
REQUIREMENTS = REPO_ROOT / "requirements.txt"
CONSTRAINTS = REPO_ROOT / "constraints.txt"
NAME = "airbyte-receiver"
#: Airbyte's namespace (deploy/security/networkpolicies/airbyte.yaml).
AIRBYTE_NAMESPACE = "integration"
#: The policy that says which pods are the Airbyte server (and its API ports).
AIRBYTE_SERVER_POLICY = "airbyte-server-allow-airflow"
#: Remote values for the receiver's ExternalSecret, with characters that break naive JSON.
SAMPLE_REMOTE = {
    "webhook_secret": "webhook-secret-0123456789abcdef",
    "notification_token": "notification-token-0123456789abcdef",
    "airflow_username": "airbyte-receiver",
    "airflow_password": 'air"flow\\pw',
    "ledger_url": "postgresql+psycopg2://receiver:pw@ledger.data.svc.cluster.local:5432/airbyte_receiver",
    "airbyte_url": "http://airbyte-server.integration.svc.cluster.local:8001",
    "airbyte_client_id": "receiver-app",
    "airbyte_client_secret": 'cl"ient\\secret',
    "airbyte_workspace_id": "ws-1",
    "smtp_host": "smtp.example.com",
    "smtp_port": "587",
    "smtp_username": "alerts",
    "smtp_password": 'sm"tp',
    "smtp_from_email": "airflow@example.com",
}


def image() -> Image:
    return parse(DOCKERFILE.read_text(encoding="utf-8"))


def deployment() -> dict[str, Any]:
    return find("Deployment", NAME)


def pod_spec(deploy: dict[str, Any]) -> dict[str, Any]:
    return deploy["spec"]["template"]["spec"]


def container(deploy: dict[str, Any]) -> dict[str, Any]:
    (only,) = pod_spec(deploy)["containers"]
    return only


def pod_labels(deploy: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in deploy["spec"]["template"]["metadata"]["labels"].items()}


def env_item(deploy: dict[str, Any], name: str) -> dict[str, Any]:
    """The container's ``env`` entry ``name`` (to edit in a broken copy)."""
    (item,) = [e for e in container(deploy).get("env") or [] if e["name"] == name]
    return item


def rendered_secret() -> dict[str, str]:
    return render_secret(find("ExternalSecret", NAME), SAMPLE_REMOTE)


def pod_env(deploy: dict[str, Any], secret: dict[str, str]) -> dict[str, str]:
    """The container's environment: plain values, and Secret keys looked up in ``secret``."""
    env = {}
    for item in container(deploy).get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
        else:
            env[item["name"]] = secret[item["valueFrom"]["secretKeyRef"]["key"]]
    return env


def container_port(deploy: dict[str, Any], port: int | str) -> int | None:
    """A port number, or a container port's name, as the container's port number."""
    if isinstance(port, int):
        return port
    ports = {p.get("name"): p["containerPort"] for p in container(deploy).get("ports") or []}
    return ports.get(port)


def _requirements(path: Path) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def pinned_requirements() -> list[Requirement]:
    return _requirements(REQUIREMENTS)


def installed_closure(requirements: list[Requirement]) -> set[str]:
    """Canonical names of the distributions ``pip install`` of ``requirements`` brings, read
    from the installed metadata (markers evaluated for this interpreter)."""
    environment = {
        "python_version": f"{sys.version_info.major}.{sys.version_info.minor}",
        "sys_platform": sys.platform,
        "platform_system": platform.system(),
        "platform_machine": platform.machine(),
    }
    seen: set[tuple[str, frozenset[str]]] = set()
    stack = [(r.name, frozenset(r.extras)) for r in requirements]
    while stack:
        name, extras = stack.pop()
        if (canonicalize_name(name), extras) in seen:
            continue
        seen.add((canonicalize_name(name), extras))
        for text in importlib.metadata.distribution(name).requires or []:
            requirement = Requirement(text)
            if requirement.marker is not None and not any(
                requirement.marker.evaluate({**environment, "extra": extra})
                for extra in (extras or {""})
            ):
                continue
            stack.append((requirement.name, frozenset(requirement.extras)))
    return {name for name, _ in seen}
