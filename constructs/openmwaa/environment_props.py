"""`AirflowEnvironment`'s props as one frozen type, and `resolve`, which applies the defaults.

`AirflowEnvironmentProps` holds the props exactly as given (None: "use the default");
`resolve` turns them into `ResolvedProps`, every default applied from `defaults.py` for the
environment class. Validation (`validation.py`) and every construct read only the resolved
values, so a default is applied in one place and validated like a given value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns

from . import defaults
from .environment_class import EnvironmentClass, EnvironmentClassSpec, spec_for
from .props import LoggingConfiguration, WebserverAccessMode, WorkerPool
from .sign_in import SignIn, has_https, resolve_sign_in
from .task_definitions import architecture_name


@dataclass(frozen=True, kw_only=True)
class AirflowEnvironmentProps:
    """The props of `AirflowEnvironment`, as given: each is a keyword argument of the
    construct, documented there. None means "the default" (see `defaults.py`).

    Keep a configuration as data and build from it with
    `AirflowEnvironment.from_props(scope, id, props)`.
    """

    environment_name: str | None = None
    airflow_version: str = defaults.AIRFLOW_VERSION
    environment_class: EnvironmentClass | str = defaults.ENVIRONMENT_CLASS
    min_workers: int | None = None
    max_workers: int | None = None
    schedulers: int | None = None
    min_webservers: int | None = None
    max_webservers: int | None = None
    webserver_access_mode: WebserverAccessMode | str = defaults.WEBSERVER_ACCESS_MODE
    airflow_configuration_options: Mapping[str, str] | None = None
    kms_key: kms.IKey | None = None
    requirements_s3_object_version: str | None = None
    plugins_s3_object_version: str | None = None
    startup_script_s3_object_version: str | None = None
    logging_configuration: LoggingConfiguration | None = None
    tags: Mapping[str, str] | None = None
    vpc: ec2.IVpc | None = None
    vpc_subnets: ec2.SubnetSelection | None = None
    nat_gateways: int | None = None
    flow_log_retention: logs.RetentionDays | None = None
    removal_policy: RemovalPolicy = defaults.REMOVAL_POLICY
    deletion_protection: bool = defaults.DELETION_PROTECTION
    database_engine_version: rds.AuroraPostgresEngineVersion | None = None
    domain_name: str | None = None
    hosted_zone: route53.IHostedZone | None = None
    certificate: acm.ICertificate | None = None
    allowed_cidrs: Sequence[str] | None = None
    image: ecs.ContainerImage | None = None
    docker_hub_credentials: secretsmanager.ISecret | None = None
    cpu_architecture: ecs.CpuArchitecture | str = defaults.CPU_ARCHITECTURE
    worker_fargate_spot: bool = defaults.WORKER_FARGATE_SPOT
    worker_on_demand_base: int = defaults.WORKER_ON_DEMAND_BASE
    worker_pools: Sequence[WorkerPool] | None = None
    enable_execute_command: bool = defaults.ENABLE_EXECUTE_COMMAND
    scale_in_cooldown: Duration | None = None
    reconcile_interval: Duration | None = None
    alarm_topic: sns.ITopic | None = None
    metrics_namespace: str = defaults.METRICS_NAMESPACE
    metrics_allow_list: Sequence[str] | None = None
    task_failure_rate_alarm: float | None = None
    pause_schedule: str | None = None
    resume_schedule: str | None = None
    schedule_time_zone: str = defaults.SCHEDULE_TIME_ZONE
    existing_bucket: s3.IBucket | None = None
    bucket_props: Mapping[str, Any] | None = None
    database_props: Mapping[str, Any] | None = None
    existing_cluster: ecs.ICluster | None = None
    container_insights: bool = defaults.CONTAINER_INSIGHTS
    sign_in: SignIn | None = None
    api_access: bool = True
    private_network: bool | None = None
    vpc_endpoints: str | None = None
    pypi_mirror: bool | None = None


PROP_NAMES: tuple[str, ...] = tuple(f.name for f in fields(AirflowEnvironmentProps))
"""Every prop's name, in declaration order."""


@dataclass(frozen=True, kw_only=True)
class ResolvedProps:
    """The props with every default applied: what validation checks and the constructs use.

    `spec` sizes the environment: the given class's, or mw1.small's while `environment_class`
    is invalid (validation then reports it, naming the value given).
    """

    environment_name: str
    environment_class: str
    spec: EnvironmentClassSpec
    airflow_version: str
    python_version: str
    min_workers: int
    max_workers: int
    schedulers: int
    min_webservers: int
    max_webservers: int
    webserver_access_mode: str
    airflow_configuration_options: Mapping[str, str]
    kms_key: kms.IKey | None
    requirements_s3_object_version: str | None
    plugins_s3_object_version: str | None
    startup_script_s3_object_version: str | None
    logging_configuration: LoggingConfiguration
    tags: Mapping[str, str]
    vpc: ec2.IVpc | None
    vpc_subnets: ec2.SubnetSelection | None
    nat_gateways: int | None
    """The new VPC's NAT gateways; None with your own `vpc` (unless given, which is refused)."""
    flow_log_retention: logs.RetentionDays | None
    """The new VPC's flow-log retention; None with your own `vpc` (unless given: refused)."""
    removal_policy: RemovalPolicy
    deletion_protection: bool
    database_engine_version: rds.AuroraPostgresEngineVersion | None
    domain_name: str | None
    hosted_zone: route53.IHostedZone | None
    certificate: acm.ICertificate | None
    allowed_cidrs: tuple[str, ...] | None
    """None when not given (the VPC's CIDR reaches a private load balancer)."""
    image: ecs.ContainerImage | None
    docker_hub_credentials: secretsmanager.ISecret | None
    cpu_architecture: str
    """`ARM64` or `X86_64` (an `ecs.CpuArchitecture` given is turned into its name); anything
    else is kept as given for validation to name."""
    worker_fargate_spot: bool
    worker_on_demand_base: int
    worker_pools: tuple[WorkerPool, ...]
    enable_execute_command: bool
    scale_in_cooldown: Duration
    reconcile_interval: Duration
    alarm_topic: sns.ITopic | None
    metrics_namespace: str
    metrics_allow_list: tuple[str, ...]
    """The allowed metric names, each once, sorted (empty: Airflow's metrics off). Anything
    but a list, tuple or set of strings is kept as given for validation to name."""
    task_failure_rate_alarm: float | None
    pause_schedule: str | None
    resume_schedule: str | None
    schedule_time_zone: str
    existing_bucket: s3.IBucket | None
    bucket_props: Mapping[str, Any]
    database_props: Mapping[str, Any]
    existing_cluster: ecs.ICluster | None
    container_insights: bool
    sign_in: SignIn
    """How people sign in: the `SignIn` given, or the default (Cognito with HTTPS, else
    FAB's password sign-in). A value of another type is kept as given for validation to name."""
    sign_in_defaulted: bool
    """True when `sign_in` was not given."""
    api_access: bool
    private_network: bool
    """True when `private_network=True` was given, or `nat_gateways=0` for a new VPC."""
    private_network_given: bool | None
    """`private_network` as given (None: not given), for validation to name a contradiction."""
    vpc_endpoints: str | None
    """`create`, `verify` or `unchecked` in a private network (default `create` with a new
    VPC, `verify` with yours); None otherwise, unless given (which is refused)."""
    pypi_mirror: bool
    """Whether pip reads from a CodeArtifact mirror of PyPI (default: `private_network`)."""


def _enum_value(value: object) -> str:
    return str(getattr(value, "value", value))


def _spec_or_default(environment_class: str) -> EnvironmentClassSpec:
    try:
        return spec_for(environment_class)
    except ValueError:
        return spec_for(defaults.ENVIRONMENT_CLASS)


def _mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A copy of a mapping prop; anything else is kept as given for validation to name."""
    if value is None:
        return {}
    return dict(value) if isinstance(value, Mapping) else value


def _allow_list(value: Sequence[str] | None) -> tuple[str, ...]:
    """The allow-list, duplicates folded and sorted (so synthesis does not depend on the
    order given); the default list when None."""
    if value is None:
        return tuple(sorted(set(defaults.METRICS_ALLOW_LIST)))
    if isinstance(value, list | tuple | set | frozenset) and all(
        isinstance(name, str) for name in value
    ):
        return tuple(sorted(set(value)))
    return value  # type: ignore[return-value]


def resolve(props: AirflowEnvironmentProps, *, construct_id: str) -> ResolvedProps:
    """`props` with every default applied (the environment name defaults to `construct_id`).

    Pure: it builds nothing and checks nothing; `validation.validate` checks the result.
    """
    environment_class = _enum_value(props.environment_class)
    spec = _spec_or_default(environment_class)
    min_webservers = (
        props.min_webservers if props.min_webservers is not None else defaults.min_webservers(spec)
    )
    pools = props.worker_pools
    private_network = bool(props.private_network) or (
        props.private_network is None and props.vpc is None and props.nat_gateways == 0
    )
    return ResolvedProps(
        environment_name=(
            props.environment_name if props.environment_name is not None else construct_id
        ),
        environment_class=environment_class,
        spec=spec,
        airflow_version=props.airflow_version,
        python_version=defaults.PYTHON_VERSION,
        min_workers=props.min_workers if props.min_workers is not None else defaults.MIN_WORKERS,
        max_workers=(
            props.max_workers if props.max_workers is not None else defaults.max_workers(spec)
        ),
        schedulers=props.schedulers if props.schedulers is not None else defaults.schedulers(spec),
        min_webservers=min_webservers,
        max_webservers=(
            props.max_webservers
            if props.max_webservers is not None
            else defaults.max_webservers(spec, min_webservers)
        ),
        webserver_access_mode=_enum_value(props.webserver_access_mode),
        airflow_configuration_options=dict(props.airflow_configuration_options or {}),
        kms_key=props.kms_key,
        requirements_s3_object_version=props.requirements_s3_object_version,
        plugins_s3_object_version=props.plugins_s3_object_version,
        startup_script_s3_object_version=props.startup_script_s3_object_version,
        logging_configuration=props.logging_configuration or LoggingConfiguration(),
        tags=dict(props.tags or {}),
        vpc=props.vpc,
        vpc_subnets=props.vpc_subnets,
        nat_gateways=_nat_gateways(props, private_network),
        flow_log_retention=(
            props.flow_log_retention
            if props.flow_log_retention is not None or props.vpc is not None
            else defaults.FLOW_LOG_RETENTION
        ),
        removal_policy=props.removal_policy,
        deletion_protection=props.deletion_protection,
        database_engine_version=props.database_engine_version,
        domain_name=props.domain_name,
        hosted_zone=props.hosted_zone,
        certificate=props.certificate,
        allowed_cidrs=None if props.allowed_cidrs is None else tuple(props.allowed_cidrs),
        image=props.image,
        docker_hub_credentials=props.docker_hub_credentials,
        cpu_architecture=architecture_name(props.cpu_architecture),
        worker_fargate_spot=props.worker_fargate_spot,
        worker_on_demand_base=props.worker_on_demand_base,
        # Anything but a list or tuple is kept as given for validation to name.
        worker_pools=(
            tuple(pools) if isinstance(pools, list | tuple) else () if pools is None else pools  # type: ignore[arg-type]
        ),
        enable_execute_command=props.enable_execute_command,
        scale_in_cooldown=(
            props.scale_in_cooldown
            if props.scale_in_cooldown is not None
            else defaults.SCALE_IN_COOLDOWN
        ),
        reconcile_interval=(
            props.reconcile_interval
            if props.reconcile_interval is not None
            else defaults.RECONCILE_INTERVAL
        ),
        alarm_topic=props.alarm_topic,
        metrics_namespace=props.metrics_namespace,
        metrics_allow_list=_allow_list(props.metrics_allow_list),
        task_failure_rate_alarm=props.task_failure_rate_alarm,
        pause_schedule=props.pause_schedule,
        resume_schedule=props.resume_schedule,
        schedule_time_zone=props.schedule_time_zone,
        existing_bucket=props.existing_bucket,
        bucket_props=_mapping(props.bucket_props),
        database_props=_mapping(props.database_props),
        existing_cluster=props.existing_cluster,
        container_insights=props.container_insights,
        sign_in=resolve_sign_in(
            props.sign_in,
            https=has_https(
                certificate=props.certificate,
                domain_name=props.domain_name,
                hosted_zone=props.hosted_zone,
            ),
        ),
        sign_in_defaulted=props.sign_in is None,
        api_access=props.api_access,
        private_network=private_network,
        private_network_given=props.private_network,
        vpc_endpoints=_vpc_endpoints(props, private_network),
        pypi_mirror=props.pypi_mirror if props.pypi_mirror is not None else private_network,
    )


def _nat_gateways(props: AirflowEnvironmentProps, private_network: bool) -> int | None:
    """As given; else none with your own VPC, 0 in a private network, the default otherwise."""
    if props.nat_gateways is not None or props.vpc is not None:
        return props.nat_gateways
    return 0 if private_network else defaults.NAT_GATEWAYS


def _vpc_endpoints(props: AirflowEnvironmentProps, private_network: bool) -> str | None:
    """The endpoint mode: as given, else `create` for a new private VPC, `verify` for yours."""
    if props.vpc_endpoints is not None or not private_network:
        return props.vpc_endpoints
    return defaults.VPC_ENDPOINTS_NEW_VPC if props.vpc is None else defaults.VPC_ENDPOINTS_OWN_VPC
