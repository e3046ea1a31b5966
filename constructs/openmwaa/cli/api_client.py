"""The client of an environment's API access (``ApiAccess``), shared by ``openmwaa token``,
``openmwaa api`` and ``openmwaa airflow``.

It finds the API in the SSM parameter ``/openmwaa/<env>/api-access`` (or takes ``--url``),
signs each request with the caller's AWS credentials (SigV4, service ``execute-api``) and
turns the API's answers into results or one-line errors (:class:`ApiError`). The HTTP layer
is a function (:data:`Transport`), so tests give a fake one.

Permissions the caller needs: ``ssm:GetParameter`` on the parameter (``ApiAccess.grant_lookup``;
not with ``--url``) and ``execute-api:Invoke`` on the role's routes
(``ApiAccess.grant_airflow_role``).
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..runtime.contracts import AIRFLOW_ROLES
from .common import INSTALL_HINT, read_parameter

PARAMETER_NAME_FORMAT = "/openmwaa/{}/api-access"
"""The SSM parameter ``ApiAccess`` writes (kept equal to the construct's by a test)."""
DEFAULT_ROLE = "User"
"""The role used without ``--role``: the least one that can still trigger DAG runs and edit
its own work (as MWAA's default for the CLI), not Op or Admin, which change connections,
variables and pools; ask for more with ``--role``."""
HTTP_TIMEOUT_SECONDS = 35.0
"""The API's answer comes within the Lambda's 30 s; a little more for the network."""

ROLE_HELP = (
    f"Airflow role to act as, one of {', '.join(AIRFLOW_ROLES)} (default {DEFAULT_ROLE}: "
    "least privilege that can still read and trigger DAGs; use Op or Admin for "
    "variables, connections and pools). Your IAM identity needs it granted "
    "(ApiAccess.grant_airflow_role)."
)


class ApiError(Exception):
    """A failure the user can act on: one line on stderr, exit status 1."""


@dataclass(frozen=True)
class Endpoint:
    """Where an environment's API access is."""

    url: str
    region: str | None
    airflow_version: str | None = None

    @property
    def airflow_major(self) -> int | None:
        """Airflow's major version, when known."""
        if not self.airflow_version:
            return None
        try:
            return int(self.airflow_version.split(".", 1)[0])
        except ValueError:
            return None


@dataclass(frozen=True)
class HttpAnswer:
    """An HTTP answer: status and body bytes."""

    status: int
    body: bytes


@dataclass(frozen=True)
class SignedRequest:
    """A request ready to send: method, URL, headers (with the SigV4 signature), body."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes


Transport = Callable[[SignedRequest], HttpAnswer]
"""Sends one request; raises ApiError when there is no answer."""


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """``ENV``, ``--role``, ``--region``, ``--url`` and ``--profile``."""
    parser.add_argument("environment", metavar="ENV", help="The environment's name")
    parser.add_argument("--role", default=DEFAULT_ROLE, choices=AIRFLOW_ROLES, help=ROLE_HELP)
    parser.add_argument("--region", help="AWS region (default: your AWS configuration's)")
    parser.add_argument("--profile", help="AWS profile (default: your AWS configuration's)")
    parser.add_argument(
        "--url",
        help="The API's invoke URL (https://<id>.execute-api.<region>.amazonaws.com/v1); "
        "default: read from SSM parameter /openmwaa/ENV/api-access",
    )


def parameter_name(environment: str) -> str:
    """The SSM parameter of ``environment``."""
    return PARAMETER_NAME_FORMAT.format(environment)


def parse_parameter(environment: str, text: str, region: str | None) -> Endpoint:
    """The endpoint in the parameter's value ``{"url", "airflow_version", "region"}``."""
    try:
        value = json.loads(text)
        url = value["url"]
    except (ValueError, KeyError, TypeError):
        raise ApiError(
            f"{parameter_name(environment)} is not openmwaa's API access parameter"
        ) from None
    if not isinstance(url, str) or not url.startswith("https://"):
        raise ApiError(f"{parameter_name(environment)} has no https URL")
    version = value.get("airflow_version")
    return Endpoint(
        url.rstrip("/"),
        value.get("region") or region,
        version if isinstance(version, str) else None,
    )


def lookup(ssm: Any, environment: str, region: str | None) -> Endpoint:
    """Read the environment's parameter with ``ssm`` (a boto3 SSM client)."""
    name = parameter_name(environment)
    value = read_parameter(
        ssm,
        name,
        error=ApiError,
        missing=f"environment {environment!r} has no API access in region {region}: parameter "
        f"{name} not found (deploy ApiAccess, check --region, or pass --url)",
        denied=f"not allowed to read {name}: your IAM identity needs ssm:GetParameter on it "
        "(ApiAccess.grant_lookup), or pass --url",
    )
    return parse_parameter(environment, value, region)


def endpoint_from_url(url: str, region: str | None) -> Endpoint:
    """``--url``: the region is read from the execute-api host when not given."""
    if not url.startswith("https://"):
        raise ApiError(f"--url must be an https URL: {url!r}")
    host = url.split("/")[2]
    parts = host.split(".")
    if region is None and len(parts) > 3 and parts[1] == "execute-api":
        region = parts[2]
    return Endpoint(url.rstrip("/"), region)


def sign(credentials: Any, region: str, method: str, url: str, body: bytes) -> SignedRequest:
    """SigV4-sign a request for API Gateway (service ``execute-api``) with ``credentials``
    (botocore credentials)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(
        method=method,
        url=url,
        data=body,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    SigV4Auth(credentials, "execute-api", region).add_auth(request)
    return SignedRequest(method, url, dict(request.headers.items()), body)


def urllib_transport(request: SignedRequest) -> HttpAnswer:
    """Send with urllib; ApiError when the API does not answer."""
    http_request = urllib.request.Request(
        request.url, data=request.body, headers=dict(request.headers), method=request.method
    )
    try:
        with urllib.request.urlopen(http_request, timeout=HTTP_TIMEOUT_SECONDS) as answer:
            return HttpAnswer(answer.status, answer.read())
    except urllib.error.HTTPError as answer:
        return HttpAnswer(answer.code, answer.read())
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ApiError(f"cannot reach {request.url}: {reason}") from None


def _message(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    try:
        value = json.loads(text)
    except ValueError:
        return text[:500] or "(no message)"
    if isinstance(value, dict):
        message = value.get("message") or value.get("Message")
        if isinstance(message, str):
            return message
    return text[:500]


def route_arn(endpoint: Endpoint, route: str, role: str) -> str:
    """The execute-api ARN IAM checks for ``POST /<route>/<role>`` (account shown as ``*``)."""
    parts = endpoint.url.split("/")
    api_id = parts[2].split(".")[0] if len(parts) > 2 else "*"
    stage = parts[3] if len(parts) > 3 and parts[3] else "*"
    return f"arn:aws:execute-api:{endpoint.region}:*:{api_id}/{stage}/POST/{route}/{role}"


def result(answer: HttpAnswer, endpoint: Endpoint, route: str, role: str) -> dict[str, Any]:
    """The API's JSON answer, or ApiError with its message; a 403 also names the grant."""
    if answer.status == 200:
        try:
            value = json.loads(answer.body)
        except ValueError:
            raise ApiError(
                f"the API answered with something that is not JSON: {answer.body[:200]!r}"
            ) from None
        if not isinstance(value, dict):
            raise ApiError("the API's answer is not a JSON object")
        return value
    message = _message(answer.body)
    if answer.status == 403:
        if "not authorized" in message.lower():
            raise ApiError(
                f"403 {message}: your IAM identity needs execute-api:Invoke on "
                f"{route_arn(endpoint, route, role)} "
                f"(ApiAccess.grant_airflow_role(<principal>, {role!r}))"
            )
        raise ApiError(f"403 {message} (check --region, --url and your AWS credentials)")
    raise ApiError(f"{answer.status} {message}")


class ApiClient:
    """Signed calls to one environment's API access."""

    def __init__(
        self, endpoint: Endpoint, credentials: Any, transport: Transport = urllib_transport
    ) -> None:
        if endpoint.region is None:
            raise ApiError("no AWS region: pass --region or configure one")
        self._region: str = endpoint.region
        self.endpoint = endpoint
        self._credentials = credentials
        self._transport = transport

    def call(
        self, route: str, role: str, payload: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """``POST /<route>/<role>`` with ``payload``: the API's JSON answer."""
        if role not in AIRFLOW_ROLES:
            raise ApiError(f"--role must be one of {', '.join(AIRFLOW_ROLES)}: {role!r}")
        body = json.dumps(payload).encode() if payload is not None else b""
        url = f"{self.endpoint.url}/{route}/{role}"
        request = sign(self._credentials, self._region, "POST", url, body)
        return result(self._transport(request), self.endpoint, route, role)

    def token(self, role: str) -> dict[str, Any]:
        """``POST /token/<role>``: ``{"token", "role", "expires_in"}``."""
        return self.call("token", role)

    def invoke(self, role: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /invoke/<role>``: ``{"status", "headers", "body"}`` of Airflow's answer."""
        return self.call("invoke", role, request)


SessionFactory = Callable[[str | None, str | None], Any]
"""(profile, region) -> a boto3 Session."""

session_factory: SessionFactory | None = None
"""The factory the commands use; None: boto3. Tests set it (with monkeypatch)."""
transport: Transport | None = None
"""The HTTP layer the commands use; None: urllib. Tests set it (with monkeypatch)."""


def _session(profile: str | None, region: str | None) -> Any:
    if session_factory is not None:
        return session_factory(profile, region)
    try:
        import boto3
    except ImportError:
        raise ApiError(f"boto3 is missing: {INSTALL_HINT}") from None
    return boto3.Session(profile_name=profile, region_name=region)


def client_for(args: argparse.Namespace) -> ApiClient:
    """The client of ``args.environment``: credentials from boto3, the API from SSM or
    ``--url``."""
    from botocore.exceptions import BotoCoreError

    try:
        session = _session(args.profile, args.region)
        region = args.region or session.region_name
        credentials = session.get_credentials()
    except BotoCoreError as error:
        raise ApiError(f"AWS configuration: {error}") from None
    if credentials is None:
        raise ApiError("no AWS credentials found (configure a profile, or AWS_* variables)")
    if args.url:
        endpoint = endpoint_from_url(args.url, region)
    else:
        endpoint = lookup(session.client("ssm", region_name=region), args.environment, region)
    return ApiClient(endpoint, credentials.get_frozen_credentials(), transport or urllib_transport)
