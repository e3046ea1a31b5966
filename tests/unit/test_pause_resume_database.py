"""Aurora scales to 0 ACU and pauses itself when nothing is connected, on the engine versions
that can; older ones keep the class's minimum, and synth says so."""

from __future__ import annotations

import pytest
from aws_cdk import Duration
from aws_cdk import aws_rds as rds
from aws_cdk.assertions import Annotations, Match, Template

from openmwaa import EnvironmentClass
from openmwaa.database import AUTO_PAUSE_WARNING_ID, supports_auto_pause
from openmwaa.environment_class import spec_for
from tests.stacks import environment_stack

CLUSTER = "AWS::RDS::DBCluster"


def _scaling(template: Template) -> dict[str, object]:
    [cluster] = template.find_resources(CLUSTER).values()
    scaling: dict[str, object] = cluster["Properties"]["ServerlessV2ScalingConfiguration"]
    return scaling


@pytest.mark.parametrize(
    ("version", "can"),
    [
        ("13.14", False),
        ("13.15", True),
        ("14.11", False),
        ("14.12", True),
        ("15.6", False),
        ("15.7", True),
        ("15.12", True),
        ("16.2", False),
        ("16.3", True),
        ("16.13", True),
        ("17.1", True),
        ("12.22", False),
        ("9.6.22", False),
        ("latest", False),
    ],
)
def test_auto_pause_needs_aurora_postgresql_13_15_14_12_15_7_or_16_3(
    version: str, can: bool
) -> None:
    assert supports_auto_pause(version) is can


def test_default_database_scales_to_zero_and_pauses_after_five_idle_minutes(
    default_template: Template,
) -> None:
    scaling = _scaling(default_template)
    assert scaling["MinCapacity"] == 0
    assert scaling["SecondsUntilAutoPause"] == 300


def test_an_old_engine_keeps_the_class_minimum_and_warns() -> None:
    stack, env = environment_stack(
        environment_class=EnvironmentClass.MW1_MEDIUM,
        database_engine_version=rds.AuroraPostgresEngineVersion.VER_15_4,
    )

    scaling = _scaling(Template.from_stack(stack))
    assert scaling["MinCapacity"] == spec_for(EnvironmentClass.MW1_MEDIUM).db_min_acu
    assert "SecondsUntilAutoPause" not in scaling
    assert env.database.auto_pause is None
    Annotations.from_stack(stack).has_warning(
        "*",
        Match.string_like_regexp(
            r".*Aurora PostgreSQL 15\.4 cannot scale to 0 ACU.*keeps its minimum capacity.*"
        ),
    )
    assert AUTO_PAUSE_WARNING_ID == "openmwaa:databaseAutoPause"


def test_a_minimum_given_in_database_props_wins_and_the_database_never_pauses() -> None:
    stack, env = environment_stack(database_props={"serverless_v2_min_capacity": 1})

    scaling = _scaling(Template.from_stack(stack))
    assert scaling["MinCapacity"] == 1 and "SecondsUntilAutoPause" not in scaling
    assert env.database.auto_pause is None
    Annotations.from_stack(stack).has_no_warning("*", Match.string_like_regexp(".*0 ACU.*"))


def test_an_auto_pause_given_in_database_props_is_kept() -> None:
    stack, env = environment_stack(
        database_props={"serverless_v2_auto_pause_duration": Duration.hours(1)}
    )

    assert _scaling(Template.from_stack(stack))["SecondsUntilAutoPause"] == 3600
    assert env.pauser is not None and env.database.auto_pause is not None
    assert env.database.auto_pause.to_seconds() == 3600


def test_the_pauser_is_told_whether_the_database_pauses() -> None:
    stack, _ = environment_stack(database_engine_version=rds.AuroraPostgresEngineVersion.VER_14_11)
    [function] = [
        f["Properties"]
        for f in Template.from_stack(stack).find_resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "pauser.handler.handler"
    ]
    assert function["Environment"]["Variables"]["DATABASE_AUTO_PAUSE_SECONDS"] == "0"
