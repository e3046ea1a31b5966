"""`AirflowEnvironment`: the whole Airflow environment, composed from one construct per piece."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Annotations, ArnFormat, Duration, RemovalPolicy, Stack, Tags, Token
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs

from constructs import Construct

from .airflow_secrets import AirflowSecrets
from .autoscaler import DEFAULT_SCALE_IN_COOLDOWN, WorkerAutoscaler
from .broker import CeleryBroker
from .bundled_function import FunctionPlacement
from .container_environment import ContainerSettings, web_environment
from .dag_sync import DEFAULT_RECONCILE_INTERVAL, DagSync
from .database import DATABASE_NAME, MetadataDatabase
from .environment_class import EnvironmentClass, EnvironmentClassSpec, spec_for
from .execution_role import ExecutionRole
from .image_mirror import AirflowImageMirror
from .log_groups import AirflowLogGroups, log_group_name
from .monitoring import AirflowMonitoring
from .nag_acknowledgements import acknowledge_environment
from .naming import namespace_name
from .network import AirflowNetwork
from .props import LoggingConfiguration, WebserverAccessMode, WorkerPool
from .requirements_builder import RequirementsBuilder
from .services import AirflowServices, execution_api_host
from .shared_storage import SharedStorage
from .source_bucket import SourceBucket
from .validation import EnvironmentSettings, raise_if_invalid
from .versions import (
    DEFAULT_AIRFLOW_VERSION,
    DEFAULT_PYTHON_VERSION,
    default_image_name,
    is_airflow_2,
)
from .web import WebAccess


class AirflowEnvironment(Construct):
    """An Apache Airflow environment on ECS Fargate, fed from a versioned S3 bucket.

    What Amazon MWAA builds as a service, in your own account: a VPC (or yours), a
    versioned source bucket, EFS for DAGs and plugins, the execution role, an Aurora
    PostgreSQL metadata database, an SQS Celery broker and Airflow's secrets. Props are
    named as MWAA's API names them; every prop is optional and its default is documented
    as the behaviour it gives. An invalid prop raises one ValueError naming each problem.

    Example::

        env = AirflowEnvironment(stack, "Airflow", environment_class=EnvironmentClass.MW1_SMALL)
        env.grant_upload(my_ci_role)
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment_name: str | None = None,
        airflow_version: str = DEFAULT_AIRFLOW_VERSION,
        environment_class: EnvironmentClass | str = EnvironmentClass.MW1_SMALL,
        min_workers: int | None = None,
        max_workers: int | None = None,
        schedulers: int | None = None,
        min_webservers: int | None = None,
        max_webservers: int | None = None,
        webserver_access_mode: WebserverAccessMode | str = WebserverAccessMode.PRIVATE_ONLY,
        airflow_configuration_options: Mapping[str, str] | None = None,
        kms_key: kms.IKey | None = None,
        requirements_s3_object_version: str | None = None,
        plugins_s3_object_version: str | None = None,
        startup_script_s3_object_version: str | None = None,
        logging_configuration: LoggingConfiguration | None = None,
        tags: Mapping[str, str] | None = None,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        nat_gateways: int | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        deletion_protection: bool = True,
        database_engine_version: rds.AuroraPostgresEngineVersion | None = None,
        domain_name: str | None = None,
        hosted_zone: route53.IHostedZone | None = None,
        certificate: acm.ICertificate | None = None,
        allowed_cidrs: Sequence[str] | None = None,
        image: ecs.ContainerImage | None = None,
        docker_hub_credentials: secretsmanager.ISecret | None = None,
        worker_fargate_spot: bool = False,
        worker_pools: Sequence[WorkerPool] | None = None,
        enable_execute_command: bool = False,
        scale_in_cooldown: Duration | None = None,
        reconcile_interval: Duration | None = None,
        alarm_topic: sns.ITopic | None = None,
    ) -> None:
        """Create the environment.

        :param environment_name: Names the log groups (`airflow-<name>-Task`, ...), the
            dashboard (`airflow-<name>`), the database cluster (`<label>-metadata`), the
            Cloud Map namespace (`<label>.airflow.internal`) and every description. The
            label is the name lowercased when that is a valid DNS label/RDS identifier,
            else the name made valid (`_` to `-`, separators collapsed, cut to fit) plus a
            short hash of the name, so every name MWAA accepts works and two names that
            differ other than in letter case never share a label. Default: the construct id.
        :param airflow_version: Apache Airflow version. Default: the newest version this
            library proves end to end (see `versions.SUPPORTED_AIRFLOW_VERSIONS`).
        :param environment_class: MWAA environment class sizing every component and the
            database. Default: mw1.small.
        :param min_workers: Fewest Celery workers, 0 to 200; 0 lets workers scale to zero
            (MWAA cannot). mw1.micro: must be 1. Default: 1.
        :param max_workers: Most Celery workers, 1 to 200 and at least `min_workers`.
            mw1.micro: must be 1. Default: 10 (1 for mw1.micro).
        :param schedulers: Scheduler tasks, 1 to 5 (mw1.micro: 1). Default: 2 (1 for mw1.micro).
        :param min_webservers: Fewest api-server (web server) tasks, 1 to 5 (mw1.micro: 1).
            Default: 2 (1 for mw1.micro).
        :param max_webservers: Most api-server tasks, 1 to 5 and at least `min_webservers`
            (mw1.micro: 1). Default: the larger of 2 and `min_webservers` (1 for mw1.micro).
        :param webserver_access_mode: PRIVATE_ONLY (default): an internal load balancer.
            PUBLIC_ONLY: internet-facing, HTTPS only.
        :param airflow_configuration_options: Airflow settings as `section.key` -> value,
            passed as `AIRFLOW__SECTION__KEY`. Keys the environment owns are refused.
            Default: none.
        :param kms_key: Customer managed key for the source bucket, EFS, the database (and
            Performance Insights), the queue, the secrets, every log group, the ECR
            repository of the image copy, the autoscaler's DynamoDB table, the alarm topic
            we create and the Lambda functions' environment variables (the access-log
            bucket always uses S3-managed keys). Its key policy must let CloudWatch Logs
            (and, for the alarm topic we create, CloudWatch alarms) use it: added for you
            when the key is a `kms.Key` of this app; for an imported key, synth warns with
            the statements to add. Default: AWS managed or AWS owned encryption, except the
            alarm topic we create, which is then not encrypted at rest (see `alarm_topic`).
        :param requirements_s3_object_version: Apply only this version of requirements.txt.
            Default: follow the latest version.
        :param plugins_s3_object_version: Apply only this version of plugins.zip.
            Default: follow the latest version.
        :param startup_script_s3_object_version: Apply only this version of startup.sh.
            Default: follow the latest version.
        :param logging_configuration: Log levels, enabled log types and retention.
            Default: every log type at INFO, kept one month.
        :param tags: Tags applied to every resource of the environment. Default: none.
        :param vpc: Your VPC (shared VPCs included). Default: a new VPC, 2 AZs, public and
            private subnets, NAT, flow logs.
        :param vpc_subnets: Subnets of your `vpc` to use. Default: its private subnets.
        :param nat_gateways: NAT gateways of the new VPC, 1 or 2. Default: 1.
        :param removal_policy: What CloudFormation does with the source bucket, the EFS
            file system, the four Airflow secrets and every log group with data (the six
            `airflow-<name>-*` groups, the database's PostgreSQL group, the VPC flow-log
            group) when it deletes them: on stack delete or replacement, and on the
            rollback of a failed first create. Default: RETAIN_ON_UPDATE_OR_DELETE
            (`RetainExceptOnCreate`: kept on stack delete and replacement, deleted by a
            failed first create's rollback, so a retry does not hit "already exists").
            RETAIN keeps them even then (a retry then fails on the log group names until
            you delete them); DESTROY deletes them. The access-log bucket is kept (plain
            Retain) unless DESTROY; the Lambda log groups and the queue are always
            deleted; the database always takes a final snapshot.
        :param deletion_protection: Deletion protection of the database cluster. It is
            turned on by a custom resource as the last step of the environment's first
            create, never at the cluster's create, so a failure inside the environment can
            still roll back (a failure later in the same deploy, outside the environment,
            can still meet a protected cluster).
            To delete the stack, deploy with False first. Default: True.
        :param database_engine_version: Aurora PostgreSQL version of the metadata
            database. Default: the newest PostgreSQL 16 minor version the installed
            aws-cdk-lib knows (Aurora retires old minors); an aws-cdk-lib upgrade may
            therefore upgrade the database's minor version on deploy. Pin one to avoid it.
        :param domain_name: Custom domain of the Airflow UI, e.g. `airflow.example.com`.
            With `hosted_zone`, we issue a DNS-validated ACM certificate and add an alias
            record. Default: the load balancer's own DNS name, over HTTP (PRIVATE_ONLY).
        :param hosted_zone: Route 53 zone of `domain_name`. Default: none.
        :param certificate: ACM certificate for `domain_name` if you manage it yourself.
            Default: issued for you when `hosted_zone` is given.
        :param allowed_cidrs: Networks allowed to reach the load balancer. Default: the VPC
            CIDR for PRIVATE_ONLY; required for PUBLIC_ONLY (say who: `0.0.0.0/0` for
            the whole internet).
        :param image: Container image for every Airflow component (MWAA cannot do this),
            used as given. Default: the stock `apache/airflow:<version>-python3.12`, copied
            from Docker Hub once per tag, at deploy, into an ECR repository of the
            environment (`env.image_mirror`, all architectures); every task pulls from ECR.
        :param docker_hub_credentials: Secrets Manager secret `{"username", "password"}` of
            a Docker Hub account, used by the deploy-time copy of the default image
            (authenticated pulls have a higher limit). Default: anonymous pulls.
            Not allowed with `image` (give the credentials to your `ContainerImage` instead).
        :param worker_fargate_spot: Run Celery workers on Fargate Spot (about 70 % cheaper;
            a reclaimed worker gets the 2-minute warning and drains like a scale-in).
            Default: False (on-demand Fargate).
        :param worker_pools: Extra pools of Celery workers, each for the tasks of one Celery
            queue (`queue=` on an operator), with its own SQS queue, ECS service and
            autoscaler: e.g. `[WorkerPool("long-running")]` on on-demand Fargate beside Spot
            workers, for tasks longer than the 120 s a stopped worker gets. Not on mw1.micro.
            Default: none.
        :param enable_execute_command: Allow `aws ecs execute-command` shells into the
            containers. Default: False.
        :param scale_in_cooldown: How long demand must stay lower before workers are
            removed, in whole seconds from 0 to 6 hours (the cool-down's samples are read
            back from the autoscaler's DynamoDB table in one Query per decision). Not used
            on mw1.micro, which has no autoscaler. Default: 5 minutes.
        :param reconcile_interval: How often the DAG sync compares the bucket with EFS and
            heals differences (S3 events apply changes within seconds in between), in
            whole minutes, at least 1 (an EventBridge rate). Default: 10 minutes.
        :param alarm_topic: SNS topic the environment's alarms notify. It must let
            CloudWatch alarms publish and must not use the AWS managed SNS key. Default: a
            new SSL-only topic, `env.monitoring.alarm_topic`, to subscribe to, encrypted
            with `kms_key` when given and otherwise not encrypted at rest (CloudWatch cannot
            publish to a topic under the AWS managed SNS key).
        """
        super().__init__(scope, construct_id)
        self.spec: EnvironmentClassSpec = _spec_or_default(environment_class)
        self.environment_name = environment_name if environment_name is not None else construct_id
        self.airflow_version = airflow_version
        self.min_workers = min_workers if min_workers is not None else 1
        self.max_workers = max_workers if max_workers is not None else self.spec.default_max_workers
        self.schedulers = schedulers if schedulers is not None else self.spec.default_schedulers
        self.min_webservers = (
            min_webservers if min_webservers is not None else self.spec.default_min_webservers
        )
        self.max_webservers = (
            max_webservers
            if max_webservers is not None
            else max(self.spec.default_max_webservers, self.min_webservers)
        )
        access_mode = str(getattr(webserver_access_mode, "value", webserver_access_mode))
        self.airflow_configuration_options = dict(airflow_configuration_options or {})
        self.requirements_s3_object_version = requirements_s3_object_version
        self.plugins_s3_object_version = plugins_s3_object_version
        self.startup_script_s3_object_version = startup_script_s3_object_version
        self.logging_configuration = logging_configuration or LoggingConfiguration()
        self.kms_key = kms_key

        raise_if_invalid(
            EnvironmentSettings(
                environment_name=self.environment_name,
                environment_class=str(getattr(environment_class, "value", environment_class)),
                airflow_version=airflow_version,
                schedulers=self.schedulers,
                min_workers=self.min_workers,
                max_workers=self.max_workers,
                min_webservers=self.min_webservers,
                max_webservers=self.max_webservers,
                webserver_access_mode=access_mode,
                airflow_configuration_options=self.airflow_configuration_options,
                requirements_s3_object_version=requirements_s3_object_version,
                plugins_s3_object_version=plugins_s3_object_version,
                startup_script_s3_object_version=startup_script_s3_object_version,
                vpc_given=vpc is not None,
                vpc_subnets_given=vpc_subnets is not None,
                nat_gateways=nat_gateways,
                domain_name=domain_name,
                hosted_zone_given=hosted_zone is not None,
                certificate_given=certificate is not None,
                allowed_cidrs=tuple(allowed_cidrs or ()),
                image_given=image is not None,
                docker_hub_credentials_given=docker_hub_credentials is not None,
                tags=tags,
                reconcile_interval=reconcile_interval,
                scale_in_cooldown=scale_in_cooldown,
                removal_policy=removal_policy,
                deletion_protection=deletion_protection,
                worker_pools=worker_pools if worker_pools is not None else (),
            )
        )
        self.worker_pools: tuple[WorkerPool, ...] = tuple(worker_pools or ())

        self.webserver_access_mode = WebserverAccessMode(access_mode)
        if kms_key is not None and not _allow_cloudwatch_logs(kms_key):
            _warn_imported_key(self, kms_key, alarm_topic_created=alarm_topic is None)

        self.network = AirflowNetwork(
            self,
            "Network",
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            nat_gateways=nat_gateways,
            kms_key=kms_key,
            removal_policy=removal_policy,
        )
        self.source = SourceBucket(self, "Source", kms_key=kms_key, removal_policy=removal_policy)
        self.storage = SharedStorage(
            self,
            "SharedStorage",
            vpc=self.network.vpc,
            vpc_subnets=self.network.subnets,
            security_group=self.network.security_group,
            kms_key=kms_key,
            removal_policy=removal_policy,
        )
        self.broker = CeleryBroker(self, "Broker", kms_key=kms_key)
        for pool in self.worker_pools:
            self.broker.add_pool_queue(pool.queue)
        self.log_groups = AirflowLogGroups(
            self,
            "Logs",
            environment_name=self.environment_name,
            logging_configuration=self.logging_configuration,
            kms_key=kms_key,
            removal_policy=removal_policy,
        )
        self.database = MetadataDatabase(
            self,
            "MetadataDatabase",
            environment_name=self.environment_name,
            spec=self.spec,
            vpc=self.network.vpc,
            vpc_subnets=self.network.subnets,
            security_group=self.network.security_group,
            kms_key=kms_key,
            engine_version=database_engine_version,
            log_retention=self.logging_configuration.retention,
            log_removal_policy=removal_policy,
        )
        self.secrets = AirflowSecrets(
            self,
            "Secrets",
            environment_name=self.environment_name,
            kms_key=kms_key,
            removal_policy=removal_policy,
        )
        self._execution_role = ExecutionRole(
            self,
            "ExecutionRole",
            environment_name=self.environment_name,
            bucket=self.source.bucket,
            queues=list(self.broker.all_queues),
            log_groups=list(self.log_groups.groups.values()),
            kms_key=kms_key,
        )

        self.image_mirror: AirflowImageMirror | None = None
        if image is None:
            self.image_mirror = AirflowImageMirror(
                self,
                "ImageMirror",
                source_image=default_image_name(airflow_version),
                kms_key=kms_key,
                credentials=docker_hub_credentials,
                log_retention=self.logging_configuration.retention,
            )
            image = self.image_mirror.image

        stack = Stack.of(self)
        task_log_group = log_group_name(self.environment_name, "Task")
        namespace = namespace_name(self.environment_name)
        self.services = AirflowServices(
            self,
            "Services",
            spec=self.spec,
            airflow_version=airflow_version,
            vpc=self.network.vpc,
            vpc_subnets=self.network.subnets,
            security_group=self.network.security_group,
            file_system=self.storage.file_system,
            access_point=self.storage.access_point,
            task_role=self.execution_role,
            database_secret=self.database.secret,
            secrets=self.secrets,
            log_groups=self.log_groups,
            settings=ContainerSettings(
                environment_name=self.environment_name,
                airflow_version=airflow_version,
                python_version=DEFAULT_PYTHON_VERSION,
                region=stack.region,
                queue_url=self.broker.queue.queue_url,
                queue_name=self.broker.queue.queue_name,
                execution_api_host=execution_api_host(airflow_version, self.spec, namespace),
                task_log_group_arn=stack.format_arn(
                    service="logs",
                    resource="log-group",
                    resource_name=task_log_group,
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                ),
                task_logging_enabled=self.logging_configuration.task.enabled,
                tasks_per_worker=self.spec.tasks_per_worker,
                database_name=DATABASE_NAME,
                configuration_options=self.airflow_configuration_options,
                max_workers=self.max_workers + sum(p.max_workers for p in self.worker_pools),
                schedulers=self.schedulers,
                task_protection=not self.spec.all_in_one,
                web_cpu=self.spec.webserver.cpu,
                pool_queues={
                    name: queue.queue_url for name, queue in self.broker.pool_queues.items()
                },
            ),
            image=image,
            schedulers=self.schedulers,
            min_webservers=self.min_webservers,
            max_webservers=self.max_webservers,
            namespace_name=namespace,
            worker_fargate_spot=worker_fargate_spot,
            worker_pools=self.worker_pools,
            enable_execute_command=enable_execute_command,
        )
        if self.image_mirror is not None:
            # No task may start before its image is in the repository.
            for service in self.services.all_services:
                service.node.add_dependency(self.image_mirror.copy)
        self.web = WebAccess(
            self,
            "WebAccess",
            vpc=self.network.vpc,
            vpc_subnets=self.network.subnets,
            service=self.services.services["api-server"],
            access_mode=self.webserver_access_mode,
            access_log_bucket=self.source.access_log_bucket,
            min_webservers=self.min_webservers,
            max_webservers=self.max_webservers,
            health_check_path="/health"
            if is_airflow_2(airflow_version)
            else "/api/v2/monitor/health",
            allowed_cidrs=allowed_cidrs,
            domain_name=domain_name,
            hosted_zone=hosted_zone,
            certificate=certificate,
        )
        # The URL exists only now (the load balancer follows the api-server service); its
        # DNS name is a GetAtt, which depends on neither services nor task definitions.
        self.services.add_environment(
            web_environment(
                airflow_version=airflow_version,
                url=self.web.url,
                configuration_options=self.airflow_configuration_options,
            )
        )

        placement = FunctionPlacement(
            vpc=self.network.vpc,
            vpc_subnets=self.network.subnets,
            security_group=self.network.security_group,
            kms_key=kms_key,
            log_retention=self.logging_configuration.retention,
        )
        self.dag_sync = DagSync(
            self,
            "DagSync",
            environment_name=self.environment_name,
            bucket=self.source.bucket,
            access_point=self.storage.access_point,
            cluster=self.services.cluster,
            services=self.services.all_services,
            placement=placement,
            requirements_s3_object_version=requirements_s3_object_version,
            plugins_s3_object_version=plugins_s3_object_version,
            startup_script_s3_object_version=startup_script_s3_object_version,
            reconcile_interval=reconcile_interval or DEFAULT_RECONCILE_INTERVAL,
        )

        self.requirements_builder = RequirementsBuilder(
            self,
            "RequirementsBuilder",
            environment_name=self.environment_name,
            airflow_version=airflow_version,
            python_version=DEFAULT_PYTHON_VERSION,
            cluster=self.services.cluster,
            vpc=self.network.vpc,
            vpc_subnets=self.network.subnets,
            security_group=self.network.security_group,
            file_system=self.storage.file_system,
            access_point=self.storage.access_point,
            image=image,
            log_group=self.log_groups.group("worker"),
        )
        self.requirements_builder.attach(self.dag_sync.function)
        if self.image_mirror is not None:
            # The initial sync may start the requirements build, which pulls the image.
            self.dag_sync.initial_sync.node.add_dependency(self.image_mirror.copy)

        self.autoscaler: WorkerAutoscaler | None = None
        if not self.spec.all_in_one:
            self.autoscaler = WorkerAutoscaler(
                self,
                "WorkerAutoscaler",
                environment_name=self.environment_name,
                queue=self.broker.queue,
                cluster=self.services.cluster,
                worker_service=self.services.services["worker"],
                worker_task_role=self.execution_role,
                min_workers=self.min_workers,
                max_workers=self.max_workers,
                tasks_per_worker=self.spec.tasks_per_worker,
                placement=placement,
                scale_in_cooldown=scale_in_cooldown or DEFAULT_SCALE_IN_COOLDOWN,
                kms_key=kms_key,
            )
        self.pool_autoscalers: dict[str, WorkerAutoscaler] = {}
        """Each worker pool's autoscaler, by its Celery queue."""
        for pool in self.worker_pools:
            self.pool_autoscalers[pool.queue] = WorkerAutoscaler(
                self,
                f"WorkerPoolAutoscaler-{pool.queue}",
                environment_name=self.environment_name,
                queue=self.broker.pool_queues[pool.queue],
                cluster=self.services.cluster,
                worker_service=self.services.worker_pools[pool.queue],
                worker_task_role=self.execution_role,
                min_workers=pool.min_workers,
                max_workers=pool.max_workers,
                tasks_per_worker=self.spec.tasks_per_worker,
                placement=placement,
                scale_in_cooldown=scale_in_cooldown or DEFAULT_SCALE_IN_COOLDOWN,
                kms_key=kms_key,
                worker_pool=pool.queue,
            )

        self.monitoring = AirflowMonitoring(
            self,
            "Monitoring",
            environment_name=self.environment_name,
            max_workers=self.max_workers,
            services={
                **self.services.services,
                **{f"worker:{q}": svc for q, svc in self.services.worker_pools.items()},
            },
            dag_sync=self.dag_sync.function,
            autoscaler=self.autoscaler.function if self.autoscaler else None,
            pool_autoscalers={q: a.function for q, a in self.pool_autoscalers.items()},
            database=self.database.cluster,
            load_balancer=self.web.load_balancer,
            target_group=self.web.target_group,
            alarm_topic=alarm_topic,
            kms_key=kms_key,
        )

        # Last in a create: a failure anywhere in the environment rolls back an unprotected
        # cluster (a protected one would end the stack in ROLLBACK_FAILED).
        self.database.protect_after(
            *(child for child in self.node.children if child is not self.database),
            enabled=deletion_protection,
        )

        for key, value in (tags or {}).items():
            Tags.of(self).add(key, value)
        acknowledge_environment(self)

    @property
    def vpc(self) -> ec2.IVpc:
        """The VPC the environment runs in (created, or the one you gave)."""
        return self.network.vpc

    @property
    def security_group(self) -> ec2.SecurityGroup:
        """The environment's security group (all traffic allowed from itself)."""
        return self.network.security_group

    @property
    def bucket(self) -> s3.Bucket:
        """The versioned source bucket: dags/, plugins.zip, requirements.txt, startup.sh."""
        return self.source.bucket

    @property
    def queue(self) -> sqs.Queue:
        """The Celery broker queue."""
        return self.broker.queue

    @property
    def execution_role(self) -> iam.Role:
        """The role Airflow runs as; grant it what your DAGs need."""
        return self._execution_role.role

    def grant_upload(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let `grantee` (a CI role, say) put and delete objects in the source bucket."""
        return self.source.bucket.grant_read_write(grantee)


def _spec_or_default(environment_class: EnvironmentClass | str) -> EnvironmentClassSpec:
    try:
        return spec_for(environment_class)
    except ValueError:
        return spec_for(EnvironmentClass.MW1_SMALL)


def _allow_cloudwatch_logs(key: kms.IKey) -> bool:
    """Add CloudWatch Logs' statement to the key policy; False if CDK cannot (imported key)."""
    stack = Stack.of(key)
    result = key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchLogsForAirflowEnvironment",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=[
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:Describe*",
            ],
            resources=["*"],
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                }
            },
        )
    )
    return result.statement_added


IMPORTED_KEY_WARNING_ID = "openmwaa:importedKmsKeyPolicy"


def _warn_imported_key(scope: Construct, key: kms.IKey, *, alarm_topic_created: bool) -> None:
    """Warn at synth that an imported key's policy, which CDK cannot change, must allow what
    the environment's log groups (and the alarm topic we create) need."""
    stack = Stack.of(scope)
    region = "<region>" if Token.is_unresolved(stack.region) else stack.region
    account = "<account>" if Token.is_unresolved(stack.account) else stack.account
    partition = "aws" if Token.is_unresolved(stack.partition) else stack.partition
    needed = [
        f"principal logs.{region}.amazonaws.com: kms:Encrypt*, kms:Decrypt*, kms:ReEncrypt*, "
        "kms:GenerateDataKey*, kms:Describe* on resource *, with condition ArnLike "
        f"kms:EncryptionContext:aws:logs:arn = arn:{partition}:logs:{region}:{account}"
        ":log-group:* (every log group of the environment is encrypted with it)"
    ]
    if alarm_topic_created:
        needed.append(
            "principal cloudwatch.amazonaws.com: kms:Decrypt, kms:GenerateDataKey* on resource "
            f"*, with condition StringEquals aws:SourceAccount = {account} (alarms publish "
            "to the encrypted alarm topic)"
        )
    Annotations.of(scope).add_warning_v2(
        IMPORTED_KEY_WARNING_ID,
        "kms_key is imported, so CDK cannot add to its key policy. Without these statements "
        "in the key policy, log groups fail to create and alarms cannot notify: "
        + "; ".join(f"({i}) {text}" for i, text in enumerate(needed, 1)),
    )
