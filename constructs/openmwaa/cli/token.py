"""``openmwaa token ENV``: a short-lived Airflow API token for an Airflow role, with IAM.

Like MWAA's ``create-cli-token``: the environment's API access (``ApiAccess``) checks your IAM
identity may use the role (``execute-api:Invoke`` on ``POST /token/<Role>``) and returns a JWT
of the role's machine user, for ``Authorization: Bearer <token>`` on the REST API. It lives
``[api_auth] jwt_cli_expiration_time`` (Airflow's default: one hour). Airflow 3 only: on
Airflow 2 use ``openmwaa api`` or ``openmwaa airflow``.

Prints the token alone (``TOKEN=$(openmwaa token ENV)``), or the whole answer with ``--json``.
Exit status: 0 done, 1 failed (one line on stderr), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from . import api_client
from .api_client import ApiError


def register(subparsers: Any) -> None:
    """Add ``token`` to the ``openmwaa`` parser."""
    parser = subparsers.add_parser(
        "token",
        help="Get an Airflow API token for a role, with your AWS credentials (Airflow 3)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    api_client.add_common_arguments(parser)
    parser.add_argument("--json", action="store_true", help='Print {"token", "role", "expires_in"}')
    parser.set_defaults(run=run)


def format_token(answer: dict[str, Any], as_json: bool) -> str:
    """The token alone, or the whole answer as JSON; ApiError when there is no token."""
    token = answer.get("token")
    if not isinstance(token, str) or not token:
        raise ApiError("the API's answer has no token")
    return json.dumps(answer, indent=2) if as_json else token


def run(args: argparse.Namespace) -> int:
    """Print the token; 1 with the reason on stderr when it cannot."""
    try:
        client = api_client.client_for(args)
        print(format_token(client.token(args.role), args.json))
    except ApiError as error:
        print(f"openmwaa token: {error}", file=sys.stderr)
        return 1
    return 0
