"""The environment's PyPI mirror on AWS CodeArtifact (`pypi_mirror`)."""

from __future__ import annotations

import json

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_codeartifact as codeartifact
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

from constructs import Construct

from .nag_acknowledgements import acknowledge
from .nag_reasons import PYPI_MIRROR_TOKEN
from .naming import HASH_LENGTH, dns_label, short_hash
from .runtime import contracts

DOMAIN_NAME_MAX_LENGTH = 50
"""CodeArtifact's limit on a domain's name."""
STORE_REPOSITORY_NAME = "pypi-store"
"""The repository with the `public:pypi` external connection: the cache of PyPI."""
REPOSITORY_NAME = "requirements"
"""The repository pip reads, with `pypi-store` as its upstream."""
PYPI_CONNECTION = "public:pypi"


def domain_name(environment_name: str, construct_path: str) -> str:
    """The domain's name: the environment name as a lowercase label, a hyphen and a short
    hash of the construct's path (which starts with the stack's), at most 50 characters, so
    two stacks of one account and Region never ask for the same domain."""
    base = dns_label(environment_name, DOMAIN_NAME_MAX_LENGTH - HASH_LENGTH - 1)
    return f"{base}-{short_hash(construct_path)}"


class PypiMirror(Construct):
    """A PyPI mirror the environment reaches without the internet: a CodeArtifact domain, a
    `pypi-store` repository with the `public:pypi` external connection, and the `requirements`
    repository pip reads, with `pypi-store` as its upstream. CodeArtifact fetches a package
    from PyPI the first time it is asked for it and keeps a copy; pip in the containers and in
    the requirements build reads it through the `codeartifact.api` and
    `codeartifact.repositories` endpoints (see `runtime/package_index.py`).

    The domain's assets are encrypted with `kms_key` when given, else with CodeArtifact's AWS
    managed key. Both repositories and the domain are deleted with the stack (removal policy
    DESTROY): they hold a cache of public packages only, and a retained domain would make the
    stack impossible to create again, since its name is fixed.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment_name: str,
        kms_key: kms.IKey | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._kms_key = kms_key
        self.domain_name: str = domain_name(environment_name, self.node.path)
        """The CodeArtifact domain's name."""
        self.domain = codeartifact.CfnDomain(
            self,
            "Domain",
            domain_name=self.domain_name,
            encryption_key=kms_key.key_arn if kms_key else None,
        )
        """The CodeArtifact domain."""
        self.store = codeartifact.CfnRepository(
            self,
            "Store",
            domain_name=self.domain.attr_name,
            repository_name=STORE_REPOSITORY_NAME,
            external_connections=[PYPI_CONNECTION],
            description=f"Airflow environment {environment_name}: PyPI, as fetched",
        )
        """`pypi-store`: PyPI through the `public:pypi` external connection."""
        self.repository_name: str = REPOSITORY_NAME
        """The name of the repository pip reads."""
        self.repository = codeartifact.CfnRepository(
            self,
            "Repository",
            domain_name=self.domain.attr_name,
            repository_name=REPOSITORY_NAME,
            upstreams=[self.store.attr_name],
            description=f"Airflow environment {environment_name}: what pip reads",
        )
        """The repository pip reads, with `pypi-store` as its upstream."""
        for resource in (self.domain, self.store, self.repository):
            resource.apply_removal_policy(RemovalPolicy.DESTROY)

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let `grantee` install from the mirror: `codeartifact:GetAuthorizationToken` on the
        domain, `GetRepositoryEndpoint` and `ReadFromRepository` on both repositories,
        `sts:GetServiceBearerToken` (which has no resource; conditioned on CodeArtifact as
        the service, and acknowledged on `grantee` when it is a construct), and `kms:Decrypt`
        on `kms_key` when given."""
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["codeartifact:GetAuthorizationToken"],
            resource_arns=[self.domain.attr_arn],
        )
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["codeartifact:GetRepositoryEndpoint", "codeartifact:ReadFromRepository"],
            resource_arns=[self.repository.attr_arn, self.store.attr_arn],
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sts:GetServiceBearerToken"],
                resources=["*"],
                conditions={"StringEquals": {"sts:AWSServiceName": "codeartifact.amazonaws.com"}},
            )
        )
        if isinstance(grantee, Construct):
            acknowledge(grantee, [PYPI_MIRROR_TOKEN])
        if self._kms_key is not None:
            self._kms_key.grant_decrypt(grantee)
        return grant

    def container_environment(self) -> dict[str, str]:
        """`OPENMWAA_PYPI_MIRROR` (see `contracts.PYPI_MIRROR_VARIABLE`): the domain, its
        owner account, the repository and the Region, as compact JSON with sorted keys (the
        account and Region may be tokens inside the string; CloudFormation fills them in, and
        neither holds a character JSON would escape)."""
        stack = Stack.of(self)
        value = {
            "domain": self.domain_name,
            "domainOwner": stack.account,
            "repository": self.repository_name,
            "region": stack.region,
        }
        return {
            contracts.PYPI_MIRROR_VARIABLE: json.dumps(value, sort_keys=True, separators=(",", ":"))
        }
