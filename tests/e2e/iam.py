"""IAM as AWS evaluates it, for the calls the environment makes: the end-to-end test's
authorizer.

moto enforces IAM when asked, but it authorizes most services against the resource ``*``
(only S3, SQS, IAM and STS compute a resource ARN) and denies any statement that has a
condition. A policy scoped to this environment's log groups, secrets or ECS service would
then be refused everywhere, and a policy that is too narrow for AWS could pass. So the test's
moto server (``moto_iam_server.py``) asks this module instead:

- :func:`authorization_context` gives the resource ARN and the condition keys that AWS
  authorizes each modelled action against, from the request's parameters, following the
  Service Authorization Reference and the ARNs AWS names in its AccessDenied messages
  (``logs:DescribeLogGroups`` is authorized on ``arn:aws:logs:<region>:<account>:log-group::
  log-stream:``, so only a policy resource like ``log-group:*`` allows it);
- :func:`evaluate` applies identity policies as AWS does: an explicit Deny wins, then any
  Allow whose action, resource and conditions all match.

What is not modelled: resource-based policies (bucket and queue policies; the SSL-only
denies cannot apply to the test's plain-HTTP loopback endpoint), permission boundaries, SCPs
and KMS key policies. An action that the model does not know is recorded as unmodelled and
the end-to-end test fails on it, so a new call cannot slip past unchecked.

Pure stdlib: the moto server process imports it by path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ALWAYS_ALLOWED = frozenset({"sts:GetCallerIdentity"})
"""Actions AWS allows whatever the policy says."""

IAM_PREFIX_OF_SIGNING_NAME = {"monitoring": "cloudwatch"}
"""Services whose SigV4 signing name differs from their IAM action prefix."""


@dataclass(frozen=True)
class AuthorizationContext:
    """What one call is authorized against."""

    action: str
    resource: str
    condition_keys: Mapping[str, str] = field(default_factory=dict)
    modelled: bool = True
    more_resources: tuple[str, ...] = ()
    """Further resources the same call is authorized against (a batch call such as
    DescribeServices of several services): each must be allowed, as ``resource`` must."""


def _logs_group_arn(region: str, account: str, group: str, stream: str = "") -> str:
    return f"arn:aws:logs:{region}:{account}:log-group:{group}:log-stream:{stream}"


def _secret_arn(region: str, account: str, secret_id: str) -> str:
    if secret_id.startswith("arn:"):
        return secret_id
    return f"arn:aws:secretsmanager:{region}:{account}:secret:{secret_id}"


def _cluster_name(value: str) -> str:
    return value.rsplit("/", 1)[-1] if value.startswith("arn:") else value


def _ecs_service_arn(region: str, account: str, cluster: str, service: str) -> str:
    if service.startswith("arn:"):
        return service
    return f"arn:aws:ecs:{region}:{account}:service/{_cluster_name(cluster)}/{service}"


def _ecs_cluster_arn(region: str, account: str, cluster: str) -> str:
    if cluster.startswith("arn:"):
        return cluster
    return f"arn:aws:ecs:{region}:{account}:cluster/{cluster or 'default'}"


LOG_GROUP_ACTIONS = frozenset(
    {
        "CreateLogGroup",
        "DeleteLogGroup",
        "DescribeLogStreams",
        "FilterLogEvents",
        "GetLogGroupFields",
        "PutRetentionPolicy",
        "StartQuery",
    }
)
LOG_STREAM_ACTIONS = frozenset({"CreateLogStream", "PutLogEvents", "GetLogEvents"})
SECRET_ACTIONS = frozenset({"GetSecretValue", "DescribeSecret"})
UNSCOPED_ACTIONS = frozenset(
    {
        # No resource-level permissions in AWS: authorized against "*".
        "cloudwatch:GetMetricData",
        "cloudwatch:GetMetricStatistics",
        "cloudwatch:ListMetrics",
        "cloudwatch:PutMetricData",
        "ecs:ListClusters",
        "ecs:ListTaskDefinitions",
        "secretsmanager:ListSecrets",
        "sts:GetCallerIdentity",
    }
)


TABLE_ACTIONS = frozenset({"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan"})
"""DynamoDB item actions, authorized against the table named in the request."""


def _dynamodb_table_arn(region: str, account: str, table: Any) -> str:
    name = str(table)
    if name.startswith("arn:"):
        return name
    return f"arn:aws:dynamodb:{region}:{account}:table/{name}"


def authorization_context(
    service: str,
    operation: str,
    params: Mapping[str, Any],
    *,
    region: str,
    account: str,
    moto_resource: str,
) -> AuthorizationContext:
    """The resource and condition keys AWS authorizes ``service:operation`` against.

    ``service`` is the SigV4 signing name of the request (``monitoring`` for CloudWatch).
    ``moto_resource`` is what moto computed; it is right for S3 (bucket or object ARN) and
    SQS (queue ARN), the two services moto models.
    """
    service = IAM_PREFIX_OF_SIGNING_NAME.get(service, service)
    action = f"{service}:{operation}"
    get = params.get
    if service in ("s3", "sqs"):
        return AuthorizationContext(action, moto_resource)
    if action in UNSCOPED_ACTIONS:
        keys = {}
        if action == "cloudwatch:PutMetricData" and get("Namespace"):
            keys["cloudwatch:namespace"] = str(get("Namespace"))
        return AuthorizationContext(action, "*", keys)
    if service == "logs":
        if operation == "DescribeLogGroups":
            return AuthorizationContext(action, _logs_group_arn(region, account, ""))
        group = str(get("logGroupName") or "")
        if operation in LOG_GROUP_ACTIONS and group:
            return AuthorizationContext(action, _logs_group_arn(region, account, group))
        if operation in LOG_STREAM_ACTIONS and group:
            stream = str(get("logStreamName") or "")
            return AuthorizationContext(action, _logs_group_arn(region, account, group, stream))
    if service == "secretsmanager" and operation in SECRET_ACTIONS and get("SecretId"):
        return AuthorizationContext(action, _secret_arn(region, account, str(get("SecretId"))))
    if service == "dynamodb" and operation in TABLE_ACTIONS and get("TableName"):
        return AuthorizationContext(action, _dynamodb_table_arn(region, account, get("TableName")))
    if service == "ecs":
        cluster = str(get("cluster") or "default")
        cluster_arn = _ecs_cluster_arn(region, account, cluster)
        if operation == "UpdateService" and get("service"):
            arn = _ecs_service_arn(region, account, cluster, str(get("service")))
            return AuthorizationContext(action, arn, {"ecs:cluster": cluster_arn})
        if operation == "DescribeServices" and get("services"):
            # Up to 10 services per call; each is authorized, and one refused refuses the call.
            first, *rest = (
                _ecs_service_arn(region, account, cluster, str(name))
                for name in list(get("services"))
            )
            return AuthorizationContext(
                action, first, {"ecs:cluster": cluster_arn}, more_resources=tuple(rest)
            )
        if operation == "ListServices":
            return AuthorizationContext(action, "*", {"ecs:cluster": cluster_arn})
        if operation == "DescribeClusters" and get("clusters"):
            (name, *rest) = list(get("clusters"))
            if not rest:
                return AuthorizationContext(action, _ecs_cluster_arn(region, account, str(name)))
        if operation in ("UpdateTaskProtection", "GetTaskProtection") and get("tasks"):
            (task, *rest) = list(get("tasks"))
            if not rest and str(task).startswith("arn:"):
                return AuthorizationContext(action, str(task), {"ecs:cluster": cluster_arn})
    paused = _pauser_context(action, params, region, account)
    if paused is not None:
        return paused
    return AuthorizationContext(action, moto_resource, modelled=False)


PAUSER_RULE_ACTIONS = frozenset({"DescribeRule", "EnableRule", "DisableRule"})
PAUSER_ALARM_ACTIONS = frozenset({"DisableAlarmActions", "EnableAlarmActions"})


def _pauser_context(
    action: str, params: Mapping[str, Any], region: str, account: str
) -> AuthorizationContext | None:
    """The pauser's calls (lambdas/pauser): EventBridge rules, alarm actions, scalable
    targets and its stack's status, one resource per call."""
    service, _, operation = action.partition(":")
    get = params.get
    if service == "events" and operation in PAUSER_RULE_ACTIONS and get("Name"):
        bus = str(get("EventBusName") or "default")
        path = f"rule/{get('Name')}" if bus == "default" else f"rule/{bus}/{get('Name')}"
        return AuthorizationContext(action, f"arn:aws:events:{region}:{account}:{path}")
    if service == "cloudwatch" and operation in PAUSER_ALARM_ACTIONS:
        names = get("AlarmNames") or [get("AlarmNames.member.1")]
        names = [str(name) for name in _as_list(names) if name]
        if len(names) == 1:
            arn = f"arn:aws:cloudwatch:{region}:{account}:alarm:{names[0]}"
            return AuthorizationContext(action, arn)
    if service == "application-autoscaling" and operation == "RegisterScalableTarget":
        # AWS authorizes it on the target's ARN, whose last part is an id AWS assigned (not
        # in the request): any such ARN stands for it; the condition keys come from the request.
        arn = f"arn:aws:application-autoscaling:{region}:{account}:scalable-target/0registered"
        keys = {
            "application-autoscaling:service-namespace": str(get("ServiceNamespace") or ""),
            "application-autoscaling:scalable-dimension": str(get("ScalableDimension") or ""),
        }
        return AuthorizationContext(action, arn, keys)
    if service == "cloudformation" and operation == "DescribeStacks" and get("StackName"):
        name = str(get("StackName"))
        # By name, AWS names the stack's ARN with a wildcard for its id (as in its AccessDenied
        # messages); an ARN given is used as it is.
        stack_arn = f"arn:aws:cloudformation:{region}:{account}:stack/{name}/*"
        arn = name if name.startswith("arn:") else stack_arn
        return AuthorizationContext(action, arn)
    return None


# --- policy evaluation -------------------------------------------------------------------


class UnsupportedPolicyError(ValueError):
    """A policy uses an element or condition operator this evaluator does not implement."""


@dataclass(frozen=True)
class Decision:
    """The outcome of :func:`evaluate`, with the statement that decided it."""

    allowed: bool
    reason: str


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _wildcard(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    """IAM wildcard matching: ``*`` any run of characters, ``?`` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.fullmatch(regex, value, flags) is not None


def _matches_action(statement: Mapping[str, Any], action: str) -> bool:
    if "Action" in statement:
        patterns = _as_list(statement["Action"])
        return any(_wildcard(p, action, case_sensitive=False) for p in patterns)
    if "NotAction" in statement:
        patterns = _as_list(statement["NotAction"])
        return not any(_wildcard(p, action, case_sensitive=False) for p in patterns)
    raise UnsupportedPolicyError(f"statement has neither Action nor NotAction: {statement}")


def _matches_resource(statement: Mapping[str, Any], resource: str) -> bool:
    if "Resource" in statement:
        return any(_wildcard(p, resource) for p in _as_list(statement["Resource"]))
    if "NotResource" in statement:
        return not any(_wildcard(p, resource) for p in _as_list(statement["NotResource"]))
    raise UnsupportedPolicyError(f"statement has neither Resource nor NotResource: {statement}")


def _condition_holds(operator: str, values: Sequence[str], actual: str | None) -> bool:
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    if base == "Null":
        is_null = actual is None
        return any(str(v).lower() == ("true" if is_null else "false") for v in values)
    if actual is None:
        return if_exists
    if base in ("StringEquals", "ArnEquals"):
        return actual in values
    if base == "StringEqualsIgnoreCase":
        return actual.lower() in {v.lower() for v in values}
    if base in ("StringLike", "ArnLike"):
        return any(_wildcard(v, actual) for v in values)
    if base in ("StringNotEquals", "ArnNotEquals"):
        return actual not in values
    if base in ("StringNotLike", "ArnNotLike"):
        return not any(_wildcard(v, actual) for v in values)
    if base == "Bool":
        return actual.lower() in {v.lower() for v in values}
    raise UnsupportedPolicyError(f"condition operator {operator} is not implemented")


def _matches_conditions(statement: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    for operator, block in statement.get("Condition", {}).items():
        for key, expected in block.items():
            values = [str(v) for v in _as_list(expected)]
            lowered = {k.lower(): v for k, v in context.items()}
            if not _condition_holds(operator, values, lowered.get(key.lower())):
                return False
    return True


def statements(policies: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Every statement of every policy document."""
    found: list[Mapping[str, Any]] = []
    for policy in policies:
        found.extend(_as_list(policy.get("Statement")))
    return found


def evaluate_context(
    policies: Iterable[Mapping[str, Any]], context: AuthorizationContext
) -> Decision:
    """:func:`evaluate` of every resource of ``context``: allowed only if each one is (the
    first refusal decides)."""
    policies = list(policies)
    decision = Decision(False, "no resource")
    for resource in (context.resource, *context.more_resources):
        decision = evaluate(policies, context.action, resource, context.condition_keys)
        if not decision.allowed:
            return decision
    return decision


def evaluate(
    policies: Iterable[Mapping[str, Any]],
    action: str,
    resource: str,
    context: Mapping[str, str] | None = None,
) -> Decision:
    """Whether identity policies allow ``action`` on ``resource`` with ``context``."""
    if action in ALWAYS_ALLOWED:
        return Decision(True, f"{action} is always allowed")
    context = context or {}
    allowed_by = ""
    for statement in statements(policies):
        if not (
            _matches_action(statement, action)
            and _matches_resource(statement, resource)
            and _matches_conditions(statement, context)
        ):
            continue
        label = str(statement.get("Sid") or statement.get("Action"))
        if statement.get("Effect") == "Deny":
            return Decision(False, f"explicitly denied by {label}")
        if statement.get("Effect") == "Allow" and not allowed_by:
            allowed_by = label
    if allowed_by:
        return Decision(True, f"allowed by {allowed_by}")
    return Decision(False, "no statement allows it")
