"""`AirflowEnvironment`: the whole Airflow environment, composed from one construct per piece.

Longer than the ~450 lines other modules keep to, on purpose: the constructor's docstring is
the reference of every prop (about 180 lines), kept beside the signature as aws-cdk-lib keeps
it, so `help()` and IDEs show it. The props type is `environment_props.py`, the defaults are
`defaults.py`, and the rules are `validation.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jsii
from aws_cdk import Annotations, ArnFormat, CfnResource, Duration, Fn, RemovalPolicy, Stack, Tags
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_verifiedpermissions as avp

from constructs import Construct

from . import defaults
from .airflow_metrics import (
    DAG_BAG_SIZE,
    DAG_DURATION_SUCCESS,
    IMPORT_ERRORS,
    SCHEDULER_HEARTBEAT,
    TASK_FAILURES,
    TASK_SUCCESSES,
    AirflowMetrics,
)
from .airflow_secrets import AirflowSecrets
from .api_access import ApiAccess
from .autoscaler import WorkerAutoscaler
from .broker import CeleryBroker
from .bundled_function import FunctionPlacement
from .container_environment import ContainerSettings, web_environment
from .dag_sync import DagSync
from .database import DATABASE_NAME, MetadataDatabase
from .endpoint_check import EndpointCheck
from .environment_class import EnvironmentClass, EnvironmentClassSpec
from .environment_props import PROP_NAMES, AirflowEnvironmentProps, ResolvedProps, resolve
from .execution_role import ExecutionRole
from .image_mirror import AirflowImageMirror
from .key_policy import allow_cloudwatch_logs, warn_imported_key
from .log_groups import LOG_TYPES, AirflowLogGroups, log_group_name
from .monitoring import AirflowMonitoring
from .nag_acknowledgements import acknowledge
from .nag_reasons import NAT_GATEWAY_TO_LOAD_BALANCER
from .naming import namespace_name
from .network import AirflowNetwork
from .pause_resume import EnvironmentPauser, paused_services, settle_time
from .props import LoggingConfiguration, WebserverAccessMode, WorkerPool
from .pypi_mirror import PypiMirror
from .requirements_builder import RequirementsBuilder
from .runtime import contracts
from .services import AirflowServices, execution_api_host
from .shared_storage import SharedStorage
from .sign_in import (
    COGNITO,
    IDENTITY_CENTER,
    PASSWORD,
    SIGN_IN_COGNITO_WARNING_ID,
    SIGN_IN_WARNING_ID,
    SignIn,
    SignInResources,
)
from .source_bucket import SourceBucket
from .validation import INTERNET_SIGN_IN, raise_if_invalid
from .versions import (
    default_image_name,
    is_airflow_2,
)
from .vpc_endpoints import EnvironmentEndpoints, in_vpc_roles, required_endpoints
from .web import WebAccess

PRIVATE_SIGN_IN_WARNING_ID = "openmwaa:privateSignIn"
PRIVATE_WITHOUT_MIRROR_WARNING_ID = "openmwaa:privateNetworkWithoutPypiMirror"


@jsii.implements(ec2.IConnectable)
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
        airflow_version: str = defaults.AIRFLOW_VERSION,
        environment_class: EnvironmentClass | str = defaults.ENVIRONMENT_CLASS,
        min_workers: int | None = None,
        max_workers: int | None = None,
        schedulers: int | None = None,
        min_webservers: int | None = None,
        max_webservers: int | None = None,
        webserver_access_mode: WebserverAccessMode | str = defaults.WEBSERVER_ACCESS_MODE,
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
        flow_log_retention: logs.RetentionDays | None = None,
        removal_policy: RemovalPolicy = defaults.REMOVAL_POLICY,
        deletion_protection: bool = defaults.DELETION_PROTECTION,
        database_engine_version: rds.AuroraPostgresEngineVersion | None = None,
        domain_name: str | None = None,
        hosted_zone: route53.IHostedZone | None = None,
        certificate: acm.ICertificate | None = None,
        allowed_cidrs: Sequence[str] | None = None,
        image: ecs.ContainerImage | None = None,
        docker_hub_credentials: secretsmanager.ISecret | None = None,
        cpu_architecture: ecs.CpuArchitecture | str = defaults.CPU_ARCHITECTURE,
        worker_fargate_spot: bool = defaults.WORKER_FARGATE_SPOT,
        worker_on_demand_base: int = defaults.WORKER_ON_DEMAND_BASE,
        worker_pools: Sequence[WorkerPool] | None = None,
        enable_execute_command: bool = defaults.ENABLE_EXECUTE_COMMAND,
        scale_in_cooldown: Duration | None = None,
        reconcile_interval: Duration | None = None,
        alarm_topic: sns.ITopic | None = None,
        metrics_namespace: str = defaults.METRICS_NAMESPACE,
        metrics_allow_list: Sequence[str] | None = None,
        task_failure_rate_alarm: float | None = None,
        pause_schedule: str | None = None,
        resume_schedule: str | None = None,
        schedule_time_zone: str = defaults.SCHEDULE_TIME_ZONE,
        existing_bucket: s3.IBucket | None = None,
        bucket_props: Mapping[str, Any] | None = None,
        database_props: Mapping[str, Any] | None = None,
        existing_cluster: ecs.ICluster | None = None,
        container_insights: bool = defaults.CONTAINER_INSIGHTS,
        sign_in: SignIn | None = None,
        api_access: bool = True,
        private_network: bool | None = None,
        vpc_endpoints: str | None = None,
        pypi_mirror: bool | None = None,
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
            private subnets, NAT, flow logs, and a free S3 gateway endpoint on the private
            subnets (`env.network.s3_endpoint`), so S3 traffic in the region (image layers,
            the DAG sync, your DAGs') skips NAT's $0.045 per GB (with `private_network`:
            isolated subnets only and VPC endpoints).
        :param vpc_subnets: Subnets of your `vpc` to use. Default: its private subnets (with
            `private_network`: its isolated subnets).
        :param nat_gateways: NAT gateways of the new VPC, 1 or 2; 0 means `private_network`.
            Default: 1 (0 with `private_network`).
        :param flow_log_retention: How long the new VPC's flow logs (all traffic) are kept,
            a `logs.RetentionDays` other than INFINITE. Flow logs cost $0.50 per GB ingested
            plus $0.03 per GB-month stored, so a shorter retention saves only storage; they
            stay on (the HIPAA and NIST 800-53 packs require them). Not allowed with `vpc`.
            Default: one year.
        :param removal_policy: What CloudFormation does with the source bucket, the EFS
            file system, the five Airflow secrets and every log group with data (the six
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
            An image you give must be built for `cpu_architecture`.
        :param docker_hub_credentials: Secrets Manager secret `{"username", "password"}` of
            a Docker Hub account, used by the deploy-time copy of the default image
            (authenticated pulls have a higher limit). Default: anonymous pulls.
            Not allowed with `image` (give the credentials to your `ContainerImage` instead).
        :param cpu_architecture: CPU architecture of every Airflow task (every service, the
            worker pools, mw1.micro's single task) and of the requirements build, whose
            wheels must match the workers': `"ARM64"` (Graviton: $0.03238 per vCPU-hour and
            $0.00356 per GB-hour in us-east-1, 20 % below x86_64) or `"X86_64"` ($0.04048 and
            $0.004445), or an `ecs.CpuArchitecture`. The default image is multi-architecture;
            an `image` you give must be built for this architecture. The bundled Lambdas run
            on arm64 whatever you choose. Default: `"ARM64"`.
        :param worker_fargate_spot: Run Celery workers on Fargate Spot (about 70 % cheaper;
            a reclaimed worker gets the 2-minute warning and drains like a scale-in: a task
            longer than 120 s is cut off, so it stays opt-in). Default: False (on-demand
            Fargate).
        :param worker_on_demand_base: With `worker_fargate_spot`, how many workers always run
            on demand: the service's capacity-provider strategy is FARGATE (base N, weight
            0) and FARGATE_SPOT (weight 1). ECS does not move a worker to on demand when Spot
            has no capacity (it retries the Spot placement), so this is a floor, not a
            fallback. 0 to `max_workers`; only with `worker_fargate_spot`; worker pools keep
            their own `fargate_spot`. Default: 0.
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
        :param existing_bucket: Your own source bucket, used instead of a new one: a bucket of
            this stack, or one imported into it (a bucket of another stack would make a
            cross-stack cycle, refused). Keep it versioned (the `*_s3_object_version` pins
            need versions), private and SSL-only: an imported bucket's settings cannot be
            checked at synth. If it is encrypted with a KMS key, import it with
            `s3.Bucket.from_bucket_attributes(..., encryption_key=key)`, so the DAG sync and
            the execution role are granted that key with their read access. `removal_policy`
            and `kms_key` do not change it. The access-log bucket (the load balancer's logs)
            is still created. Not allowed with `bucket_props`. Default: a new bucket.
        :param bucket_props: Keyword arguments of `s3.Bucket` that override the new source
            bucket's, e.g. `{"bucket_name": "acme-airflow-dags", "lifecycle_rules": [...]}`.
            The settings that keep it safe and working are refused (`versioned`,
            `block_public_access`, `enforce_ssl`, `encryption`, `encryption_key`,
            `bucket_key_enabled`, `server_access_logs_*`, `object_ownership`,
            `removal_policy`), each naming the prop that sets it; `lifecycle_rules` are added
            after ours (old versions still expire). Default: none.
        :param database_props: Keyword arguments of `rds.DatabaseCluster` that override the
            metadata database's, e.g. `{"backup": rds.BackupProps(retention=Duration.days(35)),
            "preferred_maintenance_window": "Sun:03:00-Sun:04:00",
            "serverless_v2_max_capacity": 16}`. Refused: what the environment wires
            (`engine`: use `database_engine_version`; `vpc`, `vpc_subnets`, `subnet_group`,
            `security_groups`, `credentials`, `default_database_name`, `cluster_identifier`,
            `storage_encrypted`, `storage_encryption_key`: use `kms_key`;
            `cloudwatch_logs_exports`, `removal_policy`, `deletion_protection`: use the
            props; `instances`, `instance_props`: override `writer`). A `writer` or `readers`
            you give replaces ours with its own settings: give it
            `performance_insight_encryption_key=kms_key` to keep Performance Insights under
            your key. Default: none.
        :param existing_cluster: Your ECS cluster, to run the services in instead of a new
            one. It must be in `vpc` (so `vpc` is required with it). With Fargate Spot
            (`worker_fargate_spot` or a Spot worker pool) it needs the FARGATE and
            FARGATE_SPOT capacity providers: enabled for you on an `ecs.Cluster` of this
            app, yours to add on an imported one (synth warns). Its Container Insights
            setting stays yours. Default: a new cluster (see `container_insights`).
        :param container_insights: CloudWatch Container Insights on the cluster we create
            (about $41 a month on mw1.small: per-task metrics and performance log events).
            No alarm needs it: the autoscaler publishes each service's TasksBelowDesired;
            on mw1.micro, which has no autoscaler, its service's alarm reads Container
            Insights when True and the api-server target's healthy count otherwise. Not
            allowed with `existing_cluster`, whose setting is yours. Default: False.
        :param alarm_topic: SNS topic the environment's alarms notify. It must let
            CloudWatch alarms publish and must not use the AWS managed SNS key. Default: a
            new SSL-only topic, `env.monitoring.alarm_topic`, to subscribe to, encrypted
            with `kms_key` when given and otherwise not encrypted at rest (CloudWatch cannot
            publish to a topic under the AWS managed SNS key).
        :param metrics_namespace: CloudWatch namespace of Airflow's own metrics (1-255
            characters of letters, digits and `. - _ / # :`, not starting with `AWS/`).
            Default: `AmazonMWAA`, MWAA's, so an MWAA alarm or dashboard moves over by
            changing the value of its `Environment` dimension.
        :param metrics_allow_list: Airflow's metrics to publish, by MWAA's names (the mapping
            in docs/metrics.md; an unknown name is refused), like MWAA's
            `metrics.metrics_allow_list`; each costs $0.30 a metric-month per series. Order
            and duplicates do not matter. `[]` turns Airflow's metrics off (no StatsD, no
            relay; without SchedulerHeartbeat there is no `scheduler_heartbeat_missing`
            alarm, and synth warns). Default: the environment-level metrics (scheduler,
            executor, DAG processing, task successes and failures: no per-DAG or per-task
            series).
        :param task_failure_rate_alarm: The `task_failure_rate` alarm's threshold: a fraction
            above 0, at most 1; the alarm fires when failed / finished tasks over 15 minutes
            exceeds it, once 5 tasks finished in the window. Needs TaskInstanceFailures and
            TaskInstanceSuccesses in `metrics_allow_list`. Default: no such alarm.
        :param pause_schedule: When to pause the environment (every service to 0, the
            autoscaler and the alarms' actions off, the database then pausing itself), an
            EventBridge Scheduler cron expression such as `"cron(0 19 ? * MON-FRI *)"`; with
            `resume_schedule`, both or neither (docs/pause.md). `env.pauser` pauses and
            resumes on demand in every environment (`openmwaa pause ENV`,
            `env.grant_pause_resume`). Default: no schedule.
        :param resume_schedule: When to resume it (the services back to their counts, the
            autoscaler and the alarms' actions on), a cron expression such as
            `"cron(0 7 ? * MON-FRI *)"`. Default: no schedule.
        :param schedule_time_zone: The IANA time zone of both schedules, such as
            `"Europe/Paris"` (daylight saving time followed). Default: `"UTC"`.
        :param sign_in: How people sign in to the UI: `SignIn.oidc(...)` (any OpenID Connect
            provider, groups mapped to Airflow roles), `SignIn.cognito()` (a Cognito user pool
            of the environment), `SignIn.iam_identity_center(...)` (Airflow 3: the amazon
            provider's AWS auth manager with Amazon Verified Permissions) or
            `SignIn.password()` (FAB's own users and passwords). Users of the single sign-on
            methods are created at their first sign-in with the role their groups map to; the
            admin secret stays as break-glass access. `SignIn.cognito()` needs HTTPS
            (`domain_name` with `hosted_zone` or with `certificate`): Cognito, like most identity
            providers, accepts only https:// callback URLs. Default: `SignIn.cognito()` when
            the load balancer serves HTTPS; otherwise `SignIn.password()`, and synth warns how
            to turn single sign-on on.
        :param api_access: IAM access to the REST API for machines, like MWAA's
            `CreateCliToken` and `InvokeRestApi` (`env.api_access`: a regional API Gateway
            API with AWS_IAM authorization and a Lambda that signs in as one machine user per
            Airflow role; `env.grant_airflow_role(principal, "Op")`; the `openmwaa token`,
            `api` and `airflow` commands). Not built with `SignIn.iam_identity_center()`,
            whose auth manager has no password users. Default: `True`.
        :param private_network: No route out of the VPC: the new VPC has isolated subnets
            only (no internet gateway, NAT gateway or Elastic IP), and every AWS service
            something inside it calls is reached through a VPC endpoint (`vpc_endpoints`;
            `env.endpoints`). Functions that reach nothing in the VPC (the pauser, the image
            copy, the deletion protection) run outside it in every mode. With your own `vpc`,
            resources go in `vpc_subnets` (default: its isolated subnets). Refused with
            `webserver_access_mode=PUBLIC_ONLY`; a sign-in whose identity provider is on the
            internet (`SignIn.oidc`, `SignIn.cognito`, `SignIn.iam_identity_center`) is refused
            with a new VPC and warned about with yours. `nat_gateways=0` means the same for a
            new VPC. docs/private-network.md has the details. Default: False.
        :param vpc_endpoints: How a private network's endpoints are provided: `"create"` (the
            environment creates them in its subnets), `"verify"` (yours: a deploy-time check,
            outside the VPC, fails the deploy naming each endpoint missing) or `"unchecked"`
            (yours, reached in a way we cannot see, e.g. a hub VPC's endpoints through Route 53
            Resolver: nothing is checked). Only with `private_network`. Default: `"create"`
            with a new VPC, `"verify"` with your `vpc`.
        :param pypi_mirror: pip installs requirements.txt from an AWS CodeArtifact
            repository of the environment whose upstream is PyPI, not from PyPI itself: the
            way packages reach a private network. An `--index-url` line in requirements.txt,
            or `PIP_INDEX_URL` exported by startup.sh, still wins. Default: `private_network`.
        """
        props = AirflowEnvironmentProps(
            **{name: value for name, value in locals().items() if name in PROP_NAMES}
        )
        super().__init__(scope, construct_id)
        resolved = resolve(props, construct_id=construct_id)
        raise_if_invalid(resolved)
        self.props: ResolvedProps = resolved
        """Every prop, with its default applied."""
        self.spec: EnvironmentClassSpec = resolved.spec
        """The environment class's sizes."""
        self.environment_name = resolved.environment_name
        self.airflow_version = resolved.airflow_version
        self.kms_key = resolved.kms_key
        self.logging_configuration = resolved.logging_configuration
        self.worker_pools: tuple[WorkerPool, ...] = resolved.worker_pools
        """The `WorkerPool`s given."""
        self.webserver_access_mode = WebserverAccessMode(resolved.webserver_access_mode)
        self._build(resolved)

    @classmethod
    def from_props(
        cls, scope: Construct, construct_id: str, props: AirflowEnvironmentProps
    ) -> AirflowEnvironment:
        """Build the environment from props kept as data (one per stage, say)."""
        return cls(scope, construct_id, **{name: getattr(props, name) for name in PROP_NAMES})

    def _build(self, p: ResolvedProps) -> None:
        kms_key = p.kms_key
        removal_policy = p.removal_policy
        airflow_version = p.airflow_version
        if kms_key is not None and not allow_cloudwatch_logs(kms_key):
            warn_imported_key(self, kms_key, alarm_topic_created=p.alarm_topic is None)

        self.network = AirflowNetwork(
            self,
            "Network",
            vpc=p.vpc,
            vpc_subnets=p.vpc_subnets,
            nat_gateways=p.nat_gateways,
            private=p.private_network,
            kms_key=kms_key,
            log_retention=p.flow_log_retention or defaults.FLOW_LOG_RETENTION,
            removal_policy=removal_policy,
        )
        self.source = SourceBucket(
            self,
            "Source",
            kms_key=kms_key,
            removal_policy=removal_policy,
            existing_bucket=p.existing_bucket,
            bucket_props=p.bucket_props,
        )
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
            engine_version=p.database_engine_version,
            database_props=p.database_props,
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
        image = p.image
        if image is None:
            self.image_mirror = AirflowImageMirror(
                self,
                "ImageMirror",
                source_image=default_image_name(airflow_version),
                kms_key=kms_key,
                credentials=p.docker_hub_credentials,
                log_retention=self.logging_configuration.retention,
            )
            image = self.image_mirror.image

        stack = Stack.of(self)
        task_log_group = log_group_name(
            self.environment_name, next(t.suffix for t in LOG_TYPES if t.config_field == "task")
        )
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
                python_version=p.python_version,
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
                configuration_options=p.airflow_configuration_options,
                max_workers=p.max_workers + sum(pool.max_workers for pool in p.worker_pools),
                schedulers=p.schedulers,
                task_protection=not self.spec.all_in_one,
                web_cpu=self.spec.webserver.cpu,
                pool_queues={
                    name: queue.queue_url for name, queue in self.broker.pool_queues.items()
                },
                metrics_namespace=p.metrics_namespace,
                metrics_allow_list=p.metrics_allow_list,
            ),
            image=image,
            schedulers=p.schedulers,
            min_webservers=p.min_webservers,
            max_webservers=p.max_webservers,
            namespace_name=namespace,
            existing_cluster=p.existing_cluster,
            worker_fargate_spot=p.worker_fargate_spot,
            worker_on_demand_base=p.worker_on_demand_base,
            worker_pools=self.worker_pools,
            enable_execute_command=p.enable_execute_command,
            cpu_architecture=p.cpu_architecture,
            container_insights=p.container_insights,
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
            service=self.services.services[contracts.API_SERVER],
            access_mode=self.webserver_access_mode,
            access_log_bucket=self.source.access_log_bucket,
            min_webservers=p.min_webservers,
            max_webservers=p.max_webservers,
            health_check_path="/health"
            if is_airflow_2(airflow_version)
            else "/api/v2/monitor/health",
            allowed_cidrs=p.allowed_cidrs,
            domain_name=p.domain_name,
            hosted_zone=p.hosted_zone,
            certificate=p.certificate,
        )
        # The URL exists only now (the load balancer follows the api-server service); its
        # DNS name is a GetAtt, which depends on neither services nor task definitions.
        self.services.add_environment(
            web_environment(
                airflow_version=airflow_version,
                url=self.web.url,
                configuration_options=p.airflow_configuration_options,
            )
        )
        self._add_sign_in(p)

        placement = FunctionPlacement(
            vpc=self.network.vpc,
            vpc_subnets=self.network.subnets,
            security_group=self.network.security_group,
            kms_key=kms_key,
            log_retention=self.logging_configuration.retention,
        )
        self.api_access: ApiAccess | None = None
        """IAM access to the REST API for machines (`api_access`); None when off or with
        `SignIn.iam_identity_center()`."""
        if p.api_access and p.sign_in.method != IDENTITY_CENTER:
            self.api_access = ApiAccess(
                self,
                "ApiAccess",
                environment_name=self.environment_name,
                placement=placement,
                airflow_url=self.web.url,
                airflow_version=airflow_version,
                machine_key=self.secrets.machine_key,
                web_security_group=self.web.security_group,
            )
            if self.webserver_access_mode is WebserverAccessMode.PUBLIC_ONLY:
                self._let_api_access_reach_public_web()

        self.dag_sync = DagSync(
            self,
            "DagSync",
            environment_name=self.environment_name,
            bucket=self.source.bucket,
            access_point=self.storage.access_point,
            cluster=self.services.cluster,
            services=self.services.all_services,
            placement=placement,
            requirements_s3_object_version=p.requirements_s3_object_version,
            plugins_s3_object_version=p.plugins_s3_object_version,
            startup_script_s3_object_version=p.startup_script_s3_object_version,
            reconcile_interval=p.reconcile_interval,
        )

        self.requirements_builder = RequirementsBuilder(
            self,
            "RequirementsBuilder",
            environment_name=self.environment_name,
            airflow_version=airflow_version,
            python_version=p.python_version,
            cluster=self.services.cluster,
            vpc=self.network.vpc,
            vpc_subnets=self.network.subnets,
            security_group=self.network.security_group,
            file_system=self.storage.file_system,
            access_point=self.storage.access_point,
            image=image,
            log_group=self.log_groups.group("worker"),
            cpu_architecture=p.cpu_architecture,
        )
        self.requirements_builder.attach(self.dag_sync.function)
        if self.image_mirror is not None:
            # The initial sync may start the requirements build, which pulls the image.
            self.dag_sync.initial_sync.node.add_dependency(self.image_mirror.copy)
        self.pypi_mirror: PypiMirror | None = None
        """The PyPI mirror on CodeArtifact that pip reads (`pypi_mirror`); None when off."""
        if p.pypi_mirror:
            self.pypi_mirror = PypiMirror(
                self, "PypiMirror", environment_name=self.environment_name, kms_key=kms_key
            )
            self.pypi_mirror.grant_read(self.execution_role)
            self.services.add_environment(self.pypi_mirror.container_environment())
            self.requirements_builder.use_pypi_mirror(self.pypi_mirror)
            # No pip run, at start or in the build, before the repositories exist.
            for service in self.services.all_services:
                service.node.add_dependency(self.pypi_mirror)
            self.dag_sync.initial_sync.node.add_dependency(self.pypi_mirror)

        self.autoscaler: WorkerAutoscaler | None = None
        if not self.spec.all_in_one:
            self.autoscaler = WorkerAutoscaler(
                self,
                "WorkerAutoscaler",
                environment_name=self.environment_name,
                queue=self.broker.queue,
                cluster=self.services.cluster,
                worker_service=self.services.services[contracts.WORKER],
                worker_task_role=self.execution_role,
                min_workers=p.min_workers,
                max_workers=p.max_workers,
                tasks_per_worker=self.spec.tasks_per_worker,
                placement=placement,
                scale_in_cooldown=p.scale_in_cooldown,
                kms_key=kms_key,
                watched_services=self.services.watched,
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
                scale_in_cooldown=p.scale_in_cooldown,
                kms_key=kms_key,
                worker_pool=pool.queue,
            )

        self.airflow_metrics = AirflowMetrics(
            namespace=p.metrics_namespace,
            environment_name=self.environment_name,
            allowed=p.metrics_allow_list,
        )
        """Airflow's metrics of this environment (`airflow_metric` and the `metric_*`
        helpers build on it)."""
        self.monitoring = AirflowMonitoring(
            self,
            "Monitoring",
            environment_name=self.environment_name,
            max_workers=p.max_workers,
            services=self.services.by_component,
            dag_sync=self.dag_sync.function,
            autoscaler=self.autoscaler.function if self.autoscaler else None,
            pool_autoscalers={q: a.function for q, a in self.pool_autoscalers.items()},
            database=self.database.cluster,
            load_balancer=self.web.load_balancer,
            target_group=self.web.target_group,
            alarm_topic=p.alarm_topic,
            kms_key=kms_key,
            airflow_metrics=self.airflow_metrics,
            queues={"": self.broker.queue, **self.broker.pool_queues},
            database_max_capacity=p.database_props.get(
                "serverless_v2_max_capacity", self.spec.db_max_acu
            ),
            task_failure_rate=p.task_failure_rate_alarm,
            container_insights=p.container_insights,
        )

        autoscalers = [a for a in (self.autoscaler, *self.pool_autoscalers.values()) if a]
        self.pauser = EnvironmentPauser(
            self,
            "Pauser",
            environment_name=self.environment_name,
            cluster=self.services.cluster,
            services=paused_services(
                self.services.services,
                self.services.worker_pools,
                schedulers=p.schedulers,
                min_webservers=p.min_webservers,
                min_workers=p.min_workers,
                pool_min_workers={pool.queue: pool.min_workers for pool in p.worker_pools},
            ),
            autoscaler_rules=[a.schedule for a in autoscalers],
            alarms=list(self.monitoring.alarms.values()),
            placement=placement,
            settle_time=settle_time([a.function for a in autoscalers]),
            database_auto_pause=self.database.auto_pause,
            pause_schedule=p.pause_schedule,
            resume_schedule=p.resume_schedule,
            schedule_time_zone=p.schedule_time_zone,
        )
        """Pauses and resumes the environment (`pause_schedule`, `openmwaa pause ENV`)."""

        # Last in a create: a failure anywhere in the environment rolls back an unprotected
        # cluster (a protected one would end the stack in ROLLBACK_FAILED).
        self.database.protect_after(
            *(child for child in self.node.children if child is not self.database),
            enabled=p.deletion_protection,
        )

        self._add_private_network(p)
        self._describe_environment(p)
        for key, value in p.tags.items():
            Tags.of(self).add(key, value)

    def _add_private_network(self, p: ResolvedProps) -> None:
        """In a private network: the endpoints (`create`) or their check (`verify`), their
        policies' principals (every role that calls AWS from inside the VPC) and the
        dependencies that keep every in-VPC service and function from starting first."""
        self.endpoints: EnvironmentEndpoints | None = None
        """The VPC endpoints (`vpc_endpoints="create"`); None otherwise. Let your own roles
        in the VPC through them with `env.endpoints.allow_principal(role)`."""
        self.endpoint_check: EndpointCheck | None = None
        """The deploy-time check of your VPC's endpoints (`vpc_endpoints="verify"`)."""
        if not p.private_network:
            return
        if p.vpc is not None and p.sign_in.method in INTERNET_SIGN_IN:
            Annotations.of(self).add_warning_v2(
                PRIVATE_SIGN_IN_WARNING_ID,
                f"sign_in: {INTERNET_SIGN_IN[p.sign_in.method]} is on the internet and "
                "private_network=True gives the VPC no route out: the api-server must reach it "
                "through a route of your VPC (a proxy, a transit gateway), or nobody can sign in.",
            )
        if not p.pypi_mirror:
            Annotations.of(self).add_warning_v2(
                PRIVATE_WITHOUT_MIRROR_WARNING_ID,
                "pypi_mirror=False with private_network=True: pip cannot reach PyPI from the VPC, "
                "so requirements.txt and the AWS CLI (installed by every requirements build) "
                "need an index the VPC reaches: an --index-url line in requirements.txt, or "
                "PIP_INDEX_URL exported by startup.sh. Without one, each build fails.",
            )
        needs = required_endpoints(
            kms_key=p.kms_key is not None,
            execute_command=p.enable_execute_command,
            pypi_mirror=p.pypi_mirror,
            verified_permissions=p.sign_in.method == IDENTITY_CENTER,
        )
        functions = [
            f for f in self.node.find_all() if isinstance(f, lambda_.Function) and f.is_bound_to_vpc
        ]
        prerequisite: Construct | None = None
        if p.vpc_endpoints == "create":
            self.endpoints = EnvironmentEndpoints(
                self,
                "Endpoints",
                vpc=self.network.vpc,
                subnets=self.network.subnets,
                clients=self.network.security_group,
                needs=needs,
            )
            if self.api_access is not None:
                self.endpoints.allow_from(self.api_access.security_group)
            for role in in_vpc_roles(self, functions):
                self.endpoints.allow_principal(role)
            prerequisite = self.endpoints
        elif p.vpc_endpoints == "verify":
            self.endpoint_check = EndpointCheck(
                self,
                "EndpointCheck",
                vpc=self.network.vpc,
                subnets=self.network.subnets,
                services=[(need.service, need.kind) for need in needs],
                kms_key=p.kms_key,
                log_retention=self.logging_configuration.retention,
            )
            prerequisite = self.endpoint_check
        if prerequisite is not None:
            # The resources only: a role or policy under them may be named by an endpoint policy.
            for dependent in (*self.services.all_services, *functions):
                resource = dependent.node.default_child
                if resource is None:
                    raise LookupError(f"no CloudFormation resource under {dependent.node.path}")
                resource.node.add_dependency(prerequisite)

    def _describe_environment(self, p: ResolvedProps) -> None:
        """Record what the template alone cannot say (the class, the worker and web server
        ranges) as metadata of the broker queue, for `openmwaa cost` and reviewers."""
        queue = self.broker.queue.node.default_child
        if not isinstance(queue, CfnResource):
            raise LookupError(f"no CloudFormation resource under {self.broker.queue.node.path}")
        queue.add_metadata(
            contracts.ENVIRONMENT_METADATA_KEY,
            {
                "environmentName": self.environment_name,
                "environmentClass": self.spec.name.value,
                "airflowVersion": p.airflow_version,
                "schedulers": p.schedulers,
                "minWebservers": p.min_webservers,
                "maxWebservers": p.max_webservers,
                "minWorkers": p.min_workers,
                "maxWorkers": p.max_workers,
                "tasksPerWorker": self.spec.tasks_per_worker,
            },
        )

    def _add_sign_in(self, p: ResolvedProps) -> None:
        """The sign-in's resources (after the web access: Cognito's callback is its URL), its
        settings and client secret on the api-server container only."""
        self.sign_in: SignIn = p.sign_in
        """How people sign in (the `sign_in` prop, or its default)."""
        self.sign_in_resources = SignInResources(
            self,
            "SignIn",
            sign_in=p.sign_in,
            environment_name=self.environment_name,
            airflow_version=p.airflow_version,
            url=self.web.url,
            task_role=self.execution_role,
            kms_key=p.kms_key,
        )
        task = self.services.task_definitions[contracts.API_SERVER]
        container = task.find_container(contracts.API_SERVER)
        if container is None:
            raise LookupError(f"no container {contracts.API_SERVER} in {task.node.path}")
        self.sign_in_resources.attach(container)
        domain = self.sign_in_resources.user_pool_domain
        if domain is not None:
            # The api-server reads the pool's OpenID metadata, which names the domain, at start.
            self.services.services[contracts.API_SERVER].node.add_dependency(domain)
        if p.sign_in_defaulted and p.sign_in.method == COGNITO:
            Annotations.of(self).add_warning_v2(
                SIGN_IN_COGNITO_WARNING_ID,
                "sign_in: people sign in through a new Cognito user pool (the default with "
                "HTTPS); users with Airflow passwords can no longer sign in to the UI. Give "
                "sign_in=SignIn.cognito() to confirm, or sign_in=SignIn.password() to keep "
                "Airflow's own passwords.",
            )
        if p.sign_in_defaulted and p.sign_in.method == PASSWORD:
            Annotations.of(self).add_warning_v2(
                SIGN_IN_WARNING_ID,
                "sign_in: people sign in with FAB's own passwords, because the load balancer "
                "serves no HTTPS (Cognito and most identity providers accept only https:// "
                "callback URLs). For single sign-on give domain_name with certificate or with "
                "hosted_zone (the default then is an embedded Cognito user pool), or "
                "sign_in=SignIn.oidc(...) with your provider; sign_in=SignIn.password() "
                "silences this warning.",
            )

    @property
    def user_pool(self) -> cognito.UserPool | None:
        """The Cognito user pool of `SignIn.cognito()` (add users and put them in groups
        there); None with another sign-in."""
        return self.sign_in_resources.user_pool

    @property
    def user_pool_client(self) -> cognito.UserPoolClient | None:
        """The Cognito app client Airflow signs in with; None without Cognito."""
        return self.sign_in_resources.user_pool_client

    @property
    def policy_store(self) -> avp.CfnPolicyStore | None:
        """The Amazon Verified Permissions policy store of `SignIn.iam_identity_center()`
        (add your own Cedar policies to it); None with another sign-in."""
        return self.sign_in_resources.policy_store

    def _let_api_access_reach_public_web(self) -> None:
        """An internet-facing load balancer resolves to public addresses, so the API access
        function (in the private subnets) reaches it through the NAT gateways: let their
        addresses in on the listener's port. A given VPC's NAT addresses are unknown at synth:
        synth warns to add them to `allowed_cidrs`."""
        port = self.web.listener.port
        addresses = [
            eip
            for subnet in self.network.vpc.public_subnets
            if isinstance(eip := subnet.node.try_find_child("EIP"), ec2.CfnEIP)
        ]
        for index, eip in enumerate(addresses if self.network.created_vpc else []):
            ingress = ec2.CfnSecurityGroupIngress(
                self.web,
                f"NatGatewayIngress{index}",
                group_id=self.web.security_group.security_group_id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                cidr_ip=Fn.join("", [eip.attr_public_ip, "/32"]),
                description="API access function through the NAT gateway",
            )
            acknowledge(ingress, NAT_GATEWAY_TO_LOAD_BALANCER)
        if not self.network.created_vpc or not addresses:
            Annotations.of(self).add_warning_v2(
                "openmwaa:apiAccessPublicWeb",
                "api_access: the load balancer is internet-facing, so the API access function "
                "reaches it through your VPC's NAT: add the NAT gateways' public addresses to "
                "allowed_cidrs, or its calls time out (HTTP 504).",
            )

    def grant_airflow_role(self, grantee: iam.IGrantable, role: str) -> iam.Grant:
        """Let `grantee` use Airflow `role` (Admin, Op, User, Viewer or Public) through the API
        access: `execute-api:Invoke` on that role's two routes, MWAA's
        `airflow:CreateWebLoginToken` on `role/<env>/<Role>`. Raises ValueError without API
        access or for another role."""
        if self.api_access is None:
            raise ValueError(
                "grant_airflow_role: this environment has no API access (api_access=False, "
                "or sign_in=SignIn.iam_identity_center())"
            )
        return self.api_access.grant_airflow_role(grantee, role)

    @property
    def machine_key_secret(self) -> secretsmanager.ISecret:
        """The key the machine users' passwords derive from (API access through IAM)."""
        return self.secrets.machine_key

    @property
    def vpc(self) -> ec2.IVpc:
        """The VPC the environment runs in (created, or the one you gave)."""
        return self.network.vpc

    @property
    def security_group(self) -> ec2.SecurityGroup:
        """The environment's security group (all traffic allowed from itself)."""
        return self.network.security_group

    @property
    def bucket(self) -> s3.IBucket:
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

    @property
    def connections(self) -> ec2.Connections:
        """The environment as a network peer (`ec2.IConnectable`): its security group.

        For example, let Airflow reach your database:
        `my_database.connections.allow_default_port_from(env)`.
        """
        return self.network.security_group.connections

    @property
    def admin_secret(self) -> secretsmanager.ISecret:
        """The admin user's secret, JSON `{"username", "password"}`: break-glass access."""
        return self.secrets.admin

    @property
    def url(self) -> str:
        """The Airflow UI's URL: `https://<domain_name>`, or the load balancer's DNS name."""
        return self.web.url

    def metric(
        self,
        metric_name: str,
        *,
        worker_pool: str | None = None,
        statistic: str = "Maximum",
        period: Duration | None = None,
    ) -> cloudwatch.Metric:
        """One of the metrics the environment's Lambdas publish (namespace `OpenMWAA`,
        dimension `Environment`; with `worker_pool`, that pool's autoscaler's figures).
        Default period: 1 minute, the autoscaler's publishing interval."""
        dimensions = {contracts.ENVIRONMENT_DIMENSION: self.environment_name}
        if worker_pool is not None:
            dimensions[contracts.WORKER_POOL_DIMENSION] = worker_pool
        return cloudwatch.Metric(
            namespace=contracts.METRIC_NAMESPACE,
            metric_name=metric_name,
            dimensions_map=dimensions,
            statistic=statistic,
            period=period or Duration.minutes(1),
        )

    def metric_queued_tasks(self, *, worker_pool: str | None = None) -> cloudwatch.Metric:
        """Tasks waiting in the Celery queue (the autoscaler's sample, maximum per minute)."""
        return self.metric(contracts.METRIC_QUEUED_TASKS, worker_pool=worker_pool)

    def metric_running_tasks(self, *, worker_pool: str | None = None) -> cloudwatch.Metric:
        """Tasks running on workers (maximum per minute)."""
        return self.metric(contracts.METRIC_RUNNING_TASKS, worker_pool=worker_pool)

    def metric_desired_workers(self, *, worker_pool: str | None = None) -> cloudwatch.Metric:
        """The worker count the autoscaler asked for (maximum per minute)."""
        return self.metric(contracts.METRIC_DESIRED_WORKERS, worker_pool=worker_pool)

    def metric_running_workers(self, *, worker_pool: str | None = None) -> cloudwatch.Metric:
        """Worker tasks ECS runs (maximum per minute)."""
        return self.metric(contracts.METRIC_RUNNING_WORKERS, worker_pool=worker_pool)

    def metric_dag_syntax_errors(self) -> cloudwatch.Metric:
        """DAG files the sync found with a syntax error (sum per minute)."""
        return self.metric(contracts.METRIC_DAG_SYNTAX_ERRORS, statistic="Sum")

    def airflow_metric(
        self,
        name: str,
        *,
        function: str | None = None,
        dag: str | None = None,
        task: str | None = None,
        statistic: str | None = None,
        period: Duration | None = None,
    ) -> cloudwatch.Metric:
        """One of Airflow's own metrics, by MWAA's name (docs/metrics.md), in
        `metrics_namespace` with dimension `Environment` and the ones the mapping gives it:
        `function` picks among a name's Function values (e.g. QueuedTasks' Executor), `dag`
        and `task` a per-DAG metric's series. Default statistic: Sum for counters, Maximum for
        gauges, Average for timers; default period: 1 minute. It has data only while `name` is
        in `metrics_allow_list`. Raises ValueError naming `name` when the mapping has no
        such metric."""
        return self.airflow_metrics.metric(
            name, function=function, dag=dag, task=task, statistic=statistic, period=period
        )

    def metric_scheduler_heartbeat(self) -> cloudwatch.Metric:
        """The schedulers' heartbeats (sum per minute: about 12 per running scheduler)."""
        return self.airflow_metric(SCHEDULER_HEARTBEAT)

    def metric_import_errors(self) -> cloudwatch.Metric:
        """DAG files that fail to import, as the dag-processor last counted (maximum per
        minute)."""
        return self.airflow_metric(IMPORT_ERRORS)

    def metric_dag_bag_size(self) -> cloudwatch.Metric:
        """DAGs the dag-processor loaded (maximum per minute)."""
        return self.airflow_metric(DAG_BAG_SIZE)

    def metric_task_failures(self) -> cloudwatch.Metric:
        """Task instances that failed, every DAG together (sum per minute)."""
        return self.airflow_metric(TASK_FAILURES)

    def metric_task_successes(self) -> cloudwatch.Metric:
        """Task instances that succeeded, every DAG together (sum per minute)."""
        return self.airflow_metric(TASK_SUCCESSES)

    def metric_dag_duration_success(self, dag_id: str) -> cloudwatch.Metric:
        """How long `dag_id`'s successful runs took (average per minute, in milliseconds);
        a per-DAG metric: add DAGDurationSuccess to `metrics_allow_list`."""
        return self.airflow_metric(DAG_DURATION_SUCCESS, dag=dag_id)

    def grant_pause_resume(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let `grantee` pause and resume the environment (`openmwaa pause|resume ENV`):
        `lambda:InvokeFunction` on `env.pauser.function`, `ssm:GetParameter` on its parameter."""
        return self.pauser.grant_pause_resume(grantee)

    def grant_upload(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let `grantee` (a CI role, say) put and delete objects in the source bucket."""
        return self.source.bucket.grant_read_write(grantee)
