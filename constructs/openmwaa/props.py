"""Enums and small value types used in `AirflowEnvironment` props."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from aws_cdk import aws_logs as logs

from . import defaults


class WebserverAccessMode(StrEnum):
    """Who can reach the Airflow UI and REST API, as MWAA's `WebserverAccessMode`."""

    PRIVATE_ONLY = "PRIVATE_ONLY"
    """An internal load balancer, reachable only from inside the VPC (and peered networks)."""

    PUBLIC_ONLY = "PUBLIC_ONLY"
    """An internet-facing load balancer; requires HTTPS (a custom domain or a certificate)."""


class LogLevel(StrEnum):
    """Airflow log levels accepted by MWAA's logging configuration."""

    CRITICAL = "CRITICAL"
    ERROR = "ERROR"
    WARNING = "WARNING"
    INFO = "INFO"
    DEBUG = "DEBUG"


_DEFAULT_LOG_LEVEL = LogLevel(defaults.LOG_LEVEL)


@dataclass(frozen=True)
class ModuleLogging:
    """One MWAA log type: whether it is sent to CloudWatch Logs and at which level.

    A disabled log type still gets its log group (so turning it on later changes no
    resource), but the containers of that component do not send to it.
    """

    enabled: bool = True
    level: LogLevel = _DEFAULT_LOG_LEVEL


@dataclass(frozen=True)
class LoggingConfiguration:
    """MWAA's five log types (plus the triggerer, which MWAA folds into the scheduler).

    Defaults: every log type enabled at INFO, kept for one month (MWAA's defaults are
    Task logs only at INFO; we turn on all of them because an environment you cannot
    debug is worse than a few cents of log storage).
    """

    dag_processing: ModuleLogging = field(default_factory=ModuleLogging)
    scheduler: ModuleLogging = field(default_factory=ModuleLogging)
    triggerer: ModuleLogging = field(default_factory=ModuleLogging)
    task: ModuleLogging = field(default_factory=ModuleLogging)
    webserver: ModuleLogging = field(default_factory=ModuleLogging)
    worker: ModuleLogging = field(default_factory=ModuleLogging)
    retention: logs.RetentionDays = defaults.LOG_RETENTION


@dataclass(frozen=True)
class WorkerPool:
    """An extra pool of Celery workers, for the tasks sent to one Celery queue.

    A DAG picks the pool per task with the operator's `queue` argument
    (`BashOperator(..., queue="long-running")`). The pool has its own SQS queue, its own ECS
    service (the environment class's worker size) and its own autoscaler, which reads only its
    queue; tasks of other queues never reach it. The use it is made for: keep long tasks off
    Fargate Spot. A Spot interruption or a stop that bypasses protection gives a worker
    120 s (Fargate's most), so with `worker_fargate_spot=True`, send tasks that run longer
    than that to a pool with `fargate_spot=False` (docs/operations.md).
    """

    queue: str
    """The Celery queue name DAGs use: 1 to 40 lowercase letters, digits and `-`, a letter
    first; not `default` (which names the environment's own queue)."""
    min_workers: int = defaults.WORKER_POOL_MIN_WORKERS
    """Fewest workers, 0 to the class's max workers. Default: 0 (no worker once the queue has
    been empty for the scale-in cool-down; the pool's autoscaler function still runs)."""
    max_workers: int = defaults.WORKER_POOL_MAX_WORKERS
    """Most workers, 1 to the class's max workers, at least `min_workers`. Default: 5."""
    fargate_spot: bool = False
    """Run this pool on Fargate Spot. Default: False (on-demand, never reclaimed)."""
