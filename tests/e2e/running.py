"""A running environment of the end-to-end test: real Airflow started from a template's task
definitions, with a moto server of its own and a database on a shared PostgreSQL server.

:func:`boot` creates the template's resources on moto, starts every Airflow component the
template defines with the command, entry point, environment and secrets of its container
definition, changed only as :data:`tests.e2e.provision.LOCAL_SUBSTITUTIONS` lists, and waits
until the environment reports healthy; :func:`shut_down` stops it. Airflow 2 templates run a
webserver and no execution-api; mw1.micro's template runs every component in one task.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .cfn import TaskSpec, resources_of_type, task_specs
from .localenv import LocalPostgres, MotoServer, Process, free_port, start_process
from .principals import ADMIN, Credentials, create_principals, enforce, read_decisions
from .provision import (
    REGION,
    LaunchSpec,
    LocalPaths,
    Provisioned,
    bind_argv,
    launch_spec,
    parse_s3_object_arn,
    provision,
    publish_environment_files,
    template_asset_dir,
    volume_dirs,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SYNC_FIXTURE = Path(__file__).resolve().parent / "sync"
READY_TIMEOUT = 420.0
INIT_TIMEOUT = 60.0
COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server", "execution-api", "worker")
STOP_ORDER = ("api-server", "dag-processor", "triggerer", "worker", "execution-api", "scheduler")


class MotoClients:
    """boto3 clients of the moto server, as the administrator unless told otherwise."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.credentials = Credentials("bootstrap", "testing", "testing")

    def client(self, name: str, principal: Credentials | None = None) -> Any:
        """A client that signs as ``principal`` (a role's user), default the admin."""
        import boto3

        credentials = principal or self.credentials
        return boto3.client(
            name,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
        )


@dataclass
class AirflowUnderTest:
    """The running environment and what the tests need to talk to it."""

    source: str
    work_dir: Path
    api_url: str
    execution_api_url: str
    admin_username: str
    admin_password: str
    queue_name: str
    task_log_group: str
    aws: MotoClients
    provisioned: Provisioned
    launches: dict[str, LaunchSpec]
    principals: dict[str, Credentials]
    decisions_path: Path
    template: dict[str, Any]
    paths: LocalPaths
    postgres: LocalPostgres
    moto: MotoServer
    processes: dict[str, Process] = field(default_factory=dict)
    sync_root: Path = Path()
    source_bucket: str = ""
    major: int = 3
    components: tuple[str, ...] = COMPONENTS
    logs_dir: Path = Path()
    _token: str = ""
    _restarts: int = 0

    def function_principal(self, handler: str) -> Credentials:
        """The credentials of the role of the template's Lambda function with ``handler``."""
        return self.principals[function_role(self.template, handler)]

    def decisions(self) -> list[dict[str, Any]]:
        """Every authorization decision moto made since IAM enforcement began."""
        return read_decisions(self.decisions_path)

    def diagnostics(self, lines: int = 40) -> str:
        """Every component's state and the tail of its log, for a failure message."""
        parts = [f"template: {self.source}; work dir: {self.work_dir}"]
        for name, process in self.processes.items():
            state = process.popen.poll()
            parts.append(
                f"----- {name} ({'running' if state is None else f'exited {state}'}) -----\n"
                + process.log_tail(lines)
            )
        return "\n".join(parts)

    def assert_running(self, *components: str) -> None:
        """Fail with diagnostics if one of ``components`` (default: all) has exited."""
        for name in components or tuple(self.processes):
            if self.processes[name].popen.poll() is not None:
                raise AssertionError(f"{name} exited\n{self.diagnostics()}")

    def restart_exited(self, timeout: float = READY_TIMEOUT) -> list[str]:
        """Start again, from its launch spec, every component whose process has exited, and
        wait until the environment is healthy (for a worker: until Celery says it is ready).
        Returns the names of the restarted components."""
        restarted = [n for n in self.components if self.processes[n].popen.poll() is not None]
        for name in restarted:
            self._restarts += 1
            launch = self.launches[name]
            old_log = self.processes[name].log_path
            log = old_log.with_name(f"{name}-restart{self._restarts}.log")
            self.processes[name] = start_process(
                name, launch.argv, launch.env, log, str(launch.cwd)
            )
            print(f"\nend-to-end: {name} had exited; started it again (log {log.name})")
        if restarted:

            def ready() -> bool:
                self.assert_running()
                worker_ready = "worker" not in restarted or bool(
                    re.search(r"celery@\S+ ready\.", self.processes["worker"].log_text())
                )
                return worker_ready and health(self)

            self.wait_for("the restarted components to be ready", ready, timeout, interval=2)
        return restarted

    def request(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        """Call the REST API (Airflow 2: basic auth, which its environments here enable); returns
        the decoded JSON."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth and self.major < 3:
            basic = f"{self.admin_username}:{self.admin_password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(basic).decode()
        elif auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.api_url + path, data, headers, method=method)
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def cli(self, *args: str, component: str = "scheduler", timeout: float = 180) -> str:
        """Run the Airflow CLI as docs/migration.md tells users to in an ECS Exec shell of
        ``component``'s container: ``python /opt/openmwaa/runtime.pyz airflow ARGS``, with the
        container's environment; returns stdout."""
        launch = self.launches[component]
        runtime = next(arg for arg in launch.command if arg.endswith("runtime.pyz"))
        python = str(self.paths.airflow_venv / "bin" / "python")
        out = subprocess.run(
            # an ECS Exec shell runs in the container: it sees the container's mounts
            bind_argv(launch.binds, [python, runtime, "airflow", *args]),
            env=launch.env,
            cwd=str(launch.cwd),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if out.returncode != 0:
            raise AssertionError(f"airflow {' '.join(args)} exited {out.returncode}:\n{out.stderr}")
        return out.stdout

    def token(self) -> str:
        """The admin user's API token (Airflow 3), fetched once."""
        if not self._token:
            body = {"username": self.admin_username, "password": self.admin_password}
            self._token = self.request("POST", "/auth/token", body, auth=False)["access_token"]
        return self._token

    def wait_for(self, what: str, check: Any, timeout: float, interval: float = 2.0) -> Any:
        """Poll ``check()`` until it returns a truthy value; fail with diagnostics."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                value = check()
            except (urllib.error.URLError, OSError, KeyError, ValueError) as error:
                last_error, value = error, None
            if value:
                return value
            time.sleep(interval)
        raise AssertionError(
            f"timed out after {timeout:.0f} s waiting for {what} (last error: {last_error})\n"
            + self.diagnostics()
        )


def template_components(template: dict[str, Any]) -> tuple[str, ...]:
    """The Airflow components the template's containers run, in :data:`COMPONENTS` order."""
    present = {c.component for t in task_specs(template) for c in t.containers}
    return tuple(c for c in COMPONENTS if c in present)


def expected_components(major: int) -> tuple[str, ...]:
    """What an environment of that Airflow major version must run: no execution-api on 2."""
    return COMPONENTS if major >= 3 else tuple(c for c in COMPONENTS if c != "execution-api")


def pick_tasks(template: dict[str, Any], components: tuple[str, ...]) -> list[TaskSpec]:
    """The task definitions to run: the first one holding each component (the one-shot
    requirements build is not a component and is not started here)."""
    chosen: dict[str, TaskSpec] = {}
    covered: set[str] = set()
    for task in task_specs(template):
        found = {c.component for c in task.containers if c.component in components}
        if found - covered:
            chosen[task.logical_id] = task
            covered |= found
    missing = [c for c in components if c not in covered]
    if missing:
        raise AssertionError(f"no container definition with OPENMWAA_COMPONENT in {missing}")
    return list(chosen.values())


def init_containers(task: TaskSpec) -> list[str]:
    """Containers the Airflow containers wait for (DependsOn SUCCESS/COMPLETE), in order."""
    order: list[str] = []
    for container in task.containers:
        for name, condition in container.depends_on:
            if condition not in ("SUCCESS", "COMPLETE"):
                raise AssertionError(f"{task.logical_id}/{container.name}: DependsOn {condition}")
            if name not in order:
                order.append(name)
    for container in task.containers:
        if container.component is None and container.name not in order:
            raise AssertionError(
                f"{task.logical_id}/{container.name}: neither an Airflow component nor an init "
                "container: the test does not know how to run it"
            )
    return order


LAMBDA_HANDLERS = (
    "dag_sync.handler.handler",
    "autoscaler.handler.handler",
    "api_access.handler.handler",
)


def function_role(template: dict[str, Any], handler: str) -> str:
    """The logical ID of the role of the function whose Handler is ``handler``."""
    for resource in resources_of_type(template, "AWS::Lambda::Function").values():
        props = resource.get("Properties", {})
        if props.get("Handler") == handler:
            return str(props["Role"]["Fn::GetAtt"][0])
    raise AssertionError(f"the template has no function with handler {handler}")


def roles_to_run_as(template: dict[str, Any], tasks: list[TaskSpec]) -> set[str]:
    """The logical IDs of the roles the test gives an IAM user: each task's task and execution
    role, and the Lambdas' roles."""
    roles = set()
    for task in tasks:
        if task.task_role is None or task.execution_role is None:
            raise AssertionError(f"{task.logical_id} has no task role or execution role")
        roles |= {task.task_role, task.execution_role}
    for resource in resources_of_type(template, "AWS::Lambda::Function").values():
        if resource.get("Properties", {}).get("Handler") in LAMBDA_HANDLERS:
            roles.add(str(resource["Properties"]["Role"]["Fn::GetAtt"][0]))
    return roles


def health(env: AirflowUnderTest) -> bool:
    """The UI's health endpoint says every component is healthy, and the Task Execution API
    (Airflow 3) answers its health route."""
    path = "/api/v2/monitor/health" if env.major >= 3 else "/health"
    status = env.request("GET", path, auth=False)
    wanted = ("metadatabase", "scheduler", "triggerer", "dag_processor")
    if not all(status.get(name, {}).get("status") == "healthy" for name in wanted):
        return False
    if env.major < 3:
        return True
    with urllib.request.urlopen(f"{env.execution_api_url}/health", timeout=10) as response:
        return bool(json.load(response).get("status") == "healthy")


def environment_file_reader(
    aws: MotoClients, principals: dict[str, Credentials]
) -> Callable[[str, str], str]:
    """(execution role's logical ID, S3 object ARN) -> the object's text, read as that role
    the way the ECS agent reads an environment file: the bucket's location, then the object."""

    def read(role: str, arn: str) -> str:
        bucket, key = parse_s3_object_arn(arn)
        s3 = aws.client("s3", principals[role])
        s3.get_bucket_location(Bucket=bucket)
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body.decode("utf-8")

    return read


def dag_sync_bucket(template: dict[str, Any], provisioned: Provisioned) -> str:
    """The bucket the template's DAG sync function syncs (its BUCKET_NAME), "" if none."""
    for resource in resources_of_type(template, "AWS::Lambda::Function").values():
        props = resource.get("Properties", {})
        if props.get("Handler") == "dag_sync.handler.handler":
            variables = props.get("Environment", {}).get("Variables", {})
            if "BUCKET_NAME" in variables:
                return provisioned.resolver.resolve(variables["BUCKET_NAME"])
    return ""


def apply_bucket_versioning(
    template: dict[str, Any], aws: MotoClients, provisioned: Provisioned
) -> None:
    """Turn on versioning for the buckets whose VersioningConfiguration enables it (what
    CloudFormation does; provision() creates the buckets without it)."""
    s3 = aws.client("s3")
    for logical_id, resource in resources_of_type(template, "AWS::S3::Bucket").items():
        props = resource.get("Properties", {})
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(
                Bucket=provisioned.resolver.refs[logical_id],
                VersioningConfiguration={"Status": "Enabled"},
            )


@dataclass
class Launches:
    """What starts an environment from a template: each component's launch spec, and the
    init containers that run to completion first."""

    components: dict[str, LaunchSpec]
    init: list[LaunchSpec]


def launches_for(
    template: dict[str, Any],
    components: tuple[str, ...],
    provisioned: Provisioned,
    principals: dict[str, Credentials],
    aws: MotoClients,
    paths: LocalPaths,
) -> Launches:
    """The launch spec of each component of ``template`` (the first container holding it),
    reading ECS secrets as each task's execution role and running as its task role."""
    result = Launches({}, [])
    for task in pick_tasks(template, components):
        volumes = volume_dirs(task, paths)
        if not (task.task_role and task.execution_role):
            raise AssertionError(f"{task.logical_id} has no task role or execution role")
        task_credentials = principals[task.task_role]
        secrets_client = aws.client("secretsmanager", principals[task.execution_role])

        def read_secret(arn: str, client: Any = secrets_client) -> str:
            value: str = client.get_secret_value(SecretId=arn)["SecretString"]
            return value

        def launch(
            spec: Any,
            task: TaskSpec = task,
            volumes: Any = volumes,
            credentials: Credentials = task_credentials,
            read_secret: Any = read_secret,
        ) -> LaunchSpec:
            return launch_spec(
                task, spec, provisioned, template, paths, volumes, credentials, read_secret
            )

        for name in init_containers(task):
            result.init.append(launch(task.container(name)))
        for spec in task.containers:
            if spec.component in components and spec.component not in result.components:
                result.components[spec.component] = launch(spec)
    bound = sorted(
        {b.container_path for s in [*result.init, *result.components.values()] for b in s.binds}
    )
    if bound and os.geteuid() != 0:
        raise AssertionError(
            f"the containers mount {bound} at those very paths, which the test does in a mount "
            "namespace of each process (unshare, mount --bind): run it as root"
        )
    return result


REQUIREMENTS_BUILD_TIMEOUT = 600.0


def requirements_build_task(template: dict[str, Any]) -> TaskSpec | None:
    """The template's one-shot requirements build task definition, if it has one."""
    tasks = [
        t
        for t in task_specs(template)
        if any(c.component == "build-requirements" for c in t.containers)
    ]
    if len(tasks) > 1:
        raise AssertionError("expected at most one requirements build task definition")
    return tasks[0] if tasks else None


def run_task_to_completion(
    task: TaskSpec,
    launch: Any,
    logs_dir: Path,
    label: str,
    timeout: float,
) -> None:
    """Run ``task``'s init containers, then its other containers one by one, each to a zero
    exit code (``launch(spec)`` makes a container's launch spec)."""
    names = init_containers(task)
    names += [c.name for c in task.containers if c.name not in names]
    for name in names:
        spec = launch(task.container(name))
        process = start_process(
            name, spec.argv, spec.env, logs_dir / f"{label}-{name}.log", str(spec.cwd)
        )
        try:
            code = process.popen.wait(timeout)
        finally:
            process.stop(grace=5)
        if code != 0:
            raise AssertionError(f"{task.logical_id}/{name} exited {code}:\n{process.log_tail()}")


def run_requirements_build(
    template: dict[str, Any],
    provisioned: Provisioned,
    principals: dict[str, Credentials],
    aws: MotoClients,
    paths: LocalPaths,
    logs_dir: Path,
) -> None:
    """Run the template's requirements build task to completion, as the DAG sync Lambda starts
    it before the services roll: components then start from its folder, with no pip install
    into the shared Airflow venv (which several components at once would race on)."""
    task = requirements_build_task(template)
    if task is None:
        return
    if not (task.task_role and task.execution_role):
        raise AssertionError(f"{task.logical_id} has no task role or execution role")
    secrets = aws.client("secretsmanager", principals[task.execution_role])

    def read_secret(arn: str) -> str:
        value: str = secrets.get_secret_value(SecretId=arn)["SecretString"]
        return value

    volumes = volume_dirs(task, paths)

    def launch(spec: Any) -> LaunchSpec:
        return launch_spec(
            task,
            spec,
            provisioned,
            template,
            paths,
            volumes,
            principals[task.task_role or ""],
            read_secret,
        )

    run_task_to_completion(task, launch, logs_dir, "requirements-build", REQUIREMENTS_BUILD_TIMEOUT)


def run_init_containers(launches: Launches, logs_dir: Path, label: str = "init") -> None:
    """Run each init container to completion, as ECS's DependsOn SUCCESS requires."""
    for index, launch in enumerate(launches.init):
        process = start_process(
            launch.container,
            launch.argv,
            launch.env,
            logs_dir / f"{label}-{index}.log",
            str(launch.cwd),
        )
        code = process.popen.wait(INIT_TIMEOUT)
        if code != 0:
            raise AssertionError(
                f"init container {launch.container} exited {code}:\n{process.log_tail()}"
            )


def start_components(env: AirflowUnderTest, names: tuple[str, ...], suffix: str = "") -> None:
    """Start ``names`` from their launch specs (logs ``<name><suffix>.log``)."""
    for name in names:
        launch = env.launches[name]
        env.processes[name] = start_process(
            name, launch.argv, launch.env, env.logs_dir / f"{name}{suffix}.log", str(launch.cwd)
        )


def wait_healthy(env: AirflowUnderTest, timeout: float = READY_TIMEOUT) -> None:
    """Until every component runs and the environment reports healthy."""

    def ready() -> bool:
        env.assert_running()
        return health(env)

    env.wait_for("every component to report healthy", ready, timeout, interval=3)


def stop_components(env: AirflowUnderTest, grace: float = 30) -> None:
    """Stop every running component, the scheduler last (as ECS stops a service's tasks)."""
    for name in STOP_ORDER:
        if name in env.processes:
            env.processes[name].stop(grace=grace)


def boot(
    template: dict[str, Any],
    source: str,
    airflow_venv: Path,
    postgres: LocalPostgres,
    *,
    work_dir: Path,
    sync_fixture: Path = SYNC_FIXTURE,
    database_prefix: str = "",
    major: int = 3,
    asset_dir: Path | None = None,
) -> AirflowUnderTest:
    """Provision ``template`` on a new moto server and a database of ``postgres``, start every
    component, wait until healthy. On failure, what was started is stopped and re-raised.

    ``asset_dir``: the cloud assembly holding the template's file assets; default the folder
    of ``OPENMWAA_E2E_TEMPLATE`` if set (without one, the environment files come from this
    checkout: see :func:`~tests.e2e.provision.environment_file_source`)."""
    components = template_components(template)
    if components != expected_components(major):
        raise AssertionError(
            f"the template runs {components}; Airflow {major} needs {expected_components(major)}"
        )
    logs_dir = work_dir / "logs"
    decisions = work_dir / "iam-decisions.jsonl"
    moto = MotoServer(sys.executable, logs_dir / "moto.log", decisions)
    env: AirflowUnderTest | None = None
    try:
        moto.start()
        aws = MotoClients(moto.endpoint)
        provisioned = provision(
            template, aws, postgres, database_prefix, asset_dir or template_asset_dir()
        )
        apply_bucket_versioning(template, aws, provisioned)
        principals = create_principals(
            aws.client("iam"),
            template,
            roles_to_run_as(template, task_specs(template)),
            provisioned.resolver,
        )
        enforce(moto.endpoint)
        aws.credentials = principals[ADMIN]
        provisioned.read_environment_file = environment_file_reader(aws, principals)
        sync_root = work_dir / "sync"
        shutil.copytree(sync_fixture, sync_root)
        paths = LocalPaths(
            airflow_venv=airflow_venv,
            sync_root=sync_root,
            work_dir=work_dir / "tasks",
            moto_endpoint=moto.endpoint,
            api_port=free_port(),
            execution_api_port=free_port(),
            worker_log_port=free_port(),
            trigger_log_port=free_port(),
        )
        launches = launches_for(template, components, provisioned, principals, aws, paths)
        run_requirements_build(template, provisioned, principals, aws, paths, logs_dir)
        run_init_containers(launches, logs_dir)
        admin = json.loads(launches.components["api-server"].env["OPENMWAA_ADMIN_SECRET"])
        api_env = launches.components["api-server"].template_env
        remote = api_env["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"]
        env = AirflowUnderTest(
            source=source,
            work_dir=work_dir,
            api_url=f"http://127.0.0.1:{paths.api_port}",
            execution_api_url=f"http://127.0.0.1:{paths.execution_api_port}/execution",
            admin_username=admin["username"],
            admin_password=admin["password"],
            queue_name=api_env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"],
            task_log_group=remote.split(":log-group:", 1)[1].split(":", 1)[0],
            aws=aws,
            provisioned=provisioned,
            launches=launches.components,
            principals=principals,
            decisions_path=decisions,
            template=template,
            paths=paths,
            postgres=postgres,
            moto=moto,
            sync_root=sync_root,
            source_bucket=dag_sync_bucket(template, provisioned),
            major=major,
            components=components,
            logs_dir=logs_dir,
        )
        start_components(env, components)
        wait_healthy(env)
        return env
    except BaseException:
        if env is not None:
            print(env.diagnostics())
            stop_components(env)
        moto.stop()
        raise


def shut_down(env: AirflowUnderTest) -> None:
    """Stop the components, all at once (nothing checks the order at the end, and one at a
    time took up to their 30 s grace each), and the moto server (the PostgreSQL server is
    shared)."""
    processes = list(env.processes.values())
    with ThreadPoolExecutor(max_workers=max(len(processes), 1)) as pool:
        list(pool.map(lambda process: process.stop(grace=30), processes))
    env.moto.stop()


def relaunch(
    env: AirflowUnderTest, template: dict[str, Any], airflow_venv: Path, major: int = 3
) -> Launches:
    """Launch specs of another template of the same stack (a redeploy: new task definitions,
    the same resources), run from ``airflow_venv``. Replaces ``env``'s launches and paths.

    The new template's environment files are published first, as ``cdk deploy`` does. The new
    tasks get new task volumes, container directories (``tasks-<n>/``) and metrics ports, as
    ECS gives a new task: the init container of the new task writes into empty volumes while
    the old tasks keep theirs. The new template's requirements build runs first, as the DAG sync
    Lambda starts it before the services roll."""
    components = template_components(template)
    generation = 2
    while (env.paths.work_dir.parent / f"tasks-{generation}").exists():
        generation += 1
    work_dir = env.paths.work_dir.parent / f"tasks-{generation}"
    paths = replace(env.paths, airflow_venv=airflow_venv, work_dir=work_dir, metrics_ports={})
    env.provisioned.environment_files.update(
        publish_environment_files(
            template, env.aws.client("s3"), env.provisioned.resolver, template_asset_dir()
        )
    )
    launches = launches_for(template, components, env.provisioned, env.principals, env.aws, paths)
    run_requirements_build(
        template, env.provisioned, env.principals, env.aws, paths, env.logs_dir / f"g{generation}"
    )
    env.paths, env.launches, env.template = paths, launches.components, template
    env.major, env.components = major, components
    return launches
