"""The ECS cluster and one Fargate service per Airflow component (tasks: `task_definitions`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Annotations, Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_efs as efs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_servicediscovery as servicediscovery

from constructs import Construct

from . import defaults
from .airflow_secrets import AirflowSecrets
from .container_environment import ContainerSettings
from .environment_class import EnvironmentClassSpec, TaskSize
from .log_groups import AirflowLogGroups
from .nag_acknowledgements import acknowledge
from .nag_reasons import CONTAINER_INSIGHTS_OFF
from .props import WorkerPool
from .runtime import contracts
from .task_definitions import (
    API_SERVER,
    DAG_PROCESSOR,
    EXECUTION_API,
    SCHEDULER,
    TRIGGERER,
    WORKER,
    Component,
    TaskDefinitionFactory,
    components_for,
)
from .versions import is_airflow_2

IMPORTED_CLUSTER_SPOT_WARNING_ID = "openmwaa:importedClusterSpot"
EXECUTION_API_DNS_NAME = contracts.EXECUTION_API
"""The Task Execution API service's Cloud Map name, in the environment's namespace."""
EXECUTION_API_CPU_TARGET_PERCENT = 70

START_UP_GRACE_PERIOD = Duration.minutes(15)
"""How long ECS ignores the health checks of a new api-server or execution-api task (its load
balancer's and its container's): startup.sh (5 minutes at most) and a requirements install
(9 at most) fit in it."""


ALL_IN_ONE = "all-in-one"
"""The component name of a service several components share (mw1.micro's single service)."""


def watched_services(
    services: Mapping[str, ecs.FargateService],
) -> dict[str, ecs.FargateService]:
    """Each distinct service of `services` (component -> service) once, by the component it
    runs, or `ALL_IN_ONE` for a service several components share: the keys of the
    `service_below_desired:<component>` alarms and the `Service` dimension of the
    autoscaler's TasksBelowDesired."""
    names: dict[str, list[str]] = {}
    by_path: dict[str, ecs.FargateService] = {}
    for name, service in services.items():
        names.setdefault(service.node.path, []).append(name)
        by_path[service.node.path] = service
    return {
        names[path][0] if len(names[path]) == 1 else ALL_IN_ONE: service
        for path, service in by_path.items()
    }


def spot_strategy(on_demand_base: int = 0) -> list[ecs.CapacityProviderStrategy]:
    """The capacity-provider strategy of a Spot worker service: every task on FARGATE_SPOT,
    except the first `on_demand_base` ones, which run on FARGATE (on demand).

    ECS places the base first, then spreads the rest by weight: FARGATE's weight 0 gives it
    nothing beyond its base. It is no fallback: when Spot has no capacity, ECS keeps retrying
    the Spot placement (the service's events say so); it never moves a task to FARGATE."""
    strategy = []
    if on_demand_base > 0:
        strategy.append(
            ecs.CapacityProviderStrategy(capacity_provider="FARGATE", base=on_demand_base, weight=0)
        )
    strategy.append(ecs.CapacityProviderStrategy(capacity_provider="FARGATE_SPOT", weight=1))
    return strategy


def execution_api_host(
    airflow_version: str, spec: EnvironmentClassSpec, namespace_name: str
) -> str:
    """Where the Task Execution API is reached: `localhost` in mw1.micro's single task,
    otherwise its service's Cloud Map name (`""` on Airflow 2, which has none)."""
    if is_airflow_2(airflow_version):
        return ""
    if spec.all_in_one:
        return "localhost"
    return f"{EXECUTION_API_DNS_NAME}.{namespace_name}"


class AirflowServices(Construct):
    """The ECS cluster (or `existing_cluster`) and the Airflow services on Fargate.

    One service per component, sized by the environment class: `scheduler` (`schedulers`
    tasks), `dag_processor` (1), `triggerer` (1), `api_server` (the UI and REST API:
    `min_webservers` tasks; scaled up to `max_webservers` by the web access construct),
    `execution_api` (Airflow 3's Task Execution API, which workers and triggerers call for
    every task's state and heartbeats: `min_webservers` tasks, scaled on CPU up to
    `max_webservers`, reached only inside the VPC through its Cloud Map name
    `execution-api.<namespace>`, never through the load balancer) and `worker` (started at
    one task; the autoscaler owns its desired count between `min_workers` and
    `max_workers`). The Task Execution API runs apart from the UI so that no load on the UI
    can stall task heartbeats. mw1.micro runs every component as a container of one task
    (`all_in_one`), as MWAA does; its workers reach the execution API on `localhost`.

    Every task runs on Linux, on `cpu_architecture` (default ARM64, Graviton). The cluster we
    create has Container Insights only with `container_insights=True` (the alarms do not need
    it); `existing_cluster` keeps its own settings. Spot workers (`worker_fargate_spot`, a
    pool's `fargate_spot`) use `spot_strategy`: the first `worker_on_demand_base` workers of
    the environment's own service on demand, the rest on Spot.

    Each task runs the image (`image`, default the stock `apache/airflow` image for the
    version) and a short-lived init container that writes the openmwaa runtime into a task
    volume; the Airflow containers run it, and it execs the component. Deployments roll with
    a circuit breaker that rolls back; workers get 120 s to finish on stop (Celery warm
    shutdown). Each service starts its new tasks before it stops the old ones, except
    mw1.micro's single task, which stops first (minimum healthy 0 %, maximum 100 %): its new
    api-server becomes healthy only after the new scheduler migrated the database, and the new
    scheduler migrates only once the old components stopped (the runtime's upgrade gate), so
    the two tasks must not overlap. A mw1.micro deploy is unavailable for the task's start-up,
    a few minutes.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: EnvironmentClassSpec,
        airflow_version: str,
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
        max_webservers: int,
        namespace_name: str,
        worker_fargate_spot: bool = False,
        worker_on_demand_base: int = defaults.WORKER_ON_DEMAND_BASE,
        worker_pools: Sequence[WorkerPool] = (),
        enable_execute_command: bool = False,
        existing_cluster: ecs.ICluster | None = None,
        cpu_architecture: str = defaults.CPU_ARCHITECTURE,
        container_insights: bool = defaults.CONTAINER_INSIGHTS,
    ) -> None:
        super().__init__(scope, construct_id)
        self._vpc_subnets = vpc_subnets
        self._security_group = security_group
        self._tasks = TaskDefinitionFactory(
            task_role=task_role,
            file_system=file_system,
            access_point=access_point,
            image=image,
            log_groups=log_groups,
            database_secret=database_secret,
            secrets=secrets,
            settings=settings,
            cpu_architecture=cpu_architecture,
        )
        self._enable_execute_command = enable_execute_command
        self.components = components_for(airflow_version)

        # Only Spot needs capacity providers; associating them can fail in a fresh account
        # whose ECS service-linked role is not ready, so avoid it otherwise.
        spot = worker_fargate_spot or any(pool.fargate_spot for pool in worker_pools)
        self.cluster: ecs.ICluster
        if existing_cluster is None:
            # Stated either way, so an account-level default does not decide the bill.
            self.cluster = ecs.Cluster(
                self,
                "Cluster",
                vpc=vpc,
                container_insights_v2=ecs.ContainerInsights.ENABLED
                if container_insights
                else ecs.ContainerInsights.DISABLED,
                enable_fargate_capacity_providers=spot,
            )
            if not container_insights:
                acknowledge(self.cluster, [CONTAINER_INSIGHTS_OFF])
        else:
            self.cluster = existing_cluster
            if spot and isinstance(existing_cluster, ecs.Cluster):
                existing_cluster.enable_fargate_capacity_providers()
            elif spot:
                Annotations.of(self).add_warning_v2(
                    IMPORTED_CLUSTER_SPOT_WARNING_ID,
                    "existing_cluster is imported, so CDK cannot attach capacity providers to "
                    "it: Spot workers need its FARGATE and FARGATE_SPOT capacity providers "
                    "(aws ecs put-cluster-capacity-providers), or their service fails to create",
                )
        self.services: dict[str, ecs.FargateService] = {}
        self.task_definitions: dict[str, ecs.FargateTaskDefinition] = {}
        self.worker_pools: dict[str, ecs.FargateService] = {}
        """Each worker pool's service, by its Celery queue (the autoscaler owns its count)."""
        self._pool_task_definitions: dict[str, ecs.FargateTaskDefinition] = {}
        self.namespace: servicediscovery.PrivateDnsNamespace | None = None
        """The private DNS namespace of the Task Execution API's name (Airflow 3 classes
        above mw1.micro only)."""

        if spec.all_in_one:
            task = self._tasks.task_definition(self, "AllInOne", spec.worker, contracts.SCHEDULER)
            for component in self.components:
                self._tasks.airflow_container(task, component)
            service = self._service(
                "AllInOne", task, desired_count=1, api_server=True, stop_first=True
            )
            for component in self.components:
                self.services[component.name] = service
                self.task_definitions[component.name] = task
            return

        if EXECUTION_API in self.components:
            self.namespace = servicediscovery.PrivateDnsNamespace(
                self,
                "Namespace",
                name=namespace_name,
                vpc=vpc,
                description="Airflow components: the Task Execution API's internal name",
            )
        sizes: Mapping[Component, TaskSize] = {
            SCHEDULER: spec.scheduler,
            DAG_PROCESSOR: spec.dag_processor,
            TRIGGERER: spec.triggerer,
            API_SERVER: spec.webserver,
            EXECUTION_API: spec.execution_api,
            WORKER: spec.worker,
        }
        counts: Mapping[Component, int | None] = {
            SCHEDULER: schedulers,
            DAG_PROCESSOR: 1,
            TRIGGERER: 1,
            API_SERVER: min_webservers,
            EXECUTION_API: min_webservers,
            WORKER: None,
        }
        for component in self.components:
            task = self._tasks.task_definition(
                self, component.construct_id, sizes[component], component.log_type
            )
            self._tasks.airflow_container(task, component)
            self.task_definitions[component.name] = task
            self.services[component.name] = self._service(
                component.construct_id,
                task,
                desired_count=counts[component],
                api_server=component is API_SERVER,
                execution_api=component is EXECUTION_API,
                strategy=spot_strategy(worker_on_demand_base)
                if component is WORKER and worker_fargate_spot
                else None,
            )
        for pool in worker_pools:
            construct_id = f"WorkerPool-{pool.queue}"
            task = self._tasks.task_definition(self, construct_id, spec.worker, WORKER.log_type)
            self._tasks.airflow_container(task, WORKER, worker_queue=pool.queue)
            self._pool_task_definitions[pool.queue] = task
            self.worker_pools[pool.queue] = self._service(
                construct_id,
                task,
                desired_count=None,
                strategy=spot_strategy() if pool.fargate_spot else None,
            )
        if EXECUTION_API in self.components and max_webservers > min_webservers:
            scaling = self.services[EXECUTION_API.name].auto_scale_task_count(
                min_capacity=min_webservers, max_capacity=max_webservers
            )
            scaling.scale_on_cpu_utilization(
                "Cpu", target_utilization_percent=EXECUTION_API_CPU_TARGET_PERCENT
            )

    @property
    def all_services(self) -> list[ecs.FargateService]:
        """Each distinct service once (mw1.micro has one), worker pools' included."""
        unique: dict[str, ecs.FargateService] = {}
        for service in [*self.services.values(), *self.worker_pools.values()]:
            unique[service.node.path] = service
        return list(unique.values())

    @property
    def by_component(self) -> dict[str, ecs.FargateService]:
        """Every component's service (mw1.micro's components share one), worker pools' as
        `worker:<queue>`."""
        return {
            **self.services,
            **{f"{WORKER.name}:{queue}": s for queue, s in self.worker_pools.items()},
        }

    @property
    def watched(self) -> dict[str, ecs.FargateService]:
        """`watched_services` of `by_component`: each distinct service once, by component."""
        return watched_services(self.by_component)

    @property
    def all_task_definitions(self) -> list[ecs.FargateTaskDefinition]:
        """Each distinct Airflow task definition once, worker pools' included."""
        unique: dict[str, ecs.FargateTaskDefinition] = {}
        for task in [*self.task_definitions.values(), *self._pool_task_definitions.values()]:
            unique[task.node.path] = task
        return list(unique.values())

    def add_environment(self, environment: Mapping[str, str]) -> None:
        """Add plain variables to every Airflow container (not the init container): values
        known only after the services exist, such as the environment's URL."""
        containers = [(self.task_definitions[c.name], c.name) for c in self.components] + [
            (task, WORKER.name) for task in self._pool_task_definitions.values()
        ]
        for task, container_name in containers:
            container = task.find_container(container_name)
            if container is None:
                raise ValueError(f"no container {container_name} in {task.node.path}")
            for name, value in environment.items():
                container.add_environment(name, value)

    def _service(
        self,
        construct_id: str,
        task: ecs.FargateTaskDefinition,
        *,
        desired_count: int | None,
        api_server: bool = False,
        execution_api: bool = False,
        strategy: list[ecs.CapacityProviderStrategy] | None = None,
        stop_first: bool = False,
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
            min_healthy_percent=0 if stop_first else 100,
            max_healthy_percent=100 if stop_first else 200,
            enable_execute_command=self._enable_execute_command,
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
            health_check_grace_period=(
                START_UP_GRACE_PERIOD if api_server or execution_api else None
            ),
            capacity_provider_strategies=strategy,
            cloud_map_options=ecs.CloudMapOptions(
                name=EXECUTION_API_DNS_NAME,
                cloud_map_namespace=self.namespace,
                dns_record_type=servicediscovery.DnsRecordType.A,
                dns_ttl=Duration.seconds(10),
            )
            if execution_api and self.namespace is not None
            else None,
        )
        if strategy:
            # The cluster's capacity-provider association is created late, at synth; a
            # dependency on the whole cluster covers it, so a stack delete removes the
            # service before the association (which fails while the service uses Spot).
            service.node.add_dependency(self.cluster)
        return service
