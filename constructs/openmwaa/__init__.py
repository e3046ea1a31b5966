"""openmwaa: Apache Airflow on ECS Fargate, fed from a versioned S3 bucket, as a CDK construct."""

from .environment import AirflowEnvironment
from .environment_class import EnvironmentClass
from .environment_props import AirflowEnvironmentProps
from .props import (
    LoggingConfiguration,
    LogLevel,
    ModuleLogging,
    WebserverAccessMode,
    WorkerPool,
)

__all__ = [
    "AirflowEnvironment",
    "AirflowEnvironmentProps",
    "EnvironmentClass",
    "LogLevel",
    "LoggingConfiguration",
    "ModuleLogging",
    "WebserverAccessMode",
    "WorkerPool",
]
