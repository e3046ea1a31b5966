"""The autoscaler's settings, read from the function's environment variables (pure).

The construct sets the variables (docs/autoscaling.md lists them); :meth:`Settings.from_env`
reads them and raises one :class:`ConfigError` listing every problem.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import openmwaa_contracts as contracts

from autoscaler import core

SCHEDULE_PERIOD_SECONDS = 60.0
"""How often EventBridge starts an invocation (the construct's schedule)."""
DELIVERY_ALLOWANCE_SECONDS = 15.0
"""How much later than its predecessor's an invocation may start and still count as on time."""


class ConfigError(ValueError):
    """The function's environment variables are missing or invalid."""


@dataclass(frozen=True)
class Settings:
    queue_url: str
    cluster_name: str
    service_name: str
    policy: core.Policy
    sample_interval_seconds: float
    invocation_budget_seconds: float
    metric_namespace: str
    environment_name: str
    table_name: str
    worker_pool: str = ""
    """The worker pool's Celery queue; empty for the environment's own workers."""
    services: tuple[tuple[str, str], ...] = ()
    """(component, ECS service name) of every service whose TasksBelowDesired this function
    publishes (``SERVICES``, a JSON object; the environment's own autoscaler only)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read the settings the construct passes; raise one ConfigError listing every problem."""
        problems: list[str] = []

        def text(name: str, default: str | None = None) -> str:
            value = env.get(name, default)
            if value is None or not value.strip():
                problems.append(f"{name} is required")
                return ""
            return value.strip()

        def number(name: str, default: str | None, cast: Callable[[str], float]) -> float:
            raw = text(name, default)
            if not raw:
                return 0.0
            try:
                value = cast(raw)
            except ValueError:
                kind = "an integer" if cast is int else "a number"
                problems.append(f"{name}={raw!r}: must be {kind}")
                return 0.0
            if not math.isfinite(value):
                problems.append(f"{name}={raw!r}: must be finite")
                return 0.0
            return value

        queue_url = text("QUEUE_URL")
        cluster = text("CLUSTER_NAME")
        service = text("SERVICE_NAME")
        min_workers = int(number("MIN_WORKERS", None, int))
        max_workers = int(number("MAX_WORKERS", None, int))
        tasks_per_worker = int(number("TASKS_PER_WORKER", None, int))
        cooldown = number("SCALE_IN_COOLDOWN_SECONDS", "300", float)
        interval = number("SAMPLE_INTERVAL_SECONDS", "5", float)
        budget = number("INVOCATION_BUDGET_SECONDS", "50", float)
        namespace = text("METRIC_NAMESPACE", contracts.METRIC_NAMESPACE)
        environment = text("ENVIRONMENT_NAME")
        table = text("TABLE_NAME")
        services = parse_services(env.get("SERVICES", ""), problems)
        if interval <= 0:
            problems.append(f"SAMPLE_INTERVAL_SECONDS={interval:g}: must be > 0")
        if budget < 0:
            problems.append(f"INVOCATION_BUDGET_SECONDS={budget:g}: must be >= 0")
        problems.extend(
            core.policy_problems(
                min_workers=min_workers,
                max_workers=max_workers,
                tasks_per_worker=tasks_per_worker,
                cooldown_seconds=cooldown,
                max_gap_seconds=_max_gap(interval, budget),
            )
        )
        if problems:
            raise ConfigError("invalid autoscaler configuration: " + "; ".join(problems))
        return cls(
            queue_url=queue_url,
            cluster_name=cluster,
            service_name=service,
            policy=core.Policy(
                min_workers=min_workers,
                max_workers=max_workers,
                tasks_per_worker=tasks_per_worker,
                cooldown_seconds=cooldown,
                max_gap_seconds=_max_gap(interval, budget),
            ),
            sample_interval_seconds=interval,
            invocation_budget_seconds=budget,
            metric_namespace=namespace,
            environment_name=environment,
            table_name=table,
            worker_pool=env.get("WORKER_POOL", "").strip(),
            services=services,
        )


def parse_services(raw: str, problems: list[str]) -> tuple[tuple[str, str], ...]:
    """``SERVICES``: a JSON object, component -> ECS service name, both non-empty strings;
    empty or unset: none. Sorted by component. Appends to ``problems`` what is wrong."""
    if not raw.strip():
        return ()
    try:
        value = json.loads(raw)
    except ValueError:
        problems.append(f"SERVICES={raw[:80]!r}: must be a JSON object")
        return ()
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) and v for k, v in value.items()
    ):
        problems.append(
            f"SERVICES={raw[:80]!r}: must map component names to ECS service names (strings)"
        )
        return ()
    return tuple(sorted(value.items()))


def _max_gap(sample_interval: float, budget: float) -> float:
    # The pause between two invocations plus a delivery allowance (30 s with the defaults):
    # a lost invocation (a hole of at least 75 s) always blocks scale-in.
    return core.max_gap_for(
        sample_interval, budget, SCHEDULE_PERIOD_SECONDS, DELIVERY_ALLOWANCE_SECONDS
    )
