from __future__ import annotations

import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import aws_ecs as ecs
from aws_cdk.assertions import Match

from openmwaa.runtime_bundle import RUNTIME_ENTRY_POINT, runtime_bundle_b64
from openmwaa.task_definitions import AIRFLOW_COMMAND, RUNTIME_INSTALL_COMMAND
from tests.conftest import template_of
from tools.cdk_app import project_app

COMPONENT_SIZES = {  # mw1.small
    "scheduler": ("512", "1024"),
    "dag-processor": ("1024", "2048"),
    "triggerer": ("256", "1024"),
    "api-server": ("512", "1024"),
    "execution-api": ("512", "1024"),
    "worker": ("1024", "2048"),
}


def task_definitions(template) -> dict[str, dict[str, Any]]:
    """Airflow component name -> task definition properties (not the requirements build's,
    see test_requirements_builder.py)."""
    result = {}
    for resource in template.find_resources("AWS::ECS::TaskDefinition").values():
        props = resource["Properties"]
        for container in props["ContainerDefinitions"]:
            if container["Name"] not in ("openmwaa-runtime", "build-requirements"):
                result[container["Name"]] = props
    return result


def container(template, name: str) -> dict[str, Any]:
    for props in task_definitions(template).values():
        for definition in props["ContainerDefinitions"]:
            if definition["Name"] == name:
                return definition
    raise AssertionError(f"no container {name}")


def env_of(definition: dict[str, Any]) -> dict[str, Any]:
    return {e["Name"]: e["Value"] for e in definition["Environment"]}


def test_services_one_task_definition_per_component_sized_by_class(default_template) -> None:
    tasks = task_definitions(default_template)
    assert set(tasks) == set(COMPONENT_SIZES)
    for name, (cpu, memory) in COMPONENT_SIZES.items():
        assert (tasks[name]["Cpu"], tasks[name]["Memory"]) == (cpu, memory), name
        assert tasks[name]["RequiresCompatibilities"] == ["FARGATE"]


def test_services_desired_counts_follow_props(default_template) -> None:
    services = default_template.find_resources("AWS::ECS::Service")
    counts = {
        k.split("Services")[1].split("Service")[0]: v["Properties"].get("DesiredCount")
        for k, v in services.items()
    }
    assert counts == {
        "Scheduler": 2,
        "DagProcessor": 1,
        "Triggerer": 1,
        "ApiServer": 2,
        "ExecutionApi": 2,
        "Worker": None,
    }


def test_services_scheduler_count_is_configurable() -> None:
    template_of(schedulers=4).has_resource_properties(
        "AWS::ECS::Service", {"DesiredCount": 4, "ServiceName": Match.absent()}
    )


def test_services_cluster_states_container_insights_off_by_default(default_template) -> None:
    default_template.has_resource_properties(
        "AWS::ECS::Cluster",
        {"ClusterSettings": [{"Name": "containerInsights", "Value": "disabled"}]},
    )


def test_services_roll_back_failed_deployments(default_template) -> None:
    for service in default_template.find_resources("AWS::ECS::Service").values():
        config = service["Properties"]["DeploymentConfiguration"]
        assert config["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
        assert config["MinimumHealthyPercent"] == 100


def test_services_run_in_private_subnets_with_the_environment_security_group(
    default_template,
) -> None:
    for service in default_template.find_resources("AWS::ECS::Service").values():
        network = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert network["AssignPublicIp"] == "DISABLED"
        [group] = network["SecurityGroups"]
        assert group["Fn::GetAtt"][0].startswith("AirflowNetworkSecurityGroup")
        assert all("PrivateSubnet" in s["Ref"] for s in network["Subnets"])


@pytest.mark.parametrize("name", sorted(COMPONENT_SIZES))
def test_services_container_runs_the_runtime_from_the_stock_image(
    default_template, name: str
) -> None:
    definition = container(default_template, name)
    # The stock image, from the environment's ECR copy (tests/unit/test_image_mirror.py).
    assert definition["Image"]["Fn::Join"][1][-1] == ":3.3.2-python3.12"
    assert definition["EntryPoint"] == RUNTIME_ENTRY_POINT
    assert definition["Command"] == AIRFLOW_COMMAND
    assert env_of(definition)["OPENMWAA_COMPONENT"] == name
    assert definition["DependsOn"] == [
        {"ContainerName": "openmwaa-runtime", "Condition": "SUCCESS"}
    ]


def test_services_init_container_writes_the_runtime_and_exits(default_template) -> None:
    runtime = container(default_template, "openmwaa-runtime")
    assert runtime["Essential"] is False
    assert runtime["EntryPoint"] == RUNTIME_ENTRY_POINT, "the image's /entrypoint would run it"
    assert runtime["Command"] == RUNTIME_INSTALL_COMMAND
    assert "Environment" not in runtime, "the runtime comes in its environment file"
    assert [f["Type"] for f in runtime["EnvironmentFiles"]] == ["s3"]
    assert runtime["MountPoints"] == [
        {"ContainerPath": "/opt/openmwaa", "SourceVolume": "openmwaa-runtime", "ReadOnly": False},
        {"ContainerPath": "/usr/local/airflow", "SourceVolume": "mwaa-home", "ReadOnly": False},
        {"ContainerPath": "/opt/airflow/sync", "SourceVolume": "airflow-sync", "ReadOnly": True},
    ]


def _remapped(script: str, paths: dict[str, Path]) -> str:
    for container_path, local in paths.items():
        script = script.replace(f"'{container_path}", f"'{local}")
    return script


def test_services_init_script_writes_the_runtime_and_mwaa_links(
    default_template, tmp_path: Path
) -> None:
    runtime = container(default_template, "openmwaa-runtime")
    [program] = [arg for arg in runtime["Command"] if "import" in arg]
    paths = {
        "/opt/openmwaa": tmp_path / "runtime",
        "/usr/local/airflow": tmp_path / "home",
        "/opt/airflow/sync": tmp_path / "sync",
    }
    for local in paths.values():
        local.mkdir()
    (tmp_path / "sync" / "dags").mkdir()
    (tmp_path / "sync" / "dags" / "a.py").write_text("dag = 1\n")
    (tmp_path / "sync" / "startup.sh").write_text("export A=1\n")
    env = {"OPENMWAA_RUNTIME": runtime_bundle_b64(), "PATH": "/usr/bin:/bin"}

    for _ in range(2):
        subprocess.run([sys.executable, "-c", _remapped(program, paths)], env=env, check=True)

    pyz = tmp_path / "runtime" / "runtime.pyz"
    assert zipfile.is_zipfile(pyz)
    assert not (tmp_path / "runtime" / "runtime.pyz.tmp").exists()
    home = tmp_path / "home"
    assert (home / "dags" / "a.py").read_text() == "dag = 1\n"
    assert (home / "startup" / "startup.sh").read_text() == "export A=1\n"
    assert os.readlink(home / "plugins") == str(tmp_path / "sync" / "plugins")
    assert os.readlink(home / "requirements" / "requirements.txt") == str(
        tmp_path / "sync" / "requirements.txt"
    )
    for folder in (home, home / "requirements", home / "startup"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o775, folder


def test_services_airflow_containers_mount_mwaa_home_writable(default_template) -> None:
    for name in COMPONENT_SIZES:
        assert {
            "ContainerPath": "/usr/local/airflow",
            "SourceVolume": "mwaa-home",
            "ReadOnly": False,
        } in container(default_template, name)["MountPoints"]


def test_services_mount_efs_read_only_over_tls_with_iam(default_template) -> None:
    for props in task_definitions(default_template).values():
        [efs] = [v for v in props["Volumes"] if v["Name"] == "airflow-sync"]
        config = efs["EFSVolumeConfiguration"]
        assert config["TransitEncryption"] == "ENABLED"
        assert config["AuthorizationConfig"]["IAM"] == "ENABLED"
    definition = container(default_template, "scheduler")
    assert {
        "ContainerPath": "/opt/airflow/sync",
        "SourceVolume": "airflow-sync",
        "ReadOnly": True,
    } in (definition["MountPoints"])


@pytest.mark.parametrize("name", sorted(COMPONENT_SIZES))
def test_services_secrets_are_ecs_secrets_never_plain_values(default_template, name: str) -> None:
    definition = container(default_template, name)
    secrets = {s["Name"] for s in definition["Secrets"]}
    assert {
        "OPENMWAA_DB_SECRET",
        "OPENMWAA_FERNET_SEED",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
    } <= secrets
    environment = env_of(definition)
    assert not secrets & set(environment)
    assert "resolve:secretsmanager" not in str(environment)
    for secret in definition["Secrets"]:
        assert "Ref" in secret["ValueFrom"] or "Fn::Join" in secret["ValueFrom"]


def test_services_only_the_api_server_reads_the_admin_secret(default_template) -> None:
    for name in COMPONENT_SIZES:
        names = {s["Name"] for s in container(default_template, name)["Secrets"]}
        assert ("OPENMWAA_ADMIN_SECRET" in names) == (name == "api-server"), name


def test_services_configure_celery_over_the_environment_queue(default_template) -> None:
    environment = env_of(container(default_template, "worker"))
    assert environment["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert environment["AIRFLOW__CELERY__BROKER_URL"] == "sqs://"
    assert environment["OPENMWAA_CELERY_QUEUE_URL"]["Ref"].startswith("AirflowBrokerQueue")
    assert environment["OPENMWAA_CELERY_QUEUE_NAME"]["Fn::GetAtt"][1] == "QueueName"
    assert environment["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "5"


@pytest.mark.parametrize("name", ["worker", "triggerer", "scheduler", "dag-processor"])
def test_services_reach_the_execution_api_at_its_cloud_map_name(
    default_template, name: str
) -> None:
    environment = env_of(container(default_template, name))
    assert environment["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
        "http://execution-api.openmwaa.airflow.internal:8081/execution/"
    )


def test_services_only_the_execution_api_is_in_cloud_map(default_template) -> None:
    default_template.has_resource_properties(
        "AWS::ServiceDiscovery::PrivateDnsNamespace", {"Name": "openmwaa.airflow.internal"}
    )
    [discovery] = default_template.find_resources("AWS::ServiceDiscovery::Service").values()
    assert discovery["Properties"]["Name"] == "execution-api"
    assert discovery["Properties"]["DnsConfig"]["DnsRecords"] == [{"TTL": 10, "Type": "A"}]
    registered = [
        logical_id
        for logical_id, service in default_template.find_resources("AWS::ECS::Service").items()
        if service["Properties"].get("ServiceRegistries")
    ]
    assert len(registered) == 1 and registered[0].startswith("AirflowServicesExecutionApi")


def test_services_servers_listen_on_their_own_ports(default_template) -> None:
    api = container(default_template, "api-server")
    execution = container(default_template, "execution-api")
    assert env_of(api)["OPENMWAA_API_SERVER_PORT"] == "8080"
    assert env_of(execution)["OPENMWAA_API_SERVER_PORT"] == "8081"
    assert api["PortMappings"][0]["ContainerPort"] == 8080
    assert execution["PortMappings"][0]["ContainerPort"] == 8081
    assert "OPENMWAA_API_SERVER_PORT" not in env_of(container(default_template, "worker"))


def test_services_execution_api_is_healthy_only_when_its_route_answers(
    default_template,
) -> None:
    check = container(default_template, "execution-api")["HealthCheck"]
    assert check["Command"][:2] == ["CMD", "python"]
    assert "/execution/health" in check["Command"][-1]
    assert (check["Interval"], check["Retries"], check["StartPeriod"]) == (10, 10, 300)
    assert "HealthCheck" not in container(default_template, "api-server")
    services = default_template.find_resources("AWS::ECS::Service")
    [execution] = [v for k, v in services.items() if "ExecutionApi" in k]
    # ECS ignores a new task's container health checks for this long: its start-up steps.
    assert execution["Properties"]["HealthCheckGracePeriodSeconds"] == 900


def test_services_execution_api_scales_on_cpu_between_the_webserver_counts() -> None:
    template = template_of(min_webservers=2, max_webservers=4)
    targets = template.find_resources("AWS::ApplicationAutoScaling::ScalableTarget")
    [execution] = [t for k, t in targets.items() if "ExecutionApi" in k]
    assert (execution["Properties"]["MinCapacity"], execution["Properties"]["MaxCapacity"]) == (
        2,
        4,
    )


def test_services_airflow_2_has_no_execution_api() -> None:
    template = template_of(airflow_version="2.11.2")
    assert "execution-api" not in task_definitions(template)
    template.resource_count_is("AWS::ServiceDiscovery::Service", 0)
    template.resource_count_is("AWS::ServiceDiscovery::PrivateDnsNamespace", 0)
    assert "AIRFLOW__CORE__EXECUTION_API_SERVER_URL" not in env_of(container(template, "worker"))


def test_services_task_logs_go_to_the_task_log_group(default_template) -> None:
    environment = env_of(container(default_template, "worker"))
    assert environment["AIRFLOW__LOGGING__REMOTE_LOGGING"] == "True"
    folder = str(environment["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"])
    assert "cloudwatch://arn:" in folder and ":log-group:airflow-openmwaa-Task" in folder


def test_services_secrets_backend_reads_the_mwaa_prefixes(default_template) -> None:
    environment = env_of(container(default_template, "scheduler"))
    assert environment["AIRFLOW__SECRETS__BACKEND"].endswith("SecretsManagerBackend")
    assert (
        '"connections_prefix": "airflow/connections"'
        in environment["AIRFLOW__SECRETS__BACKEND_KWARGS"]
    )


def test_services_container_logs_go_to_mwaa_named_groups(default_template) -> None:
    log = container(default_template, "dag-processor")["LogConfiguration"]
    assert log["LogDriver"] == "awslogs"
    assert log["Options"]["awslogs-group"]["Ref"].startswith("AirflowLogsDagProcessing")


def test_services_worker_drains_for_120_seconds(default_template) -> None:
    assert container(default_template, "worker")["StopTimeout"] == 120


def test_services_configuration_options_become_environment_variables() -> None:
    template = template_of(airflow_configuration_options={"core.parallelism": "64"})
    assert env_of(container(template, "scheduler"))["AIRFLOW__CORE__PARALLELISM"] == "64"


def test_services_log_levels_follow_logging_configuration() -> None:
    from openmwaa import LoggingConfiguration, LogLevel, ModuleLogging

    template = template_of(
        logging_configuration=LoggingConfiguration(
            scheduler=ModuleLogging(level=LogLevel.DEBUG),
            dag_processing=ModuleLogging(enabled=False),
        )
    )
    assert env_of(container(template, "scheduler"))["AIRFLOW__LOGGING__LOGGING_LEVEL"] == "DEBUG"
    assert "LogConfiguration" not in container(template, "dag-processor")


def test_services_micro_runs_every_component_in_one_task() -> None:
    template = template_of(environment_class="mw1.micro")
    template.resource_count_is("AWS::ECS::Service", 1)
    [task] = [
        t
        for k, t in template.find_resources("AWS::ECS::TaskDefinition").items()
        if not k.startswith("AirflowRequirementsBuilder")
    ]
    names = [c["Name"] for c in task["Properties"]["ContainerDefinitions"]]
    assert sorted(names) == sorted([*COMPONENT_SIZES, "openmwaa-runtime"])
    assert (task["Properties"]["Cpu"], task["Properties"]["Memory"]) == ("1024", "3072")
    worker = env_of(container(template, "worker"))
    assert worker["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == ("http://localhost:8081/execution/")
    template.resource_count_is("AWS::ServiceDiscovery::PrivateDnsNamespace", 0)


def test_services_accept_a_custom_image() -> None:
    template = template_of(image=ecs.ContainerImage.from_registry("example.com/airflow:custom"))
    assert container(template, "worker")["Image"] == "example.com/airflow:custom"


def test_services_workers_may_run_on_fargate_spot() -> None:
    template = template_of(worker_fargate_spot=True)
    template.has_resource_properties(
        "AWS::ECS::Service",
        {"CapacityProviderStrategy": [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}]},
    )


def test_services_shell_access_is_off_by_default_and_can_be_enabled(default_template) -> None:
    for service in default_template.find_resources("AWS::ECS::Service").values():
        assert service["Properties"]["EnableExecuteCommand"] is False
    template_of(enable_execute_command=True).has_resource_properties(
        "AWS::ECS::Service", {"EnableExecuteCommand": True}
    )


def test_services_airflow_2_uses_the_webserver_health_path_and_no_execution_api() -> None:
    template = template_of(airflow_version="2.11.2")
    assert "AIRFLOW__CORE__EXECUTION_API_SERVER_URL" not in env_of(container(template, "worker"))
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup", {"HealthCheckPath": "/health"}
    )


def test_services_leave_docker_hub_credentials_to_the_image_copy() -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_secretsmanager as secretsmanager
    from aws_cdk.assertions import Template

    from openmwaa import AirflowEnvironment
    from tests.stacks import TEST_ENV

    stack = cdk.Stack(project_app(), "Creds", env=TEST_ENV)
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dockerhub-AbCdEf"
    secret = secretsmanager.Secret.from_secret_complete_arn(stack, "Hub", arn)
    AirflowEnvironment(stack, "Airflow", docker_hub_credentials=secret)
    template = Template.from_stack(stack)
    assert "RepositoryCredentials" not in container(template, "worker")  # pulls from ECR
    [copy] = template.find_resources("Custom::CDKECRDeployment").values()
    assert copy["Properties"]["SrcCreds"] == arn


def test_services_spot_workers_wait_for_the_capacity_provider_association() -> None:
    template = template_of(worker_fargate_spot=True)
    [association] = template.find_resources("AWS::ECS::ClusterCapacityProviderAssociations")
    services = template.find_resources("AWS::ECS::Service")
    [worker] = [v for k, v in services.items() if "WorkerService" in k]
    assert association in worker["DependsOn"]


# --- Airflow options sized from the environment (issue 8, items 5-9) ---------------------


@pytest.fixture(scope="module")
def micro_template():  # type: ignore[no-untyped-def]
    return template_of(environment_class="mw1.micro")


@pytest.mark.parametrize("name", sorted(COMPONENT_SIZES))
def test_services_every_component_knows_the_environment_url(default_template, name: str) -> None:
    environment = env_of(container(default_template, name))
    [scheme, host] = environment["AIRFLOW__API__BASE_URL"]["Fn::Join"][1]
    assert scheme == "http://"
    assert host["Fn::GetAtt"][0].startswith("AirflowWebAccessLoadBalancer")
    assert host["Fn::GetAtt"][1] == "DNSName"
    assert "AIRFLOW__FAB__COOKIE_SECURE" not in environment, "a Secure cookie needs HTTPS"


def test_services_https_environment_url_is_the_domain_and_cookies_are_secure() -> None:
    from aws_cdk.assertions import Template

    from tests.stacks import public_https_stack

    environment = env_of(container(Template.from_stack(public_https_stack()), "api-server"))
    assert environment["AIRFLOW__API__BASE_URL"] == "https://airflow.example.com"
    assert environment["AIRFLOW__FAB__COOKIE_SECURE"] == "True"


def test_services_airflow_2_webserver_knows_its_url_and_trusts_the_load_balancer() -> None:
    environment = env_of(container(template_of(airflow_version="2.11.2"), "api-server"))
    assert environment["AIRFLOW__WEBSERVER__BASE_URL"]["Fn::Join"][1][0] == "http://"
    assert environment["AIRFLOW__WEBSERVER__ENABLE_PROXY_FIX"] == "True"
    assert "AIRFLOW__API__BASE_URL" not in environment


def test_services_task_queued_timeout_outlasts_a_worker_cold_start(default_template) -> None:
    from openmwaa.container_environment import TASK_QUEUED_TIMEOUT_SECONDS, cold_start_seconds
    from openmwaa.runtime import requirements, startup_steps

    worst = cold_start_seconds()
    assert worst >= startup_steps.STARTUP_SCRIPT_TIMEOUT + requirements.REQUIREMENTS_TIMEOUT + 60
    assert worst <= TASK_QUEUED_TIMEOUT_SECONDS == 1200
    for name in ("scheduler", "worker"):
        environment = env_of(container(default_template, name))
        assert environment["AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT"] == "1200"


@pytest.mark.parametrize(
    ("version", "variable"),
    [
        ("3.3.2", "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"),
        ("2.11.2", "AIRFLOW__SCHEDULER__SCHEDULER_ZOMBIE_TASK_THRESHOLD"),
    ],
)
def test_services_notice_a_dead_worker_within_two_minutes(version: str, variable: str) -> None:
    template = template_of(airflow_version=version)
    assert env_of(container(template, "scheduler"))[variable] == "90"
    overridden = template_of(
        airflow_version=version,
        airflow_configuration_options={
            variable.removeprefix("AIRFLOW__").replace("__", ".", 1).lower(): "600"
        },
    )
    assert env_of(container(overridden, "scheduler"))[variable] == "600"


@pytest.mark.parametrize("version", ["3.3.2", "2.11.2"])
def test_services_scheduler_rides_out_a_minute_of_broker_outage(version: str) -> None:
    environment = env_of(container(template_of(airflow_version=version), "scheduler"))
    # one send attempt per scheduler loop of at least 1 s, each timing out after 1 s
    assert int(environment["AIRFLOW__CELERY__TASK_PUBLISH_MAX_RETRIES"]) >= 30


@pytest.mark.parametrize(
    ("max_workers", "tasks_per_worker", "schedulers", "expected"),
    [(10, 5, 2, 25), (25, 5, 2, 63), (1, 3, 1, 3), (200, 80, 5, 3200), (3, 5, 5, 3)],
)
def test_parallelism_per_scheduler_covers_the_workers(
    max_workers: int, tasks_per_worker: int, schedulers: int, expected: int
) -> None:
    from openmwaa.container_environment import parallelism_per_scheduler

    assert parallelism_per_scheduler(max_workers, tasks_per_worker, schedulers) == expected
    assert expected * schedulers >= max_workers * tasks_per_worker


def test_services_parallelism_and_default_pool_follow_max_workers(default_template) -> None:
    environment = env_of(container(default_template, "scheduler"))
    assert environment["AIRFLOW__CORE__PARALLELISM"] == "25"  # 2 schedulers x 25 >= 10 x 5
    assert environment["AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT"] == "50"
    environment = env_of(container(template_of(max_workers=25), "scheduler"))
    assert environment["AIRFLOW__CORE__PARALLELISM"] == "63"  # 2 x 63 >= 25 x 5
    assert environment["AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT"] == "125"


def test_services_users_may_override_the_sized_defaults() -> None:
    options = {
        "scheduler.task_queued_timeout": "3600",
        "core.parallelism": "7",
        "secrets.use_cache": "False",
        "api.base_url": "https://airflow.internal.example.com",
    }
    environment = env_of(container(template_of(airflow_configuration_options=options), "scheduler"))
    for option, value in options.items():
        section, key = option.upper().split(".")
        assert environment[f"AIRFLOW__{section}__{key}"] == value


def test_services_secrets_cache_is_on(default_template) -> None:
    for name in COMPONENT_SIZES:
        assert env_of(container(default_template, name))["AIRFLOW__SECRETS__USE_CACHE"] == "True"


def test_services_workers_hold_scale_in_protection(default_template) -> None:
    assert env_of(container(default_template, "worker"))["OPENMWAA_TASK_PROTECTION"] == "on"


def test_services_start_new_tasks_first_but_micro_stops_its_one_task_first(
    default_template, micro_template
) -> None:
    for service in default_template.find_resources("AWS::ECS::Service").values():
        config = service["Properties"]["DeploymentConfiguration"]
        assert (config["MinimumHealthyPercent"], config["MaximumPercent"]) == (100, 200)
    [micro] = micro_template.find_resources("AWS::ECS::Service").values()
    config = micro["Properties"]["DeploymentConfiguration"]
    assert (config["MinimumHealthyPercent"], config["MaximumPercent"]) == (0, 100)


def test_services_micro_worker_has_no_scale_in_protection(micro_template) -> None:
    environment = env_of(container(micro_template, "worker"))
    assert environment["OPENMWAA_TASK_PROTECTION"] == "off"
    assert env_of(container(micro_template, "scheduler"))["AIRFLOW__CORE__PARALLELISM"] == "3"


@pytest.mark.parametrize(
    ("environment_class", "api_workers", "execution_workers"),
    [
        ("mw1.micro", "1", "1"),
        ("mw1.small", "1", "1"),
        ("mw1.medium", "1", "1"),
        ("mw1.large", "2", "2"),
        ("mw1.xlarge", "4", "2"),
        ("mw1.2xlarge", "8", "2"),
    ],
)
def test_services_api_servers_are_sized_by_class(
    environment_class: str, api_workers: str, execution_workers: str
) -> None:
    props: dict[str, Any] = {"environment_class": environment_class}
    if environment_class == "mw1.micro":
        props.update(min_workers=1, max_workers=1)
    template = template_of(**props)
    api = env_of(container(template, "api-server"))
    assert api["AIRFLOW__API__WORKERS"] == api_workers
    assert api["AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE"] == "5"
    assert api["AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW"] == "40"
    execution = env_of(container(template, "execution-api"))
    assert execution["AIRFLOW__API__WORKERS"] == execution_workers
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW" not in execution
    assert "AIRFLOW__API__WORKERS" not in env_of(container(template, "scheduler"))


def test_services_airflow_2_webserver_keeps_airflow_defaults() -> None:
    environment = env_of(container(template_of(airflow_version="2.11.2"), "api-server"))
    assert "AIRFLOW__API__WORKERS" not in environment
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW" not in environment


def test_services_users_may_resize_the_api_server() -> None:
    template = template_of(
        airflow_configuration_options={"api.workers": "3", "database.sql_alchemy_pool_size": "9"}
    )
    api = env_of(container(template, "api-server"))
    assert (api["AIRFLOW__API__WORKERS"], api["AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE"]) == (
        "3",
        "9",
    )
