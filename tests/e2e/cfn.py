"""Read ECS container definitions out of a CloudFormation template and resolve their values.

Works on the JSON CloudFormation sees (``cdk synth`` output or ``Template.to_json()``):
``AWS::ECS::TaskDefinition`` -> ``ContainerDefinitions[]`` -> ``Name``, ``EntryPoint``,
``Command``, ``Environment [{Name, Value}]``, ``EnvironmentFiles [{Type: s3, Value}]``,
``Secrets [{Name, ValueFrom}]``. Values may be strings or ``Ref``, ``Fn::GetAtt``,
``Fn::Join``, ``Fn::Sub``, ``Fn::Select``, ``Fn::Split``.
The :class:`Resolver` maps logical IDs to the local resources the test created and raises
:class:`UnresolvableError` for anything it was not told, so a wrong reference fails the test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

PSEUDO_PARAMETERS = ("AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::URLSuffix")


class UnresolvableError(Exception):
    """A template value refers to something the local environment does not provide."""


@dataclass(frozen=True)
class MountPoint:
    """A volume mounted in a container."""

    source_volume: str
    container_path: str
    read_only: bool


@dataclass(frozen=True)
class ContainerSpec:
    """One container definition, values still as in the template."""

    task_definition: str
    name: str
    entry_point: list[Any] | None
    command: list[Any] | None
    environment: dict[str, Any]
    secrets: dict[str, Any]
    essential: bool = True
    depends_on: tuple[tuple[str, str], ...] = ()  # (container name, condition)
    mount_points: tuple[MountPoint, ...] = ()
    environment_files: tuple[Any, ...] = ()  # S3 object ARNs of the .env files, unresolved

    @property
    def component(self) -> str | None:
        """``OPENMWAA_COMPONENT``: set on Airflow containers only."""
        value = self.environment.get("OPENMWAA_COMPONENT")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class TaskSpec:
    """A task definition: its containers and its volumes (name -> is an EFS volume)."""

    logical_id: str
    containers: tuple[ContainerSpec, ...]
    volumes: dict[str, bool]
    task_role: str | None = None  # logical ID of the role the containers run as
    execution_role: str | None = None  # logical ID of the role ECS pulls and reads secrets as

    def container(self, name: str) -> ContainerSpec:
        for spec in self.containers:
            if spec.name == name:
                return spec
        raise KeyError(f"{self.logical_id} has no container {name!r}")


def resources_of_type(template: Mapping[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    """Logical ID -> resource, for the resources of one type."""
    return {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == type_name
    }


def task_specs(template: Mapping[str, Any]) -> list[TaskSpec]:
    """Every ECS task definition in the template."""
    tasks = []
    for logical_id, resource in resources_of_type(template, "AWS::ECS::TaskDefinition").items():
        props = resource.get("Properties", {})
        containers = []
        for container in props.get("ContainerDefinitions", []):
            environment = {e["Name"]: e["Value"] for e in container.get("Environment", [])}
            secrets = {s["Name"]: s["ValueFrom"] for s in container.get("Secrets", [])}
            duplicates = set(environment) & set(secrets)
            if duplicates:
                raise ValueError(f"{logical_id}/{container.get('Name')}: {duplicates} set twice")
            environment_files = container.get("EnvironmentFiles", [])
            if any(f.get("Type") != "s3" for f in environment_files):
                raise ValueError(
                    f"{logical_id}/{container.get('Name')}: an environment file not s3"
                )
            containers.append(
                ContainerSpec(
                    task_definition=logical_id,
                    name=container.get("Name", ""),
                    entry_point=container.get("EntryPoint"),
                    command=container.get("Command"),
                    environment=environment,
                    secrets=secrets,
                    essential=bool(container.get("Essential", True)),
                    depends_on=tuple(
                        (d["ContainerName"], d["Condition"]) for d in container.get("DependsOn", [])
                    ),
                    mount_points=tuple(
                        MountPoint(m["SourceVolume"], m["ContainerPath"], bool(m.get("ReadOnly")))
                        for m in container.get("MountPoints", [])
                    ),
                    environment_files=tuple(f["Value"] for f in environment_files),
                )
            )
        volumes = {
            volume["Name"]: "EFSVolumeConfiguration" in volume
            for volume in props.get("Volumes", [])
        }
        tasks.append(
            TaskSpec(
                logical_id,
                tuple(containers),
                volumes,
                task_role=_get_att_target(props.get("TaskRoleArn")),
                execution_role=_get_att_target(props.get("ExecutionRoleArn")),
            )
        )
    return tasks


def _get_att_target(value: Any) -> str | None:
    """The logical ID a ``Fn::GetAtt`` names, or None."""
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return str(target[0] if isinstance(target, list) else target.split(".")[0])
    return None


def container_specs(template: Mapping[str, Any]) -> list[ContainerSpec]:
    """Every container definition of every ECS task definition in the template."""
    return [container for task in task_specs(template) for container in task.containers]


@dataclass
class Resolver:
    """Resolves intrinsic functions against known values.

    ``refs``: logical ID -> value of ``Ref``; ``attributes``: (logical ID, attribute) -> value
    of ``Fn::GetAtt``; ``pseudo``: pseudo parameter -> value. ``types`` (logical ID -> type)
    only makes error messages clearer.
    """

    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)
    pseudo: dict[str, str] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)

    def _describe(self, logical_id: str) -> str:
        return f"{logical_id} ({self.types.get(logical_id, 'not in the template')})"

    def ref(self, name: str) -> str:
        if name.startswith("AWS::"):
            if name not in self.pseudo:
                raise UnresolvableError(f"pseudo parameter {name} has no local value")
            return self.pseudo[name]
        if name not in self.refs:
            raise UnresolvableError(f"Ref {self._describe(name)} has no local resource")
        return self.refs[name]

    def get_att(self, logical_id: str, attribute: str) -> str:
        key = (logical_id, attribute)
        if key not in self.attributes:
            raise UnresolvableError(
                f"Fn::GetAtt {self._describe(logical_id)}.{attribute} has no local value"
            )
        return self.attributes[key]

    def resolve(self, value: Any) -> str:
        """A template value as a string."""
        resolved = self._resolve(value)
        if isinstance(resolved, list):
            raise UnresolvableError(f"expected a string, got a list: {value!r}")
        return resolved

    def resolve_list(self, value: Any) -> list[str]:
        """A template value that is a list (of strings or intrinsics)."""
        resolved = self._resolve(value)
        if not isinstance(resolved, list):
            raise UnresolvableError(f"expected a list, got {value!r}")
        return resolved

    def _resolve(self, value: Any) -> str | list[str]:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if isinstance(value, dict) and len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Ref":
                return self.ref(argument)
            if function == "Fn::GetAtt":
                if isinstance(argument, str):
                    logical_id, _, attribute = argument.partition(".")
                else:
                    logical_id, attribute = argument
                return self.get_att(logical_id, attribute)
            if function == "Fn::Join":
                separator, parts = argument
                return separator.join(self.resolve_list(parts))
            if function == "Fn::Select":
                index, items = argument
                return self.resolve_list(items)[int(self.resolve(index))]
            if function == "Fn::Split":
                separator, source = argument
                return self.resolve(source).split(separator)
            if function == "Fn::Sub":
                return self._sub(argument)
        raise UnresolvableError(f"cannot resolve {value!r}")

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, str):
            text, variables = argument, {}
        else:
            text, variables = argument[0], argument[1]

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return self.resolve(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, _, attribute = name.partition(".")
                return self.get_att(logical_id, attribute)
            return self.ref(name)

        return re.sub(r"\$\{([^}]+)\}", replace, text)


@dataclass(frozen=True)
class SecretReference:
    """An ECS secret's ``ValueFrom`` for Secrets Manager: the secret, and optionally one key
    of its JSON (``<secret arn>:<json-key>:<version-stage>:<version-id>``)."""

    secret_arn: str
    json_key: str | None
    version_stage: str | None
    version_id: str | None


def parse_secret_reference(value_from: str) -> SecretReference:
    """Split an ECS ``ValueFrom`` that names a Secrets Manager secret.

    A secret ARN has 7 colon-separated fields (``arn:aws:secretsmanager:region:account:
    secret:name-suffix``); up to three more select the JSON key, version stage and version id.
    """
    parts = value_from.split(":")
    if len(parts) < 7 or parts[2] != "secretsmanager" or parts[5] != "secret":
        raise UnresolvableError(f"ValueFrom is not a Secrets Manager secret ARN: {value_from!r}")
    extra = [*parts[7:], "", "", ""]
    if len(parts) > 10:
        raise UnresolvableError(f"ValueFrom has too many fields: {value_from!r}")
    return SecretReference(
        secret_arn=":".join(parts[:7]),
        json_key=extra[0] or None,
        version_stage=extra[1] or None,
        version_id=extra[2] or None,
    )


def iter_strings(value: Any) -> Iterator[str]:
    """Every literal string inside a template value (to look for names)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from iter_strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from iter_strings(item)
