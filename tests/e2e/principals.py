"""The template's IAM roles as moto users, so every local process runs with exactly the
permissions its role has in AWS.

For each role the test runs as (the task roles and task execution roles of the ECS task
definitions, the bundled Lambdas' roles), :func:`role_policies` collects the policy documents
the template attaches to it (``AWS::IAM::Policy`` resources naming the role, and the role's
inline ``Policies``), resolved against the locally provisioned resources.
:func:`create_principals` makes one moto IAM user per role with those documents as inline
policies, plus an administrator for the test's own set-up and checks; :func:`enforce` then
turns on moto's IAM enforcement, decided by ``iam.py`` (see ``moto_iam_server.py``).

AWS managed policies attached to a role (``ManagedPolicyArns``: the Lambda basic and VPC
execution policies) are not attached: they grant Lambda's own log delivery and network
interfaces, which nothing in the test calls. They are listed in :attr:`RolePolicies.managed`.
"""

from __future__ import annotations

import copy
import json
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .cfn import Resolver, resources_of_type

ADMIN = "e2e-admin"
ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
INTRINSICS = ("Ref", "Fn::GetAtt", "Fn::Join", "Fn::Sub", "Fn::Select", "Fn::Split")


@dataclass(frozen=True)
class Credentials:
    """An access key of a moto IAM user."""

    user: str
    access_key_id: str
    secret_access_key: str

    def environment(self) -> dict[str, str]:
        """The variables boto3 reads the key from."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }


@dataclass
class RolePolicies:
    """A role's policy documents, resolved."""

    role: str
    documents: list[dict[str, Any]] = field(default_factory=list)
    managed: list[str] = field(default_factory=list)


def resolve_document(value: Any, resolver: Resolver) -> Any:
    """A policy document with every intrinsic function resolved."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in INTRINSICS:
            return resolver.resolve(value)
        return {k: resolve_document(v, resolver) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_document(v, resolver) for v in value]
    return value


def _role_of(value: Any) -> str | None:
    """The logical ID a ``Ref`` or ``Fn::GetAtt [X, Arn]`` of a role names."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else target.split(".")[0])
    return None


def role_policies(template: Mapping[str, Any], role: str, resolver: Resolver) -> RolePolicies:
    """Every policy document the template attaches to ``role`` (a logical ID)."""
    resources = template.get("Resources", {})
    if resources.get(role, {}).get("Type") != "AWS::IAM::Role":
        raise AssertionError(f"{role} is not an AWS::IAM::Role of the template")
    found = RolePolicies(role)
    props = resources[role].get("Properties", {})
    for inline in props.get("Policies", []):
        found.documents.append(resolve_document(inline["PolicyDocument"], resolver))
    found.managed = [resolver.resolve(arn) for arn in props.get("ManagedPolicyArns", [])]
    for resource in resources_of_type(template, "AWS::IAM::Policy").values():
        policy = resource["Properties"]
        if role in {_role_of(r) for r in policy.get("Roles", [])}:
            found.documents.append(resolve_document(policy["PolicyDocument"], resolver))
    return found


def without_actions(documents: list[dict[str, Any]], actions: set[str]) -> list[dict[str, Any]]:
    """The documents with ``actions`` removed from every statement (for negative tests)."""
    trimmed = copy.deepcopy(documents)
    for document in trimmed:
        kept = []
        for statement in document["Statement"]:
            listed = statement["Action"]
            listed = [listed] if isinstance(listed, str) else listed
            remaining = [a for a in listed if a not in actions]
            if remaining:
                statement["Action"] = remaining
                kept.append(statement)
        document["Statement"] = kept
    return trimmed


def create_user(iam: Any, name: str, documents: list[dict[str, Any]]) -> Credentials:
    """A moto IAM user with ``documents`` as its inline policies, and an access key."""
    iam.create_user(UserName=name)
    for index, document in enumerate(documents):
        iam.put_user_policy(
            UserName=name, PolicyName=f"policy-{index}", PolicyDocument=json.dumps(document)
        )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Credentials(name, key["AccessKeyId"], key["SecretAccessKey"])


def create_principals(
    iam: Any, template: Mapping[str, Any], roles: set[str], resolver: Resolver
) -> dict[str, Credentials]:
    """A user per role (named by its logical ID) and the administrator (``ADMIN``)."""
    principals = {ADMIN: create_user(iam, ADMIN, [ADMIN_POLICY])}
    for role in sorted(roles):
        principals[role] = create_user(iam, role, role_policies(template, role, resolver).documents)
    return principals


def enforce(endpoint: str) -> None:
    """Turn on IAM enforcement on the moto server: every later call needs a valid key."""
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        b"0",
        headers={"Content-Type": "application/octet-stream"},  # not a form: moto reads the body
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def read_decisions(path: Any) -> list[dict[str, Any]]:
    """The decisions the moto server recorded (``moto_iam_server.py --record``)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def placeholder_resolver(
    template: Mapping[str, Any], region: str = "us-east-1", account: str = "123456789012"
) -> Resolver:
    """A resolver for static checks: log groups get their real ARNs (from LogGroupName),
    every other resource a placeholder ``Ref`` and ``Arn`` naming its logical ID."""
    resolver = Resolver(
        pseudo={
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "Static",
        },
        types={k: v.get("Type", "") for k, v in template.get("Resources", {}).items()},
    )
    for logical_id, resource in template.get("Resources", {}).items():
        resolver.refs[logical_id] = f"<{logical_id}>"
        resolver.attributes[(logical_id, "Arn")] = f"arn:aws:placeholder:::{logical_id}"
        if resource.get("Type") == "AWS::Logs::LogGroup":
            name = resource.get("Properties", {}).get("LogGroupName", logical_id)
            resolver.refs[logical_id] = name
            resolver.attributes[(logical_id, "Arn")] = (
                f"arn:aws:logs:{region}:{account}:log-group:{name}:*"
            )
    return resolver
