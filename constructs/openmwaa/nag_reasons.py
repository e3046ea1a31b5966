"""Every cdk-nag finding this library acknowledges, with its reason, as data.

Each construct acknowledges its own resources where it creates them, on the narrowest
construct, with `nag_acknowledgements.acknowledge` and the findings defined here. A finding
not acknowledged fails the compliance tests; docs/security.md renders this list for reviewers.
"""

from __future__ import annotations

from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_s3 as s3

from constructs import IConstruct

from .nag_acknowledgements import (
    NIST,
    Finding,
    aws_solutions,
    nag_arn,
    nag_bucket_arn,
    nag_cluster_name,
    same_reason,
)
from .runtime.contracts import SECRETS_PREFIXES

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

ACCESS_LOG_BUCKET_LOGGING = Finding(
    "S3BucketLoggingEnabled",
    "This is the access-log bucket itself (the load balancer's logs go into it); logging it "
    "into itself would loop and another log bucket would only move the finding.",
)
"""Flagged only with `existing_bucket`: otherwise the source bucket logs into the access-log
bucket, which marks it as a log destination for the HIPAA and NIST packs."""

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


def database_deletion_protection(enabled: bool) -> tuple[Finding, ...]:
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
    return same_reason(reason, "RDSInstanceDeletionProtectionEnabled", "AwsSolutions-RDS10")


DELETION_PROTECTION_POLICY = Finding(
    "IAMNoInlinePolicy",
    "The deletion-protection custom resource's only permission, rds:ModifyDBCluster on this "
    "environment's cluster, created with it and attached to CDK's custom-resource provider "
    "role; a managed policy would hold the same single statement.",
)

DELETION_PROTECTION_OUTSIDE_VPC = Finding(
    "LambdaInsideVPC",
    "CDK's AwsCustomResource provider here only calls the RDS API (ModifyDBCluster), never the "
    "database itself: it reaches nothing inside the VPC, so it runs outside it, where a "
    "private network would need no rds endpoint for it.",
)
"""The deletion-protection function: a function joins the VPC only when it reaches something
in it."""

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
    "environment's EFS file system (where it installs requirements.txt) and, with "
    "pypi_mirror, read the environment's PyPI mirror, nothing else; a managed policy would "
    "hold the same statements.",
)

PYPI_MIRROR_TOKEN = aws_solutions(
    "IAM5[Resource::*]",
    "sts:GetServiceBearerToken, which CodeArtifact's GetAuthorizationToken requires, supports "
    "no resource-level permissions; it is conditioned on sts:AWSServiceName "
    "codeartifact.amazonaws.com. The CodeArtifact actions are granted on the PyPI mirror's "
    "domain and two repositories only.",
)

LOAD_BALANCER_TO_VPC = (
    *same_reason(
        "Ingress comes only from the VPC's own CIDR (a token cdk-nag cannot resolve) on the "
        "listener port; pass allowed_cidrs to narrow it further.",
        "EC2RestrictedCommonPorts",
        "AwsSolutions-EC23",
    ),
    Finding(
        "EC2RestrictedSSH",
        "The only ingress is the listener port (80 or 443) from the VPC's own CIDR, a token "
        "cdk-nag cannot resolve; no rule opens port 22.",
    ),
)

LOAD_BALANCER_WITHOUT_TLS = same_reason(
    "PRIVATE_ONLY without a domain: an internal load balancer reachable only from "
    "allowed_cidrs (default the VPC). Give domain_name with hosted_zone, or certificate, "
    "to serve HTTPS only; PUBLIC_ONLY refuses to synthesize without TLS.",
    "ALBHttpToHttpsRedirection",
    "ELBv2ACMCertificateRequired",
)

REDIRECT_LISTENER = Finding(
    "ELBv2ACMCertificateRequired",
    "This port-80 listener only answers with a permanent redirect to HTTPS on 443; it "
    "forwards nothing to Airflow.",
)

LOAD_BALANCER_LOGS_NEED_REGION = same_reason(
    "The stack is region-agnostic: the principal that delivers load balancer logs differs "
    "per region, so it cannot be granted. Give the stack an env with a region and access "
    "logs go to the environment's access-log bucket.",
    "ELBLoggingEnabled",
    "AwsSolutions-ELB2",
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

ALARM_TOPIC_WITHOUT_CMK = same_reason(
    "CloudWatch alarms cannot publish to a topic encrypted with the AWS managed SNS key, and "
    "no kms_key was given; the topic carries only alarm names and states. Pass kms_key to "
    "encrypt it with your key (its policy then lets CloudWatch publish).",
    "AwsSolutions-SNS2",
    "SNSEncryptedKMS",
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


def rotation(reason: str) -> tuple[Finding, ...]:
    """The rotation findings of a secret (AwsSolutions SMG4, HIPAA/NIST), for `reason`."""
    return same_reason(reason, "SecretsManagerRotationEnabled", "AwsSolutions-SMG4")


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


def bucket_read_findings(bucket: s3.IBucket) -> list[Finding]:
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
            f"IAM5[Resource::{nag_bucket_arn(bucket)}/*]",
            "Every object of the environment's own source bucket is Airflow's input "
            "(dags/, plugins.zip, requirements.txt, startup.sh).",
        )
    )
    return findings


def execution_role_findings(role: IConstruct, bucket: s3.IBucket, *, kms: bool) -> list[Finding]:
    """The execution role's findings: its policy, its wildcards and reading `bucket`."""
    findings = [
        INLINE_ROLE_POLICY,
        aws_solutions(
            "IAM5[Resource::*]",
            "cloudwatch:PutMetricData, for Airflow's metrics (the metrics relay in each task) "
            "and custom metrics from DAGs, supports no resource-level permissions.",
        ),
    ]
    if kms:
        findings.extend(
            aws_solutions(
                f"IAM5[Action::{action}]",
                "KMS data-key actions granted by key.grant_encrypt_decrypt on the environment's "
                "customer managed key only.",
            )
            for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*")
        )
    findings.extend(bucket_read_findings(bucket))
    findings.append(
        aws_solutions(
            f"IAM5[Resource::{nag_arn(role, 'logs', 'log-group:*')}]",
            "logs:DescribeLogGroups only: Airflow's CloudWatch task handler looks its log group "
            "up before writing, and AWS authorizes DescribeLogGroups only against every log "
            "group of the account (MWAA's execution role grants it on *); it reads names and "
            "settings, never log events.",
        )
    )
    findings.extend(
        aws_solutions(
            f"IAM5[Resource::{nag_arn(role, 'secretsmanager', f'secret:{prefix}/*')}]",
            "The Secrets Manager backend reads any connection or variable under this prefix, "
            "as MWAA documents; the prefix is the scope.",
        )
        for prefix in SECRETS_PREFIXES
    )
    return findings


NO_RESERVED_CONCURRENCY = Finding(
    "LambdaConcurrency",
    "Reserved concurrency would make the stack fail to deploy on accounts at the minimum "
    "Lambda concurrency quota (10 unreserved must remain); the autoscaler's runs are never "
    "retried or queued, and the DAG sync serialises its writes with locks on EFS.",
)

AUTOSCALER_STATE_TABLE = same_reason(
    "The autoscaler's table holds only ephemeral state: a one-minute lease and the demand "
    "samples of the last cool-down, each deleted by TTL; losing it makes the autoscaler hold "
    "(never scale in) for one cool-down and rebuild it from the queue, so there is nothing to "
    "restore from point-in-time recovery or a backup plan.",
    "AwsSolutions-DDB3",
    "DynamoDBPITREnabled",
    "DynamoDBInBackupPlan",
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


CONTAINER_INSIGHTS_OFF = aws_solutions(
    "ECS4",
    "container_insights=False (the default) saves about $41 a month on mw1.small; the alarms do "
    "not need it (the autoscaler publishes each service's TasksBelowDesired) and the dashboard's "
    "CPU and memory per service are ECS's free AWS/ECS metrics. container_insights=True turns "
    "it on.",
)

BUNDLED_FUNCTION = (*LAMBDA_MANAGED_POLICIES, INLINE_ROLE_POLICY, NO_RESERVED_CONCURRENCY)
"""What every Lambda built by `bundled_function` has; its log group adds LOG_GROUP_WITHOUT_CMK."""

BUCKET_NOTIFICATIONS_HANDLER = LAMBDA_MANAGED_POLICIES[:1]
"""CDK's bucket-notifications handler: it attaches only AWSLambdaBasicExecutionRole."""


def dag_sync_findings(
    function: IConstruct, bucket: s3.IBucket, cluster: ecs.ICluster
) -> list[Finding]:
    """The DAG sync function's own findings: it reads `bucket` and rolls `cluster`'s services."""
    return [
        *bucket_read_findings(bucket),
        EVENT_FUNCTION_DLQ,
        aws_solutions(
            "IAM5[Resource::*]",
            "ecs:ListServices supports no resource-level permissions; the statement is "
            "conditioned on ecs:cluster being this environment's cluster.",
        ),
        aws_solutions(
            f"IAM5[Resource::{nag_arn(function, 'ecs', f'service/{nag_cluster_name(cluster)}/*')}]",
            "Rolling the Airflow services after a requirements/plugins/startup change: "
            "every service of this environment's dedicated cluster, and no other.",
        ),
    ]


AUTOSCALER_FUNCTION = (
    SCHEDULED_FUNCTION_DLQ,
    aws_solutions(
        "IAM5[Resource::*]",
        "cloudwatch:PutMetricData supports no resource-level permissions; it is "
        "conditioned on the OpenMWAA namespace.",
    ),
)


def worker_task_protection(role: IConstruct, cluster: ecs.ICluster) -> Finding:
    """The finding of the autoscaler's grant to the workers' `role` on `cluster`'s tasks."""
    return aws_solutions(
        f"IAM5[Resource::{nag_arn(role, 'ecs', f'task/{nag_cluster_name(cluster)}/*')}]",
        "Workers set scale-in protection on their own task, whose id is only known at "
        "run time; the grant covers this environment's cluster only.",
    )


API_ACCESS_FUNCTION = (
    Finding(
        "LambdaDLQ",
        "Invoked synchronously by API Gateway for one caller, who receives the answer or the "
        "error: there is no asynchronous event to keep, and a request must never be replayed.",
    ),
)
"""The API access function's findings besides BUNDLED_FUNCTION's."""

API_ACCESS_REST_API = (
    aws_solutions(
        "COG4",
        "The callers are AWS principals (machines, CI, scripts), not Cognito users: every "
        "method uses AWS_IAM authorization (SigV4), and IAM policies grant each Airflow role's "
        "routes (ApiAccess.grant_airflow_role), as MWAA's IAM actions do.",
    ),
)
"""The API access REST API's methods."""

API_ACCESS_STAGE = (
    *same_reason(
        "Execution and access logs need API Gateway's account-level CloudWatch Logs role, an "
        "account-wide singleton this construct must not create or replace "
        "(cloud_watch_role=False). Every request is logged by the API access Lambda instead: "
        "one JSON line with the caller's IAM ARN, route, role, status and duration; X-Ray "
        "tracing is on. Set the account role and enable stage logging if your policy requires.",
        "AwsSolutions-APIG1",
        "AwsSolutions-APIG6",
        "APIGWExecutionLoggingEnabled",
    ),
    *same_reason(
        "Only SigV4-signed requests of IAM principals granted execute-api:Invoke on a route "
        "reach the function (API Gateway rejects the rest before any integration runs), and the "
        "stage is throttled. A WAF web ACL is an account or organisation choice: associate "
        "one with the stage (wafv2.CfnWebACLAssociation) if your policy requires.",
        "AwsSolutions-APIG3",
        "APIGWAssociatedWithWAF",
    ),
    Finding(
        "APIGWCacheEnabledAndEncrypted",
        "Caching is off on purpose: every answer is an Airflow token or data for one IAM "
        "caller and role, and a cached answer could reach another caller.",
    ),
    Finding(
        "APIGWSSLEnabled",
        "A client certificate authenticates API Gateway to an HTTP backend; this API's only "
        "integration is a Lambda proxy integration, invoked through the Lambda API with IAM.",
    ),
)
"""The API access REST API's stage."""


COGNITO_ADVANCED_SECURITY = aws_solutions(
    "COG8",
    "Cognito threat protection (advanced security) needs the Plus feature plan, $0.02 per "
    "monthly active user from the first; the pool uses Essentials, free for 10,000 monthly "
    "active users. The pool allows no "
    "self sign-up, requires a 14-character password with every character class and (by "
    "default) TOTP MFA; set the plan and threat protection on env.user_pool if your policy "
    "requires them.",
)
"""The embedded Cognito user pool (`SignIn.cognito()`)."""

COGNITO_MFA_OFF = aws_solutions(
    "COG2",
    "MFA was turned off explicitly with SignIn.cognito(mfa=False); the default requires a "
    "TOTP authenticator app.",
)
"""The embedded Cognito user pool with `mfa=False`."""

SIGN_IN_CLIENT_SECRET_ROTATION = rotation(
    "The value is the Cognito app client's secret, which only Cognito issues: a Secrets "
    "Manager rotation would store a value Cognito does not accept. The api-server reads it at "
    "start; replacing the app client changes it and restarts the api-server with the new one."
)
"""The secret holding the Cognito app client's secret."""

MACHINE_KEY_ROTATION = rotation(
    "The machine users' passwords derive from this key and are reset by the api-server when "
    "it starts; a rotation Lambda would change the key under a running api-server. Rotate by "
    "updating the secret and restarting the api-server service."
)
"""The machine key secret (API access through IAM)."""

NAT_GATEWAY_TO_LOAD_BALANCER = (
    *same_reason(
        "Ingress from one NAT gateway's Elastic IP (/32, a reference cdk-nag cannot resolve) "
        "on the listener port only: the API access function reaches the internet-facing load "
        "balancer through the environment's own NAT gateways.",
        "EC2RestrictedCommonPorts",
        "AwsSolutions-EC23",
    ),
    Finding(
        "EC2RestrictedSSH",
        "The only port is the listener's (443, or 80 redirecting to it), from one NAT "
        "gateway's Elastic IP; no rule opens port 22.",
    ),
)
"""The public load balancer's ingress from the NAT gateways (API access)."""

PAUSER_DLQ = Finding(
    "LambdaDLQ",
    "The pauser runs on demand (openmwaa pause/resume, which waits for its answer) or from a "
    "pause or resume schedule, whose failed run Lambda retries twice; every step is "
    "idempotent and the next run repairs a partial one, so a failed event has nothing to keep.",
)


def pauser_findings(function: IConstruct, stack_name: str, *, scaled: bool) -> list[Finding]:
    """The pauser function's own findings: the status of its stack (`stack_name` as cdk-nag
    renders it), and with `scaled` (a service Application Auto Scaling scales) the suspension
    of scaling."""
    findings = [
        PAUSER_DLQ,
        aws_solutions(
            f"IAM5[Resource::{nag_arn(function, 'cloudformation', f'stack/{stack_name}/*')}]",
            "cloudformation:DescribeStacks on this environment's stack only, by name: a stack's "
            "ARN ends in an id assigned at create, so its name is followed by a wildcard.",
        ),
    ]
    if scaled:
        findings.append(
            aws_solutions(
                "IAM5[Resource::"
                f"{nag_arn(function, 'application-autoscaling', 'scalable-target/*')}]",
                "application-autoscaling:RegisterScalableTarget, to suspend and resume the "
                "scaling of the api-server and execution-api services: a scalable target's ARN "
                "ends in a random id no template can name, so the statement is conditioned on "
                "the ecs service namespace and the ecs:service:DesiredCount dimension.",
            )
        )
    return findings


PAUSER_OUTSIDE_VPC = Finding(
    "LambdaInsideVPC",
    "The pauser calls only AWS APIs (ECS, EventBridge, CloudWatch, Application Auto Scaling, "
    "CloudFormation), never a resource inside the VPC, so it runs outside it; in a private "
    "network those APIs then need no endpoint.",
)

PAUSER_SCHEDULE_ROLE = Finding(
    "IAMNoInlinePolicy",
    "The pause and resume schedules' role, created with them: one statement, "
    "lambda:InvokeFunction on the pauser function only; a managed policy would hold the same "
    "statement with nothing to reuse.",
)

ENDPOINT_CHECK_FUNCTION = (
    Finding(
        "LambdaInsideVPC",
        'The VPC endpoint check (vpc_endpoints="verify") calls the EC2 API and answers '
        "CloudFormation's presigned S3 response URL; inside the private VPC, which has no route "
        "to either, it could never answer and the deploy would hang until CloudFormation's "
        "time-out. It reaches nothing inside the VPC.",
    ),
    Finding(
        "LambdaDLQ",
        "A CloudFormation custom resource handler: every outcome, failure included, is "
        "answered to CloudFormation, which fails and rolls back the deploy; a dead-letter "
        "queue would hold events nobody replays.",
    ),
    Finding(
        "LambdaConcurrency",
        "Invoked only by CloudFormation, once per deploy that changes the VPC, its route tables "
        "or the endpoints needed; reserved concurrency would make the stack fail to deploy on "
        "accounts at the minimum Lambda concurrency quota.",
    ),
)
"""The VPC endpoint check's function (`EndpointCheck`)."""

ENDPOINT_CHECK_ROLE = (
    aws_solutions(
        "IAM5[Resource::*]",
        "ec2:DescribeVpcEndpoints, like EC2's other Describe actions, supports no "
        "resource-level permissions; it only reads endpoints' settings, and the function "
        "filters them by the environment's VPC.",
    ),
    Finding(
        "IAMNoInlinePolicy",
        "The policy CDK writes for the VPC endpoint check's own role, created with it: "
        "ec2:DescribeVpcEndpoints and writing its own log group; a managed policy would hold "
        "the same statements with nothing to reuse.",
    ),
)
"""The VPC endpoint check's role (`EndpointCheck`)."""
