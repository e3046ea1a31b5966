"""``openmwaa pause ENV`` and ``openmwaa resume ENV``: stop an environment's services, or start
them again, through its pauser function (``EnvironmentPauser``).

The command finds the function in the SSM parameter ``/openmwaa/<env>/pauser`` (or takes
``--function``), invokes it synchronously with ``{"action": "pause"}`` or ``{"action":
"resume"}``, waits for its answer (a pause waits up to about two minutes for the autoscaler's
last run) and prints its message. Pausing a paused environment, resuming a running one, or
either while the stack is being deployed changes nothing: the message says why, and the exit
status is 0 as well.

Permissions the caller needs: ``lambda:InvokeFunction`` on the function and
``ssm:GetParameter`` on the parameter (``env.grant_pause_resume(principal)``; the parameter is
not read with ``--function``).

Exit status: 0 done or nothing to do, 1 failed (one line on stderr), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .common import INSTALL_HINT, read_parameter

PARAMETER_NAME_FORMAT = "/openmwaa/{}/pauser"
"""The SSM parameter ``EnvironmentPauser`` writes (kept equal to the construct's by a test)."""
ACTIONS = ("pause", "resume")
DEFAULT_TIMEOUT_SECONDS = 330
"""How long to wait for the answer when the parameter does not say (the function's longest
run, a pause of an environment with an autoscaler, is about five minutes)."""
MARGIN_SECONDS = 30


class PauseError(Exception):
    """A failure the user can act on: one line on stderr, exit status 1."""


@dataclass(frozen=True)
class Target:
    """The pauser function of an environment."""

    function: str
    region: str | None
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS


def register(subparsers: Any) -> None:
    """Add ``pause`` and ``resume`` to the ``openmwaa`` parser."""
    for action in ACTIONS:
        parser = subparsers.add_parser(
            action,
            help=(
                "Pause an environment: every service to 0, the autoscaler and alarm actions "
                "off (the database pauses by itself)"
                if action == "pause"
                else "Resume a paused environment: services back to their counts"
            ),
            description=__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.add_argument("environment", metavar="ENV", help="The environment's name")
        parser.add_argument("--region", help="AWS region (default: your AWS configuration's)")
        parser.add_argument("--profile", help="AWS profile (default: your AWS configuration's)")
        parser.add_argument(
            "--function",
            help="The pauser function's name or ARN; default: read from SSM parameter "
            "/openmwaa/ENV/pauser",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the function's whole answer as JSON"
        )
        parser.set_defaults(run=run, action=action)


def parameter_name(environment: str) -> str:
    """The SSM parameter of ``environment``."""
    return PARAMETER_NAME_FORMAT.format(environment)


def parse_parameter(environment: str, text: str, region: str | None) -> Target:
    """The target in the parameter's value ``{"function", "region", "timeout"}``."""
    try:
        value = json.loads(text)
        function = value["function"]
    except (ValueError, KeyError, TypeError):
        raise PauseError(
            f"{parameter_name(environment)} is not openmwaa's pauser parameter"
        ) from None
    if not isinstance(function, str) or not function:
        raise PauseError(f"{parameter_name(environment)} names no function")
    timeout = value.get("timeout")
    return Target(
        function,
        value.get("region") or region,
        timeout + MARGIN_SECONDS
        if isinstance(timeout, int) and timeout > 0
        else DEFAULT_TIMEOUT_SECONDS,
    )


def payload(action: str) -> bytes:
    """The event of ``action``."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}: {action!r}")
    return json.dumps({"action": action}).encode()


def answer(action: str, response: dict[str, Any], body: bytes) -> dict[str, Any]:
    """The function's result from an Invoke response; PauseError when it failed."""
    try:
        value = json.loads(body) if body else None
    except ValueError:
        value = None
    if response.get("FunctionError"):
        detail = "no detail"
        if isinstance(value, dict):
            kind = value.get("errorType")
            message = value.get("errorMessage")
            detail = f"{kind}: {message}" if kind else str(message)
        raise PauseError(f"{action} failed: {detail}")
    if not isinstance(value, dict) or not isinstance(value.get("message"), str):
        raise PauseError(f"{action}: the function's answer is not a pauser result: {body[:200]!r}")
    return value


def format_answer(result: dict[str, Any], as_json: bool) -> str:
    """The message (a no-op's says why nothing changed), or the whole answer as JSON."""
    if as_json:
        return json.dumps(result, indent=2)
    message: str = result["message"]
    return message


# --- the AWS side ------------------------------------------------------------------------

SessionFactory = Callable[[str | None, str | None], Any]
"""(profile, region) -> a boto3 Session."""

session_factory: SessionFactory | None = None
"""The factory the commands use; None: boto3. Tests set it (with monkeypatch)."""


def _session(profile: str | None, region: str | None) -> Any:
    if session_factory is not None:
        return session_factory(profile, region)
    try:
        import boto3
    except ImportError:
        raise PauseError(f"boto3 is missing: {INSTALL_HINT}") from None
    return boto3.Session(profile_name=profile, region_name=region)


def lookup(ssm: Any, environment: str, region: str | None) -> Target:
    """Read the environment's parameter with ``ssm`` (a boto3 SSM client)."""
    name = parameter_name(environment)
    value = read_parameter(
        ssm,
        name,
        error=PauseError,
        missing=f"environment {environment!r} has no pauser in region {region}: parameter "
        f"{name} not found (check the name and --region, or pass --function)",
        denied=f"not allowed to read {name}: your IAM identity needs ssm:GetParameter on it "
        "(env.grant_pause_resume), or pass --function",
    )
    return parse_parameter(environment, value, region)


def invoke(lambda_client: Any, target: Target, action: str) -> dict[str, Any]:
    """Invoke the function synchronously; its result, or PauseError."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = lambda_client.invoke(
            FunctionName=target.function,
            InvocationType="RequestResponse",
            Payload=payload(action),
        )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("AccessDeniedException", "AccessDenied"):
            raise PauseError(
                f"not allowed to invoke {target.function}: your IAM identity needs "
                "lambda:InvokeFunction on it (env.grant_pause_resume)"
            ) from None
        if code == "ResourceNotFoundException":
            raise PauseError(f"function {target.function} not found (check --region)") from None
        raise PauseError(
            f"lambda:InvokeFunction {target.function} failed: {code or error}"
        ) from None
    except BotoCoreError as error:
        raise PauseError(f"lambda:InvokeFunction {target.function} failed: {error}") from None
    stream = response.get("Payload")
    body: bytes = stream.read() if stream is not None else b""
    return answer(action, response, body)


def perform(args: argparse.Namespace) -> dict[str, Any]:
    """Find the function and run ``args.action``; the function's result."""
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    try:
        session = _session(args.profile, args.region)
        region = args.region or session.region_name
    except BotoCoreError as error:
        raise PauseError(f"AWS configuration: {error}") from None
    if args.function:
        target = Target(args.function, region)
    else:
        target = lookup(session.client("ssm", region_name=region), args.environment, region)
    if target.region is None:
        raise PauseError("no AWS region: pass --region or configure one")
    client = session.client(
        "lambda",
        region_name=target.region,
        # Wait for the whole run, and never send it twice (every step is idempotent, but a
        # second pause would only wait again).
        config=Config(read_timeout=target.timeout_seconds, retries={"total_max_attempts": 1}),
    )
    return invoke(client, target, args.action)


def run(args: argparse.Namespace) -> int:
    """Print the function's message; 1 with the reason on stderr when it fails."""
    try:
        result = perform(args)
    except PauseError as error:
        print(f"openmwaa {args.action}: {error}", file=sys.stderr)
        return 1
    print(format_answer(result, args.json))
    return 0
