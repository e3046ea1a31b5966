"""Airflow's metrics on the construct side: props, each container's OPENMWAA_METRICS, the
alarms, the dashboard's panels, the metric helpers and docs/metrics.md's table."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions

from openmwaa import AirflowEnvironment, EnvironmentClass, WorkerPool, airflow_metrics
from openmwaa.airflow_metrics import mapping_table
from openmwaa.environment_props import AirflowEnvironmentProps, ResolvedProps, resolve
from openmwaa.monitoring import (
    OLDEST_QUEUED_TASK_AGE_SECONDS,
    SCHEDULER_HEARTBEAT_ALARM_OFF_WARNING_ID,
    TASK_FAILURE_RATE_MIN_FINISHED,
)
from openmwaa.runtime import contracts, metric_names
from openmwaa.validation import validate
from tests.conftest import REPO_ROOT
from tests.stacks import environment_stack

METRICS_DOC = REPO_ROOT / "docs" / "metrics.md"


def resolved(**changes: Any) -> ResolvedProps:
    return resolve(AirflowEnvironmentProps(**changes), construct_id="Airflow")


def problems(**changes: Any) -> list[str]:
    return validate(resolved(**changes))


# --- props ---------------------------------------------------------------------------------


def test_metrics_props_default_to_mwaas_namespace_and_the_default_list() -> None:
    props = resolved()
    assert props.metrics_namespace == contracts.MWAA_METRIC_NAMESPACE
    assert props.metrics_allow_list == tuple(sorted(metric_names.DEFAULT_ALLOW_LIST))
    assert props.task_failure_rate_alarm is None
    assert problems() == []


def test_metrics_allow_list_folds_duplicates_and_ignores_order() -> None:
    given = ["TaskInstanceFailures", "SchedulerHeartbeat", "TaskInstanceFailures"]
    assert resolved(metrics_allow_list=given).metrics_allow_list == (
        "SchedulerHeartbeat",
        "TaskInstanceFailures",
    )


def test_the_default_allow_list_is_environment_level_only() -> None:
    for rule in metric_names.rules_for(metric_names.DEFAULT_ALLOW_LIST):
        assert not rule.per_dag and not rule.per_task, rule.name


@pytest.mark.parametrize("namespace", ["", "AWS/MWAA", "x" * 256, "Airflow Metrics", "é"])
def test_fails_when_the_metrics_namespace_is_invalid(namespace: str) -> None:
    [problem] = problems(metrics_namespace=namespace)
    assert problem.startswith("metrics_namespace: got ")


@pytest.mark.parametrize("namespace", ["AmazonMWAA", "Acme/Airflow", "a.b-c_d#e:f", "x" * 255])
def test_a_metrics_namespace_with_cloudwatchs_characters_is_valid(namespace: str) -> None:
    assert problems(metrics_namespace=namespace) == []


def test_fails_when_the_allow_list_names_unknown_metrics() -> None:
    [problem] = problems(metrics_allow_list=["SchedulerHeartbeat", "NoSuch", "scheduler_heartbeat"])
    assert problem.startswith("metrics_allow_list: unknown metric names")
    assert "'NoSuch'" in problem and "'scheduler_heartbeat'" in problem
    assert "docs/metrics.md" in problem and "'SchedulerHeartbeat'" not in problem


def test_fails_when_the_allow_list_is_one_string() -> None:
    [problem] = problems(metrics_allow_list="SchedulerHeartbeat")
    assert problem.startswith("metrics_allow_list: got str")


def test_an_empty_allow_list_is_valid() -> None:
    assert problems(metrics_allow_list=[]) == []


@pytest.mark.parametrize("rate", [0, -0.1, 1.5, True, "0.1"])
def test_fails_when_the_task_failure_rate_is_not_a_fraction(rate: object) -> None:
    [problem] = problems(task_failure_rate_alarm=rate)
    assert problem.startswith(f"task_failure_rate_alarm: got {rate!r}")


@pytest.mark.parametrize("rate", [0.05, 1, 1.0])
def test_a_task_failure_rate_in_the_range_is_valid(rate: float) -> None:
    assert problems(task_failure_rate_alarm=rate) == []


def test_fails_when_the_task_failure_rate_alarm_lacks_its_metrics() -> None:
    [problem] = problems(task_failure_rate_alarm=0.2, metrics_allow_list=["TaskInstanceFailures"])
    assert problem.startswith("task_failure_rate_alarm: needs TaskInstanceSuccesses in")


def test_the_construct_refuses_an_unknown_metric_name() -> None:
    with pytest.raises(ValueError, match=r"metrics_allow_list: unknown metric names 'Nope'"):
        environment_stack(metrics_allow_list=["Nope"])


# --- containers ----------------------------------------------------------------------------


@dataclasses.dataclass
class Built:
    stack: cdk.Stack
    env: AirflowEnvironment
    template: assertions.Template


def _build(**props: Any) -> Built:
    stack, env = environment_stack(**props)
    return Built(stack, env, assertions.Template.from_stack(stack))


@pytest.fixture(scope="module")
def full() -> Built:
    """Custom namespace, the failure-rate alarm and a worker pool."""
    return _build(
        environment_name="prod",
        metrics_namespace="Acme/Airflow",
        task_failure_rate_alarm=0.25,
        worker_pools=[WorkerPool("long")],
    )


@pytest.fixture(scope="module")
def micro() -> Built:
    return _build(environment_name="tiny", environment_class=EnvironmentClass.MW1_MICRO)


@pytest.fixture(scope="module")
def metrics_off() -> Built:
    return _build(environment_name="quiet", metrics_allow_list=[])


def _containers(template: assertions.Template) -> dict[str, list[dict[str, Any]]]:
    """Task definition logical id -> its container definitions."""
    return {
        logical_id: task["Properties"]["ContainerDefinitions"]
        for logical_id, task in template.find_resources("AWS::ECS::TaskDefinition").items()
    }


def _metrics_setting(container: dict[str, Any]) -> dict[str, Any] | None:
    for variable in container.get("Environment", []):
        if variable["Name"] == contracts.METRICS_VARIABLE:
            return dict(json.loads(variable["Value"]))
    return None


def _airflow_tasks(template: assertions.Template) -> dict[str, list[dict[str, Any]]]:
    """The Airflow task definitions (not the requirements build's) and their containers."""
    return {
        logical_id: containers
        for logical_id, containers in _containers(template).items()
        if any(c["Name"] in contracts.COMPONENTS for c in containers)
    }


def test_every_airflow_container_gets_the_metrics_setting(full: Built) -> None:
    tasks = _airflow_tasks(full.template)
    assert len(tasks) == 7  # six components and the pool's workers
    for containers in tasks.values():
        for container in containers:
            setting = _metrics_setting(container)
            if container["Name"] not in contracts.COMPONENTS:
                assert setting is None, container["Name"]  # the init container
                continue
            assert setting is not None
            assert setting["namespace"] == "Acme/Airflow"
            assert setting["environment"] == "prod"
            assert setting["port"] == contracts.STATSD_PORT
            assert setting["metrics"] == sorted(metric_names.DEFAULT_ALLOW_LIST)


def test_the_metrics_setting_is_compact_json_with_sorted_keys(full: Built) -> None:
    [task] = [c for c in _airflow_tasks(full.template).values() if c[-1]["Name"] == "scheduler"]
    [raw] = [v["Value"] for v in task[-1]["Environment"] if v["Name"] == "OPENMWAA_METRICS"]
    value = json.loads(raw)
    assert raw == json.dumps(value, sort_keys=True, separators=(",", ":"))


@pytest.mark.parametrize("variant", ["full", "micro"])
def test_one_container_per_task_runs_the_relay(
    variant: str, request: pytest.FixtureRequest
) -> None:
    built: Built = request.getfixturevalue(variant)
    for containers in _airflow_tasks(built.template).values():
        relays = [
            c["Name"]
            for c in containers
            if (setting := _metrics_setting(c)) is not None and setting["relay"]
        ]
        airflow = [c["Name"] for c in containers if c["Name"] in contracts.COMPONENTS]
        assert relays == airflow[:1]


def test_micro_runs_one_relay_for_all_its_containers(micro: Built) -> None:
    [containers] = _airflow_tasks(micro.template).values()
    settings = [_metrics_setting(c) for c in containers if c["Name"] in contracts.COMPONENTS]
    assert len(settings) == len(contracts.COMPONENTS)
    assert [s["relay"] for s in settings if s] == [True] + [False] * (len(settings) - 1)


def test_the_requirements_build_gets_no_metrics_setting(full: Built) -> None:
    builds = [
        containers
        for containers in _containers(full.template).values()
        if not any(c["Name"] in contracts.COMPONENTS for c in containers)
    ]
    assert builds
    for containers in builds:
        assert all(_metrics_setting(c) is None for c in containers)


def test_an_empty_allow_list_turns_airflows_metrics_off(metrics_off: Built) -> None:
    for containers in _containers(metrics_off.template).values():
        assert all(_metrics_setting(c) is None for c in containers)


# --- alarms --------------------------------------------------------------------------------


def _alarm(built: Built, key: str) -> dict[str, Any]:
    alarm = built.env.monitoring.alarms[key]
    logical_id = built.stack.get_logical_id(alarm.node.default_child)  # type: ignore[arg-type]
    properties: dict[str, Any] = built.template.to_json()["Resources"][logical_id]["Properties"]
    return properties


def _math(properties: dict[str, Any]) -> tuple[str, dict[str, dict[str, Any]]]:
    """An alarm's expression and its metrics by id."""
    expression = next(m["Expression"] for m in properties["Metrics"] if "Expression" in m)
    metrics = {m["Id"]: m["MetricStat"] for m in properties["Metrics"] if "MetricStat" in m}
    return expression, metrics


def _dimensions(stat: dict[str, Any]) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]}


def test_every_alarm_notifies_the_alarm_topic(full: Built) -> None:
    topic = full.stack.resolve(full.env.monitoring.alarm_topic.topic_arn)
    for key in full.env.monitoring.alarms:
        assert _alarm(full, key)["AlarmActions"] == [topic], key


def test_the_alarm_keys_are_stable(full: Built, micro: Built) -> None:
    assert sorted(full.env.monitoring.alarms) == sorted(
        [
            "queue_backlog_at_max",
            "autoscaler_errors",
            "autoscaler_errors:long",
            "dag_sync_errors",
            "requirements_build_failed",
            "api_server_unhealthy",
            "scheduler_heartbeat_missing",
            *(f"service_below_desired:{name}" for name in [*contracts.COMPONENTS, "worker:long"]),
            "database_at_max_capacity",
            "oldest_queued_task_age",
            "oldest_queued_task_age:long",
            "dag_import_errors",
            "task_failure_rate",
        ]
    )
    assert sorted(micro.env.monitoring.alarms) == [
        "api_server_unhealthy",
        "dag_import_errors",
        "dag_sync_errors",
        "database_at_max_capacity",
        "oldest_queued_task_age",
        "requirements_build_failed",
        "scheduler_heartbeat_missing",
        "service_below_desired:all-in-one",
    ]


def test_scheduler_heartbeat_missing_alarm(full: Built) -> None:
    alarm = _alarm(full, "scheduler_heartbeat_missing")
    assert alarm["Namespace"] == "Acme/Airflow"
    assert alarm["MetricName"] == "SchedulerHeartbeat"
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
        "Environment": "prod",
        "Function": "Scheduler",
    }
    assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == ("Sum", 60, 1)
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert (alarm["EvaluationPeriods"], alarm["TreatMissingData"]) == (3, "breaching")


def test_scheduler_heartbeat_alarm_waits_for_the_scheduler_service(full: Built) -> None:
    alarm = full.env.monitoring.alarms["scheduler_heartbeat_missing"]
    resources = full.template.to_json()["Resources"]
    logical_id = full.stack.get_logical_id(alarm.node.default_child)  # type: ignore[arg-type]
    scheduler = full.env.services.services[contracts.SCHEDULER]
    service_id = full.stack.get_logical_id(scheduler.node.default_child)  # type: ignore[arg-type]
    assert service_id in resources[logical_id]["DependsOn"]


def test_without_scheduler_heartbeat_no_alarm_and_a_warning(metrics_off: Built) -> None:
    assert "scheduler_heartbeat_missing" not in metrics_off.env.monitoring.alarms
    warnings = assertions.Annotations.from_stack(metrics_off.stack).find_warning(
        "*", assertions.Match.string_like_regexp(SCHEDULER_HEARTBEAT_ALARM_OFF_WARNING_ID)
    )
    assert len(warnings) == 1


def test_service_below_desired_alarm_reads_the_autoscalers_tasks_below_desired(
    full: Built,
) -> None:
    """Independent of Container Insights (off by default): the environment's autoscaler
    publishes one TasksBelowDesired per service, a pool's service included."""
    for key in [*contracts.COMPONENTS, "worker:long"]:
        alarm = _alarm(full, f"service_below_desired:{key}")
        assert (alarm["Namespace"], alarm["MetricName"]) == (
            contracts.METRIC_NAMESPACE,
            contracts.METRIC_TASKS_BELOW_DESIRED,
        )
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
            "Environment": "prod",
            "Service": key,
        }
        assert (alarm["Statistic"], alarm["Period"]) == ("Minimum", 60)
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
        assert (alarm["EvaluationPeriods"], alarm["TreatMissingData"]) == (5, "notBreaching")


def test_micro_with_container_insights_compares_its_task_counts() -> None:
    built = _build(environment_class=EnvironmentClass.MW1_MICRO, container_insights=True)
    alarm = _alarm(built, "service_below_desired:all-in-one")
    expression, metrics = _math(alarm)
    assert expression == "desired - running"
    assert {m["Metric"]["MetricName"] for m in metrics.values()} == {
        "RunningTaskCount",
        "DesiredTaskCount",
    }
    service = built.env.services.services[contracts.SCHEDULER]
    for stat in metrics.values():
        assert stat["Metric"]["Namespace"] == "ECS/ContainerInsights"
        assert _dimensions(stat) == {
            "ClusterName": built.stack.resolve(service.cluster.cluster_name),
            "ServiceName": built.stack.resolve(service.service_name),
        }
    assert (alarm["EvaluationPeriods"], alarm["TreatMissingData"]) == (5, "notBreaching")


def test_micro_without_container_insights_watches_its_one_tasks_health(micro: Built) -> None:
    """No autoscaler and no Container Insights: the single task runs the api-server, so the
    load balancer's healthy count of its target says whether it runs."""
    alarm = _alarm(micro, "service_below_desired:all-in-one")
    expression, metrics = _math(alarm)
    assert expression == "IF(healthy < 1, 1 - healthy, 0)"
    [stat] = metrics.values()
    assert (stat["Metric"]["Namespace"], stat["Metric"]["MetricName"]) == (
        "AWS/ApplicationELB",
        "HealthyHostCount",
    )
    assert stat["Stat"] == "Minimum"
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    assert (alarm["EvaluationPeriods"], alarm["TreatMissingData"]) == (5, "notBreaching")
    assert "ECS/ContainerInsights" not in json.dumps(micro.template.to_json())


def test_database_at_max_capacity_alarm_uses_the_classes_max_acu(full: Built) -> None:
    alarm = _alarm(full, "database_at_max_capacity")
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/RDS", "ServerlessDatabaseCapacity")
    assert alarm["Threshold"] == full.env.spec.db_max_acu
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert (alarm["Statistic"], alarm["EvaluationPeriods"]) == ("Maximum", 15)


def test_database_at_max_capacity_follows_database_props() -> None:
    built = _build(database_props={"serverless_v2_max_capacity": 24})
    assert _alarm(built, "database_at_max_capacity")["Threshold"] == 24


def test_oldest_queued_task_age_alarm_counts_only_while_messages_wait(full: Built) -> None:
    alarm = _alarm(full, "oldest_queued_task_age:long")
    expression, metrics = _math(alarm)
    assert expression == "IF(visible > 0, age, 0)"
    assert metrics["age"]["Metric"]["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert metrics["visible"]["Metric"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert (metrics["age"]["Stat"], metrics["visible"]["Stat"]) == ("Maximum", "Minimum")
    queue = full.env.broker.pool_queues["long"]
    assert _dimensions(metrics["age"]) == {"QueueName": full.stack.resolve(queue.queue_name)}
    assert alarm["Threshold"] == OLDEST_QUEUED_TASK_AGE_SECONDS == 600
    assert alarm["EvaluationPeriods"] == 3


def test_dag_import_errors_alarm_joins_the_syncs_and_airflows_counts(full: Built) -> None:
    alarm = _alarm(full, "dag_import_errors")
    expression, metrics = _math(alarm)
    assert expression == "MAX([FILL(imports, 0), FILL(syntax, 0)])"
    assert metrics["syntax"]["Metric"]["Namespace"] == contracts.METRIC_NAMESPACE
    assert metrics["syntax"]["Metric"]["MetricName"] == contracts.METRIC_DAG_SYNTAX_ERRORS
    assert (metrics["syntax"]["Stat"], metrics["syntax"]["Period"]) == ("Sum", 300)
    assert metrics["imports"]["Metric"]["Namespace"] == "Acme/Airflow"
    assert metrics["imports"]["Metric"]["MetricName"] == "ImportErrors"
    assert _dimensions(metrics["imports"]) == {"Environment": "prod", "Function": "DAG Processing"}
    assert (metrics["imports"]["Stat"], metrics["imports"]["Period"]) == ("Minimum", 300)
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_dag_import_errors_alarm_reads_the_sync_alone_without_airflows_metrics(
    metrics_off: Built,
) -> None:
    expression, metrics = _math(_alarm(metrics_off, "dag_import_errors"))
    assert expression == "MAX([FILL(syntax, 0)])"
    assert set(metrics) == {"syntax"}


def test_task_failure_rate_alarm(full: Built) -> None:
    alarm = _alarm(full, "task_failure_rate")
    expression, metrics = _math(alarm)
    assert expression == (
        f"IF((FILL(f, 0) + FILL(s, 0)) >= {TASK_FAILURE_RATE_MIN_FINISHED}, "
        "FILL(f, 0) / (FILL(f, 0) + FILL(s, 0)), 0)"
    )
    assert metrics["f"]["Metric"]["MetricName"] == "TaskInstanceFailures"
    assert metrics["s"]["Metric"]["MetricName"] == "TaskInstanceSuccesses"
    for stat in metrics.values():
        assert (stat["Stat"], stat["Period"]) == ("Sum", 900)
        assert _dimensions(stat) == {"Environment": "prod", "DAG": "All", "Task": "All"}
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0.25, "GreaterThanThreshold")


def test_task_failure_rate_alarm_is_opt_in(micro: Built) -> None:
    assert "task_failure_rate" not in micro.env.monitoring.alarms


# --- dashboard -----------------------------------------------------------------------------


def _dashboard_body(built: Built) -> str:
    [dashboard] = built.template.find_resources("AWS::CloudWatch::Dashboard").values()
    return json.dumps(built.stack.resolve(dashboard["Properties"]["DashboardBody"]))


def test_dashboard_has_scheduler_and_dag_panels(full: Built) -> None:
    body = _dashboard_body(full)
    for title in ("Scheduler", "Executor slots and tasks", "DAGs", "Task instances"):
        assert f'\\"title\\":\\"{title}\\"' in body
    for name in ("SchedulerHeartbeat", "CriticalSectionDuration", "OpenSlots", "DagBagSize"):
        assert f'\\"{name}\\"' in body
    assert '\\"Acme/Airflow\\"' in body


def test_dashboard_leaves_out_the_panels_of_unpublished_metrics(metrics_off: Built) -> None:
    body = _dashboard_body(metrics_off)
    assert "SchedulerHeartbeat" not in body and '\\"title\\":\\"DAGs\\"' not in body


# --- metric helpers ------------------------------------------------------------------------


def test_metric_helpers_name_airflows_metrics(full: Built) -> None:
    env = full.env
    heartbeat = env.metric_scheduler_heartbeat()
    assert (heartbeat.namespace, heartbeat.metric_name) == ("Acme/Airflow", "SchedulerHeartbeat")
    assert heartbeat.dimensions == {"Environment": "prod", "Function": "Scheduler"}
    assert heartbeat.statistic == "Sum"
    assert env.metric_import_errors().dimensions == {
        "Environment": "prod",
        "Function": "DAG Processing",
    }
    assert env.metric_dag_bag_size().statistic == "Maximum"
    for metric in (env.metric_task_failures(), env.metric_task_successes()):
        assert metric.dimensions == {"Environment": "prod", "DAG": "All", "Task": "All"}
    duration = env.metric_dag_duration_success("etl")
    assert duration.dimensions == {"Environment": "prod", "DAG": "etl"}
    assert duration.statistic == "Average"


def test_airflow_metric_builds_any_mapped_metric(full: Built) -> None:
    metric = full.env.airflow_metric(
        "TaskInstanceDuration",
        dag="etl",
        task="load",
        statistic="p90",
        period=cdk.Duration.minutes(5),
    )
    assert metric.dimensions == {"Environment": "prod", "DAG": "etl", "Task": "load"}
    assert (metric.statistic, metric.period.to_minutes()) == ("p90", 5)
    queued = full.env.airflow_metric("QueuedTasks", function="Executor")
    assert queued.dimensions == {"Environment": "prod", "Function": "Executor"}


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("NoSuchMetric", {}, r"^name: got 'NoSuchMetric'"),
        ("SchedulerHeartbeat", {"function": "Executor"}, r"^function: got 'Executor'"),
        ("DAGDurationSuccess", {}, r"^dag: got None for DAGDurationSuccess"),
        ("SchedulerHeartbeat", {"dag": "etl"}, r"^dag: got 'etl' for SchedulerHeartbeat"),
        ("DAGDurationSuccess", {"dag": "etl", "task": "t"}, r"^task: got 't'"),
    ],
)
def test_fails_when_a_metric_does_not_exist(
    full: Built, name: str, arguments: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        full.env.airflow_metric(name, **arguments)


def test_the_names_the_construct_reads_are_in_the_mapping() -> None:
    assert set(airflow_metrics.NAMES_USED) <= metric_names.METRIC_NAMES


# --- docs/metrics.md -----------------------------------------------------------------------


def _doc_table() -> str:
    text = METRICS_DOC.read_text()
    found = re.search(r"<!-- mapping:start -->\n(.*?)<!-- mapping:end -->", text, re.S)
    assert found, "docs/metrics.md lost its mapping markers"
    return found[1]


def test_the_docs_mapping_table_is_the_mapping() -> None:
    assert _doc_table() == mapping_table(), (
        "regenerate docs/metrics.md's table: python -c 'from openmwaa.airflow_metrics "
        'import mapping_table; print(mapping_table(), end="")\''
    )


def test_the_docs_count_the_default_lists_metrics_and_cost() -> None:
    text = METRICS_DOC.read_text()
    count = len(set(metric_names.DEFAULT_ALLOW_LIST))
    assert f"{count} metrics" in text
    assert f"${count * 0.30:.2f} a month" in text
    measured = re.findall(r"^\| [\d,]+ .*\| (\d+\.\d) MiB \| ([\d.]+) s a minute", text, re.M)
    assert measured, "docs/metrics.md lost the relay's measured memory and CPU table"
