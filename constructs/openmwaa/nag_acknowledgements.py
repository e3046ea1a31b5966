"""Every cdk-nag finding this library acknowledges, on the narrowest construct, with its reason.

cdk-nag itself is only a test dependency: the library records acknowledgements with
`Validations.of(construct).acknowledge(...)`, which cdk-nag 3 reads. A finding not listed
here fails the compliance tests. docs/security.md renders the same list for reviewers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, CfnElement, Stack, Token, Validations
from aws_cdk import aws_lambda as lambda_

from constructs import IConstruct

from .execution_role import SECRETS_PREFIXES
from .image_mirror import copy_function

if TYPE_CHECKING:
    from .environment import AirflowEnvironment
    from .image_mirror import AirflowImageMirror

AWS_SOLUTIONS = "AwsSolutions::AwsSolutions-"
HIPAA = "HIPAA.Security::HIPAA.Security-"
NIST = "NIST.800.53.R5::NIST.800.53.R5-"
ALL_PACKS = (HIPAA, NIST)


@dataclass(frozen=True)
class Finding:
    """One acknowledged rule (without its pack prefix) and why it does not apply."""

    rule: str
    reason: str
    packs: tuple[str, ...] = ALL_PACKS


def acknowledge(construct: IConstruct | None, findings: Iterable[Finding]) -> None:
    """Acknowledge `findings` on `construct` and its children, in every pack they name."""
    if construct is None:
        return
    Validations.of(construct).acknowledge(
        *[
            Acknowledgment(id=f"{pack}{finding.rule}", reason=finding.reason)
            for finding in findings
            for pack in finding.packs
        ]
    )


def aws_solutions(rule: str, reason: str) -> Finding:
    """A finding of the AwsSolutions pack only."""
    return Finding(rule, reason, (AWS_SOLUTIONS,))


AWS_MANAGED_ENCRYPTION = (
    "Encrypted with an AWS managed key because no kms_key was given; pass kms_key to "
    "encrypt with your customer managed key (the compliance tests prove that variant)."
)

LOG_GROUP_WITHOUT_CMK = Finding("CloudWatchLogGroupEncrypted", AWS_MANAGED_ENCRYPTION)
SECRET_WITHOUT_CMK = Finding("SecretsManagerUsingKMSKey", AWS_MANAGED_ENCRYPTION)
BUCKET_WITHOUT_CMK = Finding("S3DefaultEncryptionKMS", AWS_MANAGED_ENCRYPTION)

ACCESS_LOG_BUCKET = (
    Finding(
        "S3DefaultEncryptionKMS",
        "S3 server access logs can only be delivered to a bucket encrypted with SSE-S3; "
        "SSE-KMS targets are not supported.",
    ),
    aws_solutions(
        "S1",
        "This is the access-log bucket itself; logging it into itself would loop and "
        "another log bucket would only move the finding.",
    ),
)

BUCKET_REPLICATION = Finding(
    "S3BucketReplicationEnabled",
    "Replication needs a destination bucket in another region that this construct does "
    "not own; versioning keeps every object's history. Add a replication rule on "
    "env.bucket if your recovery policy requires a second region.",
)

SELF_REFERENCING_RULE = Finding(
    "EC2RestrictedCommonPorts",
    "The rule's only source is the security group itself (no CIDR); the MWAA networking "
    "guide requires this self-referencing all-traffic rule between components.",
)

PUBLIC_SUBNET_ROUTE = Finding(
    "VPCNoUnrestrictedRouteToIGW",
    "Only the public subnets route 0.0.0.0/0 to the internet gateway: they hold the NAT "
    "gateways (outbound for the private subnets) and, in PUBLIC_ONLY mode, the load "
    "balancer. No Airflow component, database or file system has an address there.",
)

INLINE_ROLE_POLICY = Finding(
    "IAMNoInlinePolicy",
    "CDK grants write an AWS::IAM::Policy attached to this one role and created with it, "
    "scoped to this environment's resources; a managed policy would hold the same "
    "statements with nothing to reuse.",
)

DATABASE_BACKUP = Finding(
    "RDSInBackupPlan",
    "Aurora's automated backups (7 days of point-in-time recovery), deletion protection "
    "and a final snapshot on delete protect the metadata database; add env.database to "
    "your organisation's AWS Backup plan if it mandates one.",
)


def database_deletion_protection(enabled: bool) -> tuple[Finding, Finding]:
    """The cluster's deletion-protection findings, with the reason `enabled` makes true."""
    reason = (
        "Left out of the cluster resource on purpose: a cluster protected at create cannot be "
        "deleted by the rollback of a failed first create (ROLLBACK_FAILED). "
        + (
            "A custom resource turns it on once the rest of the environment is created."
            if enabled
            else "deletion_protection=False was given, so the custom resource keeps it off."
        )
    )
    return (
        Finding("RDSInstanceDeletionProtectionEnabled", reason),
        aws_solutions("RDS10", reason),
    )


DELETION_PROTECTION_POLICY = Finding(
    "IAMNoInlinePolicy",
    "The deletion-protection custom resource's only permission, rds:ModifyDBCluster on this "
    "environment's cluster, created with it and attached to CDK's custom-resource provider "
    "role; a managed policy would hold the same single statement.",
)

CUSTOM_RESOURCE_PROVIDER = [
    *(
        aws_solutions(
            f"IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/{policy}]",
            "CDK's AwsCustomResource provider: the AWS managed policy Lambda documents for "
            "writing the function's logs and attaching it to the VPC's private subnets.",
        )
        for policy in ("AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole")
    ),
    Finding(
        "LambdaConcurrency",
        "CDK's AwsCustomResource provider runs only when CloudFormation creates or updates "
        "one of its custom resources; reserved concurrency would only take from the "
        "account's unreserved pool, where 10 must remain.",
    ),
    Finding(
        "LambdaDLQ",
        "CDK's AwsCustomResource provider is invoked by CloudFormation, which waits for its "
        "answer: a failure fails and rolls back the deployment, so no event is left to keep.",
    ),
]

EFS_BACKUP = Finding(
    "EFSInBackupPlan",
    "The file system holds only a copy of the versioned source bucket, rebuilt by the DAG "
    "sync's reconcile; the bucket is the system of record, so backups would copy a copy.",
)

RDS_MONITORING_ROLE = aws_solutions(
    "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
    "AmazonRDSEnhancedMonitoringRole]",
    "AmazonRDSEnhancedMonitoringRole is the policy RDS enhanced monitoring requires; it "
    "only lets RDS write the RDSOSMetrics log group.",
)

BROKER_WITHOUT_DLQ = aws_solutions(
    "SQS3",
    "This is Celery's broker queue: the Airflow scheduler owns retries and detects tasks "
    "whose worker died; a dead-letter queue would silently take task messages away from it.",
)


PLAIN_CONTAINER_ENVIRONMENT = aws_solutions(
    "ECS2",
    "The plain environment holds only non-secret configuration (names, URLs, versions, "
    "log levels) and the openmwaa runtime code; every secret reaches the containers as an "
    "ECS secret from Secrets Manager, which a unit test asserts.",
)

REQUIREMENTS_BUILD_ENVIRONMENT = aws_solutions(
    "ECS2",
    "The requirements build's plain environment holds only its role, the environment's name, "
    "region, Airflow and Python versions, the sync root path and the openmwaa runtime code; "
    "the build receives no secret at all.",
)

REQUIREMENTS_BUILD_TASK_ROLE = Finding(
    "IAMNoInlinePolicy",
    "The policy CDK writes for the requirements build's own task role: mount and write the "
    "environment's EFS file system (where it installs requirements.txt), nothing else; a "
    "managed policy would hold the same single statement.",
)

LOAD_BALANCER_TO_VPC = (
    Finding(
        "EC2RestrictedCommonPorts",
        "Ingress comes only from the VPC's own CIDR (a token cdk-nag cannot resolve) on the "
        "listener port; pass allowed_cidrs to narrow it further.",
    ),
    Finding(
        "EC2RestrictedSSH",
        "The only ingress is the listener port (80 or 443) from the VPC's own CIDR, a token "
        "cdk-nag cannot resolve; no rule opens port 22.",
    ),
    aws_solutions(
        "EC23",
        "Ingress comes only from the VPC's own CIDR (a token cdk-nag cannot resolve) on the "
        "listener port; pass allowed_cidrs to narrow it further.",
    ),
)

LOAD_BALANCER_WITHOUT_TLS = (
    Finding(
        "ALBHttpToHttpsRedirection",
        "PRIVATE_ONLY without a domain: an internal load balancer reachable only from "
        "allowed_cidrs (default the VPC). Give domain_name with hosted_zone, or certificate, "
        "to serve HTTPS only; PUBLIC_ONLY refuses to synthesize without TLS.",
    ),
    Finding(
        "ELBv2ACMCertificateRequired",
        "PRIVATE_ONLY without a domain: an internal load balancer reachable only from "
        "allowed_cidrs (default the VPC). Give domain_name with hosted_zone, or certificate, "
        "to serve HTTPS only; PUBLIC_ONLY refuses to synthesize without TLS.",
    ),
)

REDIRECT_LISTENER = Finding(
    "ELBv2ACMCertificateRequired",
    "This port-80 listener only answers with a permanent redirect to HTTPS on 443; it "
    "forwards nothing to Airflow.",
)

LOAD_BALANCER_LOGS_NEED_REGION = (
    Finding(
        "ELBLoggingEnabled",
        "The stack is region-agnostic: the principal that delivers load balancer logs differs "
        "per region, so it cannot be granted. Give the stack an env with a region and access "
        "logs go to the environment's access-log bucket.",
    ),
    aws_solutions(
        "ELB2",
        "The stack is region-agnostic: the principal that delivers load balancer logs differs "
        "per region, so it cannot be granted. Give the stack an env with a region and access "
        "logs go to the environment's access-log bucket.",
    ),
)

LOAD_BALANCER_DELETION = Finding(
    "ELBDeletionProtectionEnabled",
    "The load balancer holds no data and is recreated in minutes; deletion protection would "
    "only block stack deletion. The data stores (database, bucket, file system) are protected.",
)

LOAD_BALANCER_WAF = Finding(
    "ALBWAFEnabled",
    "A web ACL is an account-level choice (rules, cost, logging) this construct cannot make "
    "for you; associate yours with env.web.load_balancer. The Airflow UI itself requires login.",
    (NIST,),
)


_ALARM_TOPIC_REASON = (
    "CloudWatch alarms cannot publish to a topic encrypted with the AWS managed SNS key, and "
    "no kms_key was given; the topic carries only alarm names and states. Pass kms_key to "
    "encrypt it with your key (its policy then lets CloudWatch publish)."
)
ALARM_TOPIC_WITHOUT_CMK = (
    aws_solutions("SNS2", _ALARM_TOPIC_REASON),
    Finding("SNSEncryptedKMS", _ALARM_TOPIC_REASON),
)

LAMBDA_MANAGED_POLICIES = [
    aws_solutions(
        f"IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/{policy}]",
        "The AWS managed policy Lambda itself documents for writing the function's logs and "
        "attaching it to the VPC's private subnets; it grants nothing in this environment.",
    )
    for policy in ("AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole")
]

EVENT_FUNCTION_DLQ = Finding(
    "LambdaDLQ",
    "An S3 event that still fails after Lambda's retries is healed by the scheduled "
    "reconcile within reconcile_interval; the bucket, not the event, is the source of truth.",
)

SCHEDULED_FUNCTION_DLQ = Finding(
    "LambdaDLQ",
    "Run by an EventBridge schedule with no retries: each run replaces the previous one, so "
    "a failed event has nothing worth keeping; failures are logged and alarmed instead.",
)


def rotation(reason: str) -> tuple[Finding, Finding]:
    """The rotation findings of a secret (AwsSolutions SMG4, HIPAA/NIST), for `reason`."""
    return (Finding("SecretsManagerRotationEnabled", reason), aws_solutions("SMG4", reason))


DATABASE_SECRET_ROTATION = rotation(
    "The Airflow containers read the database password when they start; a rotation Lambda "
    "would cut running components off the metadata database. Rotate by adding "
    "env.database.cluster.add_rotation_single_user() together with a rolling restart."
)
FERNET_SEED_ROTATION = rotation(
    "Rotating the Fernet key needs `airflow rotate-fernet-key` to re-encrypt stored "
    "connections and variables while both keys are active; a rotation Lambda cannot do that."
)
SIGNING_SECRET_ROTATION = rotation(
    "A new value invalidates every issued API token, task token and UI session, so it is "
    "rotated by updating the secret and restarting every Airflow service together, not on a "
    "schedule."
)
ADMIN_SECRET_ROTATION = rotation(
    "The admin password is written to Airflow's user table at first start; rotating the "
    "secret alone would not change the password Airflow checks."
)


def bucket_read_findings(bucket: IConstruct) -> list[Finding]:
    """IAM5 findings of `bucket.grant_read`: the wildcard actions and the objects ARN."""
    findings = [
        aws_solutions(
            f"IAM5[Action::{action}]",
            "Read-only S3 actions granted by bucket.grant_read on this environment's source "
            "bucket and its objects only.",
        )
        for action in ("s3:GetObject*", "s3:GetBucket*", "s3:List*")
    ]
    findings.append(
        aws_solutions(
            f"IAM5[Resource::{nag_attribute(bucket, 'Arn')}/*]",
            "Every object of the environment's own source bucket is Airflow's input "
            "(dags/, plugins.zip, requirements.txt, startup.sh).",
        )
    )
    return findings


def execution_role_wildcards(kms: bool) -> list[Finding]:
    """IAM5 findings of the execution role other than the bucket's."""
    findings = []
    findings.append(
        aws_solutions(
            "IAM5[Resource::*]",
            "cloudwatch:PutMetricData, for custom metrics from DAGs, supports no resource-level "
            "permissions.",
        )
    )
    if kms:
        findings.extend(
            aws_solutions(
                f"IAM5[Action::{action}]",
                "KMS data-key actions granted by key.grant_encrypt_decrypt on the environment's "
                "customer managed key only.",
            )
            for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*")
        )
    return findings


SECRETS_BACKEND_REASON = (
    "The Secrets Manager backend reads any connection or variable under this prefix, as "
    "MWAA documents; the prefix is the scope."
)


def nag_arn(scope: IConstruct, service: str, resource: str) -> str:
    """An ARN as cdk-nag renders it in finding ids (tokens as <AWS::Region>, ...)."""
    stack = Stack.of(scope)
    region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
    account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
    partition = "<AWS::Partition>" if Token.is_unresolved(stack.partition) else stack.partition
    return f"arn:{partition}:{service}:{region}:{account}:{resource}"


def nag_attribute(construct: IConstruct, attribute: str) -> str:
    """A `Fn::GetAtt` of `construct`'s CloudFormation resource, as cdk-nag renders it."""
    default_child = construct.node.default_child
    if not isinstance(default_child, CfnElement):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource")
    return f"<{Stack.of(construct).get_logical_id(default_child)}.{attribute}>"


def nag_ref(construct: IConstruct) -> str:
    """A `Ref` of `construct`'s CloudFormation resource, as cdk-nag renders it."""
    return nag_attribute(construct, "")[:-2] + ">"


NO_RESERVED_CONCURRENCY = Finding(
    "LambdaConcurrency",
    "Reserved concurrency would make the stack fail to deploy on accounts at the minimum "
    "Lambda concurrency quota (10 unreserved must remain); the autoscaler's runs are never "
    "retried or queued, and the DAG sync serialises its writes with locks on EFS.",
)


AUTOSCALER_STATE_REASON = (
    "The autoscaler's table holds only ephemeral state: a one-minute lease and the demand "
    "samples of the last cool-down, each deleted by TTL; losing it makes the autoscaler hold "
    "(never scale in) for one cool-down and rebuild it from the queue, so there is nothing to "
    "restore from point-in-time recovery or a backup plan."
)
AUTOSCALER_STATE_TABLE = (
    aws_solutions("DDB3", AUTOSCALER_STATE_REASON),
    Finding("DynamoDBPITREnabled", AUTOSCALER_STATE_REASON),
    Finding("DynamoDBInBackupPlan", AUTOSCALER_STATE_REASON),
)


IMAGE_PULL_TOKEN = aws_solutions(
    "IAM5[Resource::*]",
    "ecr:GetAuthorizationToken, which ECS needs before it pulls from ECR, supports no "
    "resource-level permissions; the pull actions are granted on the environment's image "
    "repository only.",
)

IMAGE_COPY_FUNCTION = (
    Finding(
        "LambdaInsideVPC",
        "The image copy runs at deploy time, pulls from Docker Hub and pushes to ECR; it "
        "reaches nothing inside the VPC, and outside it its Docker Hub pulls do not count "
        "against the tasks' NAT address.",
    ),
    Finding(
        "LambdaDLQ",
        "A CloudFormation custom resource handler: every outcome, failure included, is "
        "reported to CloudFormation, which fails and rolls back the deploy; a dead-letter "
        "queue would hold events nobody replays.",
    ),
    Finding(
        "LambdaConcurrency",
        "Invoked only by CloudFormation, once per image copy during a deploy; reserved "
        "concurrency would make the stack fail to deploy on accounts at the minimum Lambda "
        "concurrency quota.",
    ),
)

IMAGE_COPY_ROLE = (
    aws_solutions(
        "IAM5[Resource::*]",
        "ecr:GetAuthorizationToken supports no resource-level permissions; the push and pull "
        "actions are granted on the environments' image repositories only.",
    ),
    Finding(
        "IAMNoInlinePolicy",
        "CDK grants write an AWS::IAM::Policy attached to the image copy's own role: push to "
        "the environments' image repositories, write its log group, read the Docker Hub "
        "credentials when given; a managed policy would hold the same statements.",
    ),
)


def acknowledge_image_mirror(mirror: AirflowImageMirror, *, cmk: bool) -> None:
    """The findings of the image copy: its function, role and log group (stack level)."""
    acknowledge(copy_function(mirror), IMAGE_COPY_FUNCTION)
    acknowledge(mirror.copier.role, IMAGE_COPY_ROLE)
    if not cmk:
        acknowledge(mirror.copier.log_group, [LOG_GROUP_WITHOUT_CMK])


def acknowledge_bundled_function(
    function: lambda_.Function, *, cmk: bool, extra: Iterable[Finding] = ()
) -> None:
    """The findings every bundled Lambda has, plus `extra` ones of its own."""
    acknowledge(
        function,
        [*LAMBDA_MANAGED_POLICIES, INLINE_ROLE_POLICY, NO_RESERVED_CONCURRENCY, *extra],
    )
    if not cmk:
        acknowledge(function.log_group, [LOG_GROUP_WITHOUT_CMK])


def acknowledge_environment(env: AirflowEnvironment) -> None:
    """Record every acknowledgement that applies to `env`'s resources."""
    cmk = env.kms_key is not None
    database_secret = env.database.cluster.node.try_find_child("Secret")
    if not cmk:
        for group in env.log_groups.groups.values():
            acknowledge(group, [LOG_GROUP_WITHOUT_CMK])
        acknowledge(env.database.log_group, [LOG_GROUP_WITHOUT_CMK])
        acknowledge(env.network.node.try_find_child("FlowLogs"), [LOG_GROUP_WITHOUT_CMK])
        for secret in env.secrets.all:
            acknowledge(secret, [SECRET_WITHOUT_CMK])
        acknowledge(database_secret, [SECRET_WITHOUT_CMK])
        acknowledge(env.source.bucket, [BUCKET_WITHOUT_CMK])
    acknowledge(env.source.access_log_bucket, [*ACCESS_LOG_BUCKET, BUCKET_REPLICATION])
    acknowledge(env.source.bucket, [BUCKET_REPLICATION])
    acknowledge(env.network.security_group, [SELF_REFERENCING_RULE])
    acknowledge(env.database.cluster, [DATABASE_BACKUP, RDS_MONITORING_ROLE])
    acknowledge(
        env.database.cluster,
        database_deletion_protection(env.database.deletion_protection_enabled),
    )
    acknowledge(env.database.deletion_protection, [DELETION_PROTECTION_POLICY])
    acknowledge(env.database.deletion_protection_provider, CUSTOM_RESOURCE_PROVIDER)
    if not cmk:
        acknowledge(env.database.deletion_protection_log_group, [LOG_GROUP_WITHOUT_CMK])
    acknowledge(database_secret, DATABASE_SECRET_ROTATION)
    if env.network.created_vpc:
        acknowledge(env.network.vpc, [PUBLIC_SUBNET_ROUTE])
    acknowledge(env.storage.file_system, [EFS_BACKUP])
    for queue in env.broker.all_queues:
        acknowledge(queue, [BROKER_WITHOUT_DLQ])
    acknowledge(env.secrets.fernet_seed, FERNET_SEED_ROTATION)
    acknowledge(env.secrets.jwt_secret, SIGNING_SECRET_ROTATION)
    acknowledge(env.secrets.api_secret_key, SIGNING_SECRET_ROTATION)
    acknowledge(env.secrets.admin, ADMIN_SECRET_ROTATION)

    for task in env.services.all_task_definitions:
        acknowledge(task, [PLAIN_CONTAINER_ENVIRONMENT, INLINE_ROLE_POLICY])
        if env.image_mirror is not None:
            acknowledge(task.execution_role, [IMAGE_PULL_TOKEN])
    builder = env.requirements_builder
    acknowledge(builder.task_definition, [REQUIREMENTS_BUILD_ENVIRONMENT, INLINE_ROLE_POLICY])
    acknowledge(builder.task_role, [REQUIREMENTS_BUILD_TASK_ROLE])
    if env.image_mirror is not None:
        acknowledge(builder.task_definition.execution_role, [IMAGE_PULL_TOKEN])
        acknowledge_image_mirror(env.image_mirror, cmk=cmk)
    web = env.web
    acknowledge(web.load_balancer, [LOAD_BALANCER_DELETION, LOAD_BALANCER_WAF])
    if not web.access_logs_enabled:
        acknowledge(web.load_balancer, LOAD_BALANCER_LOGS_NEED_REGION)
    if web.certificate is None:
        acknowledge(web.listener, LOAD_BALANCER_WITHOUT_TLS)
    acknowledge(web.redirect_listener, [REDIRECT_LISTENER])
    if web.default_peers_are_vpc:
        acknowledge(web.security_group, LOAD_BALANCER_TO_VPC)

    cluster = nag_ref(env.services.cluster)
    acknowledge_bundled_function(
        env.dag_sync.function,
        cmk=cmk,
        extra=[
            *bucket_read_findings(env.source.bucket),
            EVENT_FUNCTION_DLQ,
            aws_solutions(
                "IAM5[Resource::*]",
                "ecs:ListServices supports no resource-level permissions; the statement is "
                "conditioned on ecs:cluster being this environment's cluster.",
            ),
            aws_solutions(
                f"IAM5[Resource::{nag_arn(env, 'ecs', f'service/{cluster}/*')}]",
                "Rolling the Airflow services after a requirements/plugins/startup change: "
                "every service of this environment's dedicated cluster, and no other.",
            ),
        ],
    )
    if not cmk and env.monitoring.owns_alarm_topic:
        acknowledge(env.monitoring.alarm_topic, ALARM_TOPIC_WITHOUT_CMK)
    notifications = Stack.of(env).node.try_find_child(
        "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"
    )
    acknowledge(notifications, LAMBDA_MANAGED_POLICIES[:1])
    acknowledge(env.source.bucket.node.try_find_child("Notifications"), [INLINE_ROLE_POLICY])

    autoscalers = [env.autoscaler] if env.autoscaler is not None else []
    for autoscaler in [*autoscalers, *env.pool_autoscalers.values()]:
        acknowledge(autoscaler.table, AUTOSCALER_STATE_TABLE)
        acknowledge_bundled_function(
            autoscaler.function,
            cmk=cmk,
            extra=[
                SCHEDULED_FUNCTION_DLQ,
                aws_solutions(
                    "IAM5[Resource::*]",
                    "cloudwatch:PutMetricData supports no resource-level permissions; it is "
                    "conditioned on the OpenMWAA namespace.",
                ),
            ],
        )

    role = env.execution_role
    role_findings = [
        INLINE_ROLE_POLICY,
        *execution_role_wildcards(kms=cmk),
        *bucket_read_findings(env.source.bucket),
        aws_solutions(
            f"IAM5[Resource::{nag_arn(role, 'logs', 'log-group:*')}]",
            "logs:DescribeLogGroups only: Airflow's CloudWatch task handler looks its log group "
            "up before writing, and AWS authorizes DescribeLogGroups only against every log "
            "group of the account (MWAA's execution role grants it on *); it reads names and "
            "settings, never log events.",
        ),
    ]
    role_findings.extend(
        aws_solutions(
            f"IAM5[Resource::{nag_arn(role, 'secretsmanager', f'secret:{prefix}/*')}]",
            SECRETS_BACKEND_REASON,
        )
        for prefix in SECRETS_PREFIXES
    )
    if env.autoscaler is not None:
        role_findings.append(
            aws_solutions(
                f"IAM5[Resource::{nag_arn(role, 'ecs', f'task/{cluster}/*')}]",
                "Workers set scale-in protection on their own task, whose id is only known at "
                "run time; the grant covers this environment's cluster only.",
            )
        )
    acknowledge(role, role_findings)
    flow_logs_role = env.network.node.try_find_child("FlowLogsRole")
    acknowledge(flow_logs_role, [INLINE_ROLE_POLICY])
