"""CloudWatch metrics of Airflow's own figures, under MWAA's names (see docs/metrics.md).

The runtime's metrics relay publishes them (namespace `metrics_namespace`, dimension
`Environment` plus the rule's `Function`, `DAG` and `Task`); `AirflowMetrics` builds the
matching `cloudwatch.Metric` for the environment's alarms, its dashboard and your own.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch

from .runtime import contracts, metric_names
from .runtime.metric_names import MetricRule

SCHEDULER_HEARTBEAT = "SchedulerHeartbeat"
QUEUED_TASKS = contracts.METRIC_QUEUED_TASKS
RUNNING_TASKS = contracts.METRIC_RUNNING_TASKS
OPEN_SLOTS = "OpenSlots"
IMPORT_ERRORS = "ImportErrors"
DAG_BAG_SIZE = "DagBagSize"
TOTAL_PARSE_TIME = "TotalParseTime"
TASK_FAILURES = "TaskInstanceFailures"
TASK_SUCCESSES = "TaskInstanceSuccesses"
SCHEDULER_LOOP_DURATION = "SchedulerLoopDuration"
CRITICAL_SECTION_DURATION = "CriticalSectionDuration"
DAG_DURATION_SUCCESS = "DAGDurationSuccess"

NAMES_USED = (
    SCHEDULER_HEARTBEAT,
    QUEUED_TASKS,
    RUNNING_TASKS,
    OPEN_SLOTS,
    IMPORT_ERRORS,
    DAG_BAG_SIZE,
    TOTAL_PARSE_TIME,
    TASK_FAILURES,
    TASK_SUCCESSES,
    SCHEDULER_LOOP_DURATION,
    CRITICAL_SECTION_DURATION,
    DAG_DURATION_SUCCESS,
)
"""The MWAA names the construct itself reads (alarms, dashboard, helpers); a test keeps each
in the mapping."""

PERIOD = Duration.minutes(1)
"""The relay's publishing interval."""

DEFAULT_STATISTICS = {"counter": "Sum", "gauge": "Maximum", "timer": "Average"}
"""A metric's statistic unless one is given: counters add up, a gauge's worst value in the
period, a timer's mean."""


class AirflowMetrics:
    """Builds the metrics of one environment: `namespace`, dimension Environment =
    `environment_name`; `allowed` are the names its allow-list publishes."""

    def __init__(self, *, namespace: str, environment_name: str, allowed: Iterable[str]) -> None:
        self.namespace = namespace
        self.environment_name = environment_name
        self.allowed: frozenset[str] = frozenset(allowed)

    def is_allowed(self, name: str) -> bool:
        """True when the environment publishes `name` (it is in `metrics_allow_list`)."""
        return name in self.allowed

    def metric(
        self,
        name: str,
        *,
        function: str | None = None,
        dag: str | None = None,
        task: str | None = None,
        statistic: str | None = None,
        period: Duration | None = None,
    ) -> cloudwatch.Metric:
        """The metric `name` (an MWAA name of docs/metrics.md), with the dimensions the relay
        publishes it under. `function`, when given, must be the name's Function dimension (it
        picks one when a name has several); `dag` and `task` pick one DAG's or task's series
        of a per-DAG or per-task metric. Default statistic: Sum for a counter, Maximum for a
        gauge, Average for a timer; default period: 1 minute. Raises ValueError naming
        `name`, `function`, `dag` or `task` when the mapping has no such series."""
        rule = self._rule(name, function)
        dimensions = {
            contracts.ENVIRONMENT_DIMENSION: self.environment_name,
            **metric_names.fixed_dimensions(rule),
        }
        for argument, value, per, dimension in (
            ("dag", dag, rule.per_dag, contracts.DAG_DIMENSION),
            ("task", task, rule.per_task, contracts.TASK_DIMENSION),
        ):
            if (value is None) == per:
                published = ", ".join(metric_names.dimension_names(rule))
                raise ValueError(
                    f"{argument}: got {value!r} for {name}, published with the dimensions "
                    f"{published}; allowed: dag for a per-DAG metric, task for a per-task "
                    "one, and neither otherwise (CloudWatch matches dimensions exactly)"
                )
            if value is not None:
                dimensions[dimension] = value
        return cloudwatch.Metric(
            namespace=self.namespace,
            metric_name=name,
            dimensions_map=dimensions,
            statistic=statistic or DEFAULT_STATISTICS[rule.kind],
            period=period or PERIOD,
        )

    def _rule(self, name: str, function: str | None) -> MetricRule:
        rules = [rule for rule in metric_names.RULES if rule.name == name]
        if not rules:
            raise ValueError(
                f"name: got {name!r}; allowed: a metric name of the mapping (docs/metrics.md), "
                f"e.g. {SCHEDULER_HEARTBEAT!r}"
            )
        functions = sorted({str(rule.function) for rule in rules})
        if function is None and len(functions) == 1:
            return rules[0]
        matching = [rule for rule in rules if rule.function == function]
        if not matching:
            raise ValueError(
                f"function: got {function!r} for {name}; allowed: {', '.join(functions)}"
            )
        return matching[0]


def _dimensions_cell(rule: MetricRule) -> str:
    fixed = metric_names.fixed_dimensions(rule)
    values = {
        contracts.DAG_DIMENSION: "<dag_id>",
        contracts.TASK_DIMENSION: "<task_id>",
        contracts.ENVIRONMENT_DIMENSION: "<environment>",
    }
    return ", ".join(
        f"`{name}={fixed.get(name, values.get(name, ''))}`"
        for name in metric_names.dimension_names(rule)
    )


def mapping_table() -> str:
    """docs/metrics.md's mapping table, one row per rule of `metric_names.RULES` (a test keeps
    the doc equal to it)."""
    default = set(metric_names.DEFAULT_ALLOW_LIST)
    rows = [
        "| MWAA metric | dimensions | Airflow's StatsD name | type | unit | list | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for rule in metric_names.RULES:
        cells = (
            rule.name,
            _dimensions_cell(rule),
            f"`{rule.airflow}`",
            rule.kind,
            rule.unit,
            "default" if rule.name in default else "opt-in",
            rule.note,
        )
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"
