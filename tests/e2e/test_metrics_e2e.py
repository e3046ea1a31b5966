"""End to end: Airflow's StatsD metrics reach CloudWatch (moto) under MWAA's names.

Every task's relay (``runtime/metrics_relay.py``, started by the bootstrap of the container
whose ``OPENMWAA_METRICS`` says ``"relay": true``) listens on the task's StatsD port and
publishes with the task role's credentials, under moto's IAM enforcement. After a DAG run,
every metric of the default allow-list that a quiet, healthy environment sends must be in
the namespace with MWAA's dimensions; the ones Airflow sends only on an event (contention,
a timeout, a failure) are listed apart with the event.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from openmwaa.runtime import contracts, metric_names
from openmwaa.runtime.metrics_relay import WINDOW_SECONDS

from .conftest import AirflowUnderTest
from .test_airflow_e2e import HELLO, _trigger, _wait_for_run

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ON_AN_EVENT = {
    "CriticalSectionBusy": "two schedulers contend for the critical section",
    "ProcessorTimeouts": "a DAG file's parse times out",
    "TriggersBlockedMainThread": "a trigger blocks the triggerer's event loop",
    "TriggersFailed": "a trigger fails",
    "TaskInstanceFailures": "a task fails",
    "ZombiesKilled": "a task stops heartbeating",
}
"""Metrics of the default list that Airflow sends only when the event happens."""

PUBLISHERS = ("scheduler", "dag-processor", "worker")
"""Components that send metrics of the default list in a quiet environment (the heartbeat,
the DAG bag, the task process's ti_successes on Airflow 3)."""


def _metrics_settings(airflow: AirflowUnderTest) -> dict[str, Any]:
    settings: dict[str, Any] = json.loads(
        airflow.launches["scheduler"].env[contracts.METRICS_VARIABLE]
    )
    return settings


def _seen(airflow: AirflowUnderTest, namespace: str, environment: str) -> dict[str, set[str]]:
    """MWAA metric name -> its dimension sets (``Name=Value`` joined), as CloudWatch lists them."""
    cloudwatch = airflow.aws.client("cloudwatch")
    seen: dict[str, set[str]] = {}
    for page in cloudwatch.get_paginator("list_metrics").paginate(Namespace=namespace):
        for metric in page["Metrics"]:
            dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
            if dimensions.get(contracts.ENVIRONMENT_DIMENSION) != environment:
                continue
            label = ",".join(f"{k}={v}" for k, v in sorted(dimensions.items()))
            seen.setdefault(metric["MetricName"], set()).add(label)
    return seen


def test_a_dag_run_puts_the_default_metrics_in_cloudwatch_under_mwaas_names(
    airflow: AirflowUnderTest,
) -> None:
    settings = _metrics_settings(airflow)
    namespace, environment = settings["namespace"], settings["environment"]
    assert namespace == contracts.MWAA_METRIC_NAMESPACE
    assert sorted(settings["metrics"]) == sorted(metric_names.DEFAULT_ALLOW_LIST)
    relays = [
        name
        for name, launch in airflow.launches.items()
        if json.loads(launch.env.get(contracts.METRICS_VARIABLE, "{}")).get("relay")
    ]
    assert relays, "no container runs the metrics relay"

    run_id = _trigger(airflow, HELLO)
    assert _wait_for_run(airflow, HELLO, run_id, timeout=300) == "success", airflow.diagnostics()

    expected = {
        rule.name
        for rule in metric_names.rules_for(metric_names.DEFAULT_ALLOW_LIST)
        if airflow.major in rule.versions and rule.name not in ON_AN_EVENT
    }

    def complete() -> dict[str, set[str]] | None:
        seen = _seen(airflow, namespace, environment)
        return seen if expected <= set(seen) else None

    try:
        seen = airflow.wait_for("the default metrics in CloudWatch", complete, timeout=240)
    except AssertionError:
        seen = _seen(airflow, namespace, environment)
        missing = sorted(expected - set(seen))
        raise AssertionError(f"missing from CloudWatch: {missing}; seen: {sorted(seen)}") from None

    print(f"\nmetrics seen in {namespace} for Environment={environment}:")
    for name in sorted(seen):
        print(f"  {name}: {sorted(seen[name])}")
    unexpected = set(seen) - set(metric_names.DEFAULT_ALLOW_LIST)
    assert not unexpected, f"published but not allowed: {sorted(unexpected)}"
    for rule in metric_names.rules_for(expected):
        wanted = {
            contracts.ENVIRONMENT_DIMENSION: environment,
            **metric_names.fixed_dimensions(rule),
        }
        label = ",".join(f"{k}={v}" for k, v in sorted(wanted.items()))
        assert label in seen[rule.name], (rule.name, label, seen[rule.name])
    for name in relays:
        log = airflow.processes[name].log_text()
        assert "metrics relay on 127.0.0.1" in log, f"the {name} container's relay never started"
    # The api-server and execution-api send none of the default list: their relays stay idle.
    # A relay publishes at the minute's end, so a publisher whose samples came late in the
    # minute (the worker's ti_successes) logs its first flush up to a minute after the rest.
    for name in sorted(set(relays) & set(PUBLISHERS)):
        process = airflow.processes[name]
        airflow.wait_for(
            f"the {name} container's relay to publish",
            lambda process=process: "metrics: published" in process.log_text(),
            timeout=WINDOW_SECONDS * 2 + 30,
        )
    if os.environ.get("OPENMWAA_E2E_KEEP"):
        print(json.dumps({k: sorted(v) for k, v in seen.items()}, indent=1))
