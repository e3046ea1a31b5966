"""The state one estimate builds up, and the helpers every pricing rule uses."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .model import LineItem, NotPriced, Usage, WorkerTask
from .prices import PriceTable
from .template import EnvironmentInfo, function_variables, number, ref


@dataclass
class Context:
    """One estimate in progress: the template, the usage and prices, and what is priced so
    far. The rule modules (compute, database, network, observability, other) add to it."""

    template: Mapping[str, Any]
    usage: Usage
    prices: PriceTable
    resources: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    items: list[LineItem] = field(default_factory=list)
    not_priced: list[NotPriced] = field(default_factory=list)
    handled: set[str] = field(default_factory=set)
    free: Counter[str] = field(default_factory=Counter)
    """Resources with no charge of their own, by type."""
    envs: tuple[EnvironmentInfo, ...] = ()
    worker: WorkerTask | None = None

    def of_type(self, *types: str) -> list[tuple[str, Mapping[str, Any]]]:
        return [(lid, r) for lid, r in self.resources.items() if r["Type"] in types]

    def props(self, logical_id: str) -> Mapping[str, Any]:
        return self.resources[logical_id].get("Properties") or {}

    def add(
        self,
        name: str,
        resources: Iterable[str],
        quantity: float,
        unit: str,
        price: str | float,
        category: str,
        note: str = "",
    ) -> None:
        """One line item; ``price`` is a key of the table or a unit price in dollars."""
        ids = tuple(resources)
        unit_price = self.prices[price] if isinstance(price, str) else price
        self.items.append(LineItem(name, ids, quantity, unit, unit_price, category, note))
        self.handled.update(ids)

    def skip(self, logical_id: str, reason: str) -> None:
        self.not_priced.append(NotPriced(logical_id, self.resources[logical_id]["Type"], reason))
        self.handled.add(logical_id)

    def fargate_rate(self, architecture: str, vcpu: float, gb: float, spot: bool) -> float:
        family = "fargate_spot" if spot else "fargate"
        arch = "arm64" if architecture == "ARM64" else "x86_64"
        return (
            vcpu * self.prices[f"{family}.{arch}.vcpu_hour"]
            + gb * self.prices[f"{family}.{arch}.gb_hour"]
        )

    def autoscaled_minimum(self, service_id: str) -> float | None:
        """MIN_WORKERS of the autoscaler function that scales the service."""
        for _lid, function in self.of_type("AWS::Lambda::Function"):
            variables = function_variables(function)
            if ref(variables.get("SERVICE_NAME")) == service_id:
                return number(variables.get("MIN_WORKERS"))
        return None

    def autoscaler_share(self, function: Mapping[str, Any]) -> float:
        """The share of the month an autoscaler function runs: while on when the template has
        the environment's pauser (it disables the autoscaler's schedule while paused), else
        always; 1 for any other function."""
        handler = str((function.get("Properties") or {}).get("Handler", ""))
        if not handler.startswith("autoscaler."):
            return 1.0
        pauser = any(
            str((f.get("Properties") or {}).get("Handler", "")).startswith("pauser.")
            for _lid, f in self.of_type("AWS::Lambda::Function")
        )
        return self.usage.on_fraction if pauser else 1.0

    def service_tasks(self) -> dict[str, tuple[str, float]]:
        """Each service's (task definition, tasks it runs while on)."""
        tasks = {}
        for lid, service in self.of_type("AWS::ECS::Service"):
            props = service.get("Properties") or {}
            td_id = ref(props.get("TaskDefinition"))
            if td_id is None:
                continue
            desired = number(props.get("DesiredCount"))
            if "DesiredCount" not in props:
                desired = self.autoscaled_minimum(lid)
                if desired is None:
                    desired = float(self.envs[0].min_workers) if self.envs else 0.0
            tasks[lid] = (td_id, desired or 0.0)
        return tasks
