"""The cost levers (issue 14): Graviton tasks, Container Insights off, the flow-log retention,
the S3 gateway endpoint and Spot workers with an on-demand base; each a prop with its default,
validated, in README's defaults table."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs

from openmwaa import AirflowEnvironment, EnvironmentClass, WorkerPool, defaults
from openmwaa.environment_props import PROP_NAMES, AirflowEnvironmentProps, resolve
from openmwaa.runtime import contracts
from openmwaa.runtime_bundle import decode_bundle, runtime_bundle_b64
from openmwaa.services import spot_strategy
from openmwaa.validation import validate
from tests.conftest import REPO_ROOT
from tests.stacks import TEST_ENV, environment_stack, shared_vpc
from tools.cdk_app import project_app

ARCHITECTURE_NAMES = re.compile(r"arm64|aarch64|x86[_-]?64|amd64|graviton|i[3-6]86", re.I)
"""Any spelling of a CPU architecture."""
LAMBDA_DIR = REPO_ROOT / "lambdas"


def problems(**props: Any) -> list[str]:
    return validate(resolve(AirflowEnvironmentProps(**props), construct_id="Airflow"))


def _template(**props: Any) -> assertions.Template:
    stack, _ = environment_stack(**props)
    return assertions.Template.from_stack(stack)


def _task_definitions(template: assertions.Template) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in template.find_resources("AWS::ECS::TaskDefinition").items()
    }


def _services(template: assertions.Template) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in template.find_resources("AWS::ECS::Service").items()
    }


@pytest.fixture(scope="module")
def spot() -> assertions.Template:
    """Spot workers with 2 on demand, a Spot pool and an on-demand pool."""
    return _template(
        worker_fargate_spot=True,
        worker_on_demand_base=2,
        worker_pools=[WorkerPool("spot", fargate_spot=True), WorkerPool("steady")],
    )


@pytest.fixture(scope="module")
def x86() -> assertions.Template:
    return _template(cpu_architecture="X86_64", worker_pools=[WorkerPool("long")])


@pytest.fixture(scope="module")
def micro() -> assertions.Template:
    return _template(environment_class=EnvironmentClass.MW1_MICRO)


# --- defaults and README -------------------------------------------------------------------


def test_the_cheaper_setting_is_the_default() -> None:
    resolved = resolve(AirflowEnvironmentProps(), construct_id="Airflow")
    assert resolved.cpu_architecture == "ARM64" == defaults.CPU_ARCHITECTURE
    assert resolved.container_insights is False
    assert resolved.flow_log_retention == logs.RetentionDays.ONE_YEAR
    assert (resolved.worker_fargate_spot, resolved.worker_on_demand_base) == (False, 0)


def _readme_row(prop: str) -> tuple[str, str]:
    section = (REPO_ROOT / "README.md").read_text().split("## Defaults", 1)[1].split("\n## ")[0]
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and f"`{prop}`" in cells[0]:
            return cells[1], cells[2]
    raise AssertionError(f"README's defaults table has no row for {prop}")


@pytest.mark.parametrize(
    ("prop", "default"),
    [
        ("cpu_architecture", f"`{defaults.CPU_ARCHITECTURE}`"),
        ("container_insights", f"`{defaults.CONTAINER_INSIGHTS}`"),
        ("flow_log_retention", "1 year"),
        ("worker_on_demand_base", str(defaults.WORKER_ON_DEMAND_BASE)),
    ],
)
def test_readme_states_each_levers_default(prop: str, default: str) -> None:
    assert prop in PROP_NAMES
    assert _readme_row(prop)[0].startswith(default)


def test_readme_points_at_the_cost_levers() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert "docs/configuration.md#cost-levers" in readme
    assert "## Cost levers" in (REPO_ROOT / "docs" / "configuration.md").read_text()


# --- Graviton --------------------------------------------------------------------------------


def _platforms(template: assertions.Template) -> set[tuple[str, str]]:
    return {
        (
            props["RuntimePlatform"]["CpuArchitecture"],
            props["RuntimePlatform"]["OperatingSystemFamily"],
        )
        for props in _task_definitions(template).values()
    }


def test_every_task_runs_on_arm64_linux_by_default(default_template: assertions.Template) -> None:
    """Every service's task, the requirements build's among them."""
    tasks = _task_definitions(default_template)
    builds = [t for t in tasks.values() if "build-requirements" in json.dumps(t)]
    assert len(builds) == 1 and len(tasks) >= 7
    assert _platforms(default_template) == {("ARM64", "LINUX")}


def test_micro_runs_its_single_task_on_arm64(micro: assertions.Template) -> None:
    assert len(_task_definitions(micro)) == 2  # the task and the requirements build
    assert _platforms(micro) == {("ARM64", "LINUX")}


def test_x86_64_switches_every_task_worker_pools_and_the_build_included(
    x86: assertions.Template,
) -> None:
    pools = [t for t in _task_definitions(x86).values() if '"worker-long"' in json.dumps(t)]
    assert pools
    assert _platforms(x86) == {("X86_64", "LINUX")}


def test_an_ecs_cpu_architecture_is_accepted_as_the_prop() -> None:
    resolved = resolve(
        AirflowEnvironmentProps(cpu_architecture=ecs.CpuArchitecture.X86_64),
        construct_id="Airflow",
    )
    assert resolved.cpu_architecture == "X86_64"
    assert problems(cpu_architecture=ecs.CpuArchitecture.ARM64) == []


@pytest.mark.parametrize("value", ["arm64", "SPARC", "", ecs.CpuArchitecture.of("RISCV")])
def test_fails_when_the_cpu_architecture_is_not_arm64_or_x86_64(value: object) -> None:
    [problem] = problems(cpu_architecture=value)
    assert problem.startswith("cpu_architecture: got ")
    assert "'ARM64', 'X86_64'" in problem


def test_the_requirements_key_carries_the_architecture_everywhere(x86: assertions.Template) -> None:
    """The build's key hashes the architecture label, which the Airflow containers, the build
    and the DAG sync function all get: a build made for x86 is never used on arm64."""
    assert contracts.CPU_ARCHITECTURE_VARIABLE in contracts.REQUIREMENTS_KEY_VARIABLES
    containers = [
        c
        for t in _task_definitions(x86).values()
        for c in t["ContainerDefinitions"]
        if c["Name"] != "openmwaa-runtime"
    ]
    assert containers
    for container in containers:
        env = {e["Name"]: e["Value"] for e in container["Environment"]}
        assert env[contracts.CPU_ARCHITECTURE_VARIABLE] == "X86_64", container["Name"]
    [sync] = [
        f["Properties"]
        for f in x86.find_resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "dag_sync.handler.handler"
    ]
    assert sync["Environment"]["Variables"][contracts.CPU_ARCHITECTURE_VARIABLE] == "X86_64"


def _container_text(container: dict[str, Any]) -> Iterator[str]:
    """What a container runs and is told: its command, entry point, health check and plain
    environment (minus the architecture label of the requirements key)."""
    for key in ("Command", "EntryPoint"):
        yield json.dumps(container.get(key, []))
    yield json.dumps(container.get("HealthCheck", {}))
    for variable in container.get("Environment", []):
        if variable["Name"] != contracts.CPU_ARCHITECTURE_VARIABLE:
            yield f"{variable['Name']}={json.dumps(variable['Value'])}"


def test_no_container_names_an_architecture_so_the_x86_e2e_runs_the_arm64_tasks(
    default_template: assertions.Template, micro: assertions.Template
) -> None:
    """The end-to-end test runs the bundled app's default template (ARM64) on an x86 machine:
    it exercises the same task definitions only if nothing but the runtime platform (which
    its harness ignores) depends on the architecture. The requirements key's label is a hash
    input, read by no code path."""
    for template in (default_template, micro):
        for props in _task_definitions(template).values():
            for container in props["ContainerDefinitions"]:
                for text in _container_text(container):
                    assert not ARCHITECTURE_NAMES.search(text), (container["Name"], text)


def test_the_runtime_the_init_container_writes_holds_no_native_code() -> None:
    """The runtime zip (written by the init container with the image's own Python) is pure
    Python: no shared object, no extension module, no ELF, and no architecture named."""
    archive = zipfile.ZipFile(io.BytesIO(decode_bundle(runtime_bundle_b64())))
    names = archive.namelist()
    assert names and all(name.endswith(".py") for name in names), names
    for name in names:
        data = archive.read(name)
        assert not data.startswith(b"\x7fELF"), name
        assert not ARCHITECTURE_NAMES.search(data.decode("utf-8")), name


def test_the_e2e_harness_ignores_the_runtime_platform() -> None:
    """The harness registers its own tasks; no module of it reads RuntimePlatform."""
    for path in (REPO_ROOT / "tests" / "e2e").rglob("*.py"):
        text = path.read_text()
        assert "RuntimePlatform" not in text and "CpuArchitecture" not in text, path


def test_every_bundled_function_runs_on_arm64_whatever_the_tasks_run(
    x86: assertions.Template,
) -> None:
    functions = [
        f["Properties"]
        for f in x86.find_resources("AWS::Lambda::Function").values()
        if str(f["Properties"].get("Handler", "")).split(".")[0]
        in {p.name for p in LAMBDA_DIR.iterdir() if p.is_dir()}
    ]
    assert len(functions) >= 3  # the DAG sync, the autoscaler, a pool's autoscaler, ...
    for props in functions:
        assert props["Architectures"] == ["arm64"], props["Handler"]


def test_the_bundled_functions_code_is_pure_python() -> None:
    """boto3 and the standard library only: nothing native that would tie them to x86."""
    skipped = {"__pycache__", ".mypy_cache"}  # left out of the asset (`bundled_code`)
    files = [p for p in LAMBDA_DIR.rglob("*") if p.is_file() and not skipped & set(p.parts)]
    assert files
    for path in files:
        assert path.suffix == ".py", path
        assert not path.read_bytes().startswith(b"\x7fELF"), path


def test_the_image_mirror_copies_every_architecture_of_the_stock_image(
    default_template: assertions.Template,
) -> None:
    """The ARM64 tasks pull the mirror's copy: it must hold the whole image index (arm64 and
    amd64), never one architecture."""
    [copy] = default_template.find_resources("Custom::CDKECRDeployment").values()
    assert copy["Properties"]["CopyImageIndex"] is True
    assert "ImageArch" not in copy["Properties"]


# --- Container Insights ----------------------------------------------------------------------


def _cluster_settings(template: assertions.Template) -> Any:
    [cluster] = template.find_resources("AWS::ECS::Cluster").values()
    return cluster["Properties"].get("ClusterSettings")


def test_container_insights_is_stated_off_by_default(default_template: assertions.Template) -> None:
    assert _cluster_settings(default_template) == [
        {"Name": "containerInsights", "Value": "disabled"}
    ]


def test_container_insights_on_when_asked() -> None:
    assert _cluster_settings(_template(container_insights=True)) == [
        {"Name": "containerInsights", "Value": "enabled"}
    ]


def test_fails_when_container_insights_is_given_with_an_existing_cluster() -> None:
    app = project_app()
    stack = cdk.Stack(app, "Own", env=TEST_ENV)
    vpc = shared_vpc(stack)
    cluster = ecs.Cluster(stack, "Cluster", vpc=vpc)
    with pytest.raises(ValueError, match=r"container_insights: given with existing_cluster"):
        AirflowEnvironment(
            stack, "Airflow", vpc=vpc, existing_cluster=cluster, container_insights=True
        )


def test_an_existing_clusters_settings_stay_its_own() -> None:
    app = project_app()
    stack = cdk.Stack(app, "Own", env=TEST_ENV)
    vpc = shared_vpc(stack)
    cluster = ecs.Cluster(
        stack, "Cluster", vpc=vpc, container_insights_v2=ecs.ContainerInsights.ENHANCED
    )
    AirflowEnvironment(stack, "Airflow", vpc=vpc, existing_cluster=cluster)
    assert _cluster_settings(assertions.Template.from_stack(stack)) == [
        {"Name": "containerInsights", "Value": "enhanced"}
    ]


def test_fails_when_container_insights_is_not_a_bool() -> None:
    [problem] = problems(container_insights="yes")
    assert problem == "container_insights: got 'yes'; allowed: True, False"


# --- the below-desired alarms' metric --------------------------------------------------------


def _function(template: assertions.Template, handler: str, pool: str = "") -> dict[str, Any]:
    [props] = [
        f["Properties"]
        for f in template.find_resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == handler
        and f["Properties"]["Environment"]["Variables"].get("WORKER_POOL", "") == pool
    ]
    return props


def _policy_statements(template: assertions.Template, role_ref: dict[str, Any]) -> list[Any]:
    return [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if role_ref in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_the_autoscaler_watches_every_service_pools_included(spot: assertions.Template) -> None:
    """It publishes TasksBelowDesired per service, so it may describe exactly those services."""
    props = _function(spot, "autoscaler.handler.handler")
    services = spot.to_json()["Resources"]
    service_ids = {k for k, v in services.items() if v["Type"] == "AWS::ECS::Service"}
    watched = props["Environment"]["Variables"]["SERVICES"]["Fn::Join"][1]
    rendered = json.dumps(watched)
    for component in [*contracts.COMPONENTS, "worker:spot", "worker:steady"]:
        assert f'\\"{component}\\":' in rendered, component
    named = {part["Fn::GetAtt"][0] for part in watched if isinstance(part, dict)}
    assert named == service_ids
    statements = _policy_statements(spot, {"Ref": props["Role"]["Fn::GetAtt"][0]})
    [watch] = [s for s in statements if s.get("Sid") == "WatchEnvironmentServices"]
    assert watch["Action"] == "ecs:DescribeServices"
    assert {r["Ref"] for r in watch["Resource"]} == service_ids


def test_a_pools_autoscaler_watches_no_service(spot: assertions.Template) -> None:
    props = _function(spot, "autoscaler.handler.handler", pool="spot")
    assert "SERVICES" not in props["Environment"]["Variables"]
    statements = _policy_statements(spot, {"Ref": props["Role"]["Fn::GetAtt"][0]})
    assert not [s for s in statements if s.get("Sid") == "WatchEnvironmentServices"]


# --- flow logs -------------------------------------------------------------------------------


def _flow_log_retention(template: assertions.Template) -> int:
    [group] = [
        g["Properties"]
        for k, g in template.find_resources("AWS::Logs::LogGroup").items()
        if k.startswith("AirflowNetworkFlowLogs")
    ]
    return int(group["RetentionInDays"])


def test_flow_logs_are_kept_a_year_by_default(default_template: assertions.Template) -> None:
    [group] = [
        g["Properties"]
        for k, g in default_template.find_resources("AWS::Logs::LogGroup").items()
        if "NetworkFlowLogs" in k
    ]
    assert group["RetentionInDays"] == 365


def test_flow_log_retention_follows_the_prop() -> None:
    template = _template(flow_log_retention=logs.RetentionDays.ONE_MONTH)
    assert _flow_log_retention(template) == 30
    template.has_resource_properties("AWS::EC2::FlowLog", {"TrafficType": "ALL"})


def test_fails_when_flow_log_retention_is_given_with_your_vpc() -> None:
    vpc: Any = object()
    [problem] = problems(vpc=vpc, flow_log_retention=logs.RetentionDays.ONE_MONTH)
    assert problem.startswith("flow_log_retention: given with vpc")


@pytest.mark.parametrize("value", [logs.RetentionDays.INFINITE, 30, "ONE_YEAR"])
def test_fails_when_flow_log_retention_is_not_a_finite_retention(value: object) -> None:
    [problem] = problems(flow_log_retention=value)
    assert problem.startswith("flow_log_retention: got ")
    assert "INFINITE" in problem


# --- the S3 gateway endpoint -----------------------------------------------------------------


def test_a_new_vpc_gets_an_s3_gateway_endpoint_on_its_private_subnets(
    default_template: assertions.Template,
) -> None:
    [endpoint] = default_template.find_resources("AWS::EC2::VPCEndpoint").values()
    props = endpoint["Properties"]
    assert props["VpcEndpointType"] == "Gateway"
    assert props["ServiceName"]["Fn::Join"][1][-1] == ".s3"
    tables = {ref["Ref"] for ref in props["RouteTableIds"]}
    assert len(tables) == 2 and all("PrivateSubnet" in t for t in tables), tables
    assert "PolicyDocument" not in props  # the default: ECR's layer buckets and yours


def test_the_s3_endpoint_is_exposed_and_none_with_your_vpc() -> None:
    _, env = environment_stack()
    assert env.network.s3_endpoint is not None
    app = project_app()
    stack = cdk.Stack(app, "Own", env=TEST_ENV)
    own = AirflowEnvironment(stack, "Airflow", vpc=shared_vpc(stack))
    assert own.network.s3_endpoint is None
    assert assertions.Template.from_stack(stack).find_resources("AWS::EC2::VPCEndpoint") == {}


# --- Spot with an on-demand base -------------------------------------------------------------


def _strategy(template: assertions.Template, prefix: str) -> Any:
    [props] = [p for k, p in _services(template).items() if k.startswith(prefix)]
    return props.get("CapacityProviderStrategy"), props.get("LaunchType")


def test_spot_workers_keep_their_on_demand_base(spot: assertions.Template) -> None:
    assert _strategy(spot, "AirflowServicesWorkerService") == (
        [
            {"CapacityProvider": "FARGATE", "Base": 2, "Weight": 0},
            {"CapacityProvider": "FARGATE_SPOT", "Weight": 1},
        ],
        None,
    )


def test_a_spot_pool_runs_all_on_spot_and_an_on_demand_pool_on_fargate(
    spot: assertions.Template,
) -> None:
    """The base is the environment's own workers'; a pool has only `fargate_spot`."""
    assert _strategy(spot, "AirflowServicesWorkerPoolspot") == (
        [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}],
        None,
    )
    assert _strategy(spot, "AirflowServicesWorkerPoolsteady") == (None, "FARGATE")


def test_the_control_plane_stays_on_demand_with_spot_workers(spot: assertions.Template) -> None:
    for logical_id, props in _services(spot).items():
        if "Worker" not in logical_id:
            assert props["LaunchType"] == "FARGATE", logical_id


def test_spot_without_a_base_runs_every_worker_on_spot() -> None:
    strategy = spot_strategy()
    assert [(s.capacity_provider, s.base, s.weight) for s in strategy] == [
        ("FARGATE_SPOT", None, 1)
    ]
    with_base = spot_strategy(3)
    assert [(s.capacity_provider, s.base, s.weight) for s in with_base] == [
        ("FARGATE", 3, 0),
        ("FARGATE_SPOT", None, 1),
    ]


def test_fails_when_the_on_demand_base_is_given_without_spot() -> None:
    [problem] = problems(worker_on_demand_base=1)
    assert problem.startswith("worker_on_demand_base: got 1 without worker_fargate_spot")


@pytest.mark.parametrize("base", [-1, True, 1.5, "2"])
def test_fails_when_the_on_demand_base_is_not_a_whole_number(base: object) -> None:
    [problem] = problems(worker_fargate_spot=True, worker_on_demand_base=base)
    assert problem.startswith(f"worker_on_demand_base: got {base!r}")


def test_fails_when_the_on_demand_base_exceeds_max_workers() -> None:
    [problem] = problems(worker_fargate_spot=True, worker_on_demand_base=11, max_workers=10)
    assert problem.startswith("worker_on_demand_base: got 11, more than max_workers 10")
    assert problems(worker_fargate_spot=True, worker_on_demand_base=10, max_workers=10) == []


def test_fails_when_the_on_demand_base_is_given_on_micro() -> None:
    [problem] = problems(
        environment_class=EnvironmentClass.MW1_MICRO,
        worker_fargate_spot=True,
        worker_on_demand_base=1,
    )
    assert problem.startswith("worker_on_demand_base: got 1; mw1.micro runs its one worker")
