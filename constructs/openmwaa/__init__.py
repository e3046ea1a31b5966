"""openmwaa: Apache Airflow on ECS Fargate, fed from a versioned S3 bucket, as a CDK construct.

The names below load on first use, so the ``openmwaa`` console script (``openmwaa.cli``) starts
without loading the AWS CDK (jsii and Node.js) unless a command needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .environment import AirflowEnvironment as AirflowEnvironment
    from .environment_class import EnvironmentClass as EnvironmentClass
    from .environment_props import AirflowEnvironmentProps as AirflowEnvironmentProps
    from .props import LoggingConfiguration as LoggingConfiguration
    from .props import LogLevel as LogLevel
    from .props import ModuleLogging as ModuleLogging
    from .props import WebserverAccessMode as WebserverAccessMode
    from .props import WorkerPool as WorkerPool
    from .sign_in import SignIn as SignIn

_MODULE_OF = {
    "AirflowEnvironment": "environment",
    "AirflowEnvironmentProps": "environment_props",
    "EnvironmentClass": "environment_class",
    "LogLevel": "props",
    "LoggingConfiguration": "props",
    "ModuleLogging": "props",
    "SignIn": "sign_in",
    "WebserverAccessMode": "props",
    "WorkerPool": "props",
}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
