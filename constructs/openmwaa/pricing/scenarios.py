"""The comparisons with Amazon MWAA that ``make cost`` prints (pure).

(a) always on, at the capacity of the MWAA class; (b) one more worker-hour, on Fargate Spot;
(c) a development environment paused 12 hours a day and at weekends, while MWAA, which cannot
pause, bills every hour. Each has the goal of issue 14 next to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .endpoints import is_private, mwaa_private_routing_items
from .estimate import (
    HOURS_PER_MONTH,
    EnvironmentInfo,
    Estimate,
    LineItem,
    MwaaEstimate,
    TemplateError,
    Usage,
    estimate,
    mwaa_monthly,
)
from .prices import TABLE, PriceTable

DEV_HOURS_ON = 12 * 5 * HOURS_PER_MONTH / (7 * 24)
"""On 12 hours on each of 5 weekdays: 60 of a week's 168 hours, over 730/168 weeks a month
(260.7 hours)."""

GOALS: Mapping[str, float] = {"a": 0.5, "b": 0.3, "c": 0.2}
"""The most openmwaa may cost, as a share of MWAA, in each scenario (issue 14)."""


@dataclass(frozen=True)
class Comparison:
    """openmwaa and MWAA side by side, in dollars."""

    key: str
    title: str
    ours: float
    mwaa: float
    goal: float | None
    estimate: Estimate | None
    mwaa_estimate: MwaaEstimate | None
    details: tuple[str, ...] = ()

    @property
    def ratio(self) -> float:
        """openmwaa's cost as a share of MWAA's."""
        return self.ours / self.mwaa

    @property
    def met(self) -> bool | None:
        """The goal holds at the ratio as printed (two decimals); None without a goal."""
        return None if self.goal is None else round(self.ratio, 2) <= self.goal


def mwaa_for(
    envs: Sequence[EnvironmentInfo],
    *,
    hours: float = HOURS_PER_MONTH,
    extra_worker_hours: float = 0.0,
    db_storage_gb: float = 0.0,
    prices: PriceTable = TABLE,
    private_routing_gb: float | None = None,
) -> MwaaEstimate:
    """MWAA at the capacity the environments' metadata states: the schedulers, minimum web
    servers and minimum workers above what each class includes, for ``hours``; the extra
    worker-hours on the first. With ``private_routing_gb`` (GB through each endpoint), also
    the interface endpoints MWAA needs in a VPC without internet access. ValueError when the
    table has no price for a class."""
    if not envs:
        raise TemplateError("no openmwaa environment metadata to compare with MWAA")
    items: list[LineItem] = []
    for index, env in enumerate(envs):
        row = prices.mwaa.get(env.environment_class)
        if row is None:
            raise ValueError(f"unknown MWAA environment class {env.environment_class!r}")
        workers = max(0, env.min_workers - row.included_workers) * hours
        part = mwaa_monthly(
            env.environment_class,
            hours=hours,
            extra_worker_hours=workers + (extra_worker_hours if index == 0 else 0.0),
            extra_schedulers=max(0, env.schedulers - row.included_schedulers),
            extra_webservers=max(0, env.min_webservers - row.included_webservers),
            db_storage_gb=db_storage_gb,
            prices=prices,
        )
        items.extend(part.items)
    if private_routing_gb is not None:
        items.extend(mwaa_private_routing_items(private_routing_gb, prices))
    return MwaaEstimate(" + ".join(env.environment_class for env in envs), tuple(items))


def compare(template: Mapping[str, Any], usage: Usage, prices: PriceTable = TABLE) -> Comparison:
    """The template at ``usage`` next to MWAA, which bills 730 hours whatever the usage."""
    ours = estimate(template, usage, prices)
    theirs = mwaa_for(
        ours.environments,
        extra_worker_hours=usage.worker_hours,
        db_storage_gb=usage.db_storage_gb,
        prices=prices,
        private_routing_gb=usage.endpoint_gb if is_private(template) else None,
    )
    return Comparison(
        "usage",
        f"Your usage: {usage.hours_on:g} hours on, {usage.worker_hours:g} extra worker-hours",
        ours.total,
        theirs.total,
        None,
        ours,
        theirs,
    )


def scenarios(
    template: Mapping[str, Any], prices: PriceTable = TABLE, base: Usage | None = None
) -> tuple[Comparison, Comparison | None, Comparison]:
    """(a), (b) and (c) for the template; (b) is None without an autoscaled worker service
    (mw1.micro runs its worker inside its one task). ``base`` states the usage other than the
    hours on and the extra worker-hours, which each scenario sets."""
    base = base or Usage()
    always_on = replace(base, hours_on=HOURS_PER_MONTH, worker_hours=0.0)
    ours = estimate(template, always_on, prices)
    envs = ours.environments
    theirs = mwaa_for(
        envs,
        db_storage_gb=base.db_storage_gb,
        prices=prices,
        private_routing_gb=base.endpoint_gb if is_private(template) else None,
    )
    first = envs[0]
    row = prices.mwaa[first.environment_class]
    capacity = (
        f"{row.included_schedulers} schedulers, {row.included_webservers} web servers, "
        f"{row.included_workers} worker"
    )
    a = Comparison(
        "a",
        f"Always on, the capacity of MWAA {first.environment_class} ({capacity}), "
        f"{HOURS_PER_MONTH:g} hours",
        ours.total,
        theirs.total,
        GOALS["a"],
        ours,
        theirs,
    )
    b = None
    worker = ours.worker
    if worker is not None and row.worker_hour is not None:
        size = f"{worker.architecture} {worker.vcpu:g} vCPU {worker.memory_gb:g} GB"
        placed = (
            "the template places extra workers on-demand"
            if worker.spot_share == 0
            else f"the template places {worker.spot_share:.0%} of extra workers on Spot"
        )
        b = Comparison(
            "b",
            f"One more worker-hour: {worker.service} ({size}) on Fargate Spot vs MWAA "
            f"{first.environment_class}'s extra worker",
            worker.spot_hour,
            row.worker_hour,
            GOALS["b"],
            None,
            None,
            (
                f"on Fargate Spot: ${worker.spot_hour:.4f} an hour (whether or not the "
                "template uses Spot)",
                f"on-demand: ${worker.on_demand_hour:.4f} an hour "
                f"({worker.on_demand_hour / row.worker_hour:.2f} of MWAA's)",
                f"as the template places it: ${worker.template_hour:.4f} an hour ({placed})",
                f"MWAA {first.environment_class} extra worker: ${row.worker_hour:.4f} an hour",
            ),
        )
    paused = replace(base, hours_on=DEV_HOURS_ON, worker_hours=0.0)
    dev = estimate(template, paused, prices)
    c = Comparison(
        "c",
        f"Development: paused 12 hours a day and at weekends ({DEV_HOURS_ON:.1f} hours on: "
        "12 h x 5 weekdays x 730/168 weeks); MWAA cannot pause",
        dev.total,
        theirs.total,
        GOALS["c"],
        dev,
        theirs,
    )
    return a, b, c
