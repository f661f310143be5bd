"""The alerts of deploy/monitoring/prometheusrule.yaml, unit-tested with ``promtool test rules``.

The PrometheusRule's ``spec`` is a plain Prometheus rule file: it is written next to copies
of ``prometheusrule_tests/*.yaml`` (the promtool cases, one file per alert: it fires on its
failure series, with its labels and rendered annotations, and stays silent on healthy ones)
and promtool evaluates them. Each alert is also broken in plausible ways, and its cases must
then fail. promtool comes from Debian's
``prometheus`` package (``make system-deps``); without it these tests fail, they never skip.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_manifests import RULES_FILE, find

PROMTOOL_CASES = Path(__file__).with_name("prometheusrule_tests")
#: The rule file every case file loads (its ``rule_files``), written next to the copies.
RULES_COPY = "prometheusrule.rules.yaml"
INSTALL_HINT = "make system-deps  (as root; or: apt-get install prometheus)"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(f"promtool is not installed; run: {INSTALL_HINT}", pytrace=False)
    return path


def alert_rules() -> dict[str, Any]:
    return find("PrometheusRule", "airflow-airbyte-alerts")


def case_files() -> list[Path]:
    return sorted(PROMTOOL_CASES.glob("*.yaml"))


def cases(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alert_names(path: Path) -> set[str]:
    """The alerts whose cases ``path`` holds."""
    return {c["alertname"] for t in cases(path)["tests"] for c in t.get("alert_rule_test", [])}


def run_promtool(
    rule_doc: dict[str, Any], directory: Path, files: list[Path]
) -> subprocess.CompletedProcess[str]:
    """``promtool test rules`` of the case ``files`` against ``rule_doc``'s groups."""
    rules_file = directory / RULES_COPY
    rules_file.write_text(yaml.safe_dump({"groups": rule_doc["spec"]["groups"]}), encoding="utf-8")
    for path in files:
        shutil.copy(path, directory / path.name)
    return subprocess.run(
        [promtool(), "test", "rules", *(path.name for path in files)],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("path", case_files(), ids=lambda p: p.stem)
def test_each_case_file_loads_the_extracted_rules_and_tests_one_alert(path: Path):
    assert cases(path)["rule_files"] == [RULES_COPY]
    assert len(alert_names(path)) == 1
    assert RULES_FILE.name != RULES_COPY  # the copy never shadows the manifest


def test_rules_pass_promtool_check(tmp_path: Path):
    rules_file = tmp_path / RULES_COPY
    rules_file.write_text(yaml.safe_dump({"groups": alert_rules()["spec"]["groups"]}))
    result = subprocess.run(
        [promtool(), "check", "rules", str(rules_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_passes_its_promtool_cases(tmp_path: Path):
    result = run_promtool(alert_rules(), tmp_path, case_files())
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(case_files()) > 0


def test_every_alert_has_a_firing_and_a_silent_case():
    alerts = {
        rule["alert"]
        for group in alert_rules()["spec"]["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    checks = [
        check
        for path in case_files()
        for test in cases(path)["tests"]
        for check in test.get("alert_rule_test", [])
    ]
    fires = {c["alertname"] for c in checks if c.get("exp_alerts")}
    silent = {c["alertname"] for c in checks if not c.get("exp_alerts")}
    assert alerts, "no alert in the PrometheusRule"
    assert alerts - fires == set(), "alerts with no case where they fire"
    assert alerts - silent == set(), "alerts with no case where they stay silent"
    assert (fires | silent) - alerts == set(), "cases for alerts the rules do not define"


#: The term of the reconcile alerts counting a series younger than the window whole, with
#: the `or` after it (group 1: the `x unless x offset 30m` inside the parentheses).
YOUNGER_SERIES = r"\(\s*(airflow_\w+\{[^}]*\}\s*unless\s*airflow_\w+\{[^}]*\} offset 30m)\s*\)\s*or"
#: Plausible mistakes in each alert (regex, replacement); the promtool cases must catch each.
BREAKAGES: dict[str, list[tuple[str, str]]] = {
    "AirbyteSyncTaskFailed": [
        # Without the `unless ... offset` term a series born with its first failure is missed.
        (r"\(\s*airflow_task_finish.*?offset 15m\s*\)\s*or\s*", ""),
        (r'state="failed"\}\[15m\]', "}[15m]"),  # any finished task would count
    ],
    "AirbyteDagRunFailed": [
        (r"\[30m\]", "[5m]"),
        (r"airflow_dagrun_failed_count", "airflow_dagrun_duration_count"),
    ],
    "AirbyteSyncTooSlow": [
        (r"> 7200", "> 72000"),
        (r"duration_sum(\{.*?\})\[6h\]", r"duration_sum\1[1h]"),
    ],
    "AirbyteStripeSyncStale": [
        (r"or vector\(0\)", ""),
        (r"> 12 \* 3600", "> 0"),
        (r'task_id=~"sync_stripe\|stripe__sync"', 'task_id="sync_stripe"'),
    ],
    "AirbyteNotificationsLost": [
        # Without the younger-series term a count born with its series (exporter restart) is
        # missed; after `or increase(...)` instead of before it, increase's 0 hides it.
        (YOUNGER_SERIES, ""),
        (YOUNGER_SERIES + r"\s*(increase\(.*?\]\))", r"\2 or (\1)"),
        (r"\[30m\]", "[5m]"),
        (r"events_created", "failures_reported"),  # reported failures are not lost events
    ],
    "AirbyteOrphanedJobsCancelled": [
        (YOUNGER_SERIES, ""),
        (r"\[30m\]", "[5m]"),
    ],
    "AirbyteReconcileStale": [
        (r"or vector\(0\)", ""),
        (r"> 30 \* 60", "> 0"),
        (r', state="success"\}', "}"),  # failed runs would count
        # Without the younger-series term the first success after a gap does not count.
        (YOUNGER_SERIES, ""),
    ],
    "AirflowDagImportErrors": [(r"> 0$", ">= 0")],
    "AirflowMetricsMissing": [(r" == 1\)$", ")")],
}


def broken_rules(alert: str, pattern: str, replacement: str) -> dict[str, Any]:
    """The PrometheusRule with ``pattern`` replaced in the expression of ``alert``."""
    rule_doc = copy.deepcopy(alert_rules())
    (rule,) = (r for g in rule_doc["spec"]["groups"] for r in g["rules"] if r.get("alert") == alert)
    rule["expr"], count = re.subn(pattern, replacement, rule["expr"], flags=re.DOTALL)
    assert count, f"{alert}: {pattern!r} matches nothing in its expression any more"
    return rule_doc


@pytest.mark.parametrize(
    ("alert", "pattern", "replacement"),
    [(alert, *change) for alert, changes in BREAKAGES.items() for change in changes],
)
def test_promtool_cases_catch_a_broken_alert(
    tmp_path: Path, alert: str, pattern: str, replacement: str
):
    files = [path for path in case_files() if alert in alert_names(path)]
    result = run_promtool(broken_rules(alert, pattern, replacement), tmp_path, files)
    assert result.returncode != 0, f"{alert} with {pattern!r} -> {replacement!r} still passes"
    assert f"alertname: {alert}" in result.stdout + result.stderr


def test_every_alert_has_a_breakage():
    alerts = {r["alert"] for g in alert_rules()["spec"]["groups"] for r in g["rules"]}
    assert alerts == set(BREAKAGES)
