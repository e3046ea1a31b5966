"""The ECS cluster and one Fargate service per Airflow component."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_efs as efs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_servicediscovery as servicediscovery

from constructs import Construct

from .airflow_secrets import AirflowSecrets
from .container_environment import SYNC_ROOT, ContainerSettings, container_environment
from .environment_class import EnvironmentClassSpec, TaskSize
from .log_groups import AirflowLogGroups
from .runtime_bundle import RUNTIME_ENTRY_POINT, RUNTIME_ENV_VAR, runtime_bundle_b64

RUNTIME_VOLUME = "openmwaa-runtime"
RUNTIME_DIR = "/opt/openmwaa"
RUNTIME_PATH = f"{RUNTIME_DIR}/runtime.pyz"
SYNC_VOLUME = "airflow-sync"
API_SERVER_DNS_NAME = "api-server"
WORKER_STOP_TIMEOUT = Duration.seconds(120)

RUNTIME_INSTALL_COMMAND = [
    "/bin/bash",
    "-c",
    f"set -euo pipefail; printf '%s' \"${RUNTIME_ENV_VAR}\" | base64 -d > {RUNTIME_PATH}.tmp;"
    f" mv {RUNTIME_PATH}.tmp {RUNTIME_PATH}",
]
"""The init container's command: decode the runtime into the task's shared volume."""

AIRFLOW_COMMAND = ["python", RUNTIME_PATH]
"""Every Airflow container's command: the runtime's bootstrap, which execs the component."""


@dataclass(frozen=True)
class Component:
    """An Airflow component: its `OPENMWAA_COMPONENT` value, construct id and log type."""

    name: str
    construct_id: str
    log_type: str


SCHEDULER = Component("scheduler", "Scheduler", "scheduler")
DAG_PROCESSOR = Component("dag-processor", "DagProcessor", "dag_processing")
TRIGGERER = Component("triggerer", "Triggerer", "triggerer")
API_SERVER = Component("api-server", "ApiServer", "webserver")
WORKER = Component("worker", "Worker", "worker")
COMPONENTS = (SCHEDULER, DAG_PROCESSOR, TRIGGERER, API_SERVER, WORKER)


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


def add_runtime_installer(
    task: ecs.TaskDefinition, image: ecs.ContainerImage, logging: ecs.LogDriver
) -> ecs.ContainerDefinition:
    """The task's `RUNTIME_VOLUME` and the short-lived init container (construct id
    `Runtime`) that decodes the openmwaa runtime into it; the Airflow containers wait for it."""
    task.add_volume(name=RUNTIME_VOLUME)
    runtime = task.add_container(
        "Runtime",
        container_name="openmwaa-runtime",
        image=image,
        essential=False,
        user="0",
        entry_point=RUNTIME_ENTRY_POINT,
        command=RUNTIME_INSTALL_COMMAND,
        environment={RUNTIME_ENV_VAR: runtime_bundle_b64()},
        memory_reservation_mib=64,
        logging=logging,
    )
    runtime.add_mount_points(
        ecs.MountPoint(container_path=RUNTIME_DIR, source_volume=RUNTIME_VOLUME, read_only=False)
    )
    return runtime


class AirflowServices(Construct):
    """The ECS cluster (Container Insights on) and the Airflow services on Fargate.

    One service per component, sized by the environment class: `scheduler` (`schedulers`
    tasks), `dag_processor` (1), `triggerer` (1), `api_server` (`min_webservers`; scaled up
    to `max_webservers` by the web access construct), `worker` (started at one task; the
    autoscaler owns its desired count between `min_workers` and `max_workers`). mw1.micro
    runs all five components as containers of one task (`all_in_one`), as MWAA does.

    Each task runs the image (`image`, default the stock `apache/airflow` image for the
    version) and a short-lived init container that writes the openmwaa runtime into a task
    volume; the Airflow containers run it, and it execs the component. The api-server is
    registered in Cloud Map as `api-server.<namespace>` so workers reach the Task Execution
    API inside the VPC whatever the web access mode. Deployments roll with a circuit breaker
    that rolls back; workers get 120 s to finish on stop (Celery warm shutdown).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: EnvironmentClassSpec,
        vpc: ec2.IVpc,
        vpc_subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        file_system: efs.FileSystem,
        access_point: efs.AccessPoint,
        task_role: iam.IRole,
        database_secret: secretsmanager.ISecret,
        secrets: AirflowSecrets,
        log_groups: AirflowLogGroups,
        settings: ContainerSettings,
        image: ecs.ContainerImage,
        schedulers: int,
        min_webservers: int,
        namespace_name: str,
        worker_fargate_spot: bool = False,
        enable_execute_command: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self._vpc_subnets = vpc_subnets
        self._security_group = security_group
        self._file_system = file_system
        self._access_point = access_point
        self._task_role = task_role
        self._database_secret = database_secret
        self._secrets = secrets
        self._log_groups = log_groups
        self._settings = settings
        self._image = image
        self._enable_execute_command = enable_execute_command

        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
            # Only Spot needs capacity providers; associating them can fail in a fresh
            # account whose ECS service-linked role is not ready, so avoid it otherwise.
            enable_fargate_capacity_providers=worker_fargate_spot,
        )
        self.namespace = servicediscovery.PrivateDnsNamespace(
            self,
            "Namespace",
            name=namespace_name,
            vpc=vpc,
            description="Airflow components: the api-server's internal name",
        )
        self.api_server_host = f"{API_SERVER_DNS_NAME}.{namespace_name}"
        self.services: dict[str, ecs.FargateService] = {}
        self.task_definitions: dict[str, ecs.FargateTaskDefinition] = {}

        if spec.all_in_one:
            task = self._task_definition("AllInOne", spec.worker, "scheduler")
            for component in COMPONENTS:
                self._airflow_container(task, component)
            service = self._service("AllInOne", task, desired_count=1, api_server=True)
            for component in COMPONENTS:
                self.services[component.name] = service
                self.task_definitions[component.name] = task
            return

        sizes: Mapping[Component, TaskSize] = {
            SCHEDULER: spec.scheduler,
            DAG_PROCESSOR: spec.dag_processor,
            TRIGGERER: spec.triggerer,
            API_SERVER: spec.webserver,
            WORKER: spec.worker,
        }
        counts: Mapping[Component, int | None] = {
            SCHEDULER: schedulers,
            DAG_PROCESSOR: 1,
            TRIGGERER: 1,
            API_SERVER: min_webservers,
            WORKER: None,
        }
        for component in COMPONENTS:
            task = self._task_definition(
                component.construct_id, sizes[component], component.log_type
            )
            self._airflow_container(task, component)
            self.task_definitions[component.name] = task
            self.services[component.name] = self._service(
                component.construct_id,
                task,
                desired_count=counts[component],
                api_server=component is API_SERVER,
                spot=component is WORKER and worker_fargate_spot,
            )

    @property
    def all_services(self) -> list[ecs.FargateService]:
        """Each distinct service once (mw1.micro has one)."""
        unique: dict[str, ecs.FargateService] = {}
        for service in self.services.values():
            unique[service.node.path] = service
        return list(unique.values())

    def add_environment(self, environment: Mapping[str, str]) -> None:
        """Add plain variables to every Airflow container (not the init container): values
        known only after the services exist, such as the environment's URL."""
        for component in COMPONENTS:
            task = self.task_definitions[component.name]
            container = task.find_container(component.name)
            if container is None:
                raise ValueError(f"no container {component.name} in {task.node.path}")
            for name, value in environment.items():
                container.add_environment(name, value)

    def _task_definition(
        self, construct_id: str, size: TaskSize, log_type: str
    ) -> ecs.FargateTaskDefinition:
        task = ecs.FargateTaskDefinition(
            self,
            f"{construct_id}Task",
            cpu=size.cpu,
            memory_limit_mib=size.memory_mib,
            task_role=self._task_role,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        add_sync_volume(task, self._file_system, self._access_point)
        self._file_system.grant_read(task.task_role)
        add_runtime_installer(
            task,
            self._image,
            ecs.LogDrivers.aws_logs(
                stream_prefix="runtime", log_group=self._log_groups.group(log_type)
            ),
        )
        return task

    def _airflow_container(
        self, task: ecs.FargateTaskDefinition, component: Component
    ) -> ecs.ContainerDefinition:
        log_settings = self._log_groups.settings(component.log_type)
        level = (
            self._log_groups.settings("task").level if component is WORKER else log_settings.level
        )
        secrets = {
            "OPENMWAA_DB_SECRET": ecs.Secret.from_secrets_manager(self._database_secret),
            "OPENMWAA_FERNET_SEED": ecs.Secret.from_secrets_manager(self._secrets.fernet_seed),
            "AIRFLOW__API_AUTH__JWT_SECRET": ecs.Secret.from_secrets_manager(
                self._secrets.jwt_secret
            ),
            "AIRFLOW__API__SECRET_KEY": ecs.Secret.from_secrets_manager(
                self._secrets.api_secret_key
            ),
        }
        if component is API_SERVER:
            secrets["OPENMWAA_ADMIN_SECRET"] = ecs.Secret.from_secrets_manager(self._secrets.admin)
        container = task.add_container(
            component.construct_id,
            container_name=component.name,
            image=self._image,
            entry_point=RUNTIME_ENTRY_POINT,
            command=AIRFLOW_COMMAND,
            environment=container_environment(
                self._settings, component=component.name, log_level=level.value
            ),
            secrets=secrets,
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix=component.name,
                log_group=self._log_groups.group(component.log_type),
            )
            if log_settings.enabled
            else None,
            stop_timeout=WORKER_STOP_TIMEOUT if component is WORKER else None,
            port_mappings=[ecs.PortMapping(container_port=8080, name="api")]
            if component is API_SERVER
            else None,
        )
        container.add_mount_points(
            ecs.MountPoint(container_path=SYNC_ROOT, source_volume=SYNC_VOLUME, read_only=True),
            ecs.MountPoint(
                container_path=RUNTIME_DIR, source_volume=RUNTIME_VOLUME, read_only=True
            ),
        )
        runtime = task.node.find_child("Runtime")
        if isinstance(runtime, ecs.ContainerDefinition):
            container.add_container_dependencies(
                ecs.ContainerDependency(
                    container=runtime, condition=ecs.ContainerDependencyCondition.SUCCESS
                )
            )
        return container

    def _service(
        self,
        construct_id: str,
        task: ecs.FargateTaskDefinition,
        *,
        desired_count: int | None,
        api_server: bool = False,
        spot: bool = False,
    ) -> ecs.FargateService:
        service = ecs.FargateService(
            self,
            construct_id,
            cluster=self.cluster,
            task_definition=task,
            desired_count=desired_count,
            security_groups=[self._security_group],
            vpc_subnets=self._vpc_subnets,
            assign_public_ip=False,
            platform_version=ecs.FargatePlatformVersion.LATEST,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            min_healthy_percent=100,
            max_healthy_percent=200,
            enable_execute_command=self._enable_execute_command,
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
            health_check_grace_period=Duration.minutes(15) if api_server else None,
            capacity_provider_strategies=[
                ecs.CapacityProviderStrategy(capacity_provider="FARGATE_SPOT", weight=1)
            ]
            if spot
            else None,
            cloud_map_options=ecs.CloudMapOptions(
                name=API_SERVER_DNS_NAME,
                cloud_map_namespace=self.namespace,
                dns_record_type=servicediscovery.DnsRecordType.A,
                dns_ttl=Duration.seconds(10),
            )
            if api_server
            else None,
        )
        if spot:
            # The cluster's capacity-provider association is created late, at synth; a
            # dependency on the whole cluster covers it, so a stack delete removes the
            # service before the association (which fails while the service uses Spot).
            service.node.add_dependency(self.cluster)
        return service
