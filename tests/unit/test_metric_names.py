"""The mapping of Airflow's StatsD metrics to MWAA's CloudWatch names (runtime/metric_names)."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

from openmwaa.runtime import metric_names
from openmwaa.runtime.metric_names import RULES, MetricRule
from tests.conftest import REPO_ROOT

AIRFLOW_SOURCES = {
    2: REPO_ROOT
    / ".e2e-cache/airflow-venv-2.11.2-a9a35e3f3f4e/lib/python3.12/site-packages/airflow",
    3: REPO_ROOT
    / ".e2e-cache/airflow-venv-3.3.2-c696975e6a90/lib/python3.12/site-packages/airflow",
}
"""The pinned Airflow 2.11.2 and 3.3.2 the e2e tests install (present once they ran)."""

CHECKED_NAMES = {
    2: {
        "celery.task_timeout_error", "collect_db_dags", "dag.callback_exceptions",
        "dag_file_refresh_error", "dag_processing.import_errors",
        "dag_processing.manager_stalls", "dag_processing.processes",
        "dag_processing.processor_timeouts", "dag_processing.total_parse_time", "dagbag_size",
        "dagrun.dependency-check", "dagrun.duration.failed", "dagrun.duration.success",
        "dagrun.first_task_scheduling_delay", "dagrun.schedule_delay", "executor.open_slots",
        "executor.queued_tasks", "executor.running_tasks", "previously_succeeded",
        "scheduler.critical_section_busy", "scheduler.critical_section_duration",
        "scheduler.orphaned_tasks.adopted", "scheduler.orphaned_tasks.cleared",
        "scheduler.scheduler_loop_duration", "scheduler.tasks.executable",
        "scheduler.tasks.starving", "scheduler_heartbeat", "task.duration",
        "task_removed_from_dag", "task_restored_to_dag", "ti.start", "ti_failures",
        "ti_successes", "triggerer_heartbeat", "triggers.blocked_main_thread",
        "triggers.failed", "triggers.running", "triggers.succeeded", "zombies_killed",
    },
    3: {
        "celery.task_timeout_error", "dag.callback_exceptions", "dag_processing.import_errors",
        "dag_processing.processes", "dag_processing.processor_timeouts",
        "dag_processing.total_parse_time", "dag_processor_heartbeat", "dagbag_size",
        "dagrun.dependency-check", "dagrun.duration.failed", "dagrun.duration.success",
        "dagrun.first_task_scheduling_delay", "dagrun.schedule_delay", "executor.open_slots",
        "executor.queued_tasks", "executor.running_tasks", "previously_succeeded",
        "scheduler.critical_section_busy", "scheduler.critical_section_duration",
        "scheduler.dagruns.running", "scheduler.orphaned_tasks.adopted",
        "scheduler.orphaned_tasks.cleared", "scheduler.scheduler_loop_duration",
        "scheduler.tasks.executable", "scheduler.tasks.starving", "scheduler_heartbeat",
        "task.duration", "task_instances_without_heartbeats_killed", "task_removed_from_dag",
        "task_restored_to_dag", "ti.start", "ti_failures", "ti_successes",
        "triggerer.capacity_left", "triggerer_heartbeat", "triggers.blocked_main_thread",
        "triggers.failed", "triggers.running", "triggers.succeeded",
    },
}  # fmt: skip
"""Airflow's StatsD names each version sends, as found in its code: a quoted literal at a
``Stats`` call site, or for ``dagrun.duration.*`` the f-string ``f"dagrun.duration.{state}"``
(Airflow 3's metrics registry also lists names no code sends, ``manager_stalls``). Checked
against the pinned sources by :func:`test_checked_names_are_in_the_pinned_airflow_sources`
whenever the e2e cache has them, so the list stays true where they are absent."""


@cache
def airflow_source_text(major: int) -> str:
    """Airflow's own code (no tests, no providers but Celery's and the compat layer), as one
    text."""
    root = AIRFLOW_SOURCES[major]
    texts = []
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).parts
        if "tests" in parts or (parts[0] == "providers" and parts[1] not in ("celery", "common")):
            continue
        texts.append(path.read_text(errors="replace"))
    return "\n".join(texts)


def sent_by(text: str, name: str) -> bool:
    """``name`` appears as a quoted literal, or as an f-string's head (``f"a.b.{``)."""
    if f'"{name}"' in text or f"'{name}'" in text:
        return True
    head = name.rpartition(".")[0]
    return bool(head) and re.search(r"f[\"']" + re.escape(head) + r"\.\{", text) is not None


def test_every_rule_is_in_the_checked_names_of_its_versions() -> None:
    for rule in RULES:
        for major in (2, 3):
            assert (rule.airflow in CHECKED_NAMES[major]) == (major in rule.versions), rule


@pytest.mark.parametrize("major", [2, 3])
def test_checked_names_are_in_the_pinned_airflow_sources(major: int) -> None:
    if not AIRFLOW_SOURCES[major].is_dir():
        pytest.skip(f"the pinned Airflow {major} is not in .e2e-cache (run the e2e tests once)")
    text = airflow_source_text(major)
    every = {rule.airflow for rule in RULES}

    assert {name for name in every if sent_by(text, name)} == CHECKED_NAMES[major]


def test_names_are_mwaa_style_and_pairs_unique() -> None:
    pairs = [(rule.name, rule.airflow) for rule in RULES]
    assert len(pairs) == len(set(pairs))
    assert len({rule.airflow for rule in RULES}) == len(RULES)
    for rule in RULES:
        assert re.fullmatch(r"[A-Z][A-Za-z]+", rule.name), rule.name
        assert re.fullmatch(r"[a-z0-9_.-]+", rule.airflow), rule.airflow


def test_one_name_keeps_one_set_of_dimensions_and_unit() -> None:
    shapes: dict[str, set[tuple[object, ...]]] = {}
    for rule in RULES:
        shape = (metric_names.dimension_names(rule), rule.function, rule.unit, rule.kind)
        shapes.setdefault(rule.name, set()).add(shape)
    assert {name: len(s) for name, s in shapes.items() if len(s) > 1} == {}


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: f"{rule.name}:{rule.airflow}")
def test_each_rule_is_consistent(rule: MetricRule) -> None:
    assert rule.kind in (metric_names.COUNTER, metric_names.GAUGE, metric_names.TIMER)
    if rule.kind == metric_names.TIMER:
        assert rule.unit == metric_names.MILLISECONDS
    else:
        assert rule.unit in (metric_names.COUNT, metric_names.SECONDS)
    assert rule.per_task <= rule.per_dag
    assert not (rule.per_dag and rule.totals)
    assert (rule.function is None) == (rule.per_dag or bool(rule.totals))
    assert set(rule.versions) <= {2, 3} and rule.versions


def test_metric_names_are_every_rules_name() -> None:
    assert {rule.name for rule in RULES} == metric_names.METRIC_NAMES


def test_default_allow_list_is_environment_level_and_known() -> None:
    defaults = metric_names.DEFAULT_ALLOW_LIST

    assert len(set(defaults)) == len(defaults)
    assert metric_names.unknown(defaults) == []
    rules = metric_names.rules_for(defaults)
    assert not any(rule.per_dag for rule in rules)
    assert {"SchedulerHeartbeat", "ImportErrors", "TaskInstanceFailures"} <= set(defaults)


def test_rules_for_takes_every_rule_of_a_name_and_ignores_unknown_ones() -> None:
    rules = metric_names.rules_for(["ZombiesKilled", "NoSuchMetric", "ZombiesKilled"])

    assert [rule.airflow for rule in rules] == [
        "zombies_killed",
        "task_instances_without_heartbeats_killed",
    ]


def test_unknown_names_are_sorted_once() -> None:
    assert metric_names.unknown(["b", "QueuedTasks", "a", "b"]) == ["a", "b"]


@pytest.mark.parametrize(
    ("name", "dimensions", "fixed"),
    [
        ("SchedulerHeartbeat", ("Environment", "Function"), {"Function": "Scheduler"}),
        ("DagBagSize", ("Environment", "Function"), {"Function": "DAG Processing"}),
        ("TaskInstanceFailures", ("Environment", "DAG", "Task"), {"DAG": "All", "Task": "All"}),
        ("DagCallbackExceptions", ("Environment", "DAG"), {"DAG": "All"}),
        ("DAGDurationSuccess", ("Environment", "DAG"), {}),
        ("TaskInstanceDuration", ("Environment", "DAG", "Task"), {}),
    ],
)
def test_dimensions_follow_mwaa(name: str, dimensions: tuple[str, ...], fixed: object) -> None:
    (rule,) = metric_names.rules_for([name])

    assert metric_names.dimension_names(rule) == dimensions
    assert metric_names.fixed_dimensions(rule) == fixed


def test_the_module_imports_only_the_standard_library_and_contracts() -> None:
    source = Path(metric_names.__file__).read_text()
    imports = [
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    relative = [n for n in imports if isinstance(n, ast.ImportFrom) and n.level]
    assert [ast.unparse(n) for n in relative] == ["from . import contracts"]
    absolute = {
        alias.name.split(".")[0]
        for n in imports
        if not (isinstance(n, ast.ImportFrom) and n.level)
        for alias in (n.names if isinstance(n, ast.Import) else [ast.alias(n.module or "")])
    }
    assert absolute <= {"__future__", "collections", "dataclasses"}
