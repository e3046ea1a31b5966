"""The pauser's pure core: the event, the configuration, the state and every decision."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from pauser import core
from pauser.core import (
    Action,
    Config,
    ConfigError,
    EventError,
    Observation,
    Service,
    SetAlarmActions,
    SetDesiredCount,
    SetRule,
    SetScaling,
    Settle,
    State,
)

SCHEDULER = Service("svc-scheduler", "scheduler", 2)
API = Service("svc-api", "api-server", 2, scaled=True)
WORKER = Service("svc-worker", "worker", 1)
POOL = Service("svc-pool", "worker:long", 0)
CONFIG = Config(
    environment_name="dev",
    stack_name="DevStack",
    cluster_name="dev-cluster",
    services=(SCHEDULER, API, WORKER, POOL),
    rules=("rule-main", "rule-pool"),
    alarms=("alarm-heartbeat", "alarm-api"),
    settle_seconds=130,
    database_auto_pause_seconds=300,
)


def observed(desired: dict[str, int], enabled: bool | dict[str, bool]) -> Observation:
    rules = enabled if isinstance(enabled, dict) else dict.fromkeys(CONFIG.rules, enabled)
    return Observation(desired=desired, rules_enabled=rules)


RUNNING = observed({"svc-scheduler": 2, "svc-api": 3, "svc-worker": 4, "svc-pool": 0}, True)
PAUSED = observed(dict.fromkeys(("svc-scheduler", "svc-api", "svc-worker", "svc-pool"), 0), False)


# --- the event ---------------------------------------------------------------------------


@pytest.mark.parametrize("action", list(Action))
def test_parse_action_reads_pause_and_resume(action: Action) -> None:
    assert core.parse_action({"action": action.value}) is action


@pytest.mark.parametrize(
    "event", [{}, {"action": "stop"}, {"action": "PAUSE"}, {"action": None}, "pause", None, []]
)
def test_fails_when_the_event_is_not_a_pauser_event(event: Any) -> None:
    with pytest.raises(EventError, match=r'\{"action": "pause"\} or \{"action": "resume"\}'):
        core.parse_action(event)


def test_a_long_malformed_event_is_shortened_in_the_error() -> None:
    with pytest.raises(EventError) as raised:
        core.parse_action({"action": "x" * 1000})
    assert len(str(raised.value)) < 300


# --- the configuration -------------------------------------------------------------------


def _env(**overrides: str) -> dict[str, str]:
    env = {
        "ENVIRONMENT_NAME": "dev",
        "STACK_NAME": "DevStack",
        "CLUSTER_NAME": "dev-cluster",
        "SERVICES": json.dumps([["svc-a", "scheduler", 2, 0], ["svc-b", "api-server", 1, 1]]),
        "RULES": json.dumps(["rule-a"]),
        "ALARMS": json.dumps(["alarm-a", "alarm-b"]),
        "SETTLE_SECONDS": "130",
        "DATABASE_AUTO_PAUSE_SECONDS": "300",
    }
    env.update(overrides)
    return env


def test_config_reads_the_variables_the_construct_sets() -> None:
    config = Config.from_env(_env())

    assert config.services == (
        Service("svc-a", "scheduler", 2, False),
        Service("svc-b", "api-server", 1, True),
    )
    assert (config.rules, config.alarms) == (("rule-a",), ("alarm-a", "alarm-b"))
    assert (config.settle_seconds, config.database_auto_pause_seconds) == (130, 300)
    assert (config.stack_name, config.cluster_name) == ("DevStack", "dev-cluster")


def test_config_without_rules_alarms_or_settle_is_mw1_micro() -> None:
    env = _env(RULES="[]")
    del env["ALARMS"], env["SETTLE_SECONDS"], env["DATABASE_AUTO_PAUSE_SECONDS"]
    config = Config.from_env(env)
    assert (config.rules, config.alarms, config.settle_seconds) == ((), (), 0)


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"STACK_NAME": " "}, "STACK_NAME is required"),
        ({"SERVICES": "not json"}, "SERVICES: not JSON"),
        ({"SERVICES": "{}"}, "SERVICES: must be a JSON list"),
        ({"SERVICES": "[]"}, "SERVICES: at least one service"),
        ({"SERVICES": '[["svc", "scheduler", -1, 0]]'}, "is not [name, label"),
        ({"SERVICES": '[["svc", "scheduler", 1]]'}, "is not [name, label"),
        ({"RULES": '["", 3]'}, "RULES: every item must be a non-empty string"),
        ({"SETTLE_SECONDS": "soon"}, "SETTLE_SECONDS='soon': must be a number"),
        ({"SETTLE_SECONDS": "-1"}, "must be a finite number >= 0"),
    ],
)
def test_fails_when_a_variable_is_invalid(overrides: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match="invalid pauser configuration") as raised:
        Config.from_env(_env(**overrides))
    assert problem in str(raised.value)


def test_config_error_lists_every_problem() -> None:
    env = _env(CLUSTER_NAME="", SETTLE_SECONDS="x")
    with pytest.raises(ConfigError) as raised:
        Config.from_env(env)
    assert "CLUSTER_NAME is required" in str(raised.value)
    assert "SETTLE_SECONDS" in str(raised.value)


# --- the state ---------------------------------------------------------------------------


def test_every_service_at_zero_and_every_rule_off_is_paused() -> None:
    assert core.classify(CONFIG, PAUSED) is State.PAUSED


def test_rules_on_and_services_at_their_counts_is_running() -> None:
    assert core.classify(CONFIG, RUNNING) is State.RUNNING


def test_workers_scaled_to_zero_by_the_autoscaler_are_still_running() -> None:
    idle = replace(CONFIG, services=(SCHEDULER, replace(WORKER, resume_count=0)))
    assert core.classify(idle, observed({"svc-scheduler": 2, "svc-worker": 0}, True)) is (
        State.RUNNING
    )


@pytest.mark.parametrize(
    "observation",
    [
        # a pause cut short after the rules: services still up
        observed({"svc-scheduler": 2, "svc-api": 2, "svc-worker": 1, "svc-pool": 0}, False),
        # a resume cut short after the counts: rules still off
        observed({"svc-scheduler": 2, "svc-api": 2, "svc-worker": 1, "svc-pool": 0}, False),
        # one rule on, one off
        observed(
            dict.fromkeys(("svc-scheduler", "svc-api", "svc-worker", "svc-pool"), 0),
            {"rule-main": True, "rule-pool": False},
        ),
        # a service below its count while the rules run (stopped by hand)
        observed({"svc-scheduler": 0, "svc-api": 2, "svc-worker": 1, "svc-pool": 0}, True),
    ],
)
def test_anything_in_between_is_partial(observation: Observation) -> None:
    assert core.classify(CONFIG, observation) is State.PARTIAL


def test_mw1_micro_is_paused_at_zero_and_running_at_one() -> None:
    micro = replace(CONFIG, services=(Service("svc-all", "all-in-one", 1),), rules=())
    assert core.classify(micro, Observation({"svc-all": 0}, {})) is State.PAUSED
    assert core.classify(micro, Observation({"svc-all": 1}, {})) is State.RUNNING


# --- the stack ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status",
    [
        "CREATE_IN_PROGRESS",
        "UPDATE_IN_PROGRESS",
        "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
        "UPDATE_ROLLBACK_IN_PROGRESS",
        "DELETE_IN_PROGRESS",
        "REVIEW_IN_PROGRESS",
    ],
)
@pytest.mark.parametrize("action", list(Action))
def test_nothing_happens_while_the_stack_is_deployed(status: str, action: Action) -> None:
    decision = core.check_stack(action, CONFIG, status)

    assert decision is not None and not decision.changed and decision.steps == ()
    assert status in decision.message and "DevStack" in decision.message
    assert f"run {action.value} again" in decision.message


@pytest.mark.parametrize(
    "status", ["CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE"]
)
def test_a_settled_stack_lets_the_action_go_on(status: str) -> None:
    assert core.check_stack(Action.PAUSE, CONFIG, status) is None


# --- the decisions -----------------------------------------------------------------------


def test_pausing_a_paused_environment_does_nothing() -> None:
    decision = core.decide(Action.PAUSE, CONFIG, PAUSED)

    assert (decision.changed, decision.steps, decision.state) == (False, (), State.PAUSED)
    assert "already paused" in decision.message


def test_resuming_a_running_environment_does_nothing() -> None:
    decision = core.decide(Action.RESUME, CONFIG, RUNNING)

    assert (decision.changed, decision.steps, decision.state) == (False, (), State.RUNNING)
    assert "already running" in decision.message


def test_pause_turns_everything_off_then_waits_then_stops_the_services() -> None:
    decision = core.decide(Action.PAUSE, CONFIG, RUNNING)

    assert decision.changed and decision.state is State.RUNNING
    assert decision.steps == (
        SetRule("rule-main", enabled=False),
        SetRule("rule-pool", enabled=False),
        SetScaling(API, suspended=True),
        SetAlarmActions("alarm-heartbeat", enabled=False),
        SetAlarmActions("alarm-api", enabled=False),
        Settle(130),
        SetDesiredCount(SCHEDULER, 0),
        SetDesiredCount(API, 0),
        SetDesiredCount(WORKER, 0),
        SetDesiredCount(POOL, 0),
    )
    assert "paused: 4 services set to 0, 2 autoscaler rules disabled" in decision.message
    assert "pauses itself after 5 minutes" in decision.message


def test_pause_does_not_wait_when_no_rule_was_on() -> None:
    half = observed({"svc-scheduler": 2, "svc-api": 2, "svc-worker": 1, "svc-pool": 0}, False)
    decision = core.decide(Action.PAUSE, CONFIG, half)

    assert decision.changed and decision.state is State.PARTIAL
    assert not any(isinstance(step, Settle) for step in decision.steps)
    assert SetDesiredCount(SCHEDULER, 0) in decision.steps


def test_pause_without_an_autoscaler_does_not_wait() -> None:
    micro = replace(CONFIG, services=(Service("svc-all", "all-in-one", 1),), rules=(), alarms=())
    decision = core.decide(Action.PAUSE, micro, Observation({"svc-all": 1}, {}))

    assert decision.steps == (SetDesiredCount(Service("svc-all", "all-in-one", 1), 0),)


def test_pause_message_says_when_the_database_cannot_pause() -> None:
    old = replace(CONFIG, database_auto_pause_seconds=0)
    assert "keeps its minimum capacity" in core.decide(Action.PAUSE, old, RUNNING).message


def test_resume_lets_scaling_run_then_starts_services_then_turns_everything_on() -> None:
    decision = core.decide(Action.RESUME, CONFIG, PAUSED)

    assert decision.changed and decision.state is State.PAUSED
    assert decision.steps == (
        SetScaling(API, suspended=False),
        SetDesiredCount(SCHEDULER, 2),
        SetDesiredCount(API, 2),
        SetDesiredCount(WORKER, 1),
        SetRule("rule-main", enabled=True),
        SetRule("rule-pool", enabled=True),
        SetAlarmActions("alarm-heartbeat", enabled=True),
        SetAlarmActions("alarm-api", enabled=True),
    )
    assert "resumed: services set to scheduler 2, api-server 2, worker 1, worker:long 0" in (
        decision.message
    )


def test_resume_never_lowers_a_service_already_above_its_count() -> None:
    half = observed({"svc-scheduler": 2, "svc-api": 4, "svc-worker": 0, "svc-pool": 3}, False)
    decision = core.decide(Action.RESUME, CONFIG, half)

    counts = [s for s in decision.steps if isinstance(s, SetDesiredCount)]
    assert counts == [SetDesiredCount(WORKER, 1)]
    assert "api-server 4" in decision.message and "worker:long 3" in decision.message


def test_a_partial_environment_can_be_paused_and_resumed() -> None:
    half = observed({"svc-scheduler": 0, "svc-api": 2, "svc-worker": 1, "svc-pool": 0}, True)
    assert core.decide(Action.PAUSE, CONFIG, half).changed
    assert core.decide(Action.RESUME, CONFIG, half).changed


def test_result_is_what_the_lambda_returns() -> None:
    result = core.decide(Action.PAUSE, CONFIG, PAUSED).result()

    assert result == {
        "changed": False,
        "action": "pause",
        "state": "paused",
        "message": result["message"],
        "steps": [],
    }
    assert json.loads(json.dumps(core.decide(Action.PAUSE, CONFIG, RUNNING).result()))["steps"]


def test_every_step_is_described() -> None:
    steps = core.decide(Action.PAUSE, CONFIG, RUNNING).steps
    steps += core.decide(Action.RESUME, CONFIG, PAUSED).steps
    lines = [core.describe(step) for step in steps]
    assert "disable rule rule-main" in lines
    assert "enable the actions of alarm alarm-api" in lines
    assert "suspend Application Auto Scaling of api-server (svc-api)" in lines
    assert "wait 130 s for an autoscaler invocation under way to end" in lines
    assert "set scheduler (svc-scheduler) to 0" in lines
    with pytest.raises(TypeError):
        core.describe("not a step")  # type: ignore[arg-type]


def test_messages_count_in_the_singular_and_the_plural() -> None:
    one = replace(CONFIG, services=(SCHEDULER,), rules=("rule-main",), alarms=())
    message = core.decide(Action.PAUSE, one, observed({"svc-scheduler": 2}, True)).message
    assert "1 service set to 0, 1 autoscaler rule disabled, 0 scalable targets" in message
    assert "the actions of 0 alarms disabled" in message
