"""Compute: ECS services on Fargate (on-demand and Spot, by capacity provider strategy), the
worker's extra hours, and the Lambda functions that run on a schedule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..runtime import contracts
from .context import Context
from .model import LineItem, WorkerTask
from .template import (
    display_name,
    environment_variables,
    function_variables,
    invocations_per_month,
    number,
    ref,
)


@dataclass
class _Placement:
    """How a service's tasks split between FARGATE and FARGATE_SPOT."""

    base_on_demand: float = 0.0
    base_spot: float = 0.0
    weight_on_demand: float = 1.0
    weight_spot: float = 0.0
    described: str = "on-demand"

    def split(self, tasks: float) -> tuple[float, float]:
        """(on-demand, spot) of ``tasks`` tasks: the bases first, the rest by weight."""
        on_demand = min(tasks, self.base_on_demand)
        spot = min(tasks - on_demand, self.base_spot)
        rest = tasks - on_demand - spot
        weights = self.weight_on_demand + self.weight_spot
        share = self.weight_spot / weights if weights else 0.0
        return on_demand + rest * (1 - share), spot + rest * share

    @property
    def marginal_spot_share(self) -> float:
        """The share of tasks above the bases that land on Spot."""
        weights = self.weight_on_demand + self.weight_spot
        return self.weight_spot / weights if weights else 0.0


def _placement(ctx: Context, service: Mapping[str, Any]) -> _Placement:
    """Where the service's tasks run: a launch type is on-demand; a capacity provider
    strategy (the service's, else the cluster's default) splits them."""
    props = service.get("Properties") or {}
    if props.get("LaunchType"):
        return _Placement()
    strategy = props.get("CapacityProviderStrategy") or _cluster_default_strategy(
        ctx, props.get("Cluster")
    )
    if not strategy:
        return _Placement()
    placement = _Placement(weight_on_demand=0.0)
    parts = []
    for entry in strategy:
        provider = entry.get("CapacityProvider")
        base = number(entry.get("Base")) or 0.0
        weight = number(entry.get("Weight")) or 0.0
        parts.append(f"{provider} base {base:g} weight {weight:g}")
        if provider == "FARGATE_SPOT":
            placement.base_spot += base
            placement.weight_spot += weight
        else:
            placement.base_on_demand += base
            placement.weight_on_demand += weight
    placement.described = ", ".join(parts)
    return placement


def _cluster_default_strategy(ctx: Context, cluster: Any) -> list[Mapping[str, Any]] | None:
    cluster_id = ref(cluster)
    for _lid, association in ctx.of_type("AWS::ECS::ClusterCapacityProviderAssociations"):
        props = association.get("Properties") or {}
        if cluster_id and ref(props.get("Cluster")) != cluster_id:
            continue
        strategy = props.get("DefaultCapacityProviderStrategy")
        if strategy:
            return list(strategy)
    return None


def price_services(ctx: Context) -> None:
    """Each ECS service: its tasks (DesiredCount, or the autoscaled minimum) x its task size
    x the hours on, on-demand or Spot as its capacity provider strategy places them."""
    services = ctx.of_type("AWS::ECS::Service")
    used_task_definitions: set[str] = set()
    environment_worker = _environment_worker_service(ctx, services)
    for service_id, service in services:
        props = service.get("Properties") or {}
        td_id = ref(props.get("TaskDefinition"))
        if td_id is None or td_id not in ctx.resources:
            ctx.skip(service_id, "its task definition is not in the template")
            continue
        used_task_definitions.add(td_id)
        task_definition = ctx.props(td_id)
        label = display_name(service_id, service)
        if props.get("LaunchType", "FARGATE") != "FARGATE":
            ctx.skip(
                service_id,
                f"launch type {props.get('LaunchType')}: billed by its instances, not priced",
            )
            ctx.handled.add(td_id)
            continue
        platform = task_definition.get("RuntimePlatform") or {}
        if platform.get("OperatingSystemFamily", "LINUX") != "LINUX":
            ctx.skip(service_id, "a Windows task: no Windows Fargate price in the table")
            ctx.handled.add(td_id)
            continue
        architecture = str(platform.get("CpuArchitecture", "X86_64"))
        cpu, memory = (
            number(task_definition.get("Cpu")),
            number(task_definition.get("Memory")),
        )
        if cpu is None or memory is None:
            ctx.skip(service_id, "its task definition's Cpu or Memory is not a literal")
            ctx.handled.add(td_id)
            continue
        vcpu, gb = cpu / 1024, memory / 1024
        desired = number(props.get("DesiredCount")) if "DesiredCount" in props else None
        note = ""
        if "DesiredCount" in props and desired is None:
            ctx.skip(service_id, "its DesiredCount is not a literal")
            ctx.handled.add(td_id)
            continue
        if desired is None:
            minimum = ctx.autoscaled_minimum(service_id)
            if minimum is None:
                minimum = float(ctx.envs[0].min_workers) if ctx.envs else 0.0
            desired = minimum
            note = f"autoscaled worker, priced at its minimum of {minimum:g}"
        placement = _placement(ctx, service)
        on_demand, spot = placement.split(desired)
        size = f"{architecture} {vcpu:g} vCPU {gb:g} GB"
        ids = (service_id, td_id)
        for count, is_spot in ((on_demand, False), (spot, True)):
            if count > 0 or (desired <= 0 and not is_spot):
                ctx.add(
                    f"{label}: {count:g} task(s), {size}, {'Spot' if is_spot else 'on-demand'}",
                    ids,
                    count * ctx.usage.hours_on,
                    "task-hours",
                    ctx.fargate_rate(architecture, vcpu, gb, is_spot),
                    "compute",
                    note,
                )
        if service_id == environment_worker:
            _price_worker(ctx, label, ids, architecture, vcpu, gb, placement)
    for td_id, _td in ctx.of_type("AWS::ECS::TaskDefinition"):
        if td_id not in used_task_definitions and td_id not in ctx.handled:
            ctx.skip(
                td_id,
                "a one-off task (the requirements build): billed per run, no standing charge",
            )


def _environment_worker_service(ctx: Context, services: Sequence[tuple[str, Any]]) -> str | None:
    """The environment's own worker service: autoscaled (no DesiredCount), not a pool."""
    autoscaled = [lid for lid, s in services if "DesiredCount" not in (s.get("Properties") or {})]
    for lid in autoscaled:
        td_id = ref((ctx.resources[lid].get("Properties") or {}).get("TaskDefinition"))
        td = ctx.props(td_id) if td_id is not None and td_id in ctx.resources else {}
        if contracts.WORKER_QUEUE_VARIABLE not in environment_variables(td):
            return lid
    return autoscaled[0] if autoscaled else None


def _price_worker(
    ctx: Context,
    label: str,
    ids: tuple[str, ...],
    architecture: str,
    vcpu: float,
    gb: float,
    placement: _Placement,
) -> None:
    on_demand = ctx.fargate_rate(architecture, vcpu, gb, spot=False)
    spot = ctx.fargate_rate(architecture, vcpu, gb, spot=True)
    share = placement.marginal_spot_share
    ctx.worker = WorkerTask(
        service=label,
        architecture=architecture,
        vcpu=vcpu,
        memory_gb=gb,
        on_demand_hour=on_demand,
        spot_hour=spot,
        template_hour=on_demand * (1 - share) + spot * share,
        spot_share=share,
    )
    hours = ctx.usage.worker_hours
    if hours <= 0:
        return
    for part, is_spot, rate in ((1 - share, False, on_demand), (share, True, spot)):
        if part <= 0:
            continue
        ctx.items.append(
            LineItem(
                f"{label}: extra worker-hours, {'Spot' if is_spot else 'on-demand'}",
                ids,
                hours * part,
                "task-hours",
                rate,
                "compute",
                "usage worker_hours, placed by the service's capacity provider strategy",
            )
        )


def price_functions(ctx: Context) -> None:
    """Each Lambda function an enabled ``rate(...)`` rule runs: duration (its
    INVOCATION_BUDGET_SECONDS, else usage lambda_seconds) and requests; the others run on
    events and are listed as not priced."""
    schedules: dict[str, float] = {}
    other_schedules: set[str] = set()
    for _lid, rule in ctx.of_type("AWS::Events::Rule", "AWS::Scheduler::Schedule"):
        props = rule.get("Properties") or {}
        if props.get("State", "ENABLED") != "ENABLED":
            continue
        runs = invocations_per_month(props.get("ScheduleExpression"))
        targets = props.get("Targets") or props.get("Target") or []
        for target in [targets] if isinstance(targets, Mapping) else targets:
            function_id = ref(target.get("Arn"))
            if function_id and runs is not None:
                schedules[function_id] = schedules.get(function_id, 0.0) + runs
            elif function_id and props.get("ScheduleExpression"):
                other_schedules.add(function_id)
    for lid, function in ctx.of_type("AWS::Lambda::Function"):
        props = function.get("Properties") or {}
        runs = schedules.get(lid)
        if runs is None:
            reason = (
                "runs on a cron schedule (a few times a day, at most): fractions of a cent"
                if lid in other_schedules
                else "runs on events or during deployments, not on a schedule: billed per "
                "invocation"
            )
            ctx.skip(lid, reason)
            continue
        memory_gb = (number(props.get("MemorySize")) or 128) / 1024
        variables = function_variables(function)
        budget = number(variables.get("INVOCATION_BUDGET_SECONDS"))
        seconds = budget if budget is not None else ctx.usage.lambda_seconds
        arch = "arm64" if "arm64" in (props.get("Architectures") or []) else "x86_64"
        label = display_name(lid, function)
        share = ctx.autoscaler_share(function)
        runs *= share
        ctx.add(
            f"{label}: {runs:,.0f} runs x {seconds:g} s x {memory_gb * 1024:g} MB ({arch})",
            (lid,),
            runs * seconds * memory_gb,
            "GB-seconds",
            f"lambda.{arch}.gb_second",
            "compute",
            ("INVOCATION_BUDGET_SECONDS" if budget is not None else "usage lambda_seconds")
            + ("; while on: the pauser disables its schedule while paused" if share < 1 else ""),
        )
        ctx.add(
            f"{label}: requests",
            (lid,),
            runs / 1e6,
            "million requests",
            "lambda.million_requests",
            "compute",
        )
