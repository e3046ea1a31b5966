"""The requirements build as the template wires it: its task definition, who may start it,
the key's inputs, the alarm."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match

from tests.conftest import template_of

BUILD_TASK_PREFIX = "AirflowRequirementsBuilderTask"


def build_task(template: Any) -> tuple[str, dict[str, Any]]:
    [(logical_id, task)] = [
        (k, v)
        for k, v in template.find_resources("AWS::ECS::TaskDefinition").items()
        if k.startswith(BUILD_TASK_PREFIX)
    ]
    return logical_id, task["Properties"]


def container(props: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [c for c in props["ContainerDefinitions"] if c["Name"] == name]
    return found


def env_of(definition: dict[str, Any]) -> dict[str, Any]:
    return {e["Name"]: e["Value"] for e in definition.get("Environment", [])}


def dag_sync(template: Any) -> dict[str, Any]:
    [fn] = [
        f["Properties"]
        for f in template.find_resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "dag_sync.handler.handler"
    ]
    return fn


def statements(template: Any, sid: str) -> list[dict[str, Any]]:
    return [
        s
        for p in template.find_resources("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == sid
    ]


def test_requirements_build_runs_the_runtime_in_its_role(default_template) -> None:
    _, props = build_task(default_template)

    build = container(props, "build-requirements")
    assert env_of(build)["OPENMWAA_COMPONENT"] == "build-requirements"
    assert build["Command"] == ["python", "/opt/openmwaa/runtime.pyz"]
    assert build["DependsOn"] == [{"ContainerName": "openmwaa-runtime", "Condition": "SUCCESS"}]
    assert "Secrets" not in build
    assert container(props, "openmwaa-runtime")["EnvironmentFiles"]


def test_requirements_build_alone_mounts_the_sync_root_read_write(default_template) -> None:
    _, props = build_task(default_template)
    [sync] = [v for v in props["Volumes"] if "EFSVolumeConfiguration" in v]
    build = container(props, "build-requirements")
    [mount] = [m for m in build["MountPoints"] if m["SourceVolume"] == sync["Name"]]

    assert mount == {
        "ContainerPath": "/opt/airflow/sync",
        "ReadOnly": False,
        "SourceVolume": sync["Name"],
    }
    assert sync["EFSVolumeConfiguration"]["TransitEncryption"] == "ENABLED"
    assert sync["EFSVolumeConfiguration"]["AuthorizationConfig"]["IAM"] == "ENABLED"
    read_only = []
    for key, task in default_template.find_resources("AWS::ECS::TaskDefinition").items():
        if key.startswith(BUILD_TASK_PREFIX):
            continue
        for definition in task["Properties"]["ContainerDefinitions"]:
            for point in definition.get("MountPoints", []):
                if point["ContainerPath"] == "/opt/airflow/sync":
                    assert point["ReadOnly"] is True, definition["Name"]
                    read_only.append(definition["Name"])
    assert "worker" in read_only and "scheduler" in read_only


def test_requirements_build_task_role_may_only_write_the_file_system(default_template) -> None:
    [role_policy] = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for k, p in default_template.find_resources("AWS::IAM::Policy").items()
        if k.startswith("AirflowRequirementsBuilderTaskRoleDefaultPolicy")
    ]

    actions = {a for s in role_policy for a in _list(s["Action"])}
    assert actions == {"elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"}
    for statement in role_policy:
        [file_system, attribute] = statement["Resource"]["Fn::GetAtt"]
        assert file_system.startswith("AirflowSharedStorageFileSystem") and attribute == "Arn"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_dag_sync_may_run_only_the_build_task_in_its_cluster(default_template) -> None:
    logical_id, _ = build_task(default_template)

    [run] = statements(default_template, "StartRequirementsBuild")
    assert run["Action"] == "ecs:RunTask"
    assert run["Resource"] == {"Ref": logical_id}
    assert list(run["Condition"]["ArnEquals"]) == ["ecs:cluster"]
    [passrole] = statements(default_template, "PassRequirementsBuildRoles")
    assert passrole["Action"] == "iam:PassRole"
    roles = sorted(r["Fn::GetAtt"][0] for r in passrole["Resource"])
    assert len(roles) == 2
    assert roles[0].startswith("AirflowRequirementsBuilderTaskExecutionRole")
    assert roles[1].startswith("AirflowRequirementsBuilderTaskRole")
    assert passrole["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }


def test_dag_sync_knows_the_build_and_the_keys_inputs(default_template) -> None:
    logical_id, _ = build_task(default_template)
    variables = dag_sync(default_template)["Environment"]["Variables"]

    assert variables["BUILD_TASK_DEFINITION"] == {"Ref": logical_id}
    assert "Fn::Join" in variables["BUILD_SUBNETS"]
    assert "Fn::GetAtt" in variables["BUILD_SECURITY_GROUPS"]
    components = []
    for task in default_template.find_resources("AWS::ECS::TaskDefinition").values():
        for definition in task["Properties"]["ContainerDefinitions"]:
            values = env_of(definition)
            if "OPENMWAA_COMPONENT" not in values:
                continue
            for name in ("OPENMWAA_AIRFLOW_VERSION", "OPENMWAA_PYTHON_VERSION"):
                assert values[name] == variables[name], (definition["Name"], name)
            assert "OPENMWAA_CONSTRAINTS_URL" not in values
            components.append(values["OPENMWAA_COMPONENT"])
    assert "build-requirements" in components and "worker" in components


def test_initial_sync_waits_for_the_image_the_build_pulls(default_template) -> None:
    [trigger] = default_template.find_resources("Custom::Trigger").values()
    depends = trigger.get("DependsOn", [])

    assert any(d.startswith("AirflowImageMirror") for d in depends)


def test_failed_requirements_build_alarms_to_the_alarm_topic(default_template) -> None:
    default_template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "RequirementsBuildFailed",
            "Namespace": "OpenMWAA",
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "AlarmActions": [{"Ref": Match.string_like_regexp("AlarmTopic")}],
        },
    )


def test_micro_environment_has_the_requirements_build_too() -> None:
    template = template_of(environment_class="mw1.micro")

    logical_id, props = build_task(template)
    assert container(props, "build-requirements")
    assert dag_sync(template)["Environment"]["Variables"]["BUILD_TASK_DEFINITION"] == {
        "Ref": logical_id
    }
