"""What a private-mode template offers the calls recorded under IAM: which roles run inside
the VPC, which services have a VPC endpoint, and which recorded calls would find none."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from openmwaa.vpc_endpoints import ENDPOINT_SERVICES_FOR_ACTION_PREFIX, NO_NETWORK_CALL

from .cfn import resources_of_type


def _role_logical_id(value: Any) -> str | None:
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0])
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    return None


def roles_inside_the_vpc(template: Mapping[str, Any]) -> set[str]:
    """Logical IDs of the roles whose calls leave from inside the VPC: every task
    definition's task and execution roles, and the roles of functions with a VpcConfig."""
    roles: set[str] = set()
    for task in resources_of_type(template, "AWS::ECS::TaskDefinition").values():
        for key in ("TaskRoleArn", "ExecutionRoleArn"):
            role = _role_logical_id(task["Properties"].get(key))
            if role:
                roles.add(role)
    for function in resources_of_type(template, "AWS::Lambda::Function").values():
        if function["Properties"].get("VpcConfig"):
            role = _role_logical_id(function["Properties"].get("Role"))
            if role:
                roles.add(role)
    return roles


def _flatten(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and value.get("Ref") == "AWS::Region":
        return "REGION"
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_flatten(part) for part in parts)
    return "?"


def endpoint_services(template: Mapping[str, Any]) -> set[str]:
    """Short names (`sqs`, `ecr.api`, `s3`...) of the template's VPC endpoints."""
    names = set()
    for endpoint in resources_of_type(template, "AWS::EC2::VPCEndpoint").values():
        name = _flatten(endpoint["Properties"]["ServiceName"])
        names.add(name.split(".", 3)[3] if name.startswith("com.amazonaws.") else name)
    return names


def services_without_endpoint(prefixes: Iterable[str], endpoints: set[str]) -> dict[str, str]:
    """Each called IAM service prefix that would find no endpoint, with what it needs."""
    missing = {}
    for prefix in sorted(set(prefixes)):
        if prefix in NO_NETWORK_CALL:
            continue
        needed = ENDPOINT_SERVICES_FOR_ACTION_PREFIX.get(prefix)
        if needed is None:
            missing[prefix] = "no endpoint is known for this service"
        elif not set(needed) <= endpoints:
            missing[prefix] = f"needs {sorted(set(needed) - endpoints)}"
    return missing
