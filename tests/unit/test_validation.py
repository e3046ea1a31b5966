"""One test per validation rule, on the pure functions, plus the construct-level error."""

from __future__ import annotations

import dataclasses
from typing import Any

import aws_cdk as cdk
import jsii
import pytest
from aws_cdk import Duration, INumberProducer, Lazy, Token

from openmwaa.environment_props import AirflowEnvironmentProps, ResolvedProps, resolve
from openmwaa.validation import (
    PROTECTED_CONFIGURATION_OPTIONS,
    raise_if_invalid,
    validate,
)

VALID = AirflowEnvironmentProps(
    environment_name="prod-airflow",
    environment_class="mw1.small",
    airflow_version="3.3.2",
    schedulers=2,
    min_workers=1,
    max_workers=10,
    min_webservers=2,
    max_webservers=2,
    webserver_access_mode="PRIVATE_ONLY",
    airflow_configuration_options={"core.parallelism": "64"},
)


GIVEN: Any = object()
"""Stands for a resource the user passes (a VPC, a hosted zone...): rules only ask whether
it was given."""


def resolved(**changes: Any) -> ResolvedProps:
    return resolve(dataclasses.replace(VALID, **changes), construct_id="Airflow")


def problems(**changes: Any) -> list[str]:
    return validate(resolved(**changes))


def test_valid_settings_have_no_problem() -> None:
    assert validate(resolved()) == []


@pytest.mark.parametrize("name", ["1abc", "has space", "x" * 81, "", "dots.not.allowed"])
def test_fails_when_environment_name_is_invalid(name: str) -> None:
    [problem] = problems(environment_name=name)
    assert problem.startswith("environment_name:") and repr(name) in problem


def test_fails_when_environment_class_is_unknown() -> None:
    [problem] = problems(environment_class="mw1.huge")
    assert "environment_class: got 'mw1.huge'" in problem and "mw1.2xlarge" in problem


def test_fails_when_airflow_version_is_unsupported() -> None:
    [problem] = problems(airflow_version="1.10.12")
    assert "airflow_version: got '1.10.12'" in problem and "3.3.2" in problem


@pytest.mark.parametrize("count", [0, 6, -1])
def test_fails_when_schedulers_out_of_range(count: int) -> None:
    [problem] = problems(schedulers=count)
    assert problem.startswith("schedulers:") and "1 to 5" in problem


def test_fails_when_max_workers_below_min_workers() -> None:
    [problem] = problems(min_workers=5, max_workers=2)
    assert "max_workers" in problem and "min_workers 5" in problem


def test_min_workers_may_be_zero() -> None:
    assert problems(min_workers=0) == []


def test_fails_when_max_workers_zero_or_negative_min() -> None:
    assert any(p.startswith("max_workers:") for p in problems(min_workers=0, max_workers=0))
    assert any(p.startswith("min_workers:") for p in problems(min_workers=-1))


def test_fails_when_micro_asks_for_more_workers() -> None:
    [problem] = problems(
        environment_class="mw1.micro",
        schedulers=1,
        min_webservers=1,
        max_webservers=1,
        min_workers=1,
        max_workers=3,
    )
    assert "min_workers/max_workers" in problem and "mw1.micro" in problem


def test_fails_when_max_webservers_below_min() -> None:
    [problem] = problems(min_webservers=3, max_webservers=2)
    assert problem.startswith("max_webservers:")


def test_fails_when_webservers_out_of_range() -> None:
    assert any(p.startswith("min_webservers:") for p in problems(min_webservers=0))
    assert any(p.startswith("max_webservers:") for p in problems(max_webservers=9))


def test_fails_when_access_mode_unknown() -> None:
    [problem] = problems(webserver_access_mode="PUBLIC")
    assert "webserver_access_mode: got 'PUBLIC'" in problem and "PRIVATE_ONLY" in problem


def test_fails_when_public_without_tls() -> None:
    [problem] = problems(webserver_access_mode="PUBLIC_ONLY", allowed_cidrs=("0.0.0.0/0",))
    assert "PUBLIC_ONLY without TLS" in problem


def test_public_with_domain_and_zone_is_valid() -> None:
    assert (
        problems(
            webserver_access_mode="PUBLIC_ONLY",
            domain_name="airflow.example.com",
            hosted_zone=GIVEN,
            allowed_cidrs=("203.0.113.0/24",),
        )
        == []
    )


def test_fails_when_public_without_allowed_cidrs() -> None:
    [problem] = problems(
        webserver_access_mode="PUBLIC_ONLY",
        domain_name="airflow.example.com",
        hosted_zone=GIVEN,
    )
    assert problem.startswith("allowed_cidrs: got none with PUBLIC_ONLY")
    assert "'0.0.0.0/0'" in problem


def test_private_without_allowed_cidrs_is_valid() -> None:
    assert problems(webserver_access_mode="PRIVATE_ONLY", allowed_cidrs=()) == []


@pytest.mark.parametrize(
    "interval",
    [Duration.seconds(30), Duration.seconds(90), Duration.millis(60_500), Duration.minutes(0)],
)
def test_fails_when_reconcile_interval_is_not_whole_minutes(interval: Duration) -> None:
    [problem] = problems(reconcile_interval=interval)
    assert problem.startswith(f"reconcile_interval: got {interval.to_human_string()}")
    assert "whole minutes, at least 1 minute" in problem


@pytest.mark.parametrize("interval", [Duration.minutes(1), Duration.hours(2), Duration.days(1)])
def test_reconcile_interval_in_whole_minutes_is_valid(interval: Duration) -> None:
    assert problems(reconcile_interval=interval) == []


@pytest.mark.parametrize("cooldown", [Duration.millis(1500), Duration.seconds(6 * 3600 + 1)])
def test_fails_when_scale_in_cooldown_is_out_of_range(cooldown: Duration) -> None:
    [problem] = problems(scale_in_cooldown=cooldown)
    assert problem.startswith(f"scale_in_cooldown: got {cooldown.to_human_string()}")
    assert "whole seconds, 0 seconds to 6 hours" in problem


@pytest.mark.parametrize(
    "cooldown", [Duration.seconds(0), Duration.seconds(45), Duration.minutes(5), Duration.hours(6)]
)
def test_scale_in_cooldown_in_range_is_valid(cooldown: Duration) -> None:
    assert problems(scale_in_cooldown=cooldown) == []


def test_unresolved_durations_are_skipped() -> None:
    token = Duration.minutes(Token.as_number(Lazy.number(_Producer())))
    assert problems(reconcile_interval=token, scale_in_cooldown=token) == []


@jsii.implements(INumberProducer)
class _Producer:
    def produce(self, _context: Any) -> int:
        return 1


def test_fails_when_domain_name_without_zone_or_certificate() -> None:
    [problem] = problems(domain_name="airflow.example.com")
    assert problem.startswith("domain_name:")


def test_fails_when_hosted_zone_without_domain_name() -> None:
    [problem] = problems(hosted_zone=GIVEN)
    assert problem.startswith("hosted_zone:")


@pytest.mark.parametrize("key", ["core", "Core.Parallelism", "core.parallelism.extra", "a b.c"])
def test_fails_when_configuration_key_is_malformed(key: str) -> None:
    [problem] = problems(airflow_configuration_options={key: "1"})
    assert "airflow_configuration_options" in problem and repr(key) in problem


@pytest.mark.parametrize("key", sorted(PROTECTED_CONFIGURATION_OPTIONS))
def test_fails_when_configuration_key_is_protected(key: str) -> None:
    [problem] = problems(airflow_configuration_options={key: "x"})
    assert "owned by the environment" in problem and repr(key) in problem


@pytest.mark.parametrize("key", ["database.sql_alchemy_conn_cmd", "core.fernet_key_secret"])
def test_fails_when_configuration_key_is_a_command_or_secret_variant_of_a_protected_key(
    key: str,
) -> None:
    [problem] = problems(airflow_configuration_options={key: "x"})
    assert "owned by the environment" in problem


def test_configuration_key_near_a_protected_one_is_allowed() -> None:
    assert problems(airflow_configuration_options={"core.parallelism": "8"}) == []


def test_fails_when_configuration_value_is_not_a_string() -> None:
    [problem] = problems(airflow_configuration_options={"core.parallelism": 64})
    assert "value of 'core.parallelism' is int" in problem


@pytest.mark.parametrize(
    "prop",
    [
        "requirements_s3_object_version",
        "plugins_s3_object_version",
        "startup_script_s3_object_version",
    ],
)
def test_fails_when_object_version_is_malformed(prop: str) -> None:
    [problem] = problems(**{prop: "has space"})
    assert problem.startswith(f"{prop}:")


def test_fails_when_nat_gateways_given_with_vpc() -> None:
    [problem] = problems(vpc=GIVEN, nat_gateways=1)
    assert problem.startswith("nat_gateways: given with vpc")


def test_fails_when_vpc_subnets_without_vpc() -> None:
    [problem] = problems(vpc_subnets=GIVEN)
    assert problem.startswith("vpc_subnets:")


@pytest.mark.parametrize("count", [-1, 3])
def test_fails_when_nat_gateways_out_of_range(count: int) -> None:
    [problem] = problems(nat_gateways=count)
    assert problem.startswith(f"nat_gateways: got {count}")


def test_fails_when_allowed_cidr_is_invalid() -> None:
    [problem] = problems(allowed_cidrs=("10.0.0.0/8", "10.0.0.1/8"))
    assert "allowed_cidrs: got '10.0.0.1/8'" in problem


def test_fails_when_tag_key_reserved() -> None:
    [problem] = problems(tags={"aws:owner": "x"})
    assert problem.startswith("tags: key 'aws:owner'")


def test_fails_when_docker_hub_credentials_given_with_an_image() -> None:
    [problem] = problems(image=GIVEN, docker_hub_credentials=GIVEN)
    assert problem.startswith("docker_hub_credentials: given with image")


def test_raise_lists_every_problem_in_one_error() -> None:
    bad = resolved(schedulers=9, max_workers=0, min_workers=0)
    with pytest.raises(ValueError) as error:
        raise_if_invalid(bad)
    assert "schedulers: got 9" in str(error.value)
    assert "max_workers: got 0" in str(error.value)


def test_construct_raises_value_error_naming_the_prop() -> None:
    from tests.stacks import environment_stack

    with pytest.raises(ValueError, match=r"max_workers: got 1, less than min_workers 4"):
        environment_stack(min_workers=4, max_workers=1)


def test_construct_rejects_unknown_environment_class_with_the_allowed_list() -> None:
    from tests.stacks import environment_stack

    with pytest.raises(ValueError, match=r"environment_class: got 'mw9.giant'; allowed: mw1.micro"):
        environment_stack(environment_class="mw9.giant")


def test_construct_refuses_an_out_of_range_duration_with_a_value_error() -> None:
    from tests.stacks import environment_stack

    with pytest.raises(ValueError, match=r"reconcile_interval: got 30 seconds"):
        environment_stack(reconcile_interval=Duration.seconds(30))
    with pytest.raises(ValueError, match=r"scale_in_cooldown: got 1 second 500 millis"):
        environment_stack(scale_in_cooldown=Duration.millis(1500))


def test_construct_refuses_public_only_without_allowed_cidrs() -> None:
    from aws_cdk import aws_certificatemanager as acm

    from tests.stacks import environment_stack
    from tools.cdk_app import project_app

    app = project_app()
    certificate = acm.Certificate.from_certificate_arn(
        cdk.Stack(app, "Certificates"), "Cert", "arn:aws:acm:eu-west-1:123456789012:certificate/a"
    )
    with pytest.raises(ValueError, match=r"allowed_cidrs: got none with PUBLIC_ONLY"):
        environment_stack(
            app,
            webserver_access_mode="PUBLIC_ONLY",
            domain_name="airflow.example.com",
            certificate=certificate,
        )


def test_imported_kms_key_warns_what_its_key_policy_must_allow() -> None:
    from aws_cdk import aws_kms as kms
    from aws_cdk.assertions import Annotations, Match

    from openmwaa import AirflowEnvironment
    from tests.stacks import TEST_ENV
    from tools.cdk_app import project_app

    stack = cdk.Stack(project_app(), "ImportedKey", env=TEST_ENV)
    key = kms.Key.from_key_arn(
        stack, "Key", "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-0000-1111-2222-333344445555"
    )
    AirflowEnvironment(stack, "Airflow", kms_key=key)

    [warning] = Annotations.from_stack(stack).find_warning(
        "/ImportedKey/Airflow", Match.string_like_regexp("kms_key")
    )
    message = warning.entry.data
    for needed in (
        "logs.eu-west-1.amazonaws.com",
        "kms:Encrypt*, kms:Decrypt*, kms:ReEncrypt*, kms:GenerateDataKey*, kms:Describe*",
        "kms:EncryptionContext:aws:logs:arn",
        "arn:aws:logs:eu-west-1:123456789012:log-group:*",
        "cloudwatch.amazonaws.com",
        "kms:Decrypt, kms:GenerateDataKey*",
        "aws:SourceAccount",
    ):
        assert needed in message, needed


def test_kms_key_of_this_app_gets_its_policy_and_no_warning() -> None:
    from aws_cdk.assertions import Annotations, Match

    from tests.stacks import kms_imported_vpc_stack

    stack, _ = kms_imported_vpc_stack()
    warnings = Annotations.from_stack(stack).find_warning("*", Match.string_like_regexp("kms_key"))
    assert warnings == []


def test_fails_when_removal_policy_is_snapshot() -> None:
    [problem] = problems(removal_policy=cdk.RemovalPolicy.SNAPSHOT)
    assert problem.startswith("removal_policy: got")
    assert "RETAIN_ON_UPDATE_OR_DELETE, RETAIN, DESTROY" in problem


def test_fails_when_deletion_protection_is_not_a_bool() -> None:
    [problem] = problems(deletion_protection="yes")
    assert problem == "deletion_protection: got 'yes'; allowed: True, False"


@pytest.mark.parametrize(
    "policy",
    [
        cdk.RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        cdk.RemovalPolicy.RETAIN,
        cdk.RemovalPolicy.DESTROY,
    ],
)
def test_data_removal_policies_are_valid(policy: cdk.RemovalPolicy) -> None:
    assert problems(removal_policy=policy) == []


def test_fails_when_bucket_props_given_with_existing_bucket() -> None:
    [problem] = problems(existing_bucket=GIVEN, bucket_props={"bucket_name": "acme-dags"})
    assert problem.startswith("bucket_props: given with existing_bucket")


def test_fails_when_bucket_props_override_what_keeps_the_bucket_safe() -> None:
    [problem] = problems(bucket_props={"versioned": False})
    assert problem.startswith("bucket_props: key 'versioned' is set by the environment")


def test_fails_when_bucket_props_name_no_bucket_argument() -> None:
    [problem] = problems(bucket_props={"versioning": True})
    assert problem.startswith("bucket_props: key 'versioning' is not an argument of Bucket")


def test_bucket_props_may_name_and_tune_the_bucket() -> None:
    assert problems(bucket_props={"bucket_name": "acme-dags", "transfer_acceleration": True}) == []


def test_fails_when_database_props_override_the_wiring() -> None:
    found = problems(database_props={"engine": GIVEN, "storage_encrypted": False})
    assert [p.split(" is set")[0] for p in found] == [
        "database_props: key 'engine'",
        "database_props: key 'storage_encrypted'",
    ]
    assert "use database_engine_version" in found[0]


def test_database_props_may_tune_backups_and_capacity() -> None:
    tuned = {"backup": GIVEN, "serverless_v2_max_capacity": 16, "preferred_maintenance_window": "x"}
    assert problems(database_props=tuned) == []


def test_fails_when_existing_cluster_is_given_without_its_vpc() -> None:
    [problem] = problems(existing_cluster=GIVEN)
    assert problem.startswith("existing_cluster: given without vpc")
    assert problems(existing_cluster=GIVEN, vpc=GIVEN) == []
