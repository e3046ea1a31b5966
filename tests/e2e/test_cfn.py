"""The end-to-end test's template reader and resolver (fast: no Airflow, no servers)."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .cfn import (
    ContainerSpec,
    MountPoint,
    Resolver,
    TaskSpec,
    UnresolvableError,
    parse_secret_reference,
    task_specs,
)
from .localenv import start_process
from .principals import Credentials
from .provision import (
    ENVIRONMENT_FILE_LINE_LIMIT,
    LITERAL_MOUNTS,
    Bind,
    LaunchSpec,
    LocalPaths,
    Provisioned,
    _remap,
    bind_argv,
    cdk_custom_asset_hash,
    cloud_map_names,
    environment_file_source,
    generate_secret_string,
    launch_spec,
    parse_env_file,
    parse_s3_object_arn,
    publish_environment_files,
    secret_value,
    volume_dirs,
)

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:openmwaa/Admin-AbCdEf"
ENV_FILE_ARN = "arn:aws:s3:::cdk-assets-123456789012-us-east-1/abc.env"


@pytest.fixture
def resolver() -> Resolver:
    return Resolver(
        refs={"Queue": "http://127.0.0.1/1/q", "Logs": "airflow-x-Task"},
        attributes={("Queue", "QueueName"): "q", ("Logs", "Arn"): "arn:logs:x:*"},
        pseudo={"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"},
        types={"Queue": "AWS::SQS::Queue"},
    )


def test_resolves_intrinsics(resolver: Resolver) -> None:
    assert resolver.resolve({"Ref": "Queue"}) == "http://127.0.0.1/1/q"
    assert resolver.resolve({"Fn::GetAtt": ["Queue", "QueueName"]}) == "q"
    assert resolver.resolve({"Fn::GetAtt": "Queue.QueueName"}) == "q"
    assert resolver.resolve({"Fn::Join": [":", ["a", {"Ref": "AWS::Region"}]]}) == "a:us-east-1"
    assert resolver.resolve({"Fn::Select": [1, {"Fn::Split": ["/", "a/b/c"]}]}) == "b"
    assert resolver.resolve(8080) == "8080"


def test_resolves_sub(resolver: Resolver) -> None:
    value = {"Fn::Sub": "${AWS::Region}/${Logs}/${Queue.QueueName}/${!Literal}"}

    assert resolver.resolve(value) == "us-east-1/airflow-x-Task/q/${Literal}"
    assert resolver.resolve({"Fn::Sub": ["${X}-${Logs}", {"X": {"Ref": "Queue"}}]}) == (
        "http://127.0.0.1/1/q-airflow-x-Task"
    )


@pytest.mark.parametrize(
    "value",
    [
        {"Ref": "Missing"},
        {"Ref": "AWS::StackId"},
        {"Fn::GetAtt": ["Queue", "Arn"]},
        {"Fn::ImportValue": "x"},
        {"Fn::Sub": "${Missing}"},
    ],
)
def test_fails_loudly_on_what_it_cannot_resolve(resolver: Resolver, value: object) -> None:
    with pytest.raises(UnresolvableError):
        resolver.resolve(value)


def test_secret_references() -> None:
    whole = parse_secret_reference(ARN)
    key = parse_secret_reference(f"{ARN}:password::")

    assert (whole.secret_arn, whole.json_key) == (ARN, None)
    assert (key.secret_arn, key.json_key) == (ARN, "password")
    with pytest.raises(UnresolvableError):
        parse_secret_reference("arn:aws:ssm:us-east-1:1:parameter/x")


def test_secret_value_follows_ecs_rules() -> None:
    secrets = {ARN: json.dumps({"username": "admin", "password": "pw", "port": 5432})}

    assert json.loads(secret_value(ARN, secrets))["username"] == "admin"
    assert secret_value(f"{ARN}:password::", secrets) == "pw"
    assert secret_value(f"{ARN}:port::", secrets) == "5432"
    with pytest.raises(UnresolvableError):
        secret_value(f"{ARN}:missing::", secrets)
    with pytest.raises(UnresolvableError):
        secret_value(ARN.replace("Admin", "Other"), secrets)


def test_generated_secrets_follow_their_rules() -> None:
    spec = {
        "ExcludeCharacters": "abc@/",
        "GenerateStringKey": "password",
        "PasswordLength": 40,
        "SecretStringTemplate": '{"username": "airflow"}',
    }

    value = json.loads(generate_secret_string(spec, random.Random(1)))

    assert value["username"] == "airflow"
    assert len(value["password"]) == 40
    assert not set("abc@/") & set(value["password"])
    plain = generate_secret_string({"ExcludePunctuation": True}, random.Random(1))
    assert len(plain) == 32 and plain.isalnum()


def test_task_specs_read_containers_volumes_and_dependencies() -> None:
    template = {
        "Resources": {
            "Task": {
                "Type": "AWS::ECS::TaskDefinition",
                "Properties": {
                    "Volumes": [{"Name": "efs", "EFSVolumeConfiguration": {}}, {"Name": "tmp"}],
                    "ContainerDefinitions": [
                        {
                            "Name": "init",
                            "Essential": False,
                            "Command": ["true"],
                            "EnvironmentFiles": [{"Type": "s3", "Value": ENV_FILE_ARN}],
                        },
                        {
                            "Name": "scheduler",
                            "Command": ["python"],
                            "DependsOn": [{"ContainerName": "init", "Condition": "SUCCESS"}],
                            "MountPoints": [
                                {"SourceVolume": "efs", "ContainerPath": "/sync", "ReadOnly": True}
                            ],
                            "Environment": [{"Name": "OPENMWAA_COMPONENT", "Value": "scheduler"}],
                            "Secrets": [{"Name": "S", "ValueFrom": ARN}],
                        },
                    ],
                },
            }
        }
    }

    (task,) = task_specs(template)

    assert task.volumes == {"efs": True, "tmp": False}
    init, scheduler = task.containers
    assert (init.essential, init.component) == (False, None)
    assert init.environment_files == (ENV_FILE_ARN,)
    assert scheduler.environment_files == ()
    assert scheduler.component == "scheduler"
    assert scheduler.depends_on == (("init", "SUCCESS"),)
    assert scheduler.mount_points[0].container_path == "/sync"
    assert scheduler.secrets == {"S": ARN}


def test_remap_replaces_container_paths_only_at_path_boundaries() -> None:
    mounts = {"/opt/openmwaa": Path("/tmp/v1"), "/opt/airflow/sync": Path("/tmp/sync")}

    assert _remap("python /opt/openmwaa/runtime.pyz", mounts) == "python /tmp/v1/runtime.pyz"
    assert _remap("/opt/airflow/sync", mounts) == "/tmp/sync"
    assert _remap("/opt/airflow/sync/dags", mounts) == "/tmp/sync/dags"
    assert _remap("/opt/openmwaa2/x", mounts) == "/opt/openmwaa2/x"


def test_cloud_map_names() -> None:
    template = {
        "Resources": {
            "Ns": {
                "Type": "AWS::ServiceDiscovery::PrivateDnsNamespace",
                "Properties": {"Name": "env.internal"},
            },
            "Svc": {
                "Type": "AWS::ServiceDiscovery::Service",
                "Properties": {"Name": "api-server", "NamespaceId": {"Fn::GetAtt": ["Ns", "Id"]}},
            },
        }
    }

    assert cloud_map_names(template) == {"api-server.env.internal"}


# --- literal mounts: MWAA's AIRFLOW_HOME bound in a mount namespace ---------------------

MWAA_HOME = "/usr/local/airflow"
SYNC = "/opt/airflow/sync"


def _can_bind() -> bool:
    """Root with mount namespaces and the tools (the end-to-end test needs them too)."""
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("mount")):
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"], capture_output=True
    )
    return probe.returncode == 0


needs_binds = pytest.mark.skipif(not _can_bind(), reason="needs root and mount namespaces")


def _task(
    init_command: list[str],
    init_env: dict[str, str],
    init_files: tuple[str, ...] = (),
    worker_env: dict[str, str] | None = None,
    logical_id: str = "Task",
) -> TaskSpec:
    """A task shaped as the template's: an init container, then a worker, with the runtime
    volume, MWAA's home volume and the EFS sync volume."""
    runtime = MountPoint("runtime", "/opt/openmwaa", False)
    home = MountPoint("mwaa-home", MWAA_HOME, False)
    sync = MountPoint("sync", SYNC, True)
    init = ContainerSpec(
        logical_id,
        "init",
        None,
        init_command,
        init_env,
        {},
        False,
        (),
        (runtime, home, sync),
        init_files,
    )
    worker = ContainerSpec(
        logical_id,
        "worker",
        None,
        ["python", "-c", "print(open('/usr/local/airflow/dags/a.py').read())"],
        {
            "OPENMWAA_COMPONENT": "worker",
            "OPENMWAA_SYNC_ROOT": SYNC,
            "HOME_HINT": f"{MWAA_HOME}/dags and {SYNC}/dags",
            **(worker_env or {}),
        },
        {},
        True,
        (("init", "SUCCESS"),),
        (runtime, home, sync),
    )
    volumes = {"runtime": False, "mwaa-home": False, "sync": True}
    return TaskSpec(logical_id, (init, worker), volumes, "TaskRole", "ExecutionRole")


def _launch(
    task: TaskSpec,
    tmp_path: Path,
    name: str,
    provisioned: Provisioned | None = None,
    paths: LocalPaths | None = None,
) -> tuple[LaunchSpec, dict[str, Path]]:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    if not (venv / "bin" / "python").exists():
        (venv / "bin" / "python").symlink_to(sys.executable)
    paths = paths or LocalPaths(
        venv, tmp_path / "sync", tmp_path / "tasks", "http://127.0.0.1:9", 1, 2, 3, 4
    )
    paths.sync_root.mkdir(exist_ok=True)
    volumes = volume_dirs(task, paths)
    provisioned = provisioned or Provisioned(Resolver(), {}, {}, {}, "")
    spec = launch_spec(
        task,
        task.container(name),
        provisioned,
        {},
        paths,
        volumes,
        Credentials("task", "AKIA", "secret"),
        lambda arn: "",
    )
    return spec, volumes


def test_literal_mounts_are_bound_at_their_path_and_other_volumes_remapped(
    tmp_path: Path,
) -> None:
    assert MWAA_HOME in LITERAL_MOUNTS
    task = _task(["python", "-c", f"link('{MWAA_HOME}/dags', '{SYNC}/dags')"], {})

    init, volumes = _launch(task, tmp_path, "init")
    worker, _ = _launch(task, tmp_path, "worker")

    home = volumes["mwaa-home"]
    assert init.binds == (Bind(home, MWAA_HOME, False),)
    assert init.command == ["python", "-c", f"link('{MWAA_HOME}/dags', '{tmp_path}/sync/dags')"]
    assert init.argv[-3:] == init.command
    assert init.argv[: init.argv.index("--")][1:] == ["--mount", "--propagation", "private"]
    assert [str(home), MWAA_HOME, "rw", "--"] == init.argv[-7:-3]
    assert worker.env["OPENMWAA_SYNC_ROOT"] == str(tmp_path / "sync")
    assert worker.env["HOME_HINT"] == f"{MWAA_HOME}/dags and {tmp_path}/sync/dags"
    assert "PWD" not in worker.env


def test_no_binds_leaves_the_command_as_it_is() -> None:
    assert bind_argv((), ["python", "x"]) == ["python", "x"]


PROBE = """
import json, os, sys
mnt = sys.argv[1]
try:
    open(os.path.join(mnt, "ro", "new"), "w")
    ro_writable = True
except OSError:
    ro_writable = False
open(os.path.join(mnt, "rw", "new"), "w").write("written")
print(json.dumps({
    "env": dict(os.environ),
    "read": open(os.path.join(mnt, "rw", "f")).read(),
    "ro_writable": ro_writable,
}))
"""


@needs_binds
def test_bind_argv_runs_the_program_with_the_binds_and_exactly_its_environment(
    tmp_path: Path,
) -> None:
    rw, ro, mnt = tmp_path / "rw", tmp_path / "ro", tmp_path / "mnt"
    rw.mkdir()
    ro.mkdir()
    (rw / "f").write_text("from the volume")
    binds = (Bind(rw, str(mnt / "rw")), Bind(ro, str(mnt / "ro"), read_only=True))
    # LANG: else Python's C locale coercion adds LC_CTYPE to the probe's own environment
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "ONLY_THIS": "1"}

    out = subprocess.run(
        bind_argv(binds, [sys.executable, "-I", "-c", PROBE, str(mnt)]),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    seen = json.loads(out.stdout)
    assert seen["env"] == env
    assert seen["read"] == "from the volume"
    assert seen["ro_writable"] is False
    assert (rw / "new").read_text() == "written"
    # the mount points exist on the host, empty: the binds were the namespace's only
    assert sorted(p.name for p in mnt.iterdir()) == ["ro", "rw"]
    assert not any((mnt / "rw").iterdir()) and not any((mnt / "ro").iterdir())


@needs_binds
def test_a_failing_bind_stops_before_the_program(tmp_path: Path) -> None:
    binds = (Bind(tmp_path / "missing", str(tmp_path / "mnt")),)
    marker = tmp_path / "ran"

    result = subprocess.run(
        bind_argv(binds, ["/bin/touch", str(marker)]), capture_output=True, timeout=60
    )

    assert result.returncode == 125 and not marker.exists()


@needs_binds
def test_the_init_container_links_mwaa_paths_through_the_bind_to_the_local_sync_root(
    tmp_path: Path,
) -> None:
    """The template's own init program, run as the end-to-end test runs it: its links land in
    the task's MWAA home volume (not on the host) and point at the local sync root, and the
    worker reads a DAG file at MWAA's literal path."""
    from openmwaa.runtime_bundle import environment_file_content
    from openmwaa.task_definitions import RUNTIME_INSTALL_COMMAND

    task = _task(list(RUNTIME_INSTALL_COMMAND), {}, (ENV_FILE_ARN,))
    provisioned = _reading({ENV_FILE_ARN: environment_file_content()})
    init, volumes = _launch(task, tmp_path, "init", provisioned)
    worker, _ = _launch(task, tmp_path, "worker", provisioned)
    sync = tmp_path / "sync"
    (sync / "dags").mkdir()
    (sync / "dags" / "a.py").write_text("dag = 'from the sync root'\n")
    host_had_dags = os.path.lexists(f"{MWAA_HOME}/dags")

    for spec in (init, worker):
        log = tmp_path / f"{spec.container}.log"
        process = start_process(spec.container, spec.argv, spec.env, log, str(spec.cwd))
        assert process.popen.wait(60) == 0, log.read_text()

    home = volumes["mwaa-home"]
    assert os.readlink(home / "dags") == str(sync / "dags")
    assert os.readlink(home / "plugins") == str(sync / "plugins")
    assert os.readlink(home / "requirements" / "requirements.txt") == str(sync / "requirements.txt")
    assert os.readlink(home / "startup" / "startup.sh") == str(sync / "startup.sh")
    assert (volumes["runtime"] / "runtime.pyz").is_file()
    assert "dag = 'from the sync root'" in (tmp_path / "worker.log").read_text()
    assert os.path.lexists(f"{MWAA_HOME}/dags") == host_had_dags


# --- environment files: published as cdk deploy does, read as ECS does -------------------


def _reading(files: dict[str, str], reads: list[tuple[str, str]] | None = None) -> Provisioned:
    """A Provisioned whose environment files are ``files`` (ARN -> text), recording each read."""

    def read(role: str, arn: str) -> str:
        if reads is not None:
            reads.append((role, arn))
        return files[arn]

    return Provisioned(Resolver(), {}, {}, {}, "", dict(files), read)


def test_parse_env_file_follows_dockers_format() -> None:
    text = "# a comment\n\n  A=1\nB=two words \nC=\nD='quoted'\r\n"

    assert parse_env_file(text, "f") == {"A": "1", "B": "two words ", "C": "", "D": "'quoted'"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("NO_VALUE\n", "not VAR=VALUE"),
        ("=x\n", "not VAR=VALUE"),
        ("A B=x\n", "not VAR=VALUE"),
        ("A=x=\n", "holds '='"),
        ("A=1\nA=2\n", "set twice"),
        ("A=" + "x" * ENVIRONMENT_FILE_LINE_LIMIT + "\n", "at most"),
    ],
)
def test_fails_when_an_env_file_would_not_reach_the_container_intact(
    text: str, problem: str
) -> None:
    with pytest.raises(AssertionError, match=problem):
        parse_env_file(text, "f")


def test_the_runtime_bundle_env_file_parses_to_its_value() -> None:
    from openmwaa.runtime_bundle import environment_file_content, runtime_bundle_b64

    assert parse_env_file(environment_file_content(), "bundle") == {
        "OPENMWAA_RUNTIME": runtime_bundle_b64()
    }


def test_s3_object_arns() -> None:
    assert parse_s3_object_arn(ENV_FILE_ARN) == ("cdk-assets-123456789012-us-east-1", "abc.env")
    with pytest.raises(UnresolvableError):
        parse_s3_object_arn("arn:aws:s3:::bucket-only")


def _checkout_key() -> str:
    from openmwaa.runtime_bundle import environment_file_sha256

    return f"{cdk_custom_asset_hash(environment_file_sha256())}.env"


def test_environment_file_source_prefers_the_cloud_assembly(tmp_path: Path) -> None:
    (tmp_path / "asset.abc.env").write_text("A=from-assembly\n")

    assert environment_file_source("abc.env", tmp_path) == "A=from-assembly\n"


def test_environment_file_source_falls_back_to_this_checkouts_bundle(tmp_path: Path) -> None:
    from openmwaa.runtime_bundle import environment_file_content

    assert environment_file_source(_checkout_key(), tmp_path) == environment_file_content()
    assert environment_file_source(_checkout_key(), None) == environment_file_content()


def test_fails_when_the_template_names_another_checkouts_bundle() -> None:
    from openmwaa.runtime_bundle import environment_file_sha256

    with pytest.raises(AssertionError) as raised:
        environment_file_source("0" * 64 + ".env", None)

    assert "0" * 64 in str(raised.value)
    assert environment_file_sha256() in str(raised.value)
    assert _checkout_key() in str(raised.value)


class _FakeS3:
    """Records what publish_environment_files does."""

    class exceptions:  # noqa: N801 - boto3's attribute name
        class BucketAlreadyOwnedByYou(Exception):  # noqa: N818 - boto3's name
            pass

    def __init__(self) -> None:
        self.buckets: set[str] = set()
        self.objects: dict[tuple[str, str], bytes] = {}

    def create_bucket(self, Bucket: str) -> None:  # noqa: N803 - boto3's keyword
        if Bucket in self.buckets:
            raise self.exceptions.BucketAlreadyOwnedByYou()
        self.buckets.add(Bucket)

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> None:  # noqa: N803
        self.objects[(Bucket, Key)] = Body


def test_publish_uploads_each_environment_file_once_to_its_bucket(tmp_path: Path) -> None:
    def env_file(key: str) -> dict[str, Any]:
        arn = ["arn:", {"Ref": "AWS::Partition"}, f":s3:::assets-bucket/{key}"]
        return {"Type": "s3", "Value": {"Fn::Join": ["", arn]}}

    def task(*keys: str) -> dict[str, Any]:
        containers = [{"Name": "init", "EnvironmentFiles": [env_file(k) for k in keys]}]
        return {
            "Type": "AWS::ECS::TaskDefinition",
            "Properties": {"ContainerDefinitions": containers},
        }

    template = {"Resources": {"One": task("a.env"), "Two": task("a.env", "b.env")}}
    (tmp_path / "asset.a.env").write_text("A=1\n")
    (tmp_path / "asset.b.env").write_text("B=2\n")
    s3 = _FakeS3()

    published = publish_environment_files(
        template, s3, Resolver(pseudo={"AWS::Partition": "aws"}), tmp_path
    )

    assert published == {
        "arn:aws:s3:::assets-bucket/a.env": "A=1\n",
        "arn:aws:s3:::assets-bucket/b.env": "B=2\n",
    }
    assert s3.objects == {
        ("assets-bucket", "a.env"): b"A=1\n",
        ("assets-bucket", "b.env"): b"B=2\n",
    }
    assert s3.buckets == {"assets-bucket"}


def test_environment_files_are_read_as_the_execution_role_and_environment_wins(
    tmp_path: Path,
) -> None:
    reads: list[tuple[str, str]] = []
    files = {ENV_FILE_ARN: "OPENMWAA_RUNTIME=abc\nSHARED=from-file\n"}
    task = _task(["true"], {"SHARED": "from-environment"}, (ENV_FILE_ARN,))

    init, _ = _launch(task, tmp_path, "init", _reading(files, reads))

    assert reads == [("ExecutionRole", ENV_FILE_ARN)]
    assert init.env["OPENMWAA_RUNTIME"] == "abc"
    assert init.env["SHARED"] == init.template_env["SHARED"] == "from-environment"


def test_fails_when_there_is_no_role_to_read_an_environment_file_as(tmp_path: Path) -> None:
    task = _task(["true"], {}, (ENV_FILE_ARN,))

    with pytest.raises(AssertionError, match="no execution role"):
        _launch(task, tmp_path, "init")


def test_metrics_port_is_one_free_port_per_task(tmp_path: Path) -> None:
    from openmwaa.runtime import contracts

    settings = {"namespace": "AmazonMWAA", "environment": "e", "metrics": [], "port": 8125}
    metrics = {contracts.METRICS_VARIABLE: json.dumps({**settings, "relay": True})}
    paths = LocalPaths(
        tmp_path / "venv", tmp_path / "sync", tmp_path / "tasks", "http://127.0.0.1:9", 1, 2, 3, 4
    )
    one = _task(["true"], {**metrics}, worker_env=metrics, logical_id="One")
    two = _task(["true"], {}, worker_env=metrics, logical_id="Two")

    init, _ = _launch(one, tmp_path, "init", paths=paths)
    worker, _ = _launch(one, tmp_path, "worker", paths=paths)
    other, _ = _launch(two, tmp_path, "worker", paths=paths)

    ports = [json.loads(s.env[contracts.METRICS_VARIABLE])["port"] for s in (init, worker, other)]
    assert ports[0] == ports[1] != ports[2]
    assert 8125 not in ports
    seen = json.loads(worker.env[contracts.METRICS_VARIABLE])
    assert seen == {**settings, "relay": True, "port": ports[1]}
