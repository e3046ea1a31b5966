"""Reading a synthesized CloudFormation template: its resources, intrinsic references, literal
numbers, and the ``openmwaa:environment`` metadata (pure: standard library only)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..runtime import contracts

MINUTES_PER_MONTH = 730.0 * 60
"""Minutes in a billing month of 730 hours."""


class TemplateError(ValueError):
    """The input is not a CloudFormation template, or not one of an openmwaa environment."""


@dataclass(frozen=True)
class EnvironmentInfo:
    """An environment as its ``openmwaa:environment`` metadata describes it."""

    name: str
    environment_class: str
    airflow_version: str
    schedulers: int
    min_webservers: int
    max_webservers: int
    min_workers: int
    max_workers: int
    tasks_per_worker: int
    resource: str
    """The logical ID carrying the metadata (the broker queue)."""


def resources(template: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    """The template's resources by logical ID; TemplateError when it is not a template."""
    if not isinstance(template, Mapping):
        raise TemplateError("not a CloudFormation template: not a JSON object")
    resources = template.get("Resources")
    if not isinstance(resources, Mapping) or not resources:
        raise TemplateError("not a CloudFormation template: no Resources")
    for logical_id, resource in resources.items():
        if not isinstance(resource, Mapping) or not isinstance(resource.get("Type"), str):
            raise TemplateError(f"not a CloudFormation template: resource {logical_id} has no Type")
    return resources


def environments(template: Mapping[str, Any]) -> tuple[EnvironmentInfo, ...]:
    """Every environment the template's ``openmwaa:environment`` metadata describes."""
    found = []
    for logical_id, resource in resources(template).items():
        meta = (resource.get("Metadata") or {}).get(contracts.ENVIRONMENT_METADATA_KEY)
        if meta is None:
            continue
        try:
            found.append(
                EnvironmentInfo(
                    name=str(meta["environmentName"]),
                    environment_class=str(meta["environmentClass"]),
                    airflow_version=str(meta["airflowVersion"]),
                    schedulers=int(meta["schedulers"]),
                    min_webservers=int(meta["minWebservers"]),
                    max_webservers=int(meta["maxWebservers"]),
                    min_workers=int(meta["minWorkers"]),
                    max_workers=int(meta["maxWorkers"]),
                    tasks_per_worker=int(meta["tasksPerWorker"]),
                    resource=logical_id,
                )
            )
        except (KeyError, TypeError, ValueError) as error:
            raise TemplateError(
                f"{contracts.ENVIRONMENT_METADATA_KEY} metadata of {logical_id} is incomplete: "
                f"{error}"
            ) from None
    return tuple(found)


def number(value: Any) -> float | None:
    """A literal number (CloudFormation often writes them as strings); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def ref(value: Any) -> str | None:
    """The logical ID a ``Ref`` or ``Fn::GetAtt`` names; None for anything else."""
    if isinstance(value, Mapping):
        if isinstance(value.get("Ref"), str):
            return str(value["Ref"])
        attribute = value.get("Fn::GetAtt")
        if isinstance(attribute, list) and attribute and isinstance(attribute[0], str):
            return attribute[0]
        if isinstance(attribute, str):
            return attribute.split(".", 1)[0]
    return None


def display_name(logical_id: str, resource: Mapping[str, Any]) -> str:
    """A readable name: the construct path's last meaningful part, else the logical ID."""
    path = (resource.get("Metadata") or {}).get("aws:cdk:path")
    if isinstance(path, str):
        parts = [p for p in path.split("/")[1:] if p not in ("Resource", "Default")]
        if len(parts) >= 2:
            return "/".join(parts[-2:])
        if parts:
            return parts[-1]
    return logical_id


ENVIRONMENT_PROPERTY = "Environment"
"""CloudFormation's property holding a Lambda function's (``Variables``) and a container's
environment variables."""


def function_variables(function: Mapping[str, Any]) -> Mapping[str, Any]:
    """A Lambda function resource's environment variables."""
    properties = function.get("Properties") or {}
    return (properties.get(ENVIRONMENT_PROPERTY) or {}).get("Variables") or {}


def environment_variables(task_definition: Mapping[str, Any]) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    for container in task_definition.get("ContainerDefinitions") or []:
        for entry in container.get(ENVIRONMENT_PROPERTY) or []:
            if isinstance(entry, Mapping) and "Name" in entry:
                variables.setdefault(str(entry["Name"]), entry.get("Value"))
    return variables


_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")


def invocations_per_month(expression: Any) -> float | None:
    """How often a ``rate(...)`` schedule runs a month; None for cron or anything else."""
    if not isinstance(expression, str):
        return None
    match = _RATE.match(expression.strip())
    if not match:
        return None
    count, unit = int(match.group(1)), match.group(2)
    minutes = count * {"minute": 1, "hour": 60, "day": 1440}[unit.rstrip("s")]
    return MINUTES_PER_MONTH / minutes if minutes else None


def service_name(value: Any) -> str:
    """A VPC endpoint's service, from ``com.amazonaws.<region>.<service>`` in a Fn::Join."""
    text = json.dumps(value)
    match = re.search(r"\.([a-z0-9.-]+)\"\]\]", text)
    return f"com.amazonaws.<region>.{match.group(1)}" if match else "VPC endpoint"
