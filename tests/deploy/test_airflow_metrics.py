"""The alerts read metrics a real Airflow really emits.

The session's real Airflow (``tests/airflow_fixtures.py``) sends StatsD over UDP to a receiver
in this process, with the deployment's ``[metrics]`` settings. One run fails (the event-driven
DAG on an unknown Airbyte connection: a 404, failed without retries) and one succeeds (the
scheduled run of ``airbyte_stripe_to_postgres``, created by unpausing it). What arrived while
they ran is translated by the statsd-exporter mapping of the Helm values
(``tests/deploy/statsd_mapping.py``), and every series selector of every alert in
``deploy/monitoring/prometheusrule.yaml`` must match a translated series, with the labels its
aggregations group by (and so its annotations print).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import promql_parser
import pytest

from dev.processes import wait_until
from tests.airflow_fixtures import EVENT_DAG, TIMEOUT, shared_airflow
from tests.deploy.statsd_mapping import deployed_values, statsd_mappings, translate
from tests.deploy.test_manifests import STATSD_SERVICE, find, vector_selectors
from tests.statsd import PREFIX, Metric, StatsdReceiver

STRIPE_DAG = "airbyte_stripe_to_postgres"
UNKNOWN_CONNECTION_ID = "00000000-0000-4000-8000-000000000000"
#: Series the rules read that Prometheus makes, not Airflow: the scrape's health, and the
#: exporter's own process metrics.
NOT_FROM_AIRFLOW = {"up", "process_start_time_seconds"}
#: Labels the ServiceMonitor's scrape adds to every series.
SCRAPE_LABELS = {"job"}
#: How long after the runs end their last metrics may take to arrive.
ARRIVAL_TIMEOUT = 60


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


@pytest.fixture(scope="module")
def captured(request: pytest.FixtureRequest) -> Captured:
    shared = shared_airflow(request.config)
    airflow = shared.airflow
    mark = shared.statsd.mark()
    failing = airflow.trigger(EVENT_DAG, conf={"connection_id": UNKNOWN_CONNECTION_ID})
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
