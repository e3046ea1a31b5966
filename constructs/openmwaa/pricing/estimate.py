"""Price a synthesized CloudFormation template resource by resource (pure: no AWS calls).

``estimate(template, usage, prices)`` turns the template into line items: what is billed, how
much of it a month, at what unit price. What the template cannot say (hours on, GB of logs,
average database capacity...) comes from :class:`Usage`, every figure stated. Each resource
is priced, counted as free (IAM roles, subnets...), or listed as *not priced* with the reason;
none is dropped. The rules live in one module per kind of resource (compute, database,
network, observability, other); docs/cost.md describes them and their assumptions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import compute, database, network, observability, other
from .context import Context
from .model import (
    HOURS_PER_MONTH,
    USAGE_NOTES,
    Estimate,
    LineItem,
    MwaaEstimate,
    NotPriced,
    Usage,
    WorkerTask,
)
from .mwaa import mwaa_monthly
from .prices import TABLE, PriceTable
from .template import EnvironmentInfo, TemplateError, environments, resources

__all__ = [
    "HOURS_PER_MONTH",
    "USAGE_NOTES",
    "EnvironmentInfo",
    "Estimate",
    "LineItem",
    "MwaaEstimate",
    "NotPriced",
    "TemplateError",
    "Usage",
    "WorkerTask",
    "environments",
    "estimate",
    "mwaa_monthly",
]


def estimate(
    template: Mapping[str, Any], usage: Usage | None = None, prices: PriceTable = TABLE
) -> Estimate:
    """Price ``template`` (a synthesized CloudFormation template, as a dict) for a month of
    ``usage``; TemplateError when it is not a template."""
    ctx = Context(template, usage or Usage(), prices)
    ctx.resources = resources(template)
    ctx.envs = environments(template)
    compute.price_services(ctx)
    database.price_databases(ctx)
    network.price_network(ctx)
    observability.price_logs(ctx)
    observability.price_alarms(ctx)
    observability.price_metrics(ctx)
    compute.price_functions(ctx)
    other.price_rest(ctx)
    return Estimate(
        items=tuple(ctx.items),
        not_priced=tuple(ctx.not_priced),
        free=tuple(sorted(ctx.free.items())),
        usage=ctx.usage,
        environments=ctx.envs,
        worker=ctx.worker,
    )
