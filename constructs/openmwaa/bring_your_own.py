"""The validation rule of the bring-your-own props: `existing_bucket` or `bucket_props`,
`database_props` and `existing_cluster` (part of `validation.RULES`)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping

from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3

from .database import OWNED_DATABASE_PROPS
from .environment_props import ResolvedProps
from .source_bucket import OWNED_BUCKET_PROPS


def _keyword_arguments(construct_class: type) -> frozenset[str]:
    parameters = inspect.signature(vars(construct_class)["__init__"]).parameters
    return frozenset(parameters) - {"self", "scope", "id"}


def _override_problems(
    prop: str, overrides: Mapping[str, object], construct_class: type, owned: Mapping[str, str]
) -> list[str]:
    allowed = _keyword_arguments(construct_class)
    problems = []
    for key in overrides:
        if key in owned:
            problems.append(
                f"{prop}: key {key!r} is set by the environment ({owned[key]}); allowed: any "
                f"other {construct_class.__module__.split('.')[-1]}.{construct_class.__name__} "
                "argument"
            )
        elif key not in allowed:
            problems.append(
                f"{prop}: key {key!r} is not an argument of {construct_class.__name__}; "
                f"allowed: {construct_class.__name__}'s keyword arguments except "
                + ", ".join(sorted(owned))
            )
    return problems


def check_bring_your_own(s: ResolvedProps) -> list[str]:
    """`existing_bucket` or `bucket_props`, `database_props`, `existing_cluster`."""
    problems = []
    if s.existing_bucket is not None and s.bucket_props:
        problems.append(
            "bucket_props: given with existing_bucket; they configure the bucket we create, "
            "so give one or the other"
        )
    for prop, construct_class, owned in (
        ("bucket_props", s3.Bucket, OWNED_BUCKET_PROPS),
        ("database_props", rds.DatabaseCluster, OWNED_DATABASE_PROPS),
    ):
        overrides: object = getattr(s, prop)
        if not isinstance(overrides, Mapping):
            problems.append(
                f"{prop}: got {type(overrides).__name__}; allowed: a dict of "
                f"{construct_class.__name__} keyword arguments"
            )
            continue
        problems += _override_problems(prop, overrides, construct_class, owned)
    if s.existing_cluster is not None and s.vpc is None:
        problems.append(
            "existing_cluster: given without vpc; the services run in the cluster's VPC, so "
            "give it as vpc"
        )
    return problems
