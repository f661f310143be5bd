"""The alerts read metrics a real Airflow really emits.

The session's real Airflow (``tests/airflow_fixtures.py``) sends StatsD over UDP to a receiver
in this process, with the deployment's ``[metrics]`` settings. One run fails (the event-driven
DAG on an unknown Airbyte connection: a 404, failed without retries), one succeeds (the
scheduled run of ``airbyte_stripe_to_postgres``, created by unpausing it), and one run of
``airbyte_reconcile`` with a lookback too short to find anything, which still counts (by 0)
the project's own ``airbyte.reconcile.*`` counters. What arrived while they ran is translated
by the statsd-exporter mapping of the Helm values (``tests/deploy/statsd_mapping.py``), and
every series selector of every alert in ``deploy/monitoring/prometheusrule.yaml`` must match a
translated series, with the labels its aggregations group by (and so its annotations print).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import promql_parser
import pytest

from dev.airflow_components import AirflowServer
from dev.processes import wait_until
from tests.airflow_fixtures import EVENT_DAG, TIMEOUT, shared_airflow
from tests.deploy.statsd_mapping import (
    deployed_values,
    project_statsd_metrics,
    statsd_mappings,
    translate,
)
from tests.deploy.test_manifests import STATSD_SERVICE, find, vector_selectors
from tests.statsd import PREFIX, Metric, StatsdReceiver

STRIPE_DAG = "airbyte_stripe_to_postgres"
RECONCILE_DAG = "airbyte_reconcile"
DEPLOY_README = Path(__file__).resolve().parents[2] / "deploy" / "README.md"
#: ~4 ms: the reconcile run settles and cancels nothing, yet counts (0) what it did.
RECONCILE_LOOKBACK_HOURS = 1e-6
UNKNOWN_CONNECTION_ID = "00000000-0000-4000-8000-000000000000"
#: Series the rules read that Prometheus makes, not Airflow: the scrape's health, and the
#: exporter's own process metrics.
NOT_FROM_AIRFLOW = {"up", "process_start_time_seconds"}
#: Labels the ServiceMonitor's scrape adds to every series.
SCRAPE_LABELS = {"job"}
#: How long after the runs end their last metrics may take to arrive.
ARRIVAL_TIMEOUT = 60
#: What ``airbyte_reconcile`` counts (``airbyte.reconcile.<what>``).
RECONCILED = ("events_created", "failures_reported", "orphans_cancelled")


@dataclass(frozen=True)
class Series:
    name: str
    labels: dict[str, str]


@dataclass
class Captured:
    receiver: StatsdReceiver
    mark: int
    succeeded: dict[str, Any]
    failed: dict[str, Any]

    def metrics(self) -> list[Metric]:
        return self.receiver.since(self.mark)


def reconcile_once(airflow: AirflowServer) -> dict[str, Any]:
    """One run of ``airbyte_reconcile`` that finds nothing to do; its paused state restored.

    A paused DAG's runs do not start, and unpausing this one also creates its latest scheduled
    run (24 h lookback). A paused DAG is paused again as soon as our run ends, before the
    other runs start: a scheduled run still queued then stays queued, one running is waited
    for, so no reconciliation of ours overlaps the Stripe run."""
    was_paused = airflow.wait_for_dag(RECONCILE_DAG)["is_paused"]
    run = airflow.trigger(RECONCILE_DAG, conf={"lookback_hours": RECONCILE_LOOKBACK_HOURS})
    try:
        if was_paused:
            airflow.unpause(RECONCILE_DAG)
        finished = airflow.wait_for_run(
            RECONCILE_DAG, quote(run["dag_run_id"], safe=""), timeout=TIMEOUT
        )
    finally:
        if was_paused:
            airflow.api(
                "PATCH", f"/dags/{RECONCILE_DAG}", json={"is_paused": True}
            ).raise_for_status()
            wait_until(
                lambda: all(r["state"] != "running" for r in airflow.list_runs(RECONCILE_DAG)),
                timeout=TIMEOUT,
                interval=0.5,
                what=f"no running {RECONCILE_DAG} run",
            )
    assert finished["state"] == "success", airflow.task_instances(
        RECONCILE_DAG, quote(run["dag_run_id"], safe="")
    )
    return finished


@pytest.fixture(scope="module")
def captured(request: pytest.FixtureRequest) -> Captured:
    shared = shared_airflow(request.config)
    airflow = shared.airflow
    mark = shared.statsd.mark()
    failing = airflow.trigger(EVENT_DAG, conf={"connection_id": UNKNOWN_CONNECTION_ID})
    reconcile_once(airflow)
    airflow.unpause(STRIPE_DAG)
    try:
        (scheduled,) = wait_until(
            lambda: airflow.list_runs(STRIPE_DAG),
            timeout=60,
            interval=0.5,
            what=f"the scheduled run of {STRIPE_DAG}",
        )
        succeeded = airflow.wait_for_run(STRIPE_DAG, scheduled["dag_run_id"], timeout=TIMEOUT)
        failed = airflow.wait_for_run(EVENT_DAG, failing["dag_run_id"], timeout=TIMEOUT)
    finally:
        airflow.api("PATCH", f"/dags/{STRIPE_DAG}", json={"is_paused": True}).raise_for_status()
    assert scheduled["run_type"] == "scheduled"
    assert succeeded["state"] == "success", airflow.task_instances(
        STRIPE_DAG, scheduled["dag_run_id"]
    )
    assert failed["state"] == "failed"
    return Captured(receiver=shared.statsd, mark=mark, succeeded=succeeded, failed=failed)


def exported_series(metrics: list[Metric]) -> list[Series]:
    """What statsd-exporter would expose for ``metrics`` (timers become summaries)."""
    mappings = statsd_mappings(deployed_values())
    series = []
    for metric in metrics:
        name, labels = translate(metric.name, mappings)
        if metric.type in ("ms", "h", "d"):
            series += [
                Series(name, {**labels, "quantile": "0.5"}),
                Series(f"{name}_sum", labels),
                Series(f"{name}_count", labels),
            ]
        else:
            series.append(Series(name, labels))
    return series


def matches(matcher: Any, labels: dict[str, str]) -> bool:
    """PromQL label matching (regexes are anchored; a missing label is the empty string)."""
    value = labels.get(matcher.name, "")
    op = matcher.op
    if op in (promql_parser.MatchOp.Equal, promql_parser.MatchOp.NotEqual):
        return (value == matcher.value) == (op == promql_parser.MatchOp.Equal)
    found = re.fullmatch(matcher.value, value) is not None
    return found == (op == promql_parser.MatchOp.Re)


@dataclass(frozen=True)
class Requirement:
    """An alert's series selector, and the labels its aggregations need on the series."""

    alert: str
    selector: str
    metric: str
    matchers: tuple[Any, ...]
    grouped_by: frozenset[str]

    def met_by(self, series: Series) -> bool:
        return (
            series.name == self.metric
            and all(matches(m, series.labels) for m in self.matchers)
            and self.grouped_by <= set(series.labels)
        )


def requirements() -> list[Requirement]:
    """Every series selector of every alert, with the ``by`` labels of the aggregations above."""
    found = []
    for group in find("PrometheusRule", "airflow-airbyte-alerts")["spec"]["groups"]:
        for rule in group["rules"]:
            expr = promql_parser.parse(rule["expr"])
            grouped: dict[str, set[str]] = defaultdict(set)

            def visit(node: Any, grouped: dict[str, set[str]] = grouped) -> None:
                if not isinstance(node, promql_parser.AggregateExpr):
                    return
                if node.modifier is not None and str(node.modifier).startswith("by"):
                    for selector in vector_selectors(node.expr):
                        grouped[str(selector)] |= set(node.modifier.labels)

            promql_parser.walk(expr, visit)
            for selector in vector_selectors(expr):
                matchers = tuple(
                    m
                    for m in selector.matchers.matchers
                    if m.name not in SCRAPE_LABELS and m.name != "__name__"
                )
                found.append(
                    Requirement(
                        alert=rule["alert"],
                        selector=str(selector),
                        metric=selector.name,
                        matchers=matchers,
                        grouped_by=frozenset(grouped[str(selector)]),
                    )
                )
    return found


def test_alerts_read_airflow_metrics_and_the_scrape_only():
    metrics = {r.metric for r in requirements()}
    assert metrics - NOT_FROM_AIRFLOW, "no Airflow metric in the rules"
    assert {m for m in metrics if not m.startswith(f"{PREFIX}_")} == NOT_FROM_AIRFLOW
    for requirement in requirements():
        job = [
            m
            for m in promql_parser.parse(requirement.selector).matchers.matchers
            if m.name == "job"
        ]
        assert [m.value for m in job] == [STATSD_SERVICE], requirement.selector


def test_every_alert_series_is_emitted_by_a_failing_and_a_succeeding_run(captured: Captured):
    needed = [r for r in requirements() if r.metric not in NOT_FROM_AIRFLOW]

    def missing() -> list[Requirement]:
        series = exported_series(captured.metrics())
        return [r for r in needed if not any(r.met_by(s) for s in series)]

    try:
        wait_until(lambda: not missing(), timeout=ARRIVAL_TIMEOUT, interval=0.5, what="metrics")
    except TimeoutError:
        names = sorted({s.name for s in exported_series(captured.metrics())})
        pytest.fail(
            "no emitted series for "
            + "; ".join(f"{r.alert}: {r.selector} by {sorted(r.grouped_by)}" for r in missing())
            + f"\nexported names: {names}"
        )
    assert captured.receiver.garbage == []


def run_seconds(run: dict[str, Any]) -> float:
    start = datetime.fromisoformat(run["start_date"])
    end = datetime.fromisoformat(run["end_date"])
    return (end - start).total_seconds()


@pytest.mark.parametrize("outcome", ["succeeded", "failed"])
def test_run_durations_are_timers_in_milliseconds(captured: Captured, outcome: str):
    """statsd-exporter turns timers into seconds: the alerts' 7200 s means 2 hours."""
    run = getattr(captured, outcome)
    state = {"succeeded": "success", "failed": "failed"}[outcome]
    name = f"{PREFIX}.dagrun.duration.{state}.{run['dag_id']}"

    def timers() -> list[Metric]:
        return [m for m in captured.metrics() if m.name == name]

    (timer,) = wait_until(timers, timeout=ARRIVAL_TIMEOUT, interval=0.5, what=name)
    assert timer.type == "ms"
    assert float(timer.value) / 1000 == pytest.approx(run_seconds(run), abs=1.0)
    assert run_seconds(run) > 0


def test_project_metrics_are_documented_with_their_prometheus_names():
    """deploy/README.md's Metrics table names each of the project's own StatsD metrics and
    the Prometheus metric the exporter's mapping makes of it."""
    readme = DEPLOY_README.read_text(encoding="utf-8")
    mappings = statsd_mappings(deployed_values())
    assert project_statsd_metrics(), "no Stats call found in the project's code"
    for name, _ in project_statsd_metrics():
        exported, _ = translate(name, mappings)
        assert f"| `{name.removeprefix(PREFIX + '.')}` (" in readme, name
        assert f"`{exported}`" in readme, exported


def test_reconcile_counts_every_run_even_when_it_did_nothing(captured: Captured):
    """The project's counters (``Stats.incr`` in ``include/receiver/reconcile.py``) come out
    of a real task with the chart's prefix, and a run that did nothing sends each as
    ``name:0|c``: statsd-exporter creates the series at 0 then, so the reconcile alerts see
    the first real increment as an increase."""
    counters = [f"{PREFIX}.airbyte.reconcile.{what}" for what in RECONCILED]
    assert set(counters) <= {name for name, kind in project_statsd_metrics() if kind == "counter"}

    def zeros() -> dict[str, set[str]]:
        sent: dict[str, set[str]] = defaultdict(set)
        for metric in captured.metrics():
            if metric.name in counters:
                sent[metric.name].add(f"{metric.value}|{metric.type}")
        return sent if all("0|c" in sent[name] for name in counters) else {}

    try:
        wait_until(zeros, timeout=ARRIVAL_TIMEOUT, interval=0.5, what="the reconcile counters")
    except TimeoutError:
        sent = sorted({m.name for m in captured.metrics() if "reconcile" in m.name})
        pytest.fail(f"no `<name>:0|c` for every counter of {counters}; got {sent}")
