"""statsd-exporter's translation of StatsD names into Prometheus series, for the tests.

The Helm chart runs prom/statsd-exporter with its own mapping file (chart/files/
statsd-mappings.yml, copied into ``CHART_STATSD_MAPPINGS``) followed by the values'
``statsd.extraMappings``. ``translate`` does what the exporter's mapper does with them:

- glob rules first, in file order, the first that matches wins (the exporter's FSM with
  ordering on, its default); a ``*`` field matches exactly one dot-separated field, possibly
  empty, and the whole name must match;
- then regex rules, in file order, searched (not anchored) in the name;
- ``$1``/``${1}`` in the metric name and label values are the captures;
- an unmapped name keeps its name with every character outside ``[a-zA-Z0-9_]`` turned into
  ``_`` (a run of dashes into one ``_``), and a leading digit gets a ``_`` in front.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The deployment's Helm values: ``statsd.extraMappings`` and Airflow's ``[metrics]`` config.
VALUES_FILE = REPO_ROOT / "deploy" / "helm" / "values-airflow.yaml"
#: Where the project's own code may send StatsD metrics (Airflow's ``Stats``).
PROJECT_CODE = ("dags", "include", "plugins", "webhook")
#: ``Stats`` methods -> the StatsD type they send, as named in Airflow's metric registry.
STATS_CALLS = {
    "incr": "counter",
    "decr": "counter",
    "gauge": "gauge",
    "timing": "timer",
    "timer": "timer",
}


@dataclass(frozen=True)
class Mapping:
    """One statsd-exporter mapping rule."""

    match: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    match_type: str = "glob"

    def pattern(self) -> re.Pattern[str]:
        if self.match_type == "regex":
            return re.compile(self.match)
        fields = ["([^.]*)" if f == "*" else re.escape(f) for f in self.match.split(".")]
        return re.compile(r"\.".join(fields))

    def apply(self, name: str) -> tuple[str, dict[str, str]] | None:
        """(Prometheus name, labels) if this rule maps ``name``, else None."""
        pattern = self.pattern()
        found = pattern.search(name) if self.match_type == "regex" else pattern.fullmatch(name)
        if found is None:
            return None
        captures = found.groups()

        def expand(template: str) -> str:
            return re.sub(
                r"\$\{?(\d+)\}?",
                lambda m: (
                    captures[int(m.group(1)) - 1] if 0 < int(m.group(1)) <= len(captures) else ""
                ),
                template,
            )

        return expand(self.name), {key: expand(value) for key, value in self.labels.items()}


#: The official chart's mappings (chart/files/statsd-mappings.yml).
CHART_STATSD_MAPPINGS: tuple[Mapping, ...] = (
    Mapping(
        "airflow.dagrun.dependency-check.*.*", "airflow_dagrun_dependency_check", {"dag_id": "$1"}
    ),
    Mapping(
        "airflow.operator_successes_(.*)", "airflow_operator_successes", {"operator": "$1"}, "regex"
    ),
    Mapping(
        "airflow.operator_failures_(.*)", "airflow_operator_failures", {"operator": "$1"}, "regex"
    ),
    Mapping(
        "airflow.scheduler_heartbeat", "airflow_scheduler_heartbeat", {"type": "counter"}, "regex"
    ),
    Mapping("airflow.dag.*.*.duration", "airflow_task_duration", {"dag_id": "$1", "task_id": "$2"}),
    Mapping("airflow.dagrun.duration.success.*", "airflow_dagrun_duration", {"dag_id": "$1"}),
    Mapping("airflow.dagrun.duration.failed.*", "airflow_dagrun_failed", {"dag_id": "$1"}),
    Mapping("airflow.dagrun.schedule_delay.*", "airflow_dagrun_schedule_delay", {"dag_id": "$1"}),
    Mapping(
        "airflow.dag_processing.last_runtime.*",
        "airflow_dag_processing_last_runtime",
        {"dag_file": "$1"},
    ),
    Mapping(
        "airflow.dag_processing.last_run.seconds_ago.*",
        "airflow_dag_processing_last_run_seconds_ago",
        {"dag_file": "$1"},
    ),
    Mapping("airflow.pool.open_slots.*", "airflow_pool_open_slots", {"pool": "$1"}),
    Mapping("airflow.pool.used_slots.*", "airflow_pool_used_slots", {"pool": "$1"}),
    Mapping("airflow.pool.starving_tasks.*", "airflow_pool_starving_tasks", {"pool": "$1"}),
    Mapping("airflow.executor.open_slots.*", "airflow_executor_open_slots", {"executor": "$1"}),
    Mapping("airflow.executor.queued_tasks.*", "airflow_executor_queued_tasks", {"executor": "$1"}),
    Mapping(
        "airflow.executor.running_tasks.*", "airflow_executor_running_tasks", {"executor": "$1"}
    ),
)


def deployed_values() -> dict[str, Any]:
    return yaml.safe_load(VALUES_FILE.read_text(encoding="utf-8"))


def statsd_mappings(values: dict[str, Any]) -> list[Mapping]:
    """The chart's mappings followed by the values' ``statsd.extraMappings``."""
    statsd = values.get("statsd") or {}
    if statsd.get("overrideMappings"):
        raise NotImplementedError("statsd.overrideMappings replaces the chart's mappings")
    extra = [
        Mapping(
            match=m["match"],
            name=m["name"],
            labels={str(k): str(v) for k, v in (m.get("labels") or {}).items()},
            match_type=m.get("match_type", "glob"),
        )
        for m in statsd.get("extraMappings") or []
    ]
    return [*CHART_STATSD_MAPPINGS, *extra]


def escape_metric_name(name: str) -> str:
    """statsd-exporter's name for an unmapped metric."""
    escaped = re.sub(r"[^a-zA-Z0-9_-]|-+", "_", name)
    return f"_{escaped}" if escaped[:1].isdigit() else escaped


def translate(name: str, mappings: list[Mapping]) -> tuple[str, dict[str, str]]:
    """The Prometheus metric name and labels statsd-exporter makes of the StatsD ``name``."""
    ordered = [m for m in mappings if m.match_type != "regex"] + [
        m for m in mappings if m.match_type == "regex"
    ]
    for mapping in ordered:
        mapped = mapping.apply(name)
        if mapped is not None:
            return mapped
    return escape_metric_name(name), {}


def project_statsd_metrics(root: Path = REPO_ROOT) -> list[tuple[str, str]]:
    """(StatsD name with the chart's ``airflow`` prefix, type) of every metric the project's
    own code sends through Airflow's ``Stats`` (``Stats.incr("airbyte.reconcile....", n)``),
    found in the source; these are in no Airflow metric registry. A call whose name is not a
    string literal cannot be checked and is an error."""
    found: dict[str, str] = {}
    for folder in PROJECT_CODE:
        for path in sorted((root / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if not (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "Stats"
                    and node.func.attr in STATS_CALLS
                ):
                    continue
                name = node.args[0] if node.args else None
                if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                    where = f"{path.relative_to(root)}:{node.lineno}"
                    raise ValueError(f"{where}: Stats.{node.func.attr} with a computed name")
                found[f"airflow.{name.value}"] = STATS_CALLS[node.func.attr]
    return sorted(found.items())
