"""``openmwaa api ENV METHOD PATH``: one Airflow REST API call as an Airflow role, with IAM.

Like MWAA's ``InvokeRestApi``: the environment's API access (``ApiAccess``) checks your IAM
identity may use the role (``execute-api:Invoke`` on ``POST /invoke/<Role>``) and makes the
call as the role's machine user. PATH is the REST API path: ``/api/v2/...`` on Airflow 3,
``/api/v1/...`` on Airflow 2. Prints Airflow's answer (JSON, indented).

Examples::

    openmwaa api my-env GET /api/v2/dags --query limit=10
    openmwaa api my-env --role Op PATCH /api/v2/dags/my_dag --data '{"is_paused": false}'

Exit status: 0 when Airflow answered 2xx; 1 otherwise (Airflow's status and message on
stderr, its answer on stdout), or when the call failed; 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from . import api_client
from .api_client import ApiError

METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")


def register(subparsers: Any) -> None:
    """Add ``api`` to the ``openmwaa`` parser."""
    parser = subparsers.add_parser(
        "api",
        help="Call the Airflow REST API as a role, with your AWS credentials",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    api_client.add_common_arguments(parser)
    parser.add_argument("method", metavar="METHOD", type=str.upper, choices=METHODS)
    parser.add_argument("path", metavar="PATH", help="e.g. /api/v2/dags")
    parser.add_argument("--data", help="The request body, JSON")
    parser.add_argument(
        "--query",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="A query parameter (repeat for more, or for a list)",
    )
    parser.set_defaults(run=run)


def build_request(
    method: str, path: str, data: str | None, queries: Sequence[str]
) -> dict[str, Any]:
    """The ``/invoke`` request; ApiError for a bad path, body or query."""
    if not path.startswith("/api/"):
        raise ApiError(f"PATH must start with /api/ (e.g. /api/v2/dags): {path!r}")
    request: dict[str, Any] = {"method": method.upper(), "path": path}
    if data is not None:
        try:
            request["body"] = json.loads(data)
        except ValueError as error:
            raise ApiError(f"--data is not JSON: {error}") from None
    query: dict[str, list[str]] = {}
    for item in queries:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ApiError(f"--query must be NAME=VALUE: {item!r}")
        query.setdefault(name, []).append(value)
    if query:
        request["query"] = {k: v[0] if len(v) == 1 else v for k, v in query.items()}
    return request


def airflow_detail(body: Any) -> str:
    """Airflow's error message in its answer (``detail`` or ``title``), or the answer."""
    if isinstance(body, dict):
        for key in ("detail", "title", "message"):
            if body.get(key):
                value = body[key]
                return value if isinstance(value, str) else json.dumps(value)
    text = body if isinstance(body, str) else json.dumps(body)
    return text[:300]


def format_answer(answer: dict[str, Any]) -> tuple[str, str | None]:
    """(what to print on stdout, the error line or None) of an ``/invoke`` answer."""
    status = answer.get("status")
    body = answer.get("body")
    text = body if isinstance(body, str) else json.dumps(body, indent=2)
    if isinstance(status, int) and 200 <= status < 300:
        return text, None
    return text, f"Airflow answered {status}: {airflow_detail(body)}"


def run(args: argparse.Namespace) -> int:
    """Make the call and print Airflow's answer."""
    try:
        request = build_request(args.method, args.path, args.data, args.query)
        answer = api_client.client_for(args).invoke(args.role, request)
    except ApiError as error:
        print(f"openmwaa api: {error}", file=sys.stderr)
        return 1
    text, error_line = format_answer(answer)
    if text and text != "null":
        print(text)
    if error_line:
        print(f"openmwaa api: {error_line}", file=sys.stderr)
        return 1
    return 0
