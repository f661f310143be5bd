"""The standalone receiver's pod (``deploy/receiver/receiver.yaml``) hardened, and sized.

Non-root (the image's numeric user), read-only root filesystem, no privilege escalation, no
capabilities, RuntimeDefault seccomp, no service account token, no host namespaces; /tmp an
emptyDir that holds every path the container writes to (HOME, AIRFLOW_HOME, the SQLite
ledger's folder, as the image and the pod set them), and no other writable mount; requests
and limits for CPU and memory, requests within limits. Every checker has a test that feeds
it a broken copy and expects a complaint.
"""

from __future__ import annotations

import copy
import posixpath
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.deploy import receiver_deploy as rd

QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
SCALE = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
SCALE.update({"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40})


def effective_security(deploy: dict) -> dict[str, Any]:
    """The container's security context over the pod's (the container's fields win)."""
    pod = rd.pod_spec(deploy).get("securityContext") or {}
    shared = ("runAsNonRoot", "runAsUser", "runAsGroup", "seccompProfile")
    return {
        **{k: pod[k] for k in shared if k in pod},
        **(rd.container(deploy).get("securityContext") or {}),
    }


def writable_paths(deploy: dict) -> list[str]:
    """Where the container's process writes: HOME, AIRFLOW_HOME, the SQLite ledger's folder
    and /tmp, as the image's ENV and the pod's env set them."""
    plain = {
        i["name"]: str(i["value"]) for i in rd.container(deploy).get("env") or [] if "value" in i
    }
    env = {**rd.image().env, **plain}
    paths = [
        "/tmp",  # noqa: S108
        env.get("HOME", "/"),
        env.get("AIRFLOW_HOME", posixpath.join(env.get("HOME", "/"), "airflow")),
    ]
    paths.append(posixpath.dirname(env.get("LEDGER_PATH", ".webhook/ledger.db")))
    return list(dict.fromkeys(paths))


def security_problems(deploy: dict) -> list[str]:
    context, spec, problems = effective_security(deploy), rd.pod_spec(deploy), []
    uid, _, gid = (rd.image().user or "").partition(":")
    expected = {
        "runAsNonRoot": True,
        "runAsUser": int(uid) if uid.isdigit() else "the image's numeric USER",
        "runAsGroup": int(gid) if gid.isdigit() else context.get("runAsGroup"),
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    problems += [
        f"{k} is {context.get(k)!r}, not {v!r}" for k, v in expected.items() if context.get(k) != v
    ]
    capabilities = context.get("capabilities") or {}
    if (
        "ALL" not in (capabilities.get("drop") or [])
        or capabilities.get("add")
        or context.get("privileged")
    ):
        problems.append("capabilities are not all dropped")
    if spec.get("automountServiceAccountToken") is not False:
        problems.append("the pod gets a service account token it never uses")
    if any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")):
        problems.append("the pod shares a host namespace")
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    scratch = []
    for mount in rd.container(deploy).get("volumeMounts") or []:
        if "emptyDir" in volumes.get(mount["name"], {}):
            scratch.append(mount["mountPath"])
        elif not mount.get("readOnly"):
            problems.append(f"{mount['mountPath']} is a writable mount that is no emptyDir")
    for path in writable_paths(deploy):
        if not path.startswith("/") or not any(
            path == m or path.startswith(m.rstrip("/") + "/") for m in scratch
        ):
            problems.append(f"the image writes to {path}, which no emptyDir holds")
    return problems


def quantity(value: Any) -> float:
    found = QUANTITY.match(str(value))
    if found is None:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    return float(found.group(1)) * SCALE[found.group(2)]


def resource_problems(deploy: dict) -> list[str]:
    resources, problems = rd.container(deploy).get("resources") or {}, []
    for kind in ("cpu", "memory"):
        request = (resources.get("requests") or {}).get(kind)
        limit = (resources.get("limits") or {}).get(kind)
        if request is None or limit is None:
            problems.append(f"{kind}: request {request}, limit {limit}")
        elif quantity(request) > quantity(limit):
            problems.append(f"{kind}: request {request} above limit {limit}")
    return problems


def test_pod_is_non_root_on_a_read_only_root_filesystem():
    assert security_problems(rd.deployment()) == []


def test_pod_requests_and_limits_cpu_and_memory():
    assert resource_problems(rd.deployment()) == []
    assert quantity("256Mi") == 256 * 2**20
    assert quantity("100m") == pytest.approx(0.1)


def _drop_both(deploy: dict, key: str) -> None:
    """``key`` dropped from the container's and the pod's security context."""
    rd.container(deploy)["securityContext"].pop(key)
    rd.pod_spec(deploy)["securityContext"].pop(key)


def _drop(path: tuple) -> Callable[[dict], None]:
    def breakage(deploy: dict) -> None:
        parent = deploy
        for step in path[:-1]:
            parent = rd.container(parent) if step == "container" else parent[step]
        parent.pop(path[-1])

    return breakage


@pytest.mark.parametrize(
    "breakage",
    [
        _drop(("container", "securityContext", "readOnlyRootFilesystem")),
        lambda d: _drop_both(d, "runAsNonRoot"),
        _drop(("container", "securityContext", "capabilities")),
        _drop(("container", "volumeMounts")),
        _drop(("spec", "template", "spec", "automountServiceAccountToken")),
        lambda d: rd.container(d)["securityContext"].update(runAsUser=0),
        lambda d: rd.container(d)["securityContext"].update(runAsUser=1000),
        lambda d: rd.container(d)["securityContext"].update(allowPrivilegeEscalation=True),
        lambda d: _drop_both(d, "seccompProfile"),
        lambda d: rd.container(d)["volumeMounts"][0].update(mountPath="/scratch"),
        lambda d: rd.pod_spec(d).update(
            volumes=[{"name": "tmp", "hostPath": {"path": "/srv/receiver"}}]
        ),
    ],
    ids=[
        "writable-root",
        "may-run-as-root",
        "capabilities",
        "no-tmp",
        "token",
        "uid-0",
        "other-uid",
        "escalation",
        "no-seccomp",
        "tmp-elsewhere",
        "hostPath",
    ],
)
def test_security_check_catches_a_weaker_pod(breakage: Callable[[dict], Any]):
    deploy = rd.deployment()
    breakage(deploy)
    assert security_problems(deploy)


@pytest.mark.parametrize(
    "breakage",
    [
        lambda r: r.pop("limits"),
        lambda r: r["requests"].pop("memory"),
        lambda r: r["requests"].update(cpu="2"),
    ],
    ids=["no-limits", "no-memory-request", "request-above-limit"],
)
def test_resource_check_catches_missing_or_inverted_values(breakage: Callable[[dict], Any]):
    deploy = copy.deepcopy(rd.deployment())
    breakage(rd.container(deploy)["resources"])
    assert resource_problems(deploy)
