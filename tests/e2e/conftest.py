"""Fixtures of the end-to-end test: real Apache Airflow started from the task definitions.

The ``airflow`` fixture builds (once, cached) the Airflow venv with tools/airflow_venv.sh,
starts a throwaway PostgreSQL and a moto server (S3, SQS, Secrets Manager, CloudWatch Logs),
creates the template's resources on them, and starts every Airflow component with the
command, entry point, environment and secrets of its container definition, changed only as
:data:`tests.e2e.provision.LOCAL_SUBSTITUTIONS` lists.

The environment is started once per test session and shared by every end-to-end module (it
takes a minute or two to boot). Before each module, a component that a previous module stopped
(the worker SIGTERM test) is started again, so every module begins with all five running.
:attr:`AirflowUnderTest.sync_root` is the local stand-in for the EFS access point (the folder
the containers mount at ``OPENMWAA_SYNC_ROOT`` and the DAG sync Lambda at ``EFS_MOUNT_PATH``)
and :attr:`AirflowUnderTest.source_bucket` the source bucket on moto (versioned, as the
template declares).

Environment knobs: ``OPENMWAA_E2E_TEMPLATE`` (a synthesized template JSON file to run instead
of synthesizing app.py), ``OPENMWAA_E2E_PYTHON`` (the Python for the Airflow venv),
``OPENMWAA_E2E_PG_BIN`` (PostgreSQL's bin directory), ``OPENMWAA_E2E_KEEP`` (keep the work
directory with every component's log).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tools.airflow_venv import airflow_venv as cached_airflow_venv

from .cfn import TaskSpec, resources_of_type, task_specs
from .localenv import LocalPostgres, MotoServer, Process, free_port, postgres_bin_dir, start_process
from .principals import ADMIN, Credentials, create_principals, enforce, read_decisions
from .provision import (
    REGION,
    LaunchSpec,
    LocalPaths,
    Provisioned,
    launch_spec,
    provision,
    volume_dirs,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SYNC_FIXTURE = Path(__file__).resolve().parent / "sync"
READY_TIMEOUT = 420.0
INIT_TIMEOUT = 60.0
COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server", "execution-api", "worker")


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


@pytest.fixture(scope="session")
def e2e_template(request: pytest.FixtureRequest) -> tuple[dict[str, Any], str]:
    """The template whose task definitions the test runs, and where it came from."""
    path = os.environ.get("OPENMWAA_E2E_TEMPLATE")
    if path:
        return json.loads(Path(path).read_text()), path
    template: dict[str, Any] = request.getfixturevalue("default_template").to_json()
    if not resources_of_type(template, "AWS::ECS::TaskDefinition"):
        pytest.fail("app.py synthesizes no ECS task definition")
    return template, "app.py (synthesized)"


@pytest.fixture(scope="session")
def airflow_venv() -> Path:
    """The cached Airflow venv (built on first use: about 2 minutes)."""
    return cached_airflow_venv()


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
    _token: str = ""
    _restarts: int = 0

    def function_principal(self, handler: str) -> Credentials:
        """The credentials of the role of the template's Lambda function with ``handler``."""
        return self.principals[function_role(self.template, handler)]

    def decisions(self) -> list[dict[str, Any]]:
        """Every authorization decision moto made since IAM enforcement began."""
        return read_decisions(self.decisions_path)

    def diagnostics(self, lines: int = 40) -> str:
        parts = [f"template: {self.source}; work dir: {self.work_dir}"]
        for name, process in self.processes.items():
            state = process.popen.poll()
            parts.append(
                f"----- {name} ({'running' if state is None else f'exited {state}'}) -----\n"
                + process.log_tail(lines)
            )
        return "\n".join(parts)

    def assert_running(self, *components: str) -> None:
        for name in components or tuple(self.processes):
            if self.processes[name].popen.poll() is not None:
                raise AssertionError(f"{name} exited\n{self.diagnostics()}")

    def restart_exited(self, timeout: float = READY_TIMEOUT) -> list[str]:
        """Start again, from its launch spec, every component whose process has exited, and
        wait until the environment is healthy (for a worker: until Celery says it is ready).
        Returns the names of the restarted components."""
        restarted = [n for n in COMPONENTS if self.processes[n].popen.poll() is not None]
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
                return worker_ready and _health(self)

            self.wait_for("the restarted components to be ready", ready, timeout, interval=2)
        return restarted

    def request(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        """Call the REST API; returns the decoded JSON."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.api_url + path, data, headers, method=method)
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def token(self) -> str:
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


def _pick_tasks(template: dict[str, Any]) -> list[TaskSpec]:
    """The task definitions to run: the first one holding each component (the one-shot
    requirements build is not a component and is not started here)."""
    chosen: dict[str, TaskSpec] = {}
    covered: set[str] = set()
    for task in task_specs(template):
        components = {c.component for c in task.containers if c.component in COMPONENTS}
        if components - covered:
            chosen[task.logical_id] = task
            covered |= components
    missing = [c for c in COMPONENTS if c not in covered]
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


LAMBDA_HANDLERS = ("dag_sync.handler.handler", "autoscaler.handler.handler")


def function_role(template: dict[str, Any], handler: str) -> str:
    """The logical ID of the role of the function whose Handler is ``handler``."""
    for resource in resources_of_type(template, "AWS::Lambda::Function").values():
        props = resource.get("Properties", {})
        if props.get("Handler") == handler:
            return str(props["Role"]["Fn::GetAtt"][0])
    raise AssertionError(f"the template has no function with handler {handler}")


def _roles_to_run_as(template: dict[str, Any], tasks: list[TaskSpec]) -> set[str]:
    roles = set()
    for task in tasks:
        if task.task_role is None or task.execution_role is None:
            raise AssertionError(f"{task.logical_id} has no task role or execution role")
        roles |= {task.task_role, task.execution_role}
    for resource in resources_of_type(template, "AWS::Lambda::Function").values():
        if resource.get("Properties", {}).get("Handler") in LAMBDA_HANDLERS:
            roles.add(str(resource["Properties"]["Role"]["Fn::GetAtt"][0]))
    return roles


def _health(env: AirflowUnderTest) -> bool:
    """The UI's health endpoint says every component is healthy, and the Task Execution API
    answers its health route."""
    health = env.request("GET", "/api/v2/monitor/health", auth=False)
    wanted = ("metadatabase", "scheduler", "triggerer", "dag_processor")
    if not all(health.get(name, {}).get("status") == "healthy" for name in wanted):
        return False
    with urllib.request.urlopen(f"{env.execution_api_url}/health", timeout=10) as response:
        return bool(json.load(response).get("status") == "healthy")


def _dag_sync_bucket(template: dict[str, Any], provisioned: Provisioned) -> str:
    """The bucket the template's DAG sync function syncs (its BUCKET_NAME), "" if none."""
    for resource in resources_of_type(template, "AWS::Lambda::Function").values():
        props = resource.get("Properties", {})
        if props.get("Handler") == "dag_sync.handler.handler":
            variables = props.get("Environment", {}).get("Variables", {})
            if "BUCKET_NAME" in variables:
                return provisioned.resolver.resolve(variables["BUCKET_NAME"])
    return ""


def _apply_bucket_versioning(
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


@pytest.fixture(scope="session")
def airflow_session(
    e2e_template: tuple[dict[str, Any], str], airflow_venv: Path
) -> Iterator[AirflowUnderTest]:
    """Every Airflow component running from its container definition, once per session."""
    template, source = e2e_template
    tasks = _pick_tasks(template)
    work_dir = Path(tempfile.mkdtemp(prefix="openmwaa-e2e-"))
    logs_dir = work_dir / "logs"
    postgres = LocalPostgres(postgres_bin_dir())
    decisions = work_dir / "iam-decisions.jsonl"
    moto = MotoServer(sys.executable, logs_dir / "moto.log", decisions)
    env: AirflowUnderTest | None = None
    try:
        postgres.start()
        moto.start()
        aws = MotoClients(moto.endpoint)
        provisioned = provision(template, aws, postgres)
        _apply_bucket_versioning(template, aws, provisioned)
        principals = create_principals(
            aws.client("iam"),
            template,
            _roles_to_run_as(template, task_specs(template)),
            provisioned.resolver,
        )
        enforce(moto.endpoint)
        aws.credentials = principals[ADMIN]
        sync_root = work_dir / "sync"
        shutil.copytree(SYNC_FIXTURE, sync_root)
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
        launches: dict[str, LaunchSpec] = {}
        init_launches: list[LaunchSpec] = []
        for task in tasks:
            volumes = volume_dirs(task, paths)
            assert task.task_role and task.execution_role
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
                init_launches.append(launch(task.container(name)))
            for spec in task.containers:
                if spec.component in COMPONENTS and spec.component not in launches:
                    launches[spec.component] = launch(spec)
        for index, launch in enumerate(init_launches):
            process = start_process(
                launch.container,
                launch.argv,
                launch.env,
                logs_dir / f"init-{index}.log",
                str(launch.cwd),
            )
            code = process.popen.wait(INIT_TIMEOUT)
            if code != 0:
                raise AssertionError(
                    f"init container {launch.container} exited {code}:\n{process.log_tail()}"
                )
        admin = json.loads(launches["api-server"].env["OPENMWAA_ADMIN_SECRET"])
        api_env = launches["api-server"].template_env
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
            launches=launches,
            principals=principals,
            decisions_path=decisions,
            template=template,
            paths=paths,
            postgres=postgres,
            moto=moto,
            sync_root=sync_root,
            source_bucket=_dag_sync_bucket(template, provisioned),
        )
        for component in COMPONENTS:
            launch = launches[component]
            env.processes[component] = start_process(
                component, launch.argv, launch.env, logs_dir / f"{component}.log", str(launch.cwd)
            )

        def ready() -> bool:
            assert env is not None
            env.assert_running()
            return _health(env)

        env.wait_for("every component to report healthy", ready, READY_TIMEOUT, interval=3)
        yield env
    finally:
        if env is not None:
            for name in (
                "api-server",
                "dag-processor",
                "triggerer",
                "worker",
                "execution-api",
                "scheduler",
            ):
                if name in env.processes:
                    env.processes[name].stop(grace=30)
        moto.stop()
        postgres.stop()
        if os.environ.get("OPENMWAA_E2E_KEEP"):
            print(f"\nend-to-end work directory kept: {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def airflow(airflow_session: AirflowUnderTest) -> AirflowUnderTest:
    """The shared running environment, with every component running when a module starts."""
    airflow_session.restart_exited()
    return airflow_session
