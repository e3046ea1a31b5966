"""The one-shot requirements build: requirements.txt installed once per change, not per task."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_efs as efs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from constructs import Construct

from . import defaults
from .container_environment import SYNC_ROOT
from .nag_acknowledgements import acknowledge
from .nag_reasons import (
    INLINE_ROLE_POLICY,
    REQUIREMENTS_BUILD_ENVIRONMENT,
    REQUIREMENTS_BUILD_TASK_ROLE,
)
from .pypi_mirror import PypiMirror
from .runtime import contracts
from .runtime.contracts import BUILD_REQUIREMENTS
from .runtime_bundle import RUNTIME_ENTRY_POINT
from .task_definitions import (
    AIRFLOW_COMMAND,
    RUNTIME_DIR,
    RUNTIME_VOLUME,
    SYNC_VOLUME,
    add_runtime_installer,
    add_sync_volume,
    mwaa_home_mount,
    runtime_platform,
)

BUILD_CPU = 2048
BUILD_MEMORY_MIB = 4096
CONTAINER_NAME = BUILD_REQUIREMENTS


def build_environment(
    *,
    environment_name: str,
    airflow_version: str,
    python_version: str,
    region: str,
    cpu_architecture: str = defaults.CPU_ARCHITECTURE,
) -> dict[str, str]:
    """The build container's plain environment. ``OPENMWAA_AIRFLOW_VERSION``,
    ``OPENMWAA_PYTHON_VERSION`` and ``OPENMWAA_CPU_ARCHITECTURE`` are inputs of the build key:
    the Airflow containers and the DAG sync function get the same values
    (:meth:`RequirementsBuilder.key_inputs`)."""
    return {
        contracts.COMPONENT_VARIABLE: BUILD_REQUIREMENTS,
        contracts.ENVIRONMENT_NAME_VARIABLE: environment_name,
        contracts.SYNC_ROOT_VARIABLE: SYNC_ROOT,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        **key_inputs(
            airflow_version=airflow_version,
            python_version=python_version,
            cpu_architecture=cpu_architecture,
        ),
    }


def key_inputs(
    *, airflow_version: str, python_version: str, cpu_architecture: str = defaults.CPU_ARCHITECTURE
) -> dict[str, str]:
    """The build key's inputs besides requirements.txt (see ``requirements_key`` in the runtime):
    the versions, and the CPU architecture as a label, so a build's native wheels never reach
    tasks of the other architecture."""
    return {
        contracts.AIRFLOW_VERSION_VARIABLE: airflow_version,
        contracts.PYTHON_VERSION_VARIABLE: python_version,
        contracts.CPU_ARCHITECTURE_VARIABLE: cpu_architecture,
    }


def selected_subnet_ids(vpc: ec2.IVpc, selection: ec2.SubnetSelection) -> list[str]:
    """The ids of the subnets `selection` picks in `vpc` (where the services run)."""
    return vpc.select_subnets(
        availability_zones=selection.availability_zones,
        one_per_az=selection.one_per_az,
        subnet_filters=selection.subnet_filters,
        subnet_group_name=selection.subnet_group_name,
        subnets=selection.subnets,
        subnet_type=selection.subnet_type,
    ).subnet_ids


class RequirementsBuilder(Construct):
    """An ECS task definition that installs requirements.txt once into EFS.

    The task runs the Airflow image (`image`, the services' own) with the openmwaa runtime
    in its `build-requirements` role: it sources startup.sh, then pip-installs
    requirements.txt with the containers' constraints into
    `<sync root>/.openmwaa/requirements/<key>/` (a temporary folder renamed into place with a
    complete marker), keyed by the hash of requirements.txt, the Airflow and Python versions,
    the constraints and the CPU architecture. Airflow containers put that folder first on
    `PYTHONPATH` when its key matches, and pip-install at start only while it is being built
    or when it failed.

    The DAG sync function starts it (`ecs:RunTask`, this task definition only, `iam:PassRole`
    for its two roles only) before it rolls the services for a requirements change and at
    every reconcile while the current key has no complete build; see `attach`. It is the
    only task that mounts the EFS access point read-write (the Airflow containers mount it
    read-only); its task role holds nothing else. 2 vCPU, 4 GiB, on the services' CPU
    architecture (`cpu_architecture`): pip picks the wheels of the machine it runs on, so the
    build's native wheels (numpy, pandas...) are the ones the workers can load. Logs go to the
    worker log group under the `requirements-build` prefix.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment_name: str,
        airflow_version: str,
        python_version: str,
        cluster: ecs.ICluster,
        vpc: ec2.IVpc,
        vpc_subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        file_system: efs.FileSystem,
        access_point: efs.IAccessPoint,
        image: ecs.ContainerImage,
        log_group: logs.ILogGroup,
        cpu_architecture: str = defaults.CPU_ARCHITECTURE,
    ) -> None:
        super().__init__(scope, construct_id)
        self._cluster = cluster
        self._subnet_ids = selected_subnet_ids(vpc, vpc_subnets)
        self._security_group = security_group
        self.key_inputs: Mapping[str, str] = key_inputs(
            airflow_version=airflow_version,
            python_version=python_version,
            cpu_architecture=cpu_architecture,
        )
        self.task_role = iam.Role(
            self,
            "TaskRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description=f"Airflow environment {environment_name}: the requirements build "
            "(writes the EFS file system only)",
        )
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "Task",
            cpu=BUILD_CPU,
            memory_limit_mib=BUILD_MEMORY_MIB,
            task_role=self.task_role,
            runtime_platform=runtime_platform(cpu_architecture),
        )
        task = self.task_definition
        add_sync_volume(task, file_system, access_point)
        file_system.grant_read_write(self.task_role)
        logging = ecs.LogDrivers.aws_logs(stream_prefix="requirements-build", log_group=log_group)
        runtime = add_runtime_installer(task, image, logging)
        self.container = task.add_container(
            "Build",
            container_name=CONTAINER_NAME,
            image=image,
            entry_point=RUNTIME_ENTRY_POINT,
            command=AIRFLOW_COMMAND,
            environment=build_environment(
                environment_name=environment_name,
                airflow_version=airflow_version,
                python_version=python_version,
                region=Stack.of(self).region,
                cpu_architecture=cpu_architecture,
            ),
            logging=logging,
        )
        self.container.add_mount_points(
            ecs.MountPoint(container_path=SYNC_ROOT, source_volume=SYNC_VOLUME, read_only=False),
            ecs.MountPoint(
                container_path=RUNTIME_DIR, source_volume=RUNTIME_VOLUME, read_only=True
            ),
            mwaa_home_mount(),
        )
        self.container.add_container_dependencies(
            ecs.ContainerDependency(
                container=runtime, condition=ecs.ContainerDependencyCondition.SUCCESS
            )
        )
        acknowledge(task, [REQUIREMENTS_BUILD_ENVIRONMENT, INLINE_ROLE_POLICY])
        acknowledge(self.task_role, [REQUIREMENTS_BUILD_TASK_ROLE])

    def use_pypi_mirror(self, mirror: PypiMirror) -> None:
        """Let the build's pip read `mirror`: its read grant on the task role and its variable
        (`OPENMWAA_PYPI_MIRROR`) on the build container. Not an input of the build key: the
        mirror serves PyPI's own files, so turning it on or off builds nothing again."""
        mirror.grant_read(self.task_role)
        for name, value in mirror.container_environment().items():
            self.container.add_environment(name, value)

    def attach(self, function: lambda_.Function) -> None:
        """Let the DAG sync `function` start the build: its settings (task definition,
        subnets, security group, the key's inputs) and `ecs:RunTask` on this task definition
        in this cluster, `iam:PassRole` of this task's two roles to ECS tasks, nothing more."""
        function.add_environment("BUILD_TASK_DEFINITION", self.task_definition.task_definition_arn)
        function.add_environment("BUILD_SUBNETS", ",".join(self._subnet_ids))
        function.add_environment("BUILD_SECURITY_GROUPS", self._security_group.security_group_id)
        for name, value in self.key_inputs.items():
            function.add_environment(name, value)
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="StartRequirementsBuild",
                actions=["ecs:RunTask"],
                resources=[self.task_definition.task_definition_arn],
                conditions={"ArnEquals": {"ecs:cluster": self._cluster.cluster_arn}},
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="PassRequirementsBuildRoles",
                actions=["iam:PassRole"],
                resources=[
                    self.task_role.role_arn,
                    self.task_definition.obtain_execution_role().role_arn,
                ],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            )
        )
