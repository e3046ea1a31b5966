"""Observability: CloudWatch Logs (flow logs included), alarms, dashboards, custom metrics
(Airflow's, the bundled Lambdas', Container Insights')."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..runtime import contracts, metric_names
from .context import Context
from .model import NotPriced
from .template import (
    MINUTES_PER_MONTH,
    display_name,
    environment_variables,
    function_variables,
    number,
    ref,
)

_METRICS_PER_SAMPLE = 4
"""The autoscaler's metrics: QueuedTasks, RunningTasks, DesiredWorkers, RunningWorkers; the
environment's own autoscaler adds TasksBelowDesired for each service it watches."""

_DAG_SYNC_METRICS = 6
"""The DAG sync's: DagSyntaxErrors, DuplicateDagIds, FilesWritten, FilesRemoved,
SyncFailures, RequirementsBuildFailed."""

# Container Insights (cluster- and service-level) metrics for Fargate, per the CloudWatch
# user guide's table of ECS Container Insights metrics: the eight resource metrics (CPU and
# memory used and reserved, network in and out, storage read and write) per cluster, per
# service and per task definition family; the cluster's ServiceCount and TaskCount; each
# service's DeploymentCount, DesiredTaskCount, PendingTaskCount, RunningTaskCount, TaskSetCount.
_INSIGHTS_RESOURCE_METRICS = 8

INSIGHTS_CLUSTER_METRICS = _INSIGHTS_RESOURCE_METRICS + 2

INSIGHTS_SERVICE_METRICS = _INSIGHTS_RESOURCE_METRICS + 5

INSIGHTS_FAMILY_METRICS = _INSIGHTS_RESOURCE_METRICS

_NEVER_EXPIRES_MONTHS = 12.0
"""Months of logs a group without retention is priced at holding (it grows without end)."""


def _watched_services(function: Mapping[str, Any]) -> int:
    """How many services' TasksBelowDesired an autoscaler publishes (its ``SERVICES`` object,
    literal or joined from the services' names)."""
    variables = function_variables(function)
    value = variables.get("SERVICES")
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return 0
        return len(parsed) if isinstance(parsed, dict) else 0
    text = json.dumps(value)
    return text.count('"Fn::GetAtt"') + text.count('"Ref"') if value else 0


def _retention_months(ctx: Context, log_group_id: str | None) -> float:
    if log_group_id is None or log_group_id not in ctx.resources:
        return _NEVER_EXPIRES_MONTHS
    days = number(ctx.props(log_group_id).get("RetentionInDays"))
    return days / 30 if days is not None else _NEVER_EXPIRES_MONTHS


def price_logs(ctx: Context) -> None:
    """Flow logs (vended logs, kept for their group's retention) and every other log group's
    ingestion and storage."""
    flow_groups: set[str] = set()
    for lid, resource in ctx.of_type("AWS::EC2::FlowLog"):
        props = resource.get("Properties") or {}
        destination = props.get("LogDestinationType", "cloud-watch-logs")
        if destination != "cloud-watch-logs":
            ctx.skip(lid, f"flow logs to {destination}: no price in the table")
            continue
        group = ref(props.get("LogGroupName"))
        months = _retention_months(ctx, group)
        ids = (lid, group) if group else (lid,)
        if group:
            flow_groups.add(group)
        label = display_name(lid, resource)
        ctx.add(
            f"{label}: flow logs ingested (vended logs)",
            ids,
            ctx.usage.flow_log_gb,
            "GB",
            "logs.vended_gb",
            "observability",
            "usage flow_log_gb",
        )
        ctx.add(
            f"{label}: flow logs kept {months:.1f} months",
            ids,
            ctx.usage.flow_log_gb * months,
            "GB-month",
            "logs.storage_gb_month",
            "observability",
            "retention months x a month's GB (uncompressed: an upper bound)",
        )
    groups = [lid for lid, _ in ctx.of_type("AWS::Logs::LogGroup") if lid not in flow_groups]
    if not groups:
        return
    months = max(_retention_months(ctx, lid) for lid in groups)
    ctx.add(
        f"CloudWatch Logs: {len(groups)} log groups, ingestion",
        groups,
        ctx.usage.log_gb,
        "GB",
        "logs.ingest_gb",
        "observability",
        "usage log_gb",
    )
    ctx.add(
        f"CloudWatch Logs: kept up to {months:.1f} months",
        groups,
        ctx.usage.log_gb * months,
        "GB-month",
        "logs.storage_gb_month",
        "observability",
        "the longest retention x a month's GB (uncompressed: an upper bound)",
    )


def price_alarms(ctx: Context) -> None:
    """Alarms by the metrics they read (standard or high resolution), composite alarms,
    dashboards."""
    standard: list[str] = []
    standard_metrics = 0
    high_res: list[str] = []
    high_res_metrics = 0
    for lid, resource in ctx.of_type("AWS::CloudWatch::Alarm"):
        props = resource.get("Properties") or {}
        metrics = props.get("Metrics")
        if isinstance(metrics, list):
            count = sum(1 for m in metrics if isinstance(m, Mapping) and "MetricStat" in m)
            count += sum(
                2
                for m in metrics
                if isinstance(m, Mapping)
                and "ANOMALY_DETECTION_BAND" in str(m.get("Expression", ""))
            )
            periods = [
                number((m.get("MetricStat") or {}).get("Period"))
                for m in metrics
                if isinstance(m, Mapping) and "MetricStat" in m
            ]
        else:
            count = 1
            periods = [number(props.get("Period"))]
        if any(p is not None and p < 60 for p in periods):
            high_res.append(lid)
            high_res_metrics += max(count, 1)
        else:
            standard.append(lid)
            standard_metrics += max(count, 1)
    if standard:
        ctx.add(
            f"CloudWatch alarms: {len(standard)} alarms reading {standard_metrics} metrics",
            standard,
            standard_metrics,
            "alarm metrics",
            "cloudwatch.alarm_metric_month",
            "observability",
        )
    if high_res:
        ctx.add(
            f"CloudWatch high-resolution alarms: {len(high_res)}",
            high_res,
            high_res_metrics,
            "alarm metrics",
            "cloudwatch.high_resolution_alarm_metric_month",
            "observability",
        )
    composite = [lid for lid, _ in ctx.of_type("AWS::CloudWatch::CompositeAlarm")]
    if composite:
        ctx.add(
            f"CloudWatch composite alarms: {len(composite)}",
            composite,
            len(composite),
            "alarms",
            "cloudwatch.composite_alarm_month",
            "observability",
        )
    dashboards = [lid for lid, _ in ctx.of_type("AWS::CloudWatch::Dashboard")]
    if dashboards:
        ctx.add(
            f"CloudWatch dashboards: {len(dashboards)}",
            dashboards,
            len(dashboards),
            "dashboards",
            "cloudwatch.dashboard_month",
            "observability",
        )


def price_metrics(ctx: Context) -> None:
    """Custom metrics: Airflow's (the OPENMWAA_METRICS allow-lists), the autoscaler's and
    the DAG sync's, Container Insights'; PutMetricData requests."""
    on = ctx.usage.on_fraction
    tasks = ctx.service_tasks()
    # Airflow's metrics, by the relay: the union of every task's allow-list.
    names: set[str] = set()
    relay_tasks = 0.0
    relay_ids: set[str] = set()
    for _service, (td_id, count) in tasks.items():
        if td_id not in ctx.resources:
            continue
        value = environment_variables(ctx.props(td_id)).get(contracts.METRICS_VARIABLE)
        if not isinstance(value, str):
            continue
        try:
            listed = json.loads(value).get("metrics") or []
        except (ValueError, AttributeError):
            continue
        names.update(str(name) for name in listed)
        relay_tasks += count
        relay_ids.add(td_id)
    if names:
        series = 0
        per_dag = []
        for name in sorted(names):
            rules = metric_names.rules_for([name])
            rule = rules[0] if rules else None
            if rule is not None and rule.per_task:
                series += ctx.usage.dags * ctx.usage.tasks_per_dag
                per_dag.append(name)
            elif rule is not None and rule.per_dag:
                series += ctx.usage.dags
                per_dag.append(name)
            else:
                series += 1
        note = "billed for the hours they are published (while on)"
        if per_dag:
            note += f"; per DAG or task: {', '.join(per_dag)} (usage dags, tasks_per_dag)"
        ctx.add(
            f"Airflow metrics: {len(names)} names, {series} series",
            sorted(relay_ids),
            series * on,
            "metric-months",
            "cloudwatch.metric_month",
            "observability",
            note,
        )
        ctx.add(
            f"Airflow metrics: PutMetricData, one call a minute from {relay_tasks:g} task(s)",
            sorted(relay_ids),
            relay_tasks * MINUTES_PER_MONTH * on / 1000,
            "thousand requests",
            "cloudwatch.put_metric_data_thousand",
            "observability",
            "an upper bound: a task calls only in minutes with something to send",
        )
    # The bundled Lambdas' metrics.
    for lid, function in ctx.of_type("AWS::Lambda::Function"):
        handler = str((function.get("Properties") or {}).get("Handler", ""))
        label = display_name(lid, function)
        if handler.startswith("autoscaler."):
            share = ctx.autoscaler_share(function)
            watched = _watched_services(function)
            metrics = _METRICS_PER_SAMPLE + watched
            ctx.add(
                f"{label}: {metrics} autoscaler metrics"
                + (f" ({watched} TasksBelowDesired)" if watched else ""),
                (lid,),
                metrics * share,
                "metric-months",
                "cloudwatch.metric_month",
                "observability",
                "published every minute the autoscaler runs",
            )
            ctx.add(
                f"{label}: PutMetricData, one call a minute",
                (lid,),
                MINUTES_PER_MONTH * share / 1000,
                "thousand requests",
                "cloudwatch.put_metric_data_thousand",
                "observability",
            )
        elif handler.startswith("dag_sync."):
            ctx.add(
                f"{label}: {_DAG_SYNC_METRICS} DAG sync metrics (embedded metric format)",
                (lid,),
                _DAG_SYNC_METRICS,
                "metric-months",
                "cloudwatch.metric_month",
                "observability",
            )
    # Container Insights.
    for lid, resource in ctx.of_type("AWS::ECS::Cluster"):
        settings = (resource.get("Properties") or {}).get("ClusterSettings") or []
        mode = next(
            (s.get("Value") for s in settings if s.get("Name") == "containerInsights"),
            "disabled",
        )
        if mode not in ("enabled", "enhanced"):
            continue
        in_cluster = [
            (s, td)
            for s, (td, _n) in tasks.items()
            if ref(ctx.props(s).get("Cluster")) in (lid, None)
        ]
        services = len(in_cluster)
        families = len({td for _s, td in in_cluster})
        count = (
            INSIGHTS_CLUSTER_METRICS
            + INSIGHTS_SERVICE_METRICS * services
            + INSIGHTS_FAMILY_METRICS * families
        )
        note = (
            f"{INSIGHTS_CLUSTER_METRICS} + {INSIGHTS_SERVICE_METRICS} x {services} services "
            f"+ {INSIGHTS_FAMILY_METRICS} x {families} task families, while tasks run"
        )
        if mode == "enhanced":
            note += "; enhanced observability's task and container metrics not priced"
        ctx.add(
            f"Container Insights ({mode}): {count} metrics",
            (lid,),
            count * on,
            "metric-months",
            "cloudwatch.metric_month",
            "observability",
            note,
        )
        ctx.not_priced.append(
            NotPriced(
                lid,
                "AWS::ECS::Cluster",
                "Container Insights' performance log events "
                "(/aws/ecs/containerinsights/…/performance) are billed as log "
                "ingestion, not in log_gb",
            )
        )
