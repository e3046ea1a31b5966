"""The Airflow task definitions: the containers of each component and the init container
that writes the openmwaa runtime into every task (the services are in `services`)."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import App, AssetHashType, Duration, Stack
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_efs as efs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_secretsmanager as secretsmanager

from constructs import Construct

from . import defaults
from .airflow_secrets import AirflowSecrets
from .container_environment import (
    SERVER_PORTS,
    SYNC_ROOT,
    ContainerSettings,
    container_environment,
)
from .environment_class import TaskSize
from .image_mirror import MirroredImage
from .log_groups import AirflowLogGroups
from .nag_acknowledgements import acknowledge
from .nag_reasons import IMAGE_PULL_TOKEN, INLINE_ROLE_POLICY, PLAIN_CONTAINER_ENVIRONMENT
from .runtime import contracts
from .runtime_bundle import (
    RUNTIME_ENTRY_POINT,
    RUNTIME_ENV_VAR,
    environment_file,
    environment_file_sha256,
)
from .versions import is_airflow_2

RUNTIME_VOLUME = "openmwaa-runtime"
RUNTIME_DIR = "/opt/openmwaa"
RUNTIME_PATH = f"{RUNTIME_DIR}/runtime.pyz"
SYNC_VOLUME = "airflow-sync"
RUNTIME_CONTAINER = "openmwaa-runtime"

WORKER_STOP_TIMEOUT = Duration.seconds(120)
"""How long ECS waits after SIGTERM before it kills a worker: Fargate's maximum."""

EXECUTION_API_HEALTH_COMMAND = [
    "CMD",
    "python",
    "-c",
    "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/execution/health'"
    " % os.environ['OPENMWAA_API_SERVER_PORT'], timeout=5).read()",
]
"""The execution-api container's health check: its health route answers 200. ECS puts the
task's address in Cloud Map only while it is healthy, so workers never resolve a server that
is still starting (its start-up steps can take minutes)."""
EXECUTION_API_HEALTH_CHECK = ecs.HealthCheck(
    command=EXECUTION_API_HEALTH_COMMAND,
    interval=Duration.seconds(10),
    timeout=Duration.seconds(5),
    retries=10,
    start_period=Duration.seconds(300),
)
"""Checked every 10 s. Failures count only after `services.START_UP_GRACE_PERIOD` (the
start-up steps: startup.sh, requirements, waiting for a migration); after that, a task that
stops answering for 100 s is replaced."""

MWAA_HOME_VOLUME = "mwaa-home"
"""The task volume mounted at MWAA's AIRFLOW_HOME (`contracts.MWAA_HOME`) in every container:
the init container makes its links into the sync root; Airflow may write beside them."""

MWAA_HOME_LINKS = [
    (f"{contracts.MWAA_HOME}/{link}", f"{SYNC_ROOT}/{target}")
    for link, target in contracts.MWAA_HOME_LINKS
]
"""Each link the init container makes: (MWAA's path, the sync root's path)."""

INIT_SCRIPT = f"""import base64, lzma, os
with open('{RUNTIME_PATH}.tmp', 'wb') as f:
    f.write(lzma.decompress(base64.b64decode(os.environ['{RUNTIME_ENV_VAR}'])))
os.replace('{RUNTIME_PATH}.tmp', '{RUNTIME_PATH}')
for link, target in {MWAA_HOME_LINKS!r}:
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.chmod(os.path.dirname(link), 0o775)
    if not os.path.lexists(link):
        os.symlink(target, link)
"""
"""The init container's program, run by the image's Python as root: decode the runtime into
the task's runtime volume, and make MWAA's paths in the MWAA home volume, each a link into the
sync root, in folders the image's `airflow` user (group 0) may write to."""

RUNTIME_INSTALL_COMMAND = ["python", "-c", INIT_SCRIPT]
"""The init container's command (see `INIT_SCRIPT`)."""

AIRFLOW_COMMAND = ["python", RUNTIME_PATH]
"""Every Airflow container's command: the runtime's bootstrap, which execs the component."""


CPU_ARCHITECTURES = ("ARM64", "X86_64")
"""The CPU architectures every Airflow task may run on (`cpu_architecture`): Fargate's Linux
ones. Nothing in a task definition but its runtime platform depends on the choice: the image is
multi-architecture, the runtime is pure Python (a unit test checks both)."""


def architecture_name(value: ecs.CpuArchitecture | str) -> str:
    """The name of a `cpu_architecture` prop as ECS spells it (`ARM64`, `X86_64`): a string as
    given, an `ecs.CpuArchitecture` as CDK renders it (CDK exposes no name, so a throwaway
    task definition renders it, in an app of its own that never synthesizes: nothing of it
    reaches yours)."""
    if not isinstance(value, ecs.CpuArchitecture):
        return value
    probe = Stack(App(auto_synth=False), "Probe")
    task = ecs.FargateTaskDefinition(
        probe,
        "Probe",
        runtime_platform=ecs.RuntimePlatform(
            cpu_architecture=value, operating_system_family=ecs.OperatingSystemFamily.LINUX
        ),
    )
    rendered = probe.resolve(task.node.default_child.runtime_platform)  # type: ignore[union-attr]
    return str(rendered["cpuArchitecture"])


def runtime_platform(cpu_architecture: str) -> ecs.RuntimePlatform:
    """Linux on `cpu_architecture` (`ARM64` or `X86_64`): every Airflow task's and the
    requirements build's platform, so the wheels the build installs run on the workers."""
    return ecs.RuntimePlatform(
        cpu_architecture=ecs.CpuArchitecture.of(cpu_architecture),
        operating_system_family=ecs.OperatingSystemFamily.LINUX,
    )


@dataclass(frozen=True)
class Component:
    """An Airflow component: its `OPENMWAA_COMPONENT` value, construct id and log type."""

    name: str
    construct_id: str
    log_type: str


SCHEDULER = Component(contracts.SCHEDULER, "Scheduler", "scheduler")
DAG_PROCESSOR = Component(contracts.DAG_PROCESSOR, "DagProcessor", "dag_processing")
TRIGGERER = Component(contracts.TRIGGERER, "Triggerer", "triggerer")
API_SERVER = Component(contracts.API_SERVER, "ApiServer", "webserver")
EXECUTION_API = Component(contracts.EXECUTION_API, "ExecutionApi", "webserver")
WORKER = Component(contracts.WORKER, "Worker", "worker")
COMPONENTS = (SCHEDULER, DAG_PROCESSOR, TRIGGERER, API_SERVER, EXECUTION_API, WORKER)


def components_for(airflow_version: str) -> tuple[Component, ...]:
    """The components an Airflow version runs: no Task Execution API before Airflow 3."""
    if is_airflow_2(airflow_version):
        return tuple(c for c in COMPONENTS if c is not EXECUTION_API)
    return COMPONENTS


def add_sync_volume(
    task: ecs.TaskDefinition, file_system: efs.IFileSystem, access_point: efs.IAccessPoint
) -> None:
    """The task's `SYNC_VOLUME`: the EFS access point, over TLS, with IAM authorization."""
    task.add_volume(
        name=SYNC_VOLUME,
        efs_volume_configuration=ecs.EfsVolumeConfiguration(
            file_system_id=file_system.file_system_id,
            transit_encryption="ENABLED",
            authorization_config=ecs.AuthorizationConfig(
                access_point_id=access_point.access_point_id, iam="ENABLED"
            ),
        ),
    )


def mwaa_home_mount() -> ecs.MountPoint:
    """`MWAA_HOME_VOLUME` at MWAA's AIRFLOW_HOME, writable (as on MWAA)."""
    return ecs.MountPoint(
        container_path=contracts.MWAA_HOME, source_volume=MWAA_HOME_VOLUME, read_only=False
    )


def add_runtime_installer(
    task: ecs.TaskDefinition, image: ecs.ContainerImage, logging: ecs.LogDriver
) -> ecs.ContainerDefinition:
    """The task's `RUNTIME_VOLUME` and `MWAA_HOME_VOLUME`, and the short-lived init container
    (construct id `Runtime`) that decodes the openmwaa runtime into the first and makes MWAA's
    links into the sync root (`SYNC_VOLUME`, read-only here) in the second; the Airflow
    containers wait for it.

    The runtime reaches the init container in an ECS environment file: a CDK file asset
    (construct id `RuntimeBundle`, named by its SHA-256) that ECS reads before the container
    starts, as the task's execution role, which may get exactly that object and its bucket's
    location. It stays out of the task definition, which ECS caps at 64 KiB.

    The first container of the task, so its image is bound here: an image of the
    environment's mirror grants the task's execution role ECR's pull token, acknowledged here.
    """
    task.add_volume(name=RUNTIME_VOLUME)
    task.add_volume(name=MWAA_HOME_VOLUME)
    bundle = s3_assets.Asset(
        task,
        "RuntimeBundle",
        path=str(environment_file()),
        asset_hash=environment_file_sha256(),
        asset_hash_type=AssetHashType.CUSTOM,
    )
    task.add_to_execution_role_policy(
        iam.PolicyStatement(
            actions=["s3:GetObject"],
            resources=[bundle.bucket.arn_for_objects(bundle.s3_object_key)],
        )
    )
    task.add_to_execution_role_policy(
        iam.PolicyStatement(actions=["s3:GetBucketLocation"], resources=[bundle.bucket.bucket_arn])
    )
    runtime = task.add_container(
        "Runtime",
        container_name=RUNTIME_CONTAINER,
        image=image,
        essential=False,
        user="0",
        entry_point=RUNTIME_ENTRY_POINT,
        command=RUNTIME_INSTALL_COMMAND,
        environment_files=[ecs.EnvironmentFile.from_bucket(bundle.bucket, bundle.s3_object_key)],
        memory_reservation_mib=64,
        logging=logging,
    )
    runtime.add_mount_points(
        ecs.MountPoint(container_path=RUNTIME_DIR, source_volume=RUNTIME_VOLUME, read_only=False),
        mwaa_home_mount(),
        ecs.MountPoint(container_path=SYNC_ROOT, source_volume=SYNC_VOLUME, read_only=True),
    )
    if isinstance(image, MirroredImage):
        acknowledge(task.execution_role, [IMAGE_PULL_TOKEN])
    return runtime


@dataclass(frozen=True)
class TaskDefinitionFactory:
    """What every Airflow task definition is built from: the role Airflow runs as (the task
    role), the EFS file system and access point, the image, the log groups, the secrets, the
    containers' settings and the CPU architecture (`ARM64` or `X86_64`: every task of the
    environment the same). Each task definition acknowledges its own cdk-nag findings."""

    task_role: iam.IRole
    file_system: efs.FileSystem
    access_point: efs.AccessPoint
    image: ecs.ContainerImage
    log_groups: AirflowLogGroups
    database_secret: secretsmanager.ISecret
    secrets: AirflowSecrets
    settings: ContainerSettings
    cpu_architecture: str = defaults.CPU_ARCHITECTURE

    def task_definition(
        self, scope: Construct, construct_id: str, size: TaskSize, log_type: str
    ) -> ecs.FargateTaskDefinition:
        """A task definition `<construct_id>Task` in `scope`, with the EFS and runtime volumes
        and the init container; add its Airflow containers with `airflow_container`."""
        task = ecs.FargateTaskDefinition(
            scope,
            f"{construct_id}Task",
            cpu=size.cpu,
            memory_limit_mib=size.memory_mib,
            task_role=self.task_role,
            runtime_platform=runtime_platform(self.cpu_architecture),
        )
        add_sync_volume(task, self.file_system, self.access_point)
        self.file_system.grant_read(task.task_role)
        add_runtime_installer(
            task,
            self.image,
            ecs.LogDrivers.aws_logs(
                stream_prefix="runtime", log_group=self.log_groups.group(log_type)
            ),
        )
        acknowledge(task, [PLAIN_CONTAINER_ENVIRONMENT, INLINE_ROLE_POLICY])
        return task

    def airflow_container(
        self, task: ecs.FargateTaskDefinition, component: Component, worker_queue: str = ""
    ) -> ecs.ContainerDefinition:
        """The container of `component` in `task`, started once the init container is done.
        The task's first Airflow container runs the task's metrics relay (when metrics are
        on): containers of one task share its network namespace, so one relay serves all."""
        first_in_task = all(task.find_container(c.name) is None for c in COMPONENTS)
        log_settings = self.log_groups.settings(component.log_type)
        level = (
            self.log_groups.settings("task").level if component is WORKER else log_settings.level
        )
        secrets = {
            contracts.DB_SECRET_VARIABLE: ecs.Secret.from_secrets_manager(self.database_secret),
            contracts.FERNET_SEED_VARIABLE: ecs.Secret.from_secrets_manager(
                self.secrets.fernet_seed
            ),
            "AIRFLOW__API_AUTH__JWT_SECRET": ecs.Secret.from_secrets_manager(
                self.secrets.jwt_secret
            ),
            "AIRFLOW__API__SECRET_KEY": ecs.Secret.from_secrets_manager(
                self.secrets.api_secret_key
            ),
        }
        if component is API_SERVER:
            secrets[contracts.ADMIN_SECRET_VARIABLE] = ecs.Secret.from_secrets_manager(
                self.secrets.admin
            )
            secrets[contracts.MACHINE_KEY_VARIABLE] = ecs.Secret.from_secrets_manager(
                self.secrets.machine_key
            )
        container = task.add_container(
            component.construct_id,
            container_name=component.name,
            image=self.image,
            entry_point=RUNTIME_ENTRY_POINT,
            command=AIRFLOW_COMMAND,
            environment={
                **container_environment(
                    self.settings,
                    component=component.name,
                    log_level=level.value,
                    worker_queue=worker_queue,
                    metrics_relay=first_in_task,
                ),
                # A label of the requirements build's key, as the build and the DAG sync have.
                contracts.CPU_ARCHITECTURE_VARIABLE: self.cpu_architecture,
            },
            secrets=secrets,
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix=f"{component.name}-{worker_queue}"
                if worker_queue
                else component.name,
                log_group=self.log_groups.group(component.log_type),
            )
            if log_settings.enabled
            else None,
            stop_timeout=WORKER_STOP_TIMEOUT if component is WORKER else None,
            port_mappings=[
                ecs.PortMapping(
                    container_port=SERVER_PORTS[component.name],
                    name="api" if component is API_SERVER else "execution",
                )
            ]
            if component.name in SERVER_PORTS
            else None,
            health_check=EXECUTION_API_HEALTH_CHECK if component is EXECUTION_API else None,
        )
        container.add_mount_points(
            ecs.MountPoint(container_path=SYNC_ROOT, source_volume=SYNC_VOLUME, read_only=True),
            ecs.MountPoint(
                container_path=RUNTIME_DIR, source_volume=RUNTIME_VOLUME, read_only=True
            ),
            mwaa_home_mount(),
        )
        runtime = task.find_container(RUNTIME_CONTAINER)
        if runtime is None:
            raise LookupError(f"no {RUNTIME_CONTAINER} container in {task.node.path}")
        container.add_container_dependencies(
            ecs.ContainerDependency(
                container=runtime, condition=ecs.ContainerDependencyCondition.SUCCESS
            )
        )
        return container
