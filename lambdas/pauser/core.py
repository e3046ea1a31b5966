"""Pure decision core of the environment pauser: no boto3, no clock, no I/O.

The pauser is invoked with ``{"action": "pause"}`` or ``{"action": "resume"}`` (a schedule of
the environment, or ``openmwaa pause|resume ENV``). It reads the facts (the stack's status,
each service's desired count, each autoscaler rule's state: :class:`Observation`) and decides
here what to do, as a list of :data:`Step`, or that there is nothing to do (a no-op with a
message).

* Paused: every service at desired count 0 and every autoscaler rule disabled.
* Running: every autoscaler rule enabled and every service at least at its resume count.
* Anything else is partial (a pause or a resume cut short, or a hand-made change): both a
  pause and a resume then run, and bring every part to the state asked for.

A pause disables the autoscaler rules, suspends Application Auto Scaling on the scaled
services, disables the alarms' actions, waits until an autoscaler invocation already under
way can no longer set a desired count (``settle_seconds``), then sets every service to 0.
A resume lets Application Auto Scaling scale again, sets each service below its resume count
to that count, enables the rules and the alarms' actions. Every step is idempotent, so a
failed run is repaired by running the same action again.

Nothing happens while the environment's stack is being deployed (a status ending in
``_IN_PROGRESS``): the deploy may be replacing the very services.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

IN_PROGRESS_SUFFIX = "_IN_PROGRESS"


class EventError(ValueError):
    """The invocation's event is not a pauser event."""


class ConfigError(ValueError):
    """The function's environment variables are missing or invalid."""


class Action(enum.Enum):
    PAUSE = "pause"
    RESUME = "resume"


class State(enum.Enum):
    RUNNING = "running"
    PAUSED = "paused"
    PARTIAL = "partial"


@dataclass(frozen=True)
class Service:
    """One ECS service of the environment."""

    name: str
    """The ECS service name."""
    label: str
    """What it runs, for messages: ``scheduler``, ``worker``, ``worker:<queue>``..."""
    resume_count: int
    """Its desired count after a resume (workers: ``min_workers``; the autoscaler then
    takes over)."""
    scaled: bool = False
    """True when Application Auto Scaling scales it (a scalable target to suspend)."""


@dataclass(frozen=True)
class Config:
    """What the construct tells the function about its environment."""

    environment_name: str
    stack_name: str
    cluster_name: str
    services: tuple[Service, ...]
    rules: tuple[str, ...]
    """The autoscaler EventBridge rules' names."""
    alarms: tuple[str, ...]
    """The environment's CloudWatch alarms' names."""
    settle_seconds: float
    """How long after its rule is disabled an autoscaler invocation may still set a count."""
    database_auto_pause_seconds: int = 0
    """Idle time before Aurora pauses itself (0: it does not)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """Read the variables the construct sets; one ConfigError listing every problem."""
        problems: list[str] = []

        def text(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                problems.append(f"{name} is required")
            return value

        def number(name: str, default: str) -> float:
            raw = env.get(name, default).strip()
            try:
                value = float(raw)
            except ValueError:
                problems.append(f"{name}={raw!r}: must be a number")
                return 0.0
            if not math.isfinite(value) or value < 0:
                problems.append(f"{name}={raw!r}: must be a finite number >= 0")
                return 0.0
            return value

        def json_list(name: str) -> list[Any]:
            raw = env.get(name, "[]")
            try:
                value = json.loads(raw)
            except ValueError:
                problems.append(f"{name}: not JSON")
                return []
            if not isinstance(value, list):
                problems.append(f"{name}: must be a JSON list")
                return []
            return value

        environment = text("ENVIRONMENT_NAME")
        stack = text("STACK_NAME")
        cluster = text("CLUSTER_NAME")
        services = tuple(_services(json_list("SERVICES"), problems))
        rules = tuple(_names("RULES", json_list("RULES"), problems))
        alarms = tuple(_names("ALARMS", json_list("ALARMS"), problems))
        settle = number("SETTLE_SECONDS", "0")
        auto_pause = int(number("DATABASE_AUTO_PAUSE_SECONDS", "0"))
        if not services and "SERVICES" in env:
            problems.append("SERVICES: at least one service is required")
        if problems:
            raise ConfigError("invalid pauser configuration: " + "; ".join(problems))
        return cls(
            environment_name=environment,
            stack_name=stack,
            cluster_name=cluster,
            services=services,
            rules=rules,
            alarms=alarms,
            settle_seconds=settle,
            database_auto_pause_seconds=auto_pause,
        )


def _services(items: list[Any], problems: list[str]) -> list[Service]:
    """``[[name, label, resume_count, scaled], ...]`` (scaled: 1 or 0)."""
    services: list[Service] = []
    for item in items:
        if (
            isinstance(item, list)
            and len(item) == 4
            and isinstance(item[0], str)
            and item[0]
            and isinstance(item[1], str)
            and isinstance(item[2], int)
            and item[2] >= 0
            and item[3] in (0, 1)
        ):
            services.append(Service(item[0], item[1], item[2], bool(item[3])))
        else:
            problems.append(
                f"SERVICES: {item!r} is not [name, label, resume count >= 0, scaled 0 or 1]"
            )
    return services


def _names(variable: str, items: list[Any], problems: list[str]) -> list[str]:
    names = [item for item in items if isinstance(item, str) and item]
    if len(names) != len(items):
        problems.append(f"{variable}: every item must be a non-empty string")
    return names


def parse_action(event: Any) -> Action:
    """The action of ``{"action": "pause" | "resume"}``; EventError for anything else."""
    action = event.get("action") if isinstance(event, Mapping) else None
    for candidate in Action:
        if action == candidate.value:
            return candidate
    raise EventError(
        'the pauser takes {"action": "pause"} or {"action": "resume"}; got '
        + _shorten(json.dumps(event, default=str))
    )


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- what is observed ----------------------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    """The facts a decision rests on."""

    desired: Mapping[str, int]
    """Each service's desired count, by name."""
    rules_enabled: Mapping[str, bool]
    """Each autoscaler rule's state (True: ENABLED), by name."""


def is_deploying(stack_status: str) -> bool:
    """Whether CloudFormation is working on the stack (create, update, rollback, delete)."""
    return stack_status.endswith(IN_PROGRESS_SUFFIX)


def classify(config: Config, observed: Observation) -> State:
    """Paused, running or partial, from the desired counts and the rules' states."""
    desired = [observed.desired[s.name] for s in config.services]
    enabled = [observed.rules_enabled[r] for r in config.rules]
    if all(count == 0 for count in desired) and not any(enabled):
        return State.PAUSED
    if all(enabled) and all(observed.desired[s.name] >= s.resume_count for s in config.services):
        return State.RUNNING
    return State.PARTIAL


# --- what is done --------------------------------------------------------------------------


@dataclass(frozen=True)
class SetRule:
    rule: str
    enabled: bool


@dataclass(frozen=True)
class SetScaling:
    service: Service
    suspended: bool


@dataclass(frozen=True)
class SetAlarmActions:
    alarm: str
    enabled: bool


@dataclass(frozen=True)
class Settle:
    seconds: float


@dataclass(frozen=True)
class SetDesiredCount:
    service: Service
    count: int


Step = SetRule | SetScaling | SetAlarmActions | Settle | SetDesiredCount


def describe(step: Step) -> str:
    """One line for the log and the result."""
    match step:
        case SetRule(rule, enabled):
            return f"{'enable' if enabled else 'disable'} rule {rule}"
        case SetScaling(service, suspended):
            verb = "suspend" if suspended else "resume"
            return f"{verb} Application Auto Scaling of {service.label} ({service.name})"
        case SetAlarmActions(alarm, enabled):
            return f"{'enable' if enabled else 'disable'} the actions of alarm {alarm}"
        case Settle(seconds):
            return f"wait {seconds:g} s for an autoscaler invocation under way to end"
        case SetDesiredCount(service, count):
            return f"set {service.label} ({service.name}) to {count}"
    raise TypeError(f"not a step: {step!r}")


@dataclass(frozen=True)
class Decision:
    """What to do, and the message to give once it is done (or why nothing is done)."""

    action: Action
    changed: bool
    message: str
    state: State | None = None
    """The state found; None when the stack's status alone decided."""
    steps: tuple[Step, ...] = ()

    def result(self) -> dict[str, Any]:
        """The Lambda's answer: ``{"changed", "action", "state", "message", "steps"}``."""
        return {
            "changed": self.changed,
            "action": self.action.value,
            "state": self.state.value if self.state else None,
            "message": self.message,
            "steps": [describe(step) for step in self.steps],
        }


def check_stack(action: Action, config: Config, stack_status: str) -> Decision | None:
    """A no-op while the stack is being deployed; None when the action may go on."""
    if not is_deploying(stack_status):
        return None
    return Decision(
        action,
        changed=False,
        message=(
            f"environment {config.environment_name}: not {_ing(action)}, stack "
            f"{config.stack_name} is {stack_status} (a deploy is under way); run "
            f"{action.value} again once it is complete"
        ),
    )


def decide(action: Action, config: Config, observed: Observation) -> Decision:
    """The steps of ``action`` from ``observed``, or a no-op when it is already done."""
    state = classify(config, observed)
    name = config.environment_name
    if action is Action.PAUSE and state is State.PAUSED:
        return Decision(
            action,
            False,
            f"environment {name} is already paused: every service is at 0 and the "
            "autoscaler is off; nothing to do",
            state,
        )
    if action is Action.RESUME and state is State.RUNNING:
        return Decision(
            action,
            False,
            f"environment {name} is already running: every service is at its count and "
            "the autoscaler is on; nothing to do",
            state,
        )
    steps = (
        _pause_steps(config, observed)
        if action is Action.PAUSE
        else _resume_steps(config, observed)
    )
    message = (
        _paused_message(config) if action is Action.PAUSE else _resumed_message(config, observed)
    )
    return Decision(action, True, message, state, tuple(steps))


def _pause_steps(config: Config, observed: Observation) -> list[Step]:
    steps: list[Step] = [SetRule(rule, enabled=False) for rule in config.rules]
    steps += [SetScaling(s, suspended=True) for s in config.services if s.scaled]
    steps += [SetAlarmActions(alarm, enabled=False) for alarm in config.alarms]
    if any(observed.rules_enabled.values()) and config.settle_seconds > 0:
        # An invocation started before its rule was disabled may still set a worker count.
        steps.append(Settle(config.settle_seconds))
    steps += [SetDesiredCount(s, 0) for s in config.services]
    return steps


def _resume_steps(config: Config, observed: Observation) -> list[Step]:
    steps: list[Step] = [SetScaling(s, suspended=False) for s in config.services if s.scaled]
    steps += [
        SetDesiredCount(s, s.resume_count)
        for s in config.services
        if observed.desired[s.name] < s.resume_count
    ]
    steps += [SetRule(rule, enabled=True) for rule in config.rules]
    steps += [SetAlarmActions(alarm, enabled=True) for alarm in config.alarms]
    return steps


def resume_counts(config: Config, observed: Observation) -> dict[str, int]:
    """The count each service is set to by a resume: its resume count, or more when it is
    already above it (a partial resume, or the autoscaler already at work)."""
    return {s.name: max(s.resume_count, observed.desired.get(s.name, 0)) for s in config.services}


def _paused_message(config: Config) -> str:
    database = (
        f"the database pauses itself after {_duration(config.database_auto_pause_seconds)} "
        "without connections"
        if config.database_auto_pause_seconds
        else "the database keeps its minimum capacity (it is not set to pause)"
    )
    scaled = sum(s.scaled for s in config.services)
    return (
        f"environment {config.environment_name} paused: "
        f"{_count(len(config.services), 'service')} set to 0, "
        f"{_count(len(config.rules), 'autoscaler rule')} disabled, "
        f"{_count(scaled, 'scalable target')} suspended, the actions of "
        f"{_count(len(config.alarms), 'alarm')} disabled; {database}. Metadata, DAGs and logs "
        "are kept"
    )


def _resumed_message(config: Config, observed: Observation) -> str:
    counts = resume_counts(config, observed)
    listed = ", ".join(f"{s.label} {counts[s.name]}" for s in config.services)
    return (
        f"environment {config.environment_name} resumed: services set to {listed}; "
        f"{_count(len(config.rules), 'autoscaler rule')} and the actions of "
        f"{_count(len(config.alarms), 'alarm')} enabled. It is healthy once its tasks have "
        "started (a few minutes; the database wakes up at the first connection)"
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _duration(seconds: int) -> str:
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} s"


def _ing(action: Action) -> str:
    return {Action.PAUSE: "pausing", Action.RESUME: "resuming"}[action]
