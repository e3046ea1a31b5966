"""The stock Airflow image, copied once per tag from Docker Hub into the environment's ECR.

Docker Hub allows about 10 anonymous pulls per hour per IP address, and every Fargate task
behind the same NAT gateway shares one address: a first deploy (7 tasks, each pulling the
image for its init container and its Airflow container) would exceed it. So the stock image
is copied once, at deploy, into an ECR repository of the environment, and every task pulls
from there.

The copy is `cdk-ecr-deployment`'s custom resource: a Go binary (containers/image, the
library behind skopeo) shipped prebuilt inside that package and loaded with
`Code.from_asset`, so synth needs no Docker and downloads nothing. It copies the whole image
index (`copy_image_index`: every architecture, amd64 and arm64, so the tasks run on either
`cpu_architecture`, ARM64 by default, from the same copy). CloudFormation
runs it when one of its properties changes (a new tag, source or destination), not on every
deploy.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from cdk_ecr_deployment import DockerImageName, ECRDeployment

from constructs import Construct

from .nag_acknowledgements import acknowledge
from .nag_reasons import IMAGE_COPY_FUNCTION, IMAGE_COPY_ROLE, LOG_GROUP_WITHOUT_CMK

COPY_MEMORY_MIB = 1024
"""Memory of the copy function (Lambda's network and CPU share grow with it). Also part of
cdk-ecr-deployment's singleton id, which keeps our function apart from a default (512 MiB)
`ECRDeployment` elsewhere in the same stack."""

COPY_HANDLER_ID = "Custom::CDKECRDeploymentbd07c930edb94112a20f03f096f53666" + (
    f"{COPY_MEMORY_MIB}MiB"
)
"""Construct id of cdk-ecr-deployment's singleton function (lambdaPurpose + uuid + memory)."""

COPIER_ID = "OpenMwaaImageCopier"
"""Construct id, at stack level, of the role and log group the copy function uses."""

KEPT_IMAGES = 5
"""Tagged images (one per Airflow version deployed) the lifecycle rule keeps."""

COPY_RETRIES = {"numAttempts": 3, "baseDelay": 2, "maxDelay": 30}
"""Retries of transient ECR/network errors inside one copy (never Docker Hub's 429)."""


class ImageCopier(Construct):
    """What cdk-ecr-deployment's singleton function runs with, one per stack.

    The function is a singleton per stack (every `ECRDeployment` with the same memory shares
    it), so its role and log group are too: each mirror adds its own repository (and
    credentials) to this role. We pass the role to `ECRDeployment` without policy updates,
    which drops the package's own `ecr:*` and `s3:GetObject` statements on `*`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        kms_key: kms.IKey | None,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Copies the stock Apache Airflow image into the environments' ECR",
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=log_retention,
            encryption_key=kms_key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.log_group.grant_write(self.role)
        acknowledge(self.role, IMAGE_COPY_ROLE)
        if kms_key is None:
            acknowledge(self.log_group, [LOG_GROUP_WITHOUT_CMK])

    @classmethod
    def of(
        cls, scope: Construct, *, kms_key: kms.IKey | None, log_retention: logs.RetentionDays
    ) -> ImageCopier:
        """The stack's copier, created by the first mirror."""
        stack = Stack.of(scope)
        existing = stack.node.try_find_child(COPIER_ID)
        if isinstance(existing, ImageCopier):
            return existing
        return cls(stack, COPIER_ID, kms_key=kms_key, log_retention=log_retention)


class MirroredImage(ecs.EcrImage):
    """The image of an `AirflowImageMirror`'s repository: `ContainerImage.from_ecr_repository`,
    typed so that the task definitions pulling it know to acknowledge ECR's pull token."""


class AirflowImageMirror(Construct):
    """An ECR repository holding a copy of the stock Apache Airflow image.

    The repository scans on push, is encrypted with `kms_key` (AES256 without), keeps the
    last `KEPT_IMAGES` tagged images, and is deleted with the stack, images included: it
    holds only a copy of a public image. Tags stay mutable: a rollback or retry copies the
    same tag again, which an immutable repository refuses even for an identical digest.

    `image` is what the task definitions use; `copy` is the custom resource every ECS
    service must wait for. With `credentials` (a Secrets Manager secret
    `{"username", "password"}` of a Docker Hub account) the copy pulls authenticated.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        source_image: str,
        kms_key: kms.IKey | None = None,
        credentials: secretsmanager.ISecret | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    ) -> None:
        super().__init__(scope, construct_id)
        self.source_image = source_image
        self.tag = image_tag(source_image)
        self.repository = ecr.Repository(
            self,
            "Repository",
            image_scan_on_push=True,
            encryption=ecr.RepositoryEncryption.KMS
            if kms_key is not None
            else ecr.RepositoryEncryption.AES_256,
            encryption_key=kms_key,
            image_tag_mutability=ecr.TagMutability.MUTABLE,
            lifecycle_rules=[
                ecr.LifecycleRule(
                    description="Keep the images of the last Airflow versions deployed",
                    tag_status=ecr.TagStatus.TAGGED,
                    tag_pattern_list=["*"],
                    max_image_count=KEPT_IMAGES,
                )
            ],
            removal_policy=RemovalPolicy.DESTROY,
            empty_on_delete=True,
        )

        self.copier = ImageCopier.of(self, kms_key=kms_key, log_retention=log_retention)
        self.repository.grant_pull_push(self.copier.role)
        if credentials is not None:
            credentials.grant_read(self.copier.role)
        self.copy = ECRDeployment(
            self,
            "Copy",
            src=DockerImageName(
                source_image, credentials.secret_arn if credentials is not None else None
            ),
            dest=DockerImageName(self.repository.repository_uri_for_tag(self.tag)),
            copy_image_index=True,
            memory_limit=COPY_MEMORY_MIB,
            role=self.copier.role.without_policy_updates(),
            retry_configs=COPY_RETRIES,
        )
        # The function gets the role by ARN only: the copy must also wait for its policy.
        self.copy.node.add_dependency(self.copier)
        self.function = copy_function(self)
        acknowledge(self.function, IMAGE_COPY_FUNCTION)
        cfn_function = self.function.node.default_child
        if isinstance(cfn_function, lambda_.CfnFunction):
            cfn_function.add_property_override(
                "LoggingConfig", {"LogGroup": self.copier.log_group.log_group_name}
            )
        self.image = MirroredImage(self.repository, self.tag)


def image_tag(image_name: str) -> str:
    """The tag of `image_name` (`apache/airflow:3.3.2-python3.12` -> `3.3.2-python3.12`)."""
    name, separator, tag = image_name.rpartition(":")
    if not separator or "/" in tag or not name:
        raise ValueError(f"image name {image_name!r} has no tag")
    return tag


def copy_function(scope: Construct) -> lambda_.Function:
    """cdk-ecr-deployment's singleton function of `scope`'s stack; raises if it is missing."""
    function = Stack.of(scope).node.try_find_child(COPY_HANDLER_ID)
    if not isinstance(function, lambda_.Function):
        raise LookupError(
            f"cdk-ecr-deployment's function {COPY_HANDLER_ID} is not in the stack: the "
            "package changed how it names its singleton; update COPY_HANDLER_ID"
        )
    return function
