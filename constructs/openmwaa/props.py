"""Enums and small value types used in `AirflowEnvironment` props."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from aws_cdk import aws_logs as logs


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


@dataclass(frozen=True)
class ModuleLogging:
    """One MWAA log type: whether it is sent to CloudWatch Logs and at which level.

    A disabled log type still gets its log group (so turning it on later changes no
    resource), but the containers of that component do not send to it.
    """

    enabled: bool = True
    level: LogLevel = LogLevel.INFO


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
    retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
