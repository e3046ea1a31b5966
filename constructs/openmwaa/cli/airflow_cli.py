"""``openmwaa airflow ENV COMMAND...``: Airflow CLI commands, run through the REST API, with IAM.

Like MWAA's CLI token (``create-cli-token`` then ``POST /aws_mwaa/cli``), but each command is
mapped onto the Airflow REST API (:mod:`openmwaa.cli.airflow_commands`) and called through the
environment's API access as an Airflow role (``execute-api:Invoke`` on
``POST /invoke/<Role>``). Type the command as on Airflow itself, after ``ENV`` and
openmwaa's own options::

    openmwaa airflow my-env dags trigger my_dag --conf '{"day": "2024-01-01"}'
    openmwaa airflow my-env --role Op variables set region eu-west-1

Supported (arguments as the environment's Airflow major takes them):

{supported}

Exit status: 0 done, 1 failed or refused (the reason on stderr), 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..runtime.contracts import AIRFLOW_ROLES
from . import airflow_commands, api_client
from .airflow_commands import CommandError
from .api import airflow_detail
from .api_client import ApiError

__doc__ = (__doc__ or "").replace(
    "{supported}", "\n".join(f"    airflow {line}" for line in airflow_commands.SUPPORTED)
)


def register(subparsers: Any) -> None:
    """Add ``airflow`` to the ``openmwaa`` parser."""
    parser = subparsers.add_parser(
        "airflow",
        help="Run an Airflow CLI command (dags, variables, ...) as a role, through the REST API",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    api_client.add_common_arguments(parser)
    parser.add_argument(
        "--airflow-version",
        help="The environment's Airflow version, with --url (default: from the SSM parameter; 3)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND...")
    parser.set_defaults(run=run)


OWN_OPTIONS = ("--role", "--region", "--profile", "--url", "--airflow-version")
"""openmwaa's options, also taken between ENV and the Airflow command."""


def leading_options(command: list[str]) -> tuple[dict[str, str], list[str]]:
    """openmwaa's own options at the start of ``command`` (``--role Op`` or ``--role=Op``),
    as {attribute: value}, and the Airflow command after them."""
    found: dict[str, str] = {}
    rest = list(command)
    while rest and rest[0].split("=", 1)[0] in OWN_OPTIONS:
        name, sep, value = rest.pop(0).partition("=")
        if not sep:
            if not rest:
                raise CommandError(f"{name} needs a value")
            value = rest.pop(0)
        found[name[2:].replace("-", "_")] = value
    return found, rest


def outcome(call: airflow_commands.AirflowCall, answer: dict[str, Any]) -> tuple[str, str | None]:
    """(stdout text, error line or None) of ``call``'s ``/invoke`` answer."""
    status = answer.get("status")
    body = answer.get("body")
    if status == 404 and call.missing_ok is not None:
        return call.missing_ok, None
    if not isinstance(status, int) or not 200 <= status < 300:
        return "", f"Airflow answered {status}: {airflow_detail(body)}"
    try:
        return call.render(status, body), None
    except CommandError as error:
        return "", str(error)


def run(args: argparse.Namespace) -> int:
    """Map the command, make the call, print the result."""
    try:
        own, args.command = leading_options(args.command)
        for name, value in own.items():
            setattr(args, name, value)
        if args.role not in AIRFLOW_ROLES:
            raise CommandError(f"--role must be one of {', '.join(AIRFLOW_ROLES)}: {args.role!r}")
        client = api_client.client_for(args)
        version = args.airflow_version or client.endpoint.airflow_version or "3"
        major = int(version.split(".", 1)[0])
        call = airflow_commands.plan(args.command, major)
        text, error_line = outcome(call, client.invoke(args.role, call.invoke_body()))
    except (ApiError, CommandError, ValueError) as error:
        print(f"openmwaa airflow: {error}", file=sys.stderr)
        return 1
    if text:
        print(text)
    if error_line:
        print(f"openmwaa airflow: {error_line}", file=sys.stderr)
        return 1
    return 0
