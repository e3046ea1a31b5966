"""Thin AWS adapter of the worker autoscaler (handler string ``autoscaler.handler.handler``).

Invoked once a minute by an EventBridge schedule. It reads the environment
(:class:`autoscaler.settings.Settings`), builds boto3 clients on first use, wires them into
the loop's port (:class:`autoscaler.aws_ports.AwsIO`) and runs one invocation of the sampling
loop (:func:`autoscaler.loop.run_invocation`) on the real clock, within the time Lambda gives
it; it returns the invocation's summary. The decisions are :mod:`autoscaler.core`'s.

The module layout: ``core`` decides (pure), ``loop`` samples and acts through ports (pure),
``settings`` reads the environment, ``aws_ports`` is the boto3 side, ``handler`` wires them.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping
from typing import Any

from autoscaler import loop
from autoscaler.aws_ports import AwsIO
from autoscaler.loop import InvocationIO, InvocationSummary
from autoscaler.settings import Settings

__all__ = ["handler", "run_invocation"]

_CLIENTS: dict[str, Any] = {}


def _client(name: str) -> Any:
    """A boto3 client, created on first use and reused across warm invocations."""
    if name not in _CLIENTS:
        import boto3
        from botocore.config import Config

        _CLIENTS[name] = boto3.client(
            name,
            config=Config(
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=2,
                read_timeout=5,
            ),
        )
    return _CLIENTS[name]


def _remaining_seconds(context: Any) -> float | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    return float(remaining()) / 1000.0


def run_invocation(
    settings: Settings,
    io: InvocationIO,
    *,
    clock: loop.Clock = time.time,
    sleep: loop.Sleep = time.sleep,
    budget_seconds: float | None = None,
    lease_seconds: float | None = None,
    owner: str | None = None,
) -> InvocationSummary:
    """:func:`autoscaler.loop.run_invocation` on the real clock, as ``owner`` (default: new)."""
    return loop.run_invocation(
        settings,
        io,
        clock=clock,
        sleep=sleep,
        owner=owner or uuid.uuid4().hex,
        budget_seconds=budget_seconds,
        lease_seconds=lease_seconds,
    )


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (EventBridge schedule, once a minute; the event is not used)."""
    settings = Settings.from_env(os.environ)
    budget, lease = loop.time_limits(
        settings.invocation_budget_seconds, _remaining_seconds(context)
    )
    io = AwsIO(settings, _client("sqs"), _client("ecs"), _client("cloudwatch"), _client("dynamodb"))
    owner = getattr(context, "aws_request_id", None)
    return run_invocation(
        settings, io, budget_seconds=budget, lease_seconds=lease, owner=owner
    ).as_dict()
