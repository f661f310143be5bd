"""Offline checks of the Kubernetes deployment under ``deploy/``.

- Every YAML file parses, and every manifest names itself (apiVersion, kind, metadata.name).
- Core kinds validate against the Kubernetes OpenAPI schemas that ``kubernetes-validate``
  ships, in strict mode (unknown fields fail, like ``kubectl apply --validate=strict``).
- Custom resources validate against the CRDs in ``crds/`` beside this file (or ``$K8S_CRDS_DIR``):
  the version entry matching the apiVersion, which must be served, with unknown fields rejected
  wherever the CRD declares properties and does not preserve unknown fields (what the API
  server's strict field validation does); ``metadata`` is checked as an ObjectMeta.
- The pieces agree with each other: the git-sync layout, ``dags_folder`` and ``PYTHONPATH``
  (by parsing the DAGs in a copy of the repository laid out as the pods see it); NetworkPolicy
  selectors and the pod labels the chart and values produce; the ExternalSecret and the
  Secret the values load; the rendered Connections and the hook that reads them; the alert
  expressions and the metrics the statsd-exporter mapping produces.

Every checker has a test that feeds it a broken copy and expects a complaint.
"""

from __future__ import annotations

import copy
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import promql_parser
import pytest
import yaml

from tests.deploy.statsd_mapping import (
    VALUES_FILE,
    project_statsd_metrics,
    statsd_mappings,
    translate,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
HELM_DIR = DEPLOY / "helm"
NETPOL_FILE = DEPLOY / "security" / "networkpolicies" / "airbyte.yaml"
EXTERNALSECRET_FILE = DEPLOY / "security" / "secrets" / "externalsecrets-airbyte.yaml"
CLIENT_CREDENTIALS_FILE = (
    DEPLOY
    / "security"
    / "secrets"
    / "alternatives"
    / "externalsecret-airbyte-client-credentials.yaml"
)
SERVICEMONITOR_FILE = DEPLOY / "monitoring" / "servicemonitor.yaml"
RULES_FILE = DEPLOY / "monitoring" / "prometheusrule.yaml"

#: Kubernetes version the core kinds are validated against.
K8S_VERSION = "1.33"
#: Helm release name and namespace that deploy/README.md installs the chart with.
RELEASE = "airflow"
NAMESPACE = "airflow"
#: The chart runs git-sync with its checkout published as this link inside the dags volume.
GIT_SYNC_LINK = "repo"
#: The Service the chart creates for statsd-exporter (useStandardNaming: false), i.e. the
#: `job` label of the scraped series when the ServiceMonitor sets no jobLabel.
STATSD_SERVICE = f"{RELEASE}-statsd"
#: DAG ids the deployment must load (the scheduled and event-driven ones).
REQUIRED_DAG_IDS = {
    "airbyte_stripe_to_postgres",
    "airbyte_multi_source_sync",
    "airbyte_event_driven_sync",
}


def crds_dir() -> Path:
    override = os.environ.get("K8S_CRDS_DIR")
    return Path(override) if override else Path(__file__).with_name("crds")


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def rel(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix()


def load_documents(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc is not None]


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml"))


def is_helm_values(path: Path) -> bool:
    return path.is_relative_to(HELM_DIR)


def manifests() -> list[tuple[Path, dict]]:
    return [
        (path, doc)
        for path in yaml_files()
        if not is_helm_values(path)
        for doc in load_documents(path)
    ]


def manifest_id(item: tuple[Path, dict]) -> str:
    path, doc = item
    return f"{rel(path)}:{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"


def find(kind: str, name: str) -> dict:
    for _, doc in manifests():
        if doc.get("kind") == kind and doc["metadata"]["name"] == name:
            return copy.deepcopy(doc)
    raise LookupError(f"no {kind}/{name} under deploy/")


def load_values() -> dict:
    (values,) = load_documents(VALUES_FILE)
    return values


def rename_key(doc: dict, path: tuple, new_key: str) -> dict:
    """A deep copy of ``doc`` with the key at ``path`` renamed (a typo'd field name)."""
    broken = copy.deepcopy(doc)
    parent = broken
    for step in path[:-1]:
        parent = parent[step]
    parent[new_key] = parent.pop(path[-1])
    return broken


# --------------------------------------------------------------------------------------------
# Every file parses; every manifest names itself
# --------------------------------------------------------------------------------------------


def test_deploy_tree_has_every_promised_file():
    for path in (
        VALUES_FILE,
        NETPOL_FILE,
        EXTERNALSECRET_FILE,
        CLIENT_CREDENTIALS_FILE,
        SERVICEMONITOR_FILE,
        RULES_FILE,
        DEPLOY / "README.md",
    ):
        assert path.is_file(), f"{rel(path)} is missing"


@pytest.mark.parametrize("path", yaml_files(), ids=rel)
def test_yaml_parses_and_every_manifest_names_itself(path: Path):
    docs = load_documents(path)
    assert docs, f"{rel(path)} holds no YAML document"
    if is_helm_values(path):
        assert len(docs) == 1, f"{rel(path)}: a Helm values file is one mapping"
        assert isinstance(docs[0], dict)
        return
    for doc in docs:
        assert isinstance(doc, dict), f"{rel(path)}: a document is not a mapping"
        for field in ("apiVersion", "kind"):
            assert isinstance(doc.get(field), str), f"{rel(path)}: no {field}"
            assert doc[field], f"{rel(path)}: empty {field}"
        name = (doc.get("metadata") or {}).get("name")
        assert isinstance(name, str), f"{rel(path)}: {doc['kind']} has no metadata.name"
        assert name, f"{rel(path)}: {doc['kind']} has an empty metadata.name"


def test_no_two_manifests_claim_the_same_object():
    seen: dict[tuple, str] = {}
    for path, doc in manifests():
        key = (doc["kind"], doc["metadata"].get("namespace"), doc["metadata"]["name"])
        assert key not in seen, f"{key} is defined in both {seen[key]} and {rel(path)}"
        seen[key] = rel(path)


# --------------------------------------------------------------------------------------------
# Schemas: core kinds (kubernetes-validate) and custom resources (CRDs)
# --------------------------------------------------------------------------------------------


def split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def is_custom_resource(doc: dict) -> bool:
    group, _ = split_api_version(doc["apiVersion"])
    return "." in group and not group.endswith(".k8s.io")


def k8s_errors(doc: dict) -> list[str]:
    """Errors of a core-kind manifest against Kubernetes' own schema (strict)."""
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = ".".join(str(p) for p in error.path) or "<root>"
        return [f"{where}: {error.message}"]
    return []


@cache
def crd_index() -> dict[tuple[str, str], dict]:
    directory = crds_dir()
    if not directory.is_dir():
        raise FileNotFoundError(
            f"CRD directory {directory} does not exist; set K8S_CRDS_DIR to the folder holding "
            "the external-secrets.io and monitoring.coreos.com CRDs"
        )
    index = {}
    for path in sorted(directory.glob("*.y*ml")):
        for doc in load_documents(path):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                index[(doc["spec"]["group"], doc["spec"]["names"]["kind"])] = doc
    return index


_SCHEMA_MAPS = ("properties", "patternProperties", "definitions")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SCHEMA_SINGLES = ("items", "additionalProperties", "not")


def strict_schema(schema: Any) -> Any:
    """A CRD structural schema made strict: unknown fields are errors, not pruned.

    ``x-kubernetes-*`` markers are dropped (jsonschema does not know them), and every object
    schema that declares ``properties`` without ``additionalProperties`` or
    ``x-kubernetes-preserve-unknown-fields`` gets ``additionalProperties: false``.
    """
    if not isinstance(schema, dict):
        return schema
    strict: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes-"):
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            strict[key] = {name: strict_schema(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            strict[key] = [strict_schema(sub) for sub in value]
        elif key in _SCHEMA_SINGLES and isinstance(value, dict):
            strict[key] = strict_schema(value)
        else:
            strict[key] = value
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        strict["additionalProperties"] = False
    return strict


def crd_version_schema(doc: dict) -> dict:
    """``openAPIV3Schema`` of the served CRD version matching the manifest's apiVersion."""
    group, version = split_api_version(doc["apiVersion"])
    crd = crd_index().get((group, doc["kind"]))
    if crd is None:
        raise LookupError(f"no CRD for kind {doc['kind']} in group {group} under {crds_dir()}")
    entries = {entry["name"]: entry for entry in crd["spec"]["versions"]}
    served = sorted(name for name, entry in entries.items() if entry.get("served"))
    if version not in entries:
        raise LookupError(f"{doc['kind']} has no version {version}; served: {served}")
    if not entries[version].get("served"):
        raise LookupError(f"{doc['apiVersion']} {doc['kind']} is not served; served: {served}")
    return entries[version]["schema"]["openAPIV3Schema"]


def crd_errors(doc: dict, *, strict: bool = True) -> list[str]:
    """Errors of a custom resource against its CRD (and of its metadata as an ObjectMeta)."""
    try:
        schema = crd_version_schema(doc)
    except LookupError as error:
        return [str(error)]
    validator = jsonschema.Draft4Validator(strict_schema(schema) if strict else schema)
    errors = [
        f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(doc)
    ]
    # The CRD schema leaves metadata open; the API server checks it as an ObjectMeta.
    as_configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc.get("metadata")}
    return errors + k8s_errors(as_configmap)


def manifest_errors(doc: dict) -> list[str]:
    return crd_errors(doc) if is_custom_resource(doc) else k8s_errors(doc)


@pytest.mark.parametrize("item", manifests(), ids=manifest_id)
def test_manifest_validates_against_its_schema(item: tuple[Path, dict]):
    _, doc = item
    assert manifest_errors(doc) == []


def test_crds_directory_holds_the_crds_the_manifests_need():
    kinds = {doc["kind"] for _, doc in manifests() if is_custom_resource(doc)}
    assert {"ExternalSecret", "ServiceMonitor", "PrometheusRule"} <= kinds
    indexed = {kind for _, kind in crd_index()}
    assert kinds <= indexed, f"no CRD under {crds_dir()} for {sorted(kinds - indexed)}"


BROKEN_FIELD_NAMES = [
    ("NetworkPolicy", "airbyte-server-allow-airflow", ("spec", "podSelector"), "podSelecter"),
    (
        "NetworkPolicy",
        "airbyte-server-allow-airflow",
        ("spec", "ingress", 0, "from", 0, "namespaceSelector"),
        "namespaceSelecter",
    ),
    ("NetworkPolicy", "airflow-airbyte-clients-egress", ("spec", "egress", 0, "to"), "too"),
    ("ExternalSecret", "airflow-airbyte-credentials", ("spec", "secretStoreRef"), "storeRef"),
    (
        "ExternalSecret",
        "airflow-airbyte-credentials",
        ("spec", "data", 0, "remoteRef", "property"),
        "propery",
    ),
    ("ExternalSecret", "airflow-airbyte-credentials", ("metadata", "labels"), "label"),
    ("ServiceMonitor", "airflow-statsd", ("spec", "endpoints", 0, "port"), "prot"),
    ("ServiceMonitor", "airflow-statsd", ("spec", "namespaceSelector", "matchNames"), "names"),
    ("PrometheusRule", "airflow-airbyte-alerts", ("spec", "groups", 0, "rules", 0, "expr"), "exp"),
]


@pytest.mark.parametrize(
    ("kind", "name", "path", "typo"),
    BROKEN_FIELD_NAMES,
    ids=[f"{kind}:{'.'.join(map(str, p))}->{t}" for kind, _, p, t in BROKEN_FIELD_NAMES],
)
def test_validators_reject_a_misspelt_field(kind, name, path, typo):
    broken = rename_key(find(kind, name), path, typo)
    assert manifest_errors(broken), f"a {kind} with {typo!r} instead of {path[-1]!r} passed"


def test_strictness_is_what_catches_misspelt_crd_fields():
    """The bare CRD schema would let a typo through (the API server would prune it silently)."""
    broken = rename_key(
        find("ExternalSecret", "airflow-airbyte-credentials"),
        ("spec", "refreshInterval"),
        "refresh",
    )
    assert crd_errors(broken, strict=False) == []
    assert any("refresh" in error for error in crd_errors(broken))


def test_crd_validation_rejects_unserved_versions_and_bad_values():
    external_secret = find("ExternalSecret", "airflow-airbyte-credentials")
    unserved = dict(external_secret, apiVersion="external-secrets.io/v1beta1")
    assert any("not served" in e for e in crd_errors(unserved))
    unknown = dict(external_secret, apiVersion="external-secrets.io/v9")
    assert any("no version v9" in e for e in crd_errors(unknown))
    bad_enum = copy.deepcopy(external_secret)
    bad_enum["spec"]["secretStoreRef"]["kind"] = "ClusterSecretstore"
    assert crd_errors(bad_enum)


def test_k8s_validation_rejects_bad_values():
    policy = find("NetworkPolicy", "airbyte-server-allow-airflow")
    policy["spec"]["policyTypes"] = "Ingress"  # must be a list
    assert k8s_errors(policy)


# --------------------------------------------------------------------------------------------
# git-sync layout, dags_folder and PYTHONPATH agree (and really load the DAGs)
# --------------------------------------------------------------------------------------------


def values_env(values: dict) -> dict[str, str]:
    return {item["name"]: str(item.get("value", "")) for item in values.get("env") or []}


def synced_layout(values: dict) -> dict[str, Any]:
    """Where the chart puts the checkout and what Airflow is told, per the values file."""
    home = values.get("airflowHome") or "/opt/airflow"
    dags = values.get("dags") or {}
    git_sync = dags.get("gitSync") or {}
    sub_path = git_sync.get("subPath") or ""
    mount = dags.get("mountPath") or f"{home}/dags"
    # The chart's `airflow_dags` helper: mountPath if set, else <home>/dags/repo/<subPath>.
    chart_dags_folder = dags.get("mountPath") or f"{home}/dags/repo/{sub_path}"
    env = values_env(values)
    core = (values.get("config") or {}).get("core") or {}
    return {
        "git_sync_enabled": bool(git_sync.get("enabled")),
        "sub_path": sub_path,
        "repo_root": posixpath.join(mount, GIT_SYNC_LINK),
        "chart_dags_folder": posixpath.normpath(chart_dags_folder),
        "env_dags_folder": env.get("AIRFLOW__CORE__DAGS_FOLDER"),
        "config_dags_folder": core.get("dags_folder"),
        "dags_folder": posixpath.normpath(
            env.get("AIRFLOW__CORE__DAGS_FOLDER") or core.get("dags_folder") or chart_dags_folder
        ),
        "pythonpath": [p for p in env.get("PYTHONPATH", "").split(":") if p],
        "env_ignore_syntax": env.get("AIRFLOW__CORE__DAG_IGNORE_FILE_SYNTAX"),
        "config_ignore_syntax": core.get("dag_ignore_file_syntax"),
    }


def deferrable_by_default(values: dict) -> bool:
    """A triggerer runs, and the env and airflow.cfg both make operators defer by default."""
    env = values_env(values).get("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "")
    config = ((values.get("config") or {}).get("operators") or {}).get("default_deferrable", "")
    return (
        bool((values.get("triggerer") or {}).get("enabled"))
        and env.lower() == "true"
        and str(config).lower() == "true"
    )


def layout_problems(values: dict) -> list[str]:
    layout = synced_layout(values)
    problems = []
    if not layout["git_sync_enabled"]:
        problems.append("dags.gitSync.enabled is not true")
    if layout["sub_path"]:
        problems.append(f"dags.gitSync.subPath is {layout['sub_path']!r}, not '' (whole repo)")
    git_sync = values["dags"]["gitSync"]
    if git_sync.get("branch") != "main" or git_sync.get("ref", "main") != "main":
        problems.append("git-sync does not follow the branch main")
    env_folder, config_folder = layout["env_dags_folder"], layout["config_dags_folder"]
    if (
        env_folder
        and config_folder
        and posixpath.normpath(env_folder) != posixpath.normpath(config_folder)
    ):
        problems.append("AIRFLOW__CORE__DAGS_FOLDER and config.core.dags_folder differ")
    if layout["env_ignore_syntax"] != layout["config_ignore_syntax"]:
        problems.append("the env and config.core disagree on dag_ignore_file_syntax")
    if not deferrable_by_default(values):
        problems.append("operators do not defer by default although a triggerer runs")
    repo_dags = posixpath.join(layout["repo_root"], "dags")
    if layout["dags_folder"] != repo_dags:
        problems.append(f"dags_folder is {layout['dags_folder']}, not the checkout's {repo_dags}")
    if posixpath.normpath(layout["repo_root"]) not in map(posixpath.normpath, layout["pythonpath"]):
        problems.append(
            f"PYTHONPATH {layout['pythonpath']} lacks the checkout {layout['repo_root']}"
        )
    return problems


def test_git_sync_layout_dags_folder_and_pythonpath_agree():
    assert layout_problems(load_values()) == []
    layout = synced_layout(load_values())
    assert layout["repo_root"] == "/opt/airflow/dags/repo"
    assert layout["dags_folder"] == "/opt/airflow/dags/repo/dags"
    assert layout["chart_dags_folder"] == "/opt/airflow/dags/repo"


@pytest.mark.parametrize(
    "breakage",
    [
        lambda v: v["dags"]["gitSync"].update(subPath="dags"),
        lambda v: v["dags"]["gitSync"].update(enabled=False),
        lambda v: v["dags"].update(mountPath="/opt/airflow/git"),
        lambda v: v.update(env=[e for e in v["env"] if e["name"] != "PYTHONPATH"]),
        lambda v: v["config"]["core"].update(dags_folder="/opt/airflow/dags"),
        lambda v: v["config"]["core"].update(dag_ignore_file_syntax="regexp"),
        lambda v: v["config"]["operators"].update(default_deferrable="False"),
    ],
    ids=[
        "subPath-dags",
        "no-git-sync",
        "other-mountPath",
        "no-PYTHONPATH",
        "config-drift",
        "syntax",
        "not-deferrable",
    ],
)
def test_layout_check_catches_inconsistent_values(breakage: Callable[[dict], None]):
    values = copy.deepcopy(load_values())
    breakage(values)
    assert layout_problems(values)


_SKIPPED_IN_CHECKOUT = {".git", ".venv", ".airflow", ".pytest_cache", ".ruff_cache", "build"}
_SKIPPED_FILES = shutil.ignore_patterns("__pycache__", "*.pyc", "*.db", "*.sqlite*", "*.log")


def lay_out_checkout(root: Path, layout: dict, *, airflowignore: bool = True) -> Path:
    """Copy the repository where git-sync v4 puts it: <mount>/.worktrees/<sha>, linked as repo."""
    link = root / layout["repo_root"].lstrip("/")
    worktree = link.parent / ".worktrees" / "0123456789abcdef"
    worktree.mkdir(parents=True)
    for entry in REPO_ROOT.iterdir():
        if entry.name in _SKIPPED_IN_CHECKOUT or (
            entry.name == ".airflowignore" and not airflowignore
        ):
            continue
        if entry.is_dir():
            shutil.copytree(entry, worktree / entry.name, ignore=_SKIPPED_FILES)
        else:
            shutil.copy2(entry, worktree / entry.name)
    link.symlink_to(worktree, target_is_directory=True)
    return link


PROBE = r"""
import json, sys, traceback
result = {"imports": {}, "import_failures": {}, "bags": {}}
for module in ("plugins.airbyte_hook", "include.validation", "plugins.airbyte_trigger"):
    try:
        __import__(module)
        result["imports"][module] = sys.modules[module].__file__
    except Exception:
        result["import_failures"][module] = traceback.format_exc(limit=2)
try:  # what the triggerer does with the classpath the deferred operator serialises
    from airflow.sdk.module_loading import import_string
    classpath, _ = import_string("plugins.airbyte_trigger.AirbyteJobTrigger")(
        1, "airbyte_default", 0.0
    ).serialize()
    import_string(classpath)
    result["trigger_classpath"] = classpath
except Exception:
    result["import_failures"]["trigger classpath"] = traceback.format_exc(limit=2)
from airflow.dag_processing.dagbag import DagBag
for folder in sys.argv[1:]:
    bag = DagBag(dag_folder=folder)
    result["bags"][folder] = {
        "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
        "dags": {dag_id: dag.fileloc for dag_id, dag in bag.dags.items()},
        "files": sorted(str(stat.file) for stat in bag.dagbag_stats),
    }
print("PROBE-RESULT " + json.dumps(result))
"""


def run_probe(tmp_path: Path, values: dict, folders: list[str], *, pythonpath: bool = True) -> dict:
    """Import the shared modules and parse ``folders`` in a fresh interpreter.

    The environment is the values file's ``env`` re-rooted under ``tmp_path``; the working
    directory is empty, so nothing but PYTHONPATH can make the repository importable.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON"))}
    for name, value in values_env(values).items():
        if name == "PYTHONPATH":
            if pythonpath:
                env[name] = ":".join(str(tmp_path / p.lstrip("/")) for p in value.split(":") if p)
        elif value.startswith("/"):
            env[name] = str(tmp_path / value.lstrip("/"))
        else:
            env[name] = value
    env["AIRFLOW_HOME"] = str(tmp_path / "airflow-home")
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    workdir = tmp_path / "cwd"
    workdir.mkdir(exist_ok=True)
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, *folders],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    line = next(line for line in completed.stdout.splitlines() if line.startswith("PROBE-RESULT "))
    return json.loads(line.removeprefix("PROBE-RESULT "))


def parse_problems(bag: dict, folder: Path, dags_dir: Path) -> list[str]:
    """What is wrong with one DagBag result: errors, missing DAGs, non-DAG files parsed."""
    problems = [
        f"import error in {f}: {e.splitlines()[-1]}" for f, e in bag["import_errors"].items()
    ]
    missing = REQUIRED_DAG_IDS - set(bag["dags"])
    if missing:
        problems.append(f"DAGs not loaded: {sorted(missing)}")
    resolved_dags = dags_dir.resolve()
    for name in bag["files"]:
        path = (folder / name).resolve()
        if not path.is_relative_to(resolved_dags):
            problems.append(f"parsed as a DAG file, but outside dags/: {name}")
    for dag_id, fileloc in bag["dags"].items():
        if not Path(fileloc).resolve().is_relative_to(resolved_dags):
            problems.append(f"DAG {dag_id} comes from {fileloc}, outside dags/")
    return problems


@pytest.fixture(scope="module", params=["", "dags"], ids=["whole-repo", "subPath-dags"])
def synced_probe(request, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One probe run over the synced checkout, parsing two folders: the dags_folder the values
    configure, and the chart's own default dags_folder (the repository root for an empty
    subPath, where only .airflowignore keeps non-DAG code out; repo/dags for subPath dags).
    Both git-sync layouts: the whole repository, and subPath ``dags`` (git-sync still checks
    out everything; PYTHONPATH keeps pointing at the repository root)."""
    root = tmp_path_factory.mktemp("synced")
    values = load_values()
    values["dags"]["gitSync"]["subPath"] = request.param
    layout = synced_layout(values)
    repo = lay_out_checkout(root, layout)
    configured = root / layout["dags_folder"].lstrip("/")
    chart_default = root / layout["chart_dags_folder"].lstrip("/")
    result = run_probe(root, values, [str(configured), str(chart_default)])
    return {
        "repo": repo,
        "result": result,
        "configured": configured,
        "chart_default": chart_default,
    }


def test_synced_layout_imports_the_shared_code_and_parses_only_dags(synced_probe: dict):
    repo, result, folder = synced_probe["repo"], synced_probe["result"], synced_probe["configured"]
    assert result["import_failures"] == {}
    assert result["trigger_classpath"] == "plugins.airbyte_trigger.AirbyteJobTrigger"
    for module, location in result["imports"].items():
        assert Path(location).resolve().is_relative_to(repo.resolve()), (
            f"{module} was imported from {location}, not from the synced checkout"
        )
    assert parse_problems(result["bags"][str(folder)], folder, repo / "dags") == []


def test_airflowignore_keeps_non_dag_code_out_of_a_repository_root_dags_folder(synced_probe: dict):
    """The safety net: with the chart's default dags_folder (the repository root) and the
    values' dag_ignore_file_syntax, the root .airflowignore must exclude every top-level
    folder that is not dags/."""
    repo, result = synced_probe["repo"], synced_probe["result"]
    folder = synced_probe["chart_default"]
    assert parse_problems(result["bags"][str(folder)], folder, repo / "dags") == []


def test_layout_probe_notices_a_missing_pythonpath_or_airflowignore(tmp_path: Path):
    values = load_values()
    layout = synced_layout(values)
    repo = lay_out_checkout(tmp_path, layout, airflowignore=False)
    dags_folder = tmp_path / layout["dags_folder"].lstrip("/")
    root = tmp_path / layout["repo_root"].lstrip("/")
    result = run_probe(tmp_path, values, [str(dags_folder), str(root)], pythonpath=False)

    assert set(result["import_failures"]) == {
        "plugins.airbyte_hook",
        "include.validation",
        "plugins.airbyte_trigger",
        "trigger classpath",
    }
    assert any(
        "import error" in p
        for p in parse_problems(result["bags"][str(dags_folder)], dags_folder, repo / "dags")
    )
    assert any(
        "outside dags/" in p for p in parse_problems(result["bags"][str(root)], root, repo / "dags")
    )


# --------------------------------------------------------------------------------------------
# NetworkPolicies select the pods the chart and the values label
# --------------------------------------------------------------------------------------------

#: Values section holding each chart component's extra pod labels.
COMPONENT_SECTIONS = {
    "worker": "workers",
    "triggerer": "triggerer",
    "scheduler": "scheduler",
    "dag-processor": "dagProcessor",
    "api-server": "apiServer",
    "statsd": "statsd",
}
AIRBYTE_CLIENTS = ("worker", "triggerer")
NOT_AIRBYTE_CLIENTS = ("scheduler", "dag-processor", "api-server", "statsd")


def pod_labels(values: dict, component: str) -> dict[str, str]:
    """The chart's pod labels (tier/component/release) + global and per-component labels."""
    labels = {"tier": "airflow", "component": component, "release": RELEASE}
    labels.update({str(k): str(v) for k, v in (values.get("labels") or {}).items()})
    section = values.get(COMPONENT_SECTIONS[component]) or {}
    labels.update({str(k): str(v) for k, v in (section.get("labels") or {}).items()})
    return labels


def selector_matches(selector: dict | None, labels: dict[str, str]) -> bool:
    """Kubernetes LabelSelector semantics (an absent selector matches everything)."""
    if selector is None:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != str(value):
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        wanted = [str(v) for v in expression.get("values") or []]
        if operator == "In":
            ok = key in labels and labels[key] in wanted
        elif operator == "NotIn":
            ok = key not in labels or labels[key] not in wanted
        elif operator == "Exists":
            ok = key in labels
        elif operator == "DoesNotExist":
            ok = key not in labels
        else:
            raise ValueError(f"unknown selector operator {operator}")
        if not ok:
            return False
    return True


def namespace_labels(namespace: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": namespace}


def rule_ports(rules: list[dict]) -> set[tuple[str, int]]:
    return {(p.get("protocol", "TCP"), p["port"]) for r in rules for p in r.get("ports") or []}


def network_problems(values: dict, ingress_policy: dict, egress_policy: dict) -> list[str]:
    problems = []
    clients = {c: pod_labels(values, c) for c in AIRBYTE_CLIENTS}
    others = {c: pod_labels(values, c) for c in NOT_AIRBYTE_CLIENTS}
    if not (values.get("triggerer") or {}).get("enabled", True):
        problems.append("the triggerer is disabled in the values")

    # Ingress to the Airbyte server: admitted from the Airflow namespace's clients only.
    ingress_rules = ingress_policy["spec"].get("ingress") or []
    airflow_peers = [
        peer
        for rule in ingress_rules
        for peer in rule.get("from") or []
        if "namespaceSelector" in peer
        and selector_matches(peer["namespaceSelector"], namespace_labels(NAMESPACE))
    ]
    if "Ingress" not in ingress_policy["spec"].get("policyTypes", []):
        problems.append("the Airbyte policy does not restrict ingress")
    if not airflow_peers:
        problems.append(f"no ingress peer selects the namespace {NAMESPACE}")
    for component, labels in clients.items():
        if not any(selector_matches(p.get("podSelector"), labels) for p in airflow_peers):
            problems.append(f"Airbyte ingress does not admit the Airflow {component} pods")
    for component, labels in others.items():
        if any(selector_matches(p.get("podSelector"), labels) for p in airflow_peers):
            problems.append(f"Airbyte ingress also admits the Airflow {component} pods")
    api_ports = rule_ports(ingress_rules)
    if not {("TCP", 8001), ("TCP", 8000)} <= api_ports:
        problems.append(f"Airbyte ingress ports {sorted(api_ports)} lack 8000/8001")

    # Egress of the clients: the same pods, and a way to the pods the ingress policy guards.
    spec = egress_policy["spec"]
    if egress_policy["metadata"].get("namespace") != NAMESPACE:
        problems.append(f"the egress policy is not in the namespace {NAMESPACE}")
    if "Egress" not in spec.get("policyTypes", []):
        problems.append("the client policy does not restrict egress")
    for component, labels in clients.items():
        if not selector_matches(spec.get("podSelector"), labels):
            problems.append(f"the egress policy does not select the {component} pods")
    for component, labels in others.items():
        if selector_matches(spec.get("podSelector"), labels):
            problems.append(f"the egress policy also restricts the {component} pods")
    airbyte_ns = namespace_labels(ingress_policy["metadata"]["namespace"])
    airbyte_pods = dict(ingress_policy["spec"]["podSelector"].get("matchLabels") or {})
    to_airbyte = [
        rule
        for rule in spec.get("egress") or []
        for peer in rule.get("to") or []
        if selector_matches(peer.get("namespaceSelector"), airbyte_ns)
        and "namespaceSelector" in peer
        and selector_matches(peer.get("podSelector"), airbyte_pods)
    ]
    if not to_airbyte:
        problems.append("no egress rule reaches the pods the Airbyte ingress policy selects")
    elif not api_ports <= rule_ports(to_airbyte):
        problems.append("egress to Airbyte does not cover the API ports")
    if not {("UDP", 53), ("TCP", 53)} <= rule_ports(spec.get("egress") or []):
        problems.append("egress does not allow DNS")
    return problems


def test_networkpolicies_select_the_pods_the_helm_values_label():
    problems = network_problems(
        load_values(),
        find("NetworkPolicy", "airbyte-server-allow-airflow"),
        find("NetworkPolicy", "airflow-airbyte-clients-egress"),
    )
    assert problems == []


@pytest.mark.parametrize(
    ("target", "breakage"),
    [
        ("values", lambda v: v["workers"].update(labels={})),
        ("values", lambda v: v["triggerer"].update(enabled=False)),
        ("values", lambda v: v["triggerer"].update(labels={"airbyte-api-client": "false"})),
        ("ingress", lambda p: p["spec"]["ingress"][0]["from"][0].update(podSelector={})),
        (
            "ingress",
            lambda p: p["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"].update(
                {"kubernetes.io/metadata.name": "airflow-prod"}
            ),
        ),
        ("ingress", lambda p: p["spec"]["podSelector"]["matchLabels"].update(component="webapp")),
        (
            "egress",
            lambda p: p["spec"]["podSelector"]["matchExpressions"][0].update(values=["worker"]),
        ),
        ("egress", lambda p: p["spec"]["egress"].pop(0)),
    ],
    ids=[
        "worker-labels-dropped",
        "no-triggerer",
        "triggerer-label-value",
        "any-airflow-pod",
        "wrong-namespace",
        "airbyte-labels-drift",
        "egress-misses-triggerer",
        "no-dns",
    ],
)
def test_network_check_catches_mismatches(target: str, breakage: Callable[[dict], None]):
    docs = {
        "values": copy.deepcopy(load_values()),
        "ingress": find("NetworkPolicy", "airbyte-server-allow-airflow"),
        "egress": find("NetworkPolicy", "airflow-airbyte-clients-egress"),
    }
    breakage(docs[target])
    assert network_problems(docs["values"], docs["ingress"], docs["egress"])


# --------------------------------------------------------------------------------------------
# ExternalSecret: the Secret the values load, with Connections Airflow and the hook accept
# --------------------------------------------------------------------------------------------

EXPECTED_SECRET_KEYS = {
    "AIRFLOW_CONN_AIRBYTE_DEFAULT",
    "AIRFLOW_CONN_WAREHOUSE_DEFAULT",
    "AIRFLOW_VAR_AIRBYTE_API_URL",
    "AIRFLOW_VAR_AIRBYTE_API_USERNAME",
    "AIRFLOW_VAR_AIRBYTE_API_PASSWORD",
}
#: Remote values with characters that break naive JSON templating.
SAMPLE_REMOTE = {
    "airbyte_url": "http://airbyte-server.integration.svc.cluster.local:8000",
    "airbyte_username": "airbyte",
    "airbyte_password": 'pa"ss\\word{{x}}',
    "warehouse_host": "warehouse.data.svc.cluster.local",
    "warehouse_port": "5432",
    "warehouse_database": "analytics",
    "warehouse_username": "loader",
    "warehouse_password": 'w@re"house/pw',
}

_ACTION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_SUPPORTED_ACTION = re.compile(r"\s*\.([A-Za-z_]\w*)\s*(?:\|\s*(toJson)\s*)?")


def render_go_template(template: str, data: dict[str, str]) -> str:
    """Render the subset of ESO's Go templates used here: ``{{ .key }}``, ``{{ .key | toJson }}``.

    Anything else raises, so a template this cannot vouch for fails the test instead of
    passing unchecked. A missing key raises too (ESO fails the sync on one).
    """

    def action(match: re.Match) -> str:
        parsed = _SUPPORTED_ACTION.fullmatch(match.group(1))
        if parsed is None:
            raise ValueError(f"unsupported template action {match.group(0)!r}")
        key, function = parsed.groups()
        if key not in data:
            raise KeyError(f"template uses .{key}, which spec.data does not define")
        return json.dumps(data[key]) if function == "toJson" else data[key]

    return _ACTION.sub(action, template)


def env_from_secret_names(values: dict) -> list[str]:
    raw = values.get("extraEnvFrom")
    items = yaml.safe_load(raw) if isinstance(raw, str) else raw
    return [item["secretRef"]["name"] for item in items or [] if "secretRef" in item]


def render_secret(external_secret: dict, remote: dict[str, str]) -> dict[str, str]:
    declared = {item["secretKey"] for item in external_secret["spec"].get("data") or []}
    data = {key: value for key, value in remote.items() if key in declared}
    template = external_secret["spec"]["target"]["template"]["data"]
    return {key: render_go_template(text, data) for key, text in template.items()}


def secret_problems(values: dict, external_secret: dict) -> list[str]:
    problems = []
    target = external_secret["spec"]["target"].get("name") or external_secret["metadata"]["name"]
    if target not in env_from_secret_names(values):
        problems.append(f"extraEnvFrom does not load the Secret {target}")
    if external_secret["metadata"].get("namespace") != NAMESPACE:
        problems.append(f"the ExternalSecret is not in the namespace {NAMESPACE}")
    if external_secret["spec"].get("refreshInterval") != "1h":
        problems.append("refreshInterval is not 1h")
    keys = set(external_secret["spec"]["target"]["template"]["data"])
    if keys != EXPECTED_SECRET_KEYS:
        problems.append(f"Secret keys {sorted(keys)} != {sorted(EXPECTED_SECRET_KEYS)}")
    try:
        rendered = render_secret(external_secret, SAMPLE_REMOTE)
    except (KeyError, ValueError) as error:
        return [*problems, str(error)]
    for key in sorted(k for k in rendered if k.startswith("AIRFLOW_CONN_")):
        try:
            json.loads(rendered[key])
        except ValueError as error:
            problems.append(f"{key} does not render to JSON: {error}")
    return problems


def test_externalsecret_feeds_the_secret_the_helm_values_load():
    assert (
        secret_problems(load_values(), find("ExternalSecret", "airflow-airbyte-credentials")) == []
    )


def test_rendered_connections_are_the_json_connection_form():
    rendered = render_secret(find("ExternalSecret", "airflow-airbyte-credentials"), SAMPLE_REMOTE)
    assert json.loads(rendered["AIRFLOW_CONN_AIRBYTE_DEFAULT"]) == {
        "conn_type": "airbyte",
        "host": SAMPLE_REMOTE["airbyte_url"],
        "login": SAMPLE_REMOTE["airbyte_username"],
        "password": SAMPLE_REMOTE["airbyte_password"],
    }
    assert json.loads(rendered["AIRFLOW_CONN_WAREHOUSE_DEFAULT"]) == {
        "conn_type": "postgres",
        "host": SAMPLE_REMOTE["warehouse_host"],
        "port": "5432",
        "schema": "analytics",
        "login": "loader",
        "password": SAMPLE_REMOTE["warehouse_password"],
    }
    assert rendered["AIRFLOW_VAR_AIRBYTE_API_URL"] == SAMPLE_REMOTE["airbyte_url"]
    assert rendered["AIRFLOW_VAR_AIRBYTE_API_USERNAME"] == "airbyte"
    assert rendered["AIRFLOW_VAR_AIRBYTE_API_PASSWORD"] == SAMPLE_REMOTE["airbyte_password"]


def test_hook_and_warehouse_read_the_rendered_secret(monkeypatch: pytest.MonkeyPatch):
    from include.warehouse import sqlalchemy_url
    from plugins.airbyte_client.config import AuthType
    from plugins.airbyte_hook import resolve_settings, variables_settings

    rendered = render_secret(find("ExternalSecret", "airflow-airbyte-credentials"), SAMPLE_REMOTE)
    for key, value in rendered.items():
        monkeypatch.setenv(key, value)

    settings = resolve_settings("airbyte_default")
    assert settings.api_root == f"{SAMPLE_REMOTE['airbyte_url']}/api/v1"
    assert settings.auth_type is AuthType.BASIC
    assert (settings.login, settings.secret) == ("airbyte", SAMPLE_REMOTE["airbyte_password"])

    fallback = variables_settings("airbyte_default")  # the Variables, as without the Connection
    assert fallback.api_root == settings.api_root
    assert (fallback.login, fallback.secret) == ("airbyte", SAMPLE_REMOTE["airbyte_password"])

    url = sqlalchemy_url("warehouse_default")
    assert url.startswith("postgresql+psycopg2://loader:")
    assert url.endswith("@warehouse.data.svc.cluster.local:5432/analytics")


@pytest.mark.parametrize(
    ("url", "api_root"),
    [
        ("https://api.airbyte.com/v1", "https://api.airbyte.com/v1"),
        (
            "http://airbyte-server.integration.svc.cluster.local:8001",
            "http://airbyte-server.integration.svc.cluster.local:8001/api/public/v1",
        ),
    ],
    ids=["cloud", "self-managed-1.x"],
)
def test_client_credentials_alternative_configures_the_public_api(monkeypatch, url, api_root):
    from plugins.airbyte_client.config import AuthType
    from plugins.airbyte_hook import resolve_settings

    (alternative,) = load_documents(CLIENT_CREDENTIALS_FILE)
    remote = {
        "url": url,
        "client_id": "app-id",
        "client_secret": 's"cret\\',
        "workspace_id": "ws-1",
    }
    rendered = render_secret(alternative, remote)
    assert set(rendered) == {"AIRFLOW_CONN_AIRBYTE_DEFAULT"}
    monkeypatch.setenv("AIRFLOW_CONN_AIRBYTE_DEFAULT", rendered["AIRFLOW_CONN_AIRBYTE_DEFAULT"])
    settings = resolve_settings("airbyte_default")
    assert settings.api_root == api_root
    assert settings.auth_type is AuthType.CLIENT_CREDENTIALS
    assert (settings.login, settings.secret, settings.workspace_id) == (
        "app-id",
        's"cret\\',
        "ws-1",
    )


@pytest.mark.parametrize(
    ("target", "breakage"),
    [
        ("secret", lambda es: es["spec"]["target"].update(name="airflow-airbyte")),
        ("secret", lambda es: es["metadata"].update(namespace="integration")),
        ("secret", lambda es: es["spec"].update(refreshInterval="24h")),
        (
            "secret",
            lambda es: es["spec"]["target"]["template"]["data"].pop("AIRFLOW_VAR_AIRBYTE_API_URL"),
        ),
        ("secret", lambda es: es["spec"]["data"].pop(0)),  # template key without a source
        (
            "secret",
            lambda es: es["spec"]["target"]["template"]["data"].update(
                AIRFLOW_CONN_AIRBYTE_DEFAULT='{"password": "{{ .airbyte_password }}"}'
            ),
        ),
        (
            "secret",
            lambda es: es["spec"]["target"]["template"]["data"].update(
                AIRFLOW_VAR_AIRBYTE_API_URL="{{ .airbyte_url | upper }}"
            ),
        ),
        (
            "values",
            lambda v: v.update(
                extraEnvFrom="- configMapRef:\n    name: airflow-airbyte-credentials\n"
            ),
        ),
    ],
    ids=[
        "target-renamed",
        "wrong-namespace",
        "refresh",
        "key-dropped",
        "undeclared-key",
        "naive-json-quoting",
        "unsupported-function",
        "not-a-secretRef",
    ],
)
def test_secret_check_catches_mismatches(target: str, breakage: Callable[[dict], None]):
    docs = {
        "values": copy.deepcopy(load_values()),
        "secret": find("ExternalSecret", "airflow-airbyte-credentials"),
    }
    breakage(docs[target])
    assert secret_problems(docs["values"], docs["secret"])


# --------------------------------------------------------------------------------------------
# Monitoring: the ServiceMonitor finds the chart's statsd Service; alerts use real metrics
# --------------------------------------------------------------------------------------------

#: Labels Prometheus adds to every scraped series of a ServiceMonitor target.
TARGET_LABELS = {"job", "instance", "namespace", "service", "pod", "endpoint", "container"}
#: Values for the placeholders of Airflow's metric names.
SAMPLE_NAME_VARIABLES = {
    "dag_id": "airbyte_stripe_to_postgres",
    "task_id": "stripe__sync",
    "state": "success",
}


def airflow_statsd_metrics() -> list[tuple[str, str]]:
    """(StatsD name, type) of every metric Airflow emits, modern and legacy names, prefixed."""
    import airflow

    registry = Path(airflow.__file__).parent / "_shared/observability/metrics/metrics_template.yaml"
    assert registry.is_file(), f"Airflow's metric registry moved from {registry}"
    variables = defaultdict(lambda: "sample", SAMPLE_NAME_VARIABLES)
    metrics = []
    for entry in yaml.safe_load(registry.read_text(encoding="utf-8"))["metrics"]:
        for name in (entry["name"], entry.get("legacy_name", "-")):
            if name and name != "-":
                metrics.append((f"airflow.{name.format_map(variables)}", entry["type"]))
    return metrics


def exported_metrics(values: dict) -> dict[str, set[str]]:
    """Prometheus metric name -> label names, for everything the exporter would expose."""
    mappings = statsd_mappings(values)
    exported: dict[str, set[str]] = defaultdict(set)
    for name, kind in [*airflow_statsd_metrics(), *project_statsd_metrics()]:
        metric, label_values = translate(name, mappings)
        labels = set(label_values)
        if kind == "timer":  # a summary, in seconds
            exported[metric] |= labels | {"quantile"}
            exported[f"{metric}_sum"] |= labels
            exported[f"{metric}_count"] |= labels
        else:
            exported[metric] |= labels
    return exported


def vector_selectors(expr: promql_parser.Expr) -> Iterator[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(expr, visit)
    return iter(found)


def rule_problems(values: dict, rule_doc: dict) -> list[str]:
    exported = exported_metrics(values)
    problems = []
    for group in rule_doc["spec"]["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule.get("record")
            try:
                expr = promql_parser.parse(rule["expr"])
            except ValueError as error:
                problems.append(f"{name}: PromQL does not parse: {error}")
                continue
            for selector in vector_selectors(expr):
                matchers = {m.name: m.value for m in selector.matchers.matchers}
                if "job" in matchers and matchers["job"] != STATSD_SERVICE:
                    problems.append(
                        f"{name}: job={matchers['job']!r}, scrape job is {STATSD_SERVICE}"
                    )
                metric = selector.name or matchers.get("__name__", "")
                if not metric.startswith("airflow_"):
                    continue
                if metric not in exported:
                    problems.append(f"{name}: no Airflow metric becomes {metric}")
                    continue
                unknown = set(matchers) - exported[metric] - TARGET_LABELS - {"__name__"}
                if unknown:
                    problems.append(f"{name}: {metric} has no label(s) {sorted(unknown)}")
            if "alert" in rule:
                if "severity" not in (rule.get("labels") or {}):
                    problems.append(f"{name}: no severity label")
                if "summary" not in (rule.get("annotations") or {}):
                    problems.append(f"{name}: no summary annotation")
    return problems


def servicemonitor_problems(values: dict, monitor: dict) -> list[str]:
    problems = []
    if not (values.get("statsd") or {}).get("enabled", True):
        problems.append("statsd is disabled in the values")
    service_labels = {"tier": "airflow", "component": "statsd", "release": RELEASE}
    service_labels.update({str(k): str(v) for k, v in (values.get("labels") or {}).items()})
    spec = monitor["spec"]
    if not selector_matches(spec.get("selector") or {"matchLabels": {"": "-"}}, service_labels):
        problems.append(f"the selector does not match the chart's {STATSD_SERVICE} Service")
    namespaces = spec.get("namespaceSelector") or {}
    # No namespaceSelector means the ServiceMonitor's own namespace.
    watched = namespaces.get("matchNames") or (
        [] if namespaces else [monitor["metadata"].get("namespace")]
    )
    if not namespaces.get("any") and NAMESPACE not in watched:
        problems.append(f"the ServiceMonitor does not look in the namespace {NAMESPACE}")
    ports = {endpoint.get("port") for endpoint in spec.get("endpoints") or []}
    if ports != {"statsd-scrape"}:
        problems.append(f"endpoints scrape ports {sorted(map(str, ports))}, not statsd-scrape")
    if spec.get("jobLabel"):
        problems.append(f"jobLabel changes the job label the alerts expect ({STATSD_SERVICE})")
    return problems


def test_servicemonitor_scrapes_the_charts_statsd_exporter():
    assert servicemonitor_problems(load_values(), find("ServiceMonitor", "airflow-statsd")) == []


def test_alerts_use_metrics_the_statsd_mapping_produces():
    assert rule_problems(load_values(), find("PrometheusRule", "airflow-airbyte-alerts")) == []


def test_alerts_cover_what_the_deployment_promises():
    rules = find("PrometheusRule", "airflow-airbyte-alerts")["spec"]["groups"][0]["rules"]
    by_name = {rule["alert"]: rule for rule in rules}
    assert {
        "AirbyteSyncTaskFailed",
        "AirbyteDagRunFailed",
        "AirbyteSyncTooSlow",
        "AirbyteStripeSyncStale",
    } <= set(by_name)
    assert "12h" in by_name["AirbyteStripeSyncStale"]["expr"]


def test_metric_mapping_matches_known_statsd_names():
    """Spot checks of the mapping simulation against names documented by the chart."""
    mappings = statsd_mappings(load_values())
    assert translate("airflow.dagrun.duration.success.my_dag", mappings) == (
        "airflow_dagrun_duration",
        {"dag_id": "my_dag"},
    )
    assert translate("airflow.ti.finish.my_dag.grp__sync.failed", mappings) == (
        "airflow_task_finish",
        {"dag_id": "my_dag", "task_id": "grp__sync", "state": "failed"},
    )
    assert translate("airflow.ti.finish", mappings) == ("airflow_ti_finish", {})
    assert translate("airflow.dag_processing.import_errors", mappings) == (
        "airflow_dag_processing_import_errors",
        {},
    )
    # A dotted task id that Airflow did not flatten has one field too many: not mapped.
    assert translate("airflow.ti.finish.my_dag.grp.sync.failed", mappings) == (
        "airflow_ti_finish_my_dag_grp_sync_failed",
        {},
    )
    # Glob rules win over regex rules whatever their order; regex rules search the name.
    assert translate("airflow.operator_failures_AirbyteSyncOperator", mappings) == (
        "airflow_operator_failures",
        {"operator": "AirbyteSyncOperator"},
    )
    assert translate("airflow.dagrun.dependency-check.d.t", mappings)[0] == (
        "airflow_dagrun_dependency_check"
    )
    assert translate("airflow.pool--x.9", mappings)[0] == "airflow_pool_x_9"


@pytest.mark.parametrize(
    ("target", "breakage"),
    [
        (
            "rules",
            lambda r: r["spec"]["groups"][0]["rules"][1].update(
                expr='increase(airflow_dagrun_duration_success_count{dag_id="a"}[30m]) > 0'
            ),
        ),
        (
            "rules",
            lambda r: r["spec"]["groups"][0]["rules"][1].update(
                expr='increase(airflow_dagrun_failed_count{job="statsd", dag_id="a"}[30m]) > 0'
            ),
        ),
        (
            "rules",
            lambda r: r["spec"]["groups"][0]["rules"][1].update(
                expr="sum by (dag_id) (increase(airflow_dagrun_failed_count[30m]) > 0"
            ),
        ),
        ("rules", lambda r: r["spec"]["groups"][0]["rules"][0]["labels"].pop("severity")),
        ("values", lambda v: v["statsd"].pop("extraMappings")),
    ],
    ids=["unmapped-metric-label", "wrong-job", "syntax-error", "no-severity", "no-extra-mappings"],
)
def test_rule_check_catches_wrong_metrics(target: str, breakage: Callable[[dict], None]):
    docs = {
        "values": copy.deepcopy(load_values()),
        "rules": find("PrometheusRule", "airflow-airbyte-alerts"),
    }
    breakage(docs[target])
    assert rule_problems(docs["values"], docs["rules"])


@pytest.mark.parametrize(
    ("target", "breakage"),
    [
        ("monitor", lambda m: m["spec"]["endpoints"][0].update(port="statsd-ingest")),
        ("monitor", lambda m: m["spec"]["selector"]["matchLabels"].update(component="scheduler")),
        ("monitor", lambda m: m["spec"]["namespaceSelector"].update(matchNames=["monitoring"])),
        ("monitor", lambda m: m["spec"].update(jobLabel="app")),
        ("values", lambda v: v["statsd"].update(enabled=False)),
    ],
    ids=["ingest-port", "wrong-component", "wrong-namespace", "job-label", "statsd-off"],
)
def test_servicemonitor_check_catches_mismatches(target: str, breakage: Callable[[dict], None]):
    docs = {
        "values": copy.deepcopy(load_values()),
        "monitor": find("ServiceMonitor", "airflow-statsd"),
    }
    breakage(docs[target])
    assert servicemonitor_problems(docs["values"], docs["monitor"])
