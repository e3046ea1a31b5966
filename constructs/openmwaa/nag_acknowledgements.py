"""How the library acknowledges cdk-nag findings; the findings and reasons are in `nag_reasons`.

cdk-nag itself is only a test dependency: the library records acknowledgements with
`Validations.of(construct).acknowledge(...)`, which cdk-nag 3 reads. Each construct
acknowledges its own resources where it creates them, on the narrowest construct, with
`acknowledge`, which raises when given no construct: a resource that moved or was renamed
fails the tests instead of silently losing its acknowledgement.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aws_cdk import Acknowledgment, CfnElement, Stack, Token, Validations
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_s3 as s3

from constructs import IConstruct

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
    """Acknowledge `findings` on `construct` and its children, in every pack they name.

    Raises LookupError when `construct` is None: a resource expected to exist is missing, and
    passing silently would drop its acknowledgements. Decide optional resources with an `if`.
    """
    if construct is None:
        rules = ", ".join(sorted({finding.rule for finding in findings}))
        raise LookupError(f"no construct to acknowledge {rules} on")
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


def same_reason(reason: str, *rules: str) -> tuple[Finding, ...]:
    """Several rules with one reason; `AwsSolutions-<rule>` is a rule of that pack only."""
    return tuple(
        aws_solutions(rule.removeprefix("AwsSolutions-"), reason)
        if rule.startswith("AwsSolutions-")
        else Finding(rule, reason)
        for rule in rules
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


def nag_bucket_arn(bucket: s3.IBucket) -> str:
    """The bucket's ARN as cdk-nag renders it: a GetAtt of ours, a literal of yours."""
    if isinstance(bucket.node.default_child, CfnElement):
        return nag_attribute(bucket, "Arn")
    stack = Stack.of(bucket)
    partition = "<AWS::Partition>" if Token.is_unresolved(stack.partition) else stack.partition
    return f"arn:{partition}:s3:::{bucket.bucket_name}"


def nag_cluster_name(cluster: ecs.ICluster) -> str:
    """The cluster's name as cdk-nag renders it: a Ref of ours, a literal of yours."""
    if isinstance(cluster.node.default_child, CfnElement):
        return nag_ref(cluster)
    return cluster.cluster_name
