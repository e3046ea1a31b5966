"""What an estimate is made of: the stated usage, line items, what was not priced (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

from .template import EnvironmentInfo

HOURS_PER_MONTH = 730.0
"""Hours in a billing month, as AWS's price examples count them."""


@dataclass(frozen=True)
class Usage:
    """What the template cannot say, stated. The defaults describe a quiet small environment;
    :data:`USAGE_NOTES` gives the reason for each."""

    hours_on: float = HOURS_PER_MONTH
    """Hours a month the services and the database run (the rest the environment is paused:
    services at 0 tasks, the database at 0 ACU when its minimum is 0)."""
    worker_hours: float = 0.0
    """Worker task-hours a month above the minimum workers."""
    average_acu: float | None = None
    """Average Aurora capacity while on; None: the cluster's MinCapacity, at least 0.5."""
    db_storage_gb: float = 10.0
    db_io_millions: float = 20.0
    log_gb: float = 5.0
    flow_log_gb: float = 2.0
    nat_gb: float = 10.0
    alb_lcu: float = 0.2
    endpoint_gb: float = 1.0
    efs_gb: float = 1.0
    efs_read_gb: float = 10.0
    efs_write_gb: float = 1.0
    sqs_million_requests: float = 3.0
    ecr_gb: float = 2.0
    s3_gb: float = 1.0
    codeartifact_gb: float = 1.0
    codeartifact_requests: float = 10_000.0
    dags: int = 10
    tasks_per_dag: int = 10
    lambda_seconds: float = 10.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if value is None:
                continue
            if not isinstance(value, int | float) or math.isnan(value) or value < 0:
                raise ValueError(f"usage {item.name} must be a number of 0 or more, got {value}")
        if self.hours_on > HOURS_PER_MONTH:
            raise ValueError(
                f"usage hours_on must be at most {HOURS_PER_MONTH:g} (a month), got {self.hours_on}"
            )

    @property
    def paused_hours(self) -> float:
        """Hours a month the environment is paused."""
        return HOURS_PER_MONTH - self.hours_on

    @property
    def on_fraction(self) -> float:
        """The share of the month the environment is on."""
        return self.hours_on / HOURS_PER_MONTH


USAGE_NOTES: Mapping[str, str] = {
    "hours_on": "730 = always on; a paused hour runs no task and, with a minimum of 0 ACU, no "
    "database capacity",
    "worker_hours": "worker task-hours above the minimum workers: the autoscaler's extra workers",
    "average_acu": "default: the cluster's MinCapacity, at least 0.5 ACU (Aurora's floor while "
    "it is not paused)",
    "db_storage_gb": "10 GB, the typical workload of MWAA's pricing examples (as classmethod.jp "
    "quotes them); the same figure prices MWAA's meta database",
    "db_io_millions": "Aurora Standard I/O: a small metadata database that fits in memory "
    "mostly writes its log",
    "log_gb": "Airflow's task and component logs, the database's exported log, the Lambdas'",
    "flow_log_gb": "VPC flow log records of a quiet environment (every connection, ALL traffic)",
    "nat_gb": "what still crosses the NAT gateway (image pulls from public registries, Python "
    "packages, AWS APIs without an endpoint)",
    "alb_lcu": "average LCUs of a UI used by a few people (1 LCU is 25 new connections a second)",
    "endpoint_gb": "per interface endpoint: AWS API calls, logs and metrics of a quiet environment "
    "(image layers come from S3 through its free gateway endpoint)",
    "efs_gb": "DAGs, plugins and requirements on the shared file system",
    "efs_read_gb": "Elastic Throughput reads: DAG parsing and worker start-up",
    "efs_write_gb": "Elastic Throughput writes: the DAG sync",
    "sqs_million_requests": "Celery's polling and the autoscaler's queue reads, all queues",
    "ecr_gb": "the mirrored Airflow image (both architectures)",
    "s3_gb": "all buckets: DAGs, plugins, requirements, access logs",
    "codeartifact_gb": "the PyPI mirror's cached packages: a requirements.txt's wheels and their "
    "dependencies",
    "codeartifact_requests": "pip's index pages and downloads through the mirror: about two per "
    "package for each requirements build, and for each container start while no build is ready",
    "dags": "DAGs, for metrics published per DAG",
    "tasks_per_dag": "tasks per DAG, for metrics published per task",
    "lambda_seconds": "run time of a scheduled function that states no budget (the DAG sync's "
    "reconcile)",
}
"""Why each :class:`Usage` default is what it is (docs/cost.md prints these)."""


@dataclass(frozen=True)
class LineItem:
    """One billed thing: ``quantity`` of ``unit`` at ``unit_price`` dollars each."""

    name: str
    resources: tuple[str, ...]
    """The template's logical IDs it prices."""
    quantity: float
    unit: str
    unit_price: float
    category: str
    note: str = ""

    @property
    def monthly(self) -> float:
        """Dollars a month."""
        return self.quantity * self.unit_price


@dataclass(frozen=True)
class NotPriced:
    """A resource the estimate leaves out, and why."""

    resource: str
    type: str
    reason: str


@dataclass(frozen=True)
class WorkerTask:
    """The environment's worker task: what one more worker-hour costs."""

    service: str
    architecture: str
    vcpu: float
    memory_gb: float
    on_demand_hour: float
    spot_hour: float
    template_hour: float
    """One more worker-hour as the template's capacity providers place it."""
    spot_share: float
    """The share of extra workers the template places on FARGATE_SPOT."""


@dataclass(frozen=True)
class Estimate:
    """The priced template."""

    items: tuple[LineItem, ...]
    not_priced: tuple[NotPriced, ...]
    free: tuple[tuple[str, int], ...]
    """Resource types with no charge of their own, and how many the template has."""
    usage: Usage
    environments: tuple[EnvironmentInfo, ...]
    worker: WorkerTask | None

    @property
    def total(self) -> float:
        """Dollars a month."""
        return sum(item.monthly for item in self.items)

    def by_category(self) -> dict[str, float]:
        """Dollars a month per category, largest first."""
        totals: dict[str, float] = {}
        for item in self.items:
            totals[item.category] = totals.get(item.category, 0.0) + item.monthly
        return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


@dataclass(frozen=True)
class MwaaEstimate:
    """Amazon MWAA's price for a class, hours and extras."""

    environment_class: str
    items: tuple[LineItem, ...]

    @property
    def total(self) -> float:
        return sum(item.monthly for item in self.items)


def usage_table_markdown() -> str:
    """The :class:`Usage` defaults and their reasons as Markdown, as docs/cost.md prints them."""
    lines = ["| usage | default | why |", "|---|---|---|"]
    for item in fields(Usage):
        default = item.default
        shown = "MinCapacity, at least 0.5" if default is None else f"{default:g}"
        lines.append(f"| `{item.name}` | {shown} | {USAGE_NOTES[item.name]} |")
    return "\n".join(lines)
