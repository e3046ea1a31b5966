"""Airflow's StatsD metrics under the names, dimensions and units Amazon MWAA gives them.

One rule per Airflow metric: Airflow's StatsD name (without the ``airflow.`` prefix), the
CloudWatch name MWAA publishes it under, its Function dimension (or its DAG and Task
dimensions) and its unit. The metrics relay (:mod:`.metrics_relay`) publishes by these rules,
the construct validates ``metrics_allow_list`` against :data:`METRIC_NAMES` and builds its
alarms and dashboard from them, and docs/metrics.md prints them as a table.

The names follow MWAA's published table (Airflow v2 metrics in CloudWatch); metrics Airflow
added since (the triggerer's, the scheduler's loop) follow MWAA's naming and say so in their
note. Each Airflow name was checked against the Airflow 2.11 and 3.3 sources (their metrics
registry and call sites). Standard library only: it runs in the container too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from . import contracts

ALL = "All"
"""The value MWAA gives the DAG and Task dimensions of metrics summed over every DAG and task."""

SCHEDULER = "Scheduler"
EXECUTOR = "Executor"
DAG_PROCESSING = "DAG Processing"
TRIGGERER = "Triggerer"
CELERY = "Celery"

COUNTER = "counter"
GAUGE = "gauge"
TIMER = "timer"

COUNT = "Count"
MILLISECONDS = "Milliseconds"
SECONDS = "Seconds"


@dataclass(frozen=True)
class MetricRule:
    """How one Airflow StatsD metric becomes an MWAA CloudWatch metric."""

    name: str
    """MWAA's CloudWatch metric name, e.g. ``SchedulerHeartbeat``."""
    airflow: str
    """Airflow's StatsD name without the prefix, e.g. ``scheduler_heartbeat``."""
    kind: str
    """``counter``, ``gauge`` or ``timer``."""
    function: str | None
    """MWAA's Function dimension value, e.g. ``Scheduler``; None when it has none."""
    per_dag: bool = False
    """The DAG dimension is the metric's ``dag_id`` (one series per DAG)."""
    unit: str = COUNT
    """The CloudWatch unit."""
    note: str = ""
    """What the docs table says about it (the Airflow versions that send it, when)."""
    per_task: bool = False
    """The Task dimension is the metric's ``task_id`` (per-DAG rules: one series per task)."""
    totals: tuple[str, ...] = ()
    """Dimensions MWAA sets to ``All``: the metric summed over every DAG (and task)."""
    versions: tuple[int, ...] = (2, 3)
    """The Airflow major versions that send it."""


_TOTALS = (contracts.DAG_DIMENSION, contracts.TASK_DIMENSION)

RULES: tuple[MetricRule, ...] = (
    # Scheduler.
    MetricRule("SchedulerHeartbeat", "scheduler_heartbeat", COUNTER, SCHEDULER,
               note="Every scheduler heartbeat (5 s): a Sum of about 12 per minute each."),
    MetricRule("SchedulerLoopDuration", "scheduler.scheduler_loop_duration", TIMER, SCHEDULER,
               unit=MILLISECONDS, note="Name after MWAA's convention (not in MWAA's v2 table)."),
    MetricRule("CriticalSectionDuration", "scheduler.critical_section_duration", TIMER,
               SCHEDULER, unit=MILLISECONDS),
    MetricRule("CriticalSectionBusy", "scheduler.critical_section_busy", COUNTER, SCHEDULER,
               note="Only when schedulers contend for the critical section."),
    MetricRule("TasksStarving", "scheduler.tasks.starving", GAUGE, SCHEDULER),
    MetricRule("TasksExecutable", "scheduler.tasks.executable", GAUGE, SCHEDULER),
    MetricRule("OrphanedTasksCleared", "scheduler.orphaned_tasks.cleared", COUNTER, SCHEDULER),
    MetricRule("OrphanedTasksAdopted", "scheduler.orphaned_tasks.adopted", COUNTER, SCHEDULER),
    MetricRule("DagRunsRunning", "scheduler.dagruns.running", GAUGE, SCHEDULER, versions=(3,),
               note="Name after MWAA's convention."),
    # Executor.
    MetricRule("OpenSlots", "executor.open_slots", GAUGE, EXECUTOR),
    MetricRule(contracts.METRIC_QUEUED_TASKS, "executor.queued_tasks", GAUGE, EXECUTOR),
    MetricRule(contracts.METRIC_RUNNING_TASKS, "executor.running_tasks", GAUGE, EXECUTOR),
    MetricRule("TaskTimeoutError", "celery.task_timeout_error", COUNTER, CELERY,
               note="Airflow 3.3 does not send it (the Celery provider's Stats is not set up)."),
    # DAG processing.
    MetricRule("DagBagSize", "dagbag_size", GAUGE, DAG_PROCESSING),
    MetricRule("ImportErrors", "dag_processing.import_errors", GAUGE, DAG_PROCESSING),
    MetricRule("TotalParseTime", "dag_processing.total_parse_time", GAUGE, DAG_PROCESSING,
               unit=SECONDS),
    MetricRule("Processes", "dag_processing.processes", COUNTER, DAG_PROCESSING,
               note="Started minus finished file processors."),
    MetricRule("ProcessorTimeouts", "dag_processing.processor_timeouts", COUNTER,
               DAG_PROCESSING),
    MetricRule("ManagerStalls", "dag_processing.manager_stalls", COUNTER, DAG_PROCESSING,
               versions=(2,)),
    MetricRule("DAGFileRefreshError", "dag_file_refresh_error", COUNTER, DAG_PROCESSING,
               versions=(2,)),
    MetricRule("CollectDBDags", "collect_db_dags", TIMER, DAG_PROCESSING, unit=MILLISECONDS,
               versions=(2,)),
    MetricRule("DagProcessorHeartbeat", "dag_processor_heartbeat", COUNTER, DAG_PROCESSING,
               versions=(3,), note="Name after MWAA's convention."),
    # Triggerer (names after MWAA's convention: not in MWAA's v2 table).
    MetricRule("TriggererHeartbeat", "triggerer_heartbeat", COUNTER, TRIGGERER),
    MetricRule("TriggersRunning", "triggers.running", GAUGE, TRIGGERER),
    MetricRule("TriggererCapacityLeft", "triggerer.capacity_left", GAUGE, TRIGGERER,
               versions=(3,)),
    MetricRule("TriggersBlockedMainThread", "triggers.blocked_main_thread", COUNTER, TRIGGERER),
    MetricRule("TriggersSucceeded", "triggers.succeeded", COUNTER, TRIGGERER),
    MetricRule("TriggersFailed", "triggers.failed", COUNTER, TRIGGERER),
    # Task instances, summed over every DAG and task (DAG=All, Task=All, as MWAA).
    MetricRule("TaskInstanceSuccesses", "ti_successes", COUNTER, None, totals=_TOTALS),
    MetricRule("TaskInstanceFailures", "ti_failures", COUNTER, None, totals=_TOTALS,
               note="Every failed try, retries included."),
    MetricRule("TaskInstancePreviouslySucceeded", "previously_succeeded", COUNTER, None,
               totals=_TOTALS),
    MetricRule("ZombiesKilled", "zombies_killed", COUNTER, None, totals=_TOTALS,
               versions=(2,)),
    MetricRule("ZombiesKilled", "task_instances_without_heartbeats_killed", COUNTER, None,
               totals=_TOTALS, versions=(3,)),
    MetricRule("DagCallbackExceptions", "dag.callback_exceptions", COUNTER, None,
               totals=(contracts.DAG_DIMENSION,)),
    # Per DAG and per task: one series per DAG (and task), so the cost grows with them.
    MetricRule("DAGDurationSuccess", "dagrun.duration.success", TIMER, None, per_dag=True,
               unit=MILLISECONDS),
    MetricRule("DAGDurationFailed", "dagrun.duration.failed", TIMER, None, per_dag=True,
               unit=MILLISECONDS),
    MetricRule("DAGScheduleDelay", "dagrun.schedule_delay", TIMER, None, per_dag=True,
               unit=MILLISECONDS, note="Scheduled runs only (not manual or asset-triggered)."),
    MetricRule("FirstTaskSchedulingDelay", "dagrun.first_task_scheduling_delay", TIMER, None,
               per_dag=True, unit=MILLISECONDS),
    MetricRule("DAGDependencyCheck", "dagrun.dependency-check", TIMER, None, per_dag=True,
               unit=MILLISECONDS),
    MetricRule("TaskRemovedFromDAG", "task_removed_from_dag", COUNTER, None, per_dag=True),
    MetricRule("TaskRestoredToDAG", "task_restored_to_dag", COUNTER, None, per_dag=True),
    MetricRule("TaskInstanceStarted", "ti.start", COUNTER, None, per_dag=True, per_task=True),
    MetricRule("TaskInstanceDuration", "task.duration", TIMER, None, per_dag=True,
               per_task=True, unit=MILLISECONDS, note="Successful and failed tries."),
)  # fmt: skip
"""The whole mapping, in the order of the docs table."""

METRIC_NAMES: frozenset[str] = frozenset(rule.name for rule in RULES)
"""Every MWAA metric name a ``metrics_allow_list`` may hold."""

DEFAULT_ALLOW_LIST: tuple[str, ...] = (
    "SchedulerHeartbeat",
    "SchedulerLoopDuration",
    "CriticalSectionDuration",
    "CriticalSectionBusy",
    "TasksStarving",
    "TasksExecutable",
    "OpenSlots",
    contracts.METRIC_QUEUED_TASKS,
    contracts.METRIC_RUNNING_TASKS,
    "DagBagSize",
    "ImportErrors",
    "TotalParseTime",
    "ProcessorTimeouts",
    "TriggersRunning",
    "TriggersBlockedMainThread",
    "TriggersFailed",
    "TaskInstanceSuccesses",
    "TaskInstanceFailures",
    "ZombiesKilled",
)
"""The metrics published unless ``metrics_allow_list`` says otherwise: the environment's
health, one series each whatever the number of DAGs (no per-DAG metric)."""


def rules_for(names: Iterable[str]) -> tuple[MetricRule, ...]:
    """The rules of the given MWAA names (every rule of a name), in :data:`RULES` order;
    unknown names are ignored."""
    wanted = set(names)
    return tuple(rule for rule in RULES if rule.name in wanted)


def unknown(names: Iterable[str]) -> list[str]:
    """The names that are not MWAA metric names of the mapping, sorted, once each."""
    return sorted(set(names) - METRIC_NAMES)


def dimension_names(rule: MetricRule) -> tuple[str, ...]:
    """The rule's CloudWatch dimensions, e.g. ``("Environment", "Function")``."""
    names = [contracts.ENVIRONMENT_DIMENSION]
    if rule.function is not None:
        names.append(contracts.FUNCTION_DIMENSION)
    if rule.per_dag or contracts.DAG_DIMENSION in rule.totals:
        names.append(contracts.DAG_DIMENSION)
    if rule.per_task or contracts.TASK_DIMENSION in rule.totals:
        names.append(contracts.TASK_DIMENSION)
    return tuple(names)


def fixed_dimensions(rule: MetricRule) -> dict[str, str]:
    """The rule's dimensions whose value does not depend on the DAG or task: Function, and
    those MWAA sets to ``All`` (Environment is the environment's name)."""
    fixed = {name: ALL for name in rule.totals}
    if rule.function is not None:
        fixed[contracts.FUNCTION_DIMENSION] = rule.function
    return fixed
