"""The props type, `resolve`, and the README's defaults table, against `defaults.py`."""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing

import aws_cdk as cdk
import pytest
from aws_cdk import assertions

from openmwaa import AirflowEnvironment, EnvironmentClass, WorkerPool, defaults
from openmwaa.environment_class import spec_for
from openmwaa.environment_props import PROP_NAMES, AirflowEnvironmentProps, resolve
from openmwaa.versions import SUPPORTED_AIRFLOW_VERSIONS
from tests.conftest import REPO_ROOT

SMALL = spec_for(EnvironmentClass.MW1_SMALL)
MICRO = spec_for(EnvironmentClass.MW1_MICRO)


def _construct_parameters() -> dict[str, inspect.Parameter]:
    parameters = dict(inspect.signature(AirflowEnvironment.__init__).parameters)
    for positional in ("self", "scope", "construct_id"):
        parameters.pop(positional)
    return parameters


def test_props_type_has_exactly_the_constructs_keyword_arguments() -> None:
    assert tuple(_construct_parameters()) == PROP_NAMES


def test_props_type_has_the_constructs_types_and_defaults() -> None:
    hints = typing.get_type_hints(AirflowEnvironmentProps)
    construct_hints = typing.get_type_hints(AirflowEnvironment.__init__)
    fields = {f.name: f for f in dataclasses.fields(AirflowEnvironmentProps)}
    for name, parameter in _construct_parameters().items():
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, name
        assert construct_hints[name] == hints[name], name
        assert parameter.default == fields[name].default, name


def test_resolve_applies_the_class_defaults() -> None:
    small = resolve(AirflowEnvironmentProps(), construct_id="Airflow")
    micro = resolve(
        AirflowEnvironmentProps(environment_class=EnvironmentClass.MW1_MICRO),
        construct_id="Airflow",
    )
    assert (small.environment_name, small.min_workers, small.max_workers) == ("Airflow", 1, 10)
    assert (small.schedulers, small.min_webservers, small.max_webservers) == (2, 2, 2)
    assert (micro.max_workers, micro.schedulers, micro.min_webservers) == (1, 1, 1)
    assert small.nat_gateways == defaults.NAT_GATEWAYS
    assert small.scale_in_cooldown.to_seconds() == 300
    assert small.reconcile_interval.to_minutes() == 10


def test_resolve_keeps_max_webservers_at_least_min() -> None:
    resolved = resolve(AirflowEnvironmentProps(min_webservers=4), construct_id="Airflow")
    assert resolved.max_webservers == 4


def test_resolve_gives_no_nat_gateway_default_to_your_own_vpc() -> None:
    vpc: typing.Any = object()
    assert resolve(AirflowEnvironmentProps(vpc=vpc), construct_id="Airflow").nat_gateways is None


def test_resolve_sizes_from_mw1_small_while_the_class_is_invalid() -> None:
    resolved = resolve(AirflowEnvironmentProps(environment_class="mw9"), construct_id="Airflow")
    assert resolved.environment_class == "mw9"
    assert resolved.spec == SMALL


def test_from_props_builds_what_the_keyword_arguments_build() -> None:
    props = AirflowEnvironmentProps(
        environment_name="stage",
        min_workers=0,
        worker_pools=[WorkerPool("long-running")],
    )
    templates = []
    for build in (
        lambda stack: AirflowEnvironment.from_props(stack, "Airflow", props),
        lambda stack: AirflowEnvironment(
            stack,
            "Airflow",
            environment_name="stage",
            min_workers=0,
            worker_pools=[WorkerPool("long-running")],
        ),
    ):
        stack = cdk.Stack(cdk.App(), "Stack", env=cdk.Environment(region="us-east-1"))
        build(stack)
        templates.append(assertions.Template.from_stack(stack).to_json())
    assert templates[0] == templates[1]


# --- README's defaults table --------------------------------------------------------------


def _defaults_table() -> dict[str, tuple[str, str]]:
    """README's `## Defaults` table: prop name -> (default, allowed), one entry per prop a
    row names (`a` / `b` rows name two; `*_s3_object_version` names three)."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## Defaults", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[str, str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        for name in re.findall(r"`([a-z0-9_*]+)`", cells[0]):
            matches = [p for p in PROP_NAMES if re.fullmatch(name.replace("*", ".*"), p)]
            assert matches, f"README defaults row names an unknown prop: {name}"
            for match in matches:
                rows[match] = (cells[1], cells[2])
    return rows


@pytest.fixture(scope="module")
def table() -> dict[str, tuple[str, str]]:
    return _defaults_table()


def test_readme_defaults_table_has_one_row_per_prop(table: dict[str, tuple[str, str]]) -> None:
    assert sorted(table) == sorted(PROP_NAMES)


def _minutes(duration: cdk.Duration) -> str:
    return f"{int(duration.to_minutes())} minutes"


def _retention(retention: object) -> str:
    number, unit = {"ONE_MONTH": ("1", "month"), "ONE_YEAR": ("1", "year")}[
        getattr(retention, "name", str(retention))
    ]
    return f"{number} {unit}"


def expected_defaults() -> dict[str, str]:
    """What each row's default cell must say, computed from `defaults.py`."""
    return {
        "airflow_version": f"`{defaults.AIRFLOW_VERSION}`",
        "environment_class": f"`{defaults.ENVIRONMENT_CLASS.value}`",
        "min_workers": (
            f"{defaults.MIN_WORKERS} / {defaults.max_workers(SMALL)} "
            f"(micro: 1 / {defaults.max_workers(MICRO)})"
        ),
        "schedulers": f"{defaults.schedulers(SMALL)} (micro: {defaults.schedulers(MICRO)})",
        "min_webservers": f"{defaults.min_webservers(SMALL)} / the larger of "
        f"{defaults.max_webservers(SMALL, 0)} and `min_webservers` "
        f"(micro: {defaults.min_webservers(MICRO)} / {defaults.max_webservers(MICRO, 1)})",
        "webserver_access_mode": f"`{defaults.WEBSERVER_ACCESS_MODE}`",
        "logging_configuration": (
            f"all log types at {defaults.LOG_LEVEL}, {_retention(defaults.LOG_RETENTION)}"
        ),
        "nat_gateways": str(defaults.NAT_GATEWAYS),
        "removal_policy": f"`{defaults.REMOVAL_POLICY.name}`",
        "deletion_protection": f"`{defaults.DELETION_PROTECTION}`",
        "worker_fargate_spot": f"`{defaults.WORKER_FARGATE_SPOT}`",
        "enable_execute_command": f"`{defaults.ENABLE_EXECUTE_COMMAND}`",
        "scale_in_cooldown": _minutes(defaults.SCALE_IN_COOLDOWN),
        "reconcile_interval": _minutes(defaults.RECONCILE_INTERVAL),
        "metrics_namespace": f"`{defaults.METRICS_NAMESPACE}`",
        "metrics_allow_list": f"the {len(set(defaults.METRICS_ALLOW_LIST))} environment-level",
    }


@pytest.mark.parametrize("prop", sorted(expected_defaults()))
def test_readme_states_the_default_held_in_defaults(
    table: dict[str, tuple[str, str]], prop: str
) -> None:
    default, _ = table[prop]
    assert default.startswith(expected_defaults()[prop]), (prop, default)


def test_readme_states_the_worker_pool_defaults(table: dict[str, tuple[str, str]]) -> None:
    pool = WorkerPool("q")
    _, allowed = table["worker_pools"]
    assert (
        f"WorkerPool(queue, min_workers={pool.min_workers}, max_workers={pool.max_workers}, "
        f"fargate_spot={pool.fargate_spot})" in allowed
    )


def test_readme_lists_the_supported_airflow_versions(table: dict[str, tuple[str, str]]) -> None:
    _, allowed = table["airflow_version"]
    assert re.findall(r"`([0-9.]+)`", allowed) == list(SUPPORTED_AIRFLOW_VERSIONS)


_NUMBERS = {
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "fifteen": 15,
}


def test_readme_counts_the_alarms_each_class_gets(default_template: assertions.Template) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    found = re.search(
        r"dashboard `airflow-<env>`[^,|]*, (\w+) alarms \((\w+) on mw1\.micro", readme
    )
    assert found, "README's monitoring row no longer counts the alarms"
    micro = assertions.Template.from_stack(
        _stack_with(environment_class=EnvironmentClass.MW1_MICRO)
    )
    assert len(default_template.find_resources("AWS::CloudWatch::Alarm")) == _NUMBERS[found[1]]
    assert len(micro.find_resources("AWS::CloudWatch::Alarm")) == _NUMBERS[found[2]]


def _stack_with(**props: typing.Any) -> cdk.Stack:
    stack = cdk.Stack(cdk.App(), "Stack", env=cdk.Environment(region="us-east-1"))
    AirflowEnvironment(stack, "Airflow", **props)
    return stack
