"""The end-to-end test's template reader and resolver (fast: no Airflow, no servers)."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

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
    LITERAL_MOUNTS,
    Bind,
    LaunchSpec,
    LocalPaths,
    Provisioned,
    _remap,
    bind_argv,
    cloud_map_names,
    generate_secret_string,
    launch_spec,
    secret_value,
    volume_dirs,
)

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:openmwaa/Admin-AbCdEf"


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
                        {"Name": "init", "Essential": False, "Command": ["true"]},
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


def _task(init_command: list[str], init_env: dict[str, str]) -> TaskSpec:
    """A task shaped as the template's: an init container, then a worker, with the runtime
    volume, MWAA's home volume and the EFS sync volume."""
    runtime = MountPoint("runtime", "/opt/openmwaa", False)
    home = MountPoint("mwaa-home", MWAA_HOME, False)
    sync = MountPoint("sync", SYNC, True)
    init = ContainerSpec(
        "Task", "init", None, init_command, init_env, {}, False, (), (runtime, home, sync)
    )
    worker = ContainerSpec(
        "Task",
        "worker",
        None,
        ["python", "-c", "print(open('/usr/local/airflow/dags/a.py').read())"],
        {
            "OPENMWAA_COMPONENT": "worker",
            "OPENMWAA_SYNC_ROOT": SYNC,
            "HOME_HINT": f"{MWAA_HOME}/dags and {SYNC}/dags",
        },
        {},
        True,
        (("init", "SUCCESS"),),
        (runtime, home, sync),
    )
    volumes = {"runtime": False, "mwaa-home": False, "sync": True}
    return TaskSpec("Task", (init, worker), volumes, "TaskRole", "ExecutionRole")


def _launch(task: TaskSpec, tmp_path: Path, name: str) -> tuple[LaunchSpec, dict[str, Path]]:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    if not (venv / "bin" / "python").exists():
        (venv / "bin" / "python").symlink_to(sys.executable)
    paths = LocalPaths(
        venv, tmp_path / "sync", tmp_path / "tasks", "http://127.0.0.1:9", 1, 2, 3, 4
    )
    paths.sync_root.mkdir(exist_ok=True)
    volumes = volume_dirs(task, paths)
    provisioned = Provisioned(Resolver(), {}, {}, {}, "")
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
    from openmwaa.runtime_bundle import runtime_bundle_b64
    from openmwaa.task_definitions import RUNTIME_INSTALL_COMMAND

    task = _task(list(RUNTIME_INSTALL_COMMAND), {"OPENMWAA_RUNTIME": runtime_bundle_b64()})
    init, volumes = _launch(task, tmp_path, "init")
    worker, _ = _launch(task, tmp_path, "worker")
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
