"""`openmwaa from-mwaa`: the adapter, end to end through `openmwaa.cli.main.main`.

moto has no MWAA backend, so GetEnvironment goes through a `botocore.stub.Stubber` on a real
boto3 `mwaa` client (it checks the request and the response against botocore's MWAA model);
EC2, KMS and S3 are moto. `from_mwaa.client_factory` is the seam the tests use to hand those
clients to the command; the no-credentials test uses the real boto3 factory.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import shlex
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import boto3
import botocore.model
import botocore.session
import pytest
from aws_cdk import assertions
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from openmwaa.cli import from_mwaa, main
from openmwaa.cli.mwaa_mapping import (
    APP_FILE,
    CDK_JSON_FILE,
    REPORT_FILE,
    TARGET_BUCKET_PLACEHOLDER,
)
from tests.unit.test_mwaa_mapping import (
    ACCOUNT,
    NAME,
    REGION,
    SECRET_VALUES,
    TIMEZONE,
    full_environment,
)
from tools.cdk_app import project_app

SOURCE_BUCKET = "mwaa-analytics-source"
TARGET_BUCKET = "openmwaa-analytics-bucket"
ALIAS = f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/mwaa-analytics"
DAG_FILES = {
    "airflow/dags/etl.py": b"from airflow import DAG\n",
    "airflow/dags/lib/helpers.py": b"def helper(): ...\n",
}
PINNED_REQUIREMENTS = b"pandas==2.1.4\n"
LATEST_REQUIREMENTS = b"pandas==2.2.3\n"


@dataclass
class World:
    """moto's account with MWAA's VPC, key and buckets, and a stubbed MWAA client."""

    mwaa: Any
    stubber: Stubber
    s3: Any
    ec2: Any
    kms: Any
    environment: dict[str, Any]
    key_arn: str
    subnet_ids: tuple[str, str]
    route_table_id: str
    versions: dict[str, str] = field(default_factory=dict)
    made: list[str] = field(default_factory=list)

    def factory(self, service: str, region: str | None) -> Any:
        self.made.append(service)
        return {"mwaa": self.mwaa, "s3": self.s3, "ec2": self.ec2, "kms": self.kms}[service]

    def expect_get_environment(self, **overrides: Any) -> None:
        self.stubber.add_response(
            "get_environment",
            {"Environment": {**self.environment, **overrides}},
            {"Name": NAME},
        )

    def target_keys(self) -> list[str]:
        listed = self.s3.list_object_versions(Bucket=TARGET_BUCKET)
        return sorted(v["Key"] for v in listed.get("Versions", []))

    def target_version(self, key: str) -> str:
        return str(self.s3.head_object(Bucket=TARGET_BUCKET, Key=key)["VersionId"])


def _bucket(s3: Any, name: str, *, versioned: bool = True) -> None:
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


def build_world() -> World:
    """Call inside `mock_aws()`."""
    s3 = boto3.client("s3", region_name=REGION)
    ec2 = boto3.client("ec2", region_name=REGION)
    kms = boto3.client("kms", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = tuple(
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for cidr, zone in (("10.20.1.0/24", f"{REGION}a"), ("10.20.2.0/24", f"{REGION}b"))
    )
    route_table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=route_table, SubnetId=subnets[0])
    group = ec2.create_security_group(GroupName="mwaa", Description="mwaa", VpcId=vpc)["GroupId"]
    key_arn = kms.create_key(Description="mwaa")["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName="alias/mwaa-analytics", TargetKeyId=key_arn)

    _bucket(s3, SOURCE_BUCKET)
    _bucket(s3, TARGET_BUCKET)
    s3.put_object(Bucket=SOURCE_BUCKET, Key="airflow/dags/", Body=b"")
    for key, body in DAG_FILES.items():
        s3.put_object(Bucket=SOURCE_BUCKET, Key=key, Body=body)
    s3.put_object(Bucket=SOURCE_BUCKET, Key="airflow/dags_old/stale.py", Body=b"old")
    versions = {}
    for name, key, bodies in (
        ("requirements", "airflow/requirements.txt", (PINNED_REQUIREMENTS, LATEST_REQUIREMENTS)),
        ("plugins", "airflow/plugins.zip", (b"PK-pinned", b"PK-latest")),
        ("startup", "airflow/startup.sh", (b"#!/bin/bash\nexport A=1\n",)),
    ):
        written = [
            s3.put_object(Bucket=SOURCE_BUCKET, Key=key, Body=b)["VersionId"] for b in bodies
        ]
        versions[name] = written[0]
    environment = full_environment(
        subnet_ids=subnets,
        security_group_ids=(group,),
        bucket=SOURCE_BUCKET,
        requirements_version=versions["requirements"],
        plugins_version=versions["plugins"],
        startup_version=versions["startup"],
        kms_key=ALIAS,
    )
    mwaa = boto3.client("mwaa", region_name=REGION)
    stubber = Stubber(mwaa)
    stubber.activate()
    return World(mwaa, stubber, s3, ec2, kms, environment, key_arn, subnets, route_table, versions)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with mock_aws():
        built = build_world()
        monkeypatch.setattr(from_mwaa, "client_factory", built.factory)
        yield built


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A client factory that records what it is asked for and makes nothing."""
    asked: list[str] = []

    def factory(service: str, region: str | None) -> Any:
        asked.append(service)
        raise AssertionError(f"no {service} client expected")

    monkeypatch.setattr(from_mwaa, "client_factory", factory)
    return asked


def run_cli(out: Path, *extra: str) -> int:
    return main.main(["from-mwaa", NAME, "--region", REGION, "--output-dir", str(out), *extra])


def copy_args() -> tuple[str, ...]:
    return ("--copy-bucket", "--target-bucket", TARGET_BUCKET)


def deny(client: Any, operation: str, key: str | None = None, code: str = "AccessDenied") -> None:
    """Make `operation` (of `key` only, when given) fail as IAM would, on a moto client."""

    def refuse(params: dict[str, Any], **_: Any) -> None:
        if key is None or params.get("Key") == key:
            raise ClientError(
                {
                    "Error": {"Code": code, "Message": "Access Denied"},
                    "ResponseMetadata": {"HTTPStatusCode": 403},
                },
                operation,
            )

    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-parameter-build.{service}.{operation}", refuse)


def assert_nothing_written(out: Path, world: World | None = None) -> None:
    assert not out.exists()
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")] == []
    if world is not None:
        assert world.target_keys() == []


# It works.


def test_from_mwaa_writes_app_report_and_cdk_json_through_the_console_entry_point(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.expect_get_environment()
    out = tmp_path / "migrated"
    assert run_cli(out) == 0
    world.stubber.assert_no_pending_responses()
    assert sorted(p.name for p in out.iterdir()) == [APP_FILE, CDK_JSON_FILE, REPORT_FILE]
    stdout = capsys.readouterr().out
    assert f"Wrote {out}/" in stdout
    assert "map differently" in stdout
    assert f"Next: cd {out} && npx cdk deploy" in stdout
    app = (out / APP_FILE).read_text()
    assert f'"{world.subnet_ids[0]}"' in app
    assert f'"{world.route_table_id}"' in app
    assert f'"{world.key_arn}"' in app  # the alias, resolved through kms:DescribeKey
    assert "requirements_s3_object_version" not in app  # nothing copied: nothing pinned
    assert world.target_keys() == []


def test_report_and_stdout_hold_no_configuration_value(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.expect_get_environment()
    out = tmp_path / "migrated"
    assert run_cli(out) == 0
    shown = capsys.readouterr().out + (out / REPORT_FILE).read_text()
    for value in (*SECRET_VALUES, TIMEZONE):
        assert value not in shown
    app = (out / APP_FILE).read_text()
    for value in SECRET_VALUES:
        assert value not in app


def test_default_output_dir_is_named_after_the_environment(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.expect_get_environment()
    monkeypatch.chdir(tmp_path)
    assert main.main(["from-mwaa", NAME, "--region", REGION]) == 0
    assert (tmp_path / f"openmwaa-{NAME}" / APP_FILE).is_file()


def test_new_vpc_makes_no_ec2_call(world: World, tmp_path: Path) -> None:
    world.expect_get_environment()
    assert run_cli(tmp_path / "out", "--new-vpc") == 0
    assert "ec2" not in world.made
    assert "ec2.Vpc" not in (tmp_path / "out" / APP_FILE).read_text()


def test_copy_bucket_copies_the_pinned_versions_and_pins_the_copies(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.expect_get_environment()
    out = tmp_path / "migrated"
    assert run_cli(out, *copy_args()) == 0
    assert world.target_keys() == [
        "dags/etl.py",
        "dags/lib/helpers.py",
        "plugins.zip",
        "requirements.txt",
        "startup.sh",
    ]
    body = world.s3.get_object(Bucket=TARGET_BUCKET, Key="requirements.txt")["Body"].read()
    assert body == PINNED_REQUIREMENTS  # MWAA's pinned version, not the latest upload
    plugins = world.s3.get_object(Bucket=TARGET_BUCKET, Key="plugins.zip")["Body"].read()
    assert plugins == b"PK-pinned"
    app = (out / APP_FILE).read_text()
    for prop, key in (
        ("requirements_s3_object_version", "requirements.txt"),
        ("plugins_s3_object_version", "plugins.zip"),
        ("startup_script_s3_object_version", "startup.sh"),
    ):
        assert f'{prop}="{world.target_version(key)}"' in app
    assert world.versions["requirements"] not in app  # MWAA's own ids mean nothing here
    assert "Copied 2 DAG folder objects" in capsys.readouterr().out


def test_report_copy_command_writes_the_same_app_with_the_copies_pinned(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Following the report's printed command keeps --name and --new-vpc: an app named
    after MWAA instead would replace the environment on deploy."""
    monkeypatch.chdir(tmp_path)
    world.expect_get_environment()
    out = Path("migrated")
    assert run_cli(out, "--name", "analytics-next", "--new-vpc") == 0
    first = (out / APP_FILE).read_text()
    (command,) = re.findall(r"`(openmwaa from-mwaa [^`]*)`", (out / REPORT_FILE).read_text())
    argv = shlex.split(command.replace(TARGET_BUCKET_PLACEHOLDER, TARGET_BUCKET))
    assert argv[:2] == ["openmwaa", "from-mwaa"]
    world.expect_get_environment()
    assert main.main(argv[1:]) == 0
    world.stubber.assert_no_pending_responses()
    second = (out / APP_FILE).read_text()
    assert 'environment_name="analytics-next"' in first
    assert 'environment_name="analytics-next"' in second
    assert "ec2.Vpc" not in second
    assert f'plugins_s3_object_version="{world.target_version("plugins.zip")}"' in second
    # The rest of the app is the first one's.
    pins = re.compile(r"^ *(#.*|\w+_s3_object_version=.*)\n", re.MULTILINE)
    assert pins.sub("", second) == pins.sub("", first)


@dataclass
class NewMemberMwaa:
    """A GetEnvironment client whose model (and response) has an output member besides
    `Environment`, as AWS may add one."""

    environment: dict[str, Any]
    meta: Any = None

    def __post_init__(self) -> None:
        data = copy.deepcopy(botocore.session.get_session().get_service_data("mwaa"))
        output = data["operations"]["GetEnvironment"]["output"]["shape"]
        data["shapes"][output]["members"]["ReplicationStatus"] = {"shape": "EnvironmentStatus"}
        model = botocore.model.ServiceModel(data, "mwaa")
        self.meta = type("Meta", (), {"region_name": REGION, "service_model": model})()

    def get_environment(self, Name: str) -> dict[str, Any]:  # noqa: N803 (boto3's casing)
        assert Name == NAME
        return {"Environment": self.environment, "ReplicationStatus": "AVAILABLE"}


def test_reads_the_environment_when_aws_adds_an_output_member(world: World, tmp_path: Path) -> None:
    world.mwaa = NewMemberMwaa(world.environment)
    out = tmp_path / "migrated"
    assert run_cli(out) == 0
    assert f'"{world.subnet_ids[0]}"' in (out / APP_FILE).read_text()


def test_force_replaces_an_existing_output_dir(world: World, tmp_path: Path) -> None:
    world.expect_get_environment()
    out = tmp_path / "migrated"
    out.mkdir()
    (out / "old.txt").write_text("old")
    assert run_cli(out, "--force") == 0
    assert sorted(p.name for p in out.iterdir()) == [APP_FILE, CDK_JSON_FILE, REPORT_FILE]
    assert [p.name for p in tmp_path.iterdir()] == ["migrated"]


# The generated app synthesizes with MWAA's settings.


@dataclass(frozen=True)
class Synthesized:
    template: assertions.Template
    stack: cdk.Stack
    world: World
    pins: dict[str, str]


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    out = tmp_path_factory.mktemp("synth") / "migrated"
    with mock_aws(), pytest.MonkeyPatch.context() as patch:
        world = build_world()
        patch.setattr(from_mwaa, "client_factory", world.factory)
        world.expect_get_environment()
        assert run_cli(out, *copy_args()) == 0
        pins = {
            "REQUIREMENTS_S3_OBJECT_VERSION": world.target_version("requirements.txt"),
            "PLUGINS_S3_OBJECT_VERSION": world.target_version("plugins.zip"),
            "STARTUP_SCRIPT_S3_OBJECT_VERSION": world.target_version("startup.sh"),
        }
    name = f"generated_app_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, out / APP_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app = module.build_app(project_app())
    (stack,) = [c for c in app.node.children if isinstance(c, cdk.Stack)]
    yield Synthesized(assertions.Template.from_stack(stack), stack, world, pins)
    sys.modules.pop(name, None)


def test_generated_app_deploys_to_mwaa_account_and_region(synthesized: Synthesized) -> None:
    assert (synthesized.stack.account, synthesized.stack.region) == (ACCOUNT, REGION)
    assert synthesized.stack.stack_name == f"openmwaa-{NAME}"


def test_generated_app_keeps_name_class_workers_and_schedulers(synthesized: Synthesized) -> None:
    t = synthesized.template
    t.has_resource_properties("AWS::Logs::LogGroup", {"LogGroupName": f"airflow-{NAME}-Task"})
    t.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": assertions.Match.object_like(
                    # mw1.medium runs 10 tasks per worker; MWAA's MinWorkers/MaxWorkers
                    {"MIN_WORKERS": "2", "MAX_WORKERS": "8", "TASKS_PER_WORKER": "10"}
                )
            }
        },
    )
    t.has_resource_properties("AWS::ECS::Service", {"DesiredCount": 3})  # Schedulers
    t.has_resource_properties(
        "AWS::ECS::TaskDefinition", {"Cpu": "2048", "Memory": "4096"}
    )  # mw1.medium's scheduler and worker


def test_generated_app_runs_the_mapped_version_with_the_pinned_copies(
    synthesized: Synthesized,
) -> None:
    synthesized.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": assertions.Match.object_like(
                    {"OPENMWAA_AIRFLOW_VERSION": "2.11.2", **synthesized.pins}
                )
            }
        },
    )


def test_generated_app_passes_options_but_no_secret(synthesized: Synthesized) -> None:
    t = synthesized.template
    t.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {
            "ContainerDefinitions": assertions.Match.array_with(
                [
                    assertions.Match.object_like(
                        {
                            "Name": "worker",
                            "Environment": assertions.Match.array_with(
                                [{"Name": "AIRFLOW__CORE__DEFAULT_TIMEZONE", "Value": TIMEZONE}]
                            ),
                        }
                    )
                ]
            )
        },
    )
    text = json.dumps(t.to_json())
    for value in SECRET_VALUES:
        assert value not in text
    assert "AIRFLOW__SMTP__SMTP_PASSWORD" not in text


def test_generated_app_uses_mwaa_network_key_window_and_tags(synthesized: Synthesized) -> None:
    t = synthesized.template
    world = synthesized.world
    t.has_resource_properties(
        "AWS::ECS::Service",
        {
            "NetworkConfiguration": {
                "AwsvpcConfiguration": assertions.Match.object_like(
                    {"Subnets": list(world.subnet_ids)}
                )
            }
        },
    )
    t.has_resource_properties(
        "AWS::RDS::DBCluster",
        {"PreferredMaintenanceWindow": "sun:23:45-mon:00:15", "KmsKeyId": world.key_arn},
    )
    t.has_resource_properties(
        "AWS::SQS::Queue", {"Tags": assertions.Match.array_with([{"Key": "team", "Value": "data"}])}
    )
    assert "aws:cloudformation:stack-name" not in json.dumps(t.to_json())


# Bad input: a message, a non-zero exit, and nothing written.


def test_fails_when_the_environment_does_not_exist(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.stubber.add_client_error(
        "get_environment",
        service_error_code="ResourceNotFoundException",
        service_message="Environment analytics-prod not found",
        http_status_code=404,
        expected_params={"Name": NAME},
    )
    out = tmp_path / "migrated"
    assert run_cli(out, *copy_args()) == 1
    assert f"no MWAA environment named '{NAME}' in {REGION}" in capsys.readouterr().err
    assert_nothing_written(out, world)


def test_fails_when_mwaa_denies_access(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.stubber.add_client_error(
        "get_environment",
        service_error_code="AccessDeniedException",
        service_message="not authorized to perform: airflow:GetEnvironment",
        http_status_code=403,
        expected_params={"Name": NAME},
    )
    out = tmp_path / "migrated"
    assert run_cli(out) == 1
    err = capsys.readouterr().err
    assert "access denied" in err
    assert "airflow:GetEnvironment" in err
    assert_nothing_written(out, world)


def test_fails_when_ec2_denies_the_subnet_lookup(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.expect_get_environment()
    deny(world.ec2, "DescribeSubnets", code="UnauthorizedOperation")
    out = tmp_path / "migrated"
    assert run_cli(out) == 1
    err = capsys.readouterr().err
    assert "ec2:DescribeSubnets" in err
    assert "--new-vpc" in err
    assert_nothing_written(out, world)


def test_fails_when_s3_denies_reading_a_named_file(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.expect_get_environment()
    deny(world.s3, "HeadObject", key="airflow/plugins.zip", code="403")
    out = tmp_path / "migrated"
    assert run_cli(out, *copy_args()) == 1
    err = capsys.readouterr().err
    assert f"s3://{SOURCE_BUCKET}/airflow/plugins.zip" in err
    assert "access denied" in err
    assert "nothing was copied" in err
    assert_nothing_written(out, world)


def test_fails_listing_every_missing_file_before_copying_any(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.expect_get_environment(
        RequirementsS3ObjectVersion="3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo",
        StartupScriptS3Path="airflow/missing-startup.sh",
    )
    out = tmp_path / "migrated"
    assert run_cli(out, *copy_args()) == 1
    err = capsys.readouterr().err
    assert "airflow/requirements.txt version 3HL4kqtJlc" in err
    assert "(named by RequirementsS3Path) does not exist" in err
    assert "airflow/missing-startup.sh" in err
    assert_nothing_written(out, world)


def test_fails_when_the_target_bucket_does_not_exist(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.expect_get_environment()
    out = tmp_path / "migrated"
    code = run_cli(out, "--copy-bucket", "--target-bucket", "not-deployed-yet")
    assert code == 1
    assert "no bucket named 'not-deployed-yet'; deploy the app first" in capsys.readouterr().err
    assert_nothing_written(out, world)


def test_fails_when_the_target_bucket_is_not_versioned(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.expect_get_environment()
    _bucket(world.s3, "unversioned", versioned=False)
    out = tmp_path / "migrated"
    assert run_cli(out, "--copy-bucket", "--target-bucket", "unversioned") == 1
    assert "is not versioned" in capsys.readouterr().err
    assert_nothing_written(out)
    assert "Contents" not in world.s3.list_objects_v2(Bucket="unversioned")


def test_fails_when_a_copy_fails_part_way_and_says_how_far_it_got(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.expect_get_environment()
    deny(world.s3, "CopyObject", key="dags/lib/helpers.py")  # the last of five
    out = tmp_path / "migrated"
    assert run_cli(out, *copy_args()) == 1
    err = capsys.readouterr().err
    assert f"copying s3://{SOURCE_BUCKET}/airflow/dags/lib/helpers.py" in err
    assert "4 of 5 objects were copied before this failure and no folder was written" in err
    assert_nothing_written(out)
    # What was copied stays (a copy cannot be undone safely); running again copies it all.
    assert world.target_keys() == ["dags/etl.py", "plugins.zip", "requirements.txt", "startup.sh"]


def test_fails_when_the_output_dir_exists_before_calling_aws(
    no_aws: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "migrated"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert run_cli(out, *copy_args()) == 1
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    assert no_aws == []  # refused before any AWS client was made


def test_fails_without_aws_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for variable in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(from_mwaa, "client_factory", None)
    out = tmp_path / "migrated"
    assert run_cli(out) == 1
    assert "no AWS credentials found" in capsys.readouterr().err
    assert_nothing_written(out)


def test_fails_without_boto3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(from_mwaa, "client_factory", None)
    monkeypatch.setitem(sys.modules, "boto3", None)
    out = tmp_path / "migrated"
    assert run_cli(out) == 1
    assert "pip install 'openmwaa[cli]'" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--copy-bucket",), "--copy-bucket needs --target-bucket"),
        (("--target-bucket", TARGET_BUCKET), "only used with --copy-bucket"),
        (("--name", "9-starts-with-a-digit"), "--name: got '9-starts-with-a-digit'"),
    ],
)
def test_fails_on_usage_errors_with_status_2(
    no_aws: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
) -> None:
    out = tmp_path / "migrated"
    assert run_cli(out, *args) == 2
    assert message in capsys.readouterr().err
    assert no_aws == []
    assert_nothing_written(out)
