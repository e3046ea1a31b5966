"""The API access Lambda's decisions, without AWS or the network (pure, tested alone).

API Gateway (REST API, AWS_IAM authorization) has already checked that the IAM caller may
invoke ``POST /token/<Role>`` or ``POST /invoke/<Role>``; this module turns that event into
what to ask Airflow, as the role's machine user (``openmwaa-iam-<role>``, whose password
derives from the environment's machine key: :func:`machine_password`), and turns Airflow's
answer into API Gateway's proxy response:

- ``/token/{role}`` (Airflow 3): a JWT from the FAB auth manager's ``POST /auth/token/cli``
  (lifetime ``[api_auth] jwt_cli_expiration_time``, 3600 s by default), returned as
  ``{"token", "role", "expires_in"}``. Airflow 2 has no API tokens: 400.
- ``/invoke/{role}``: one REST API call, ``{"method", "path", "query"?, "body"?}``, answered
  ``{"status", "headers": {"content-type"}, "body"}`` as MWAA's InvokeRestApi does. Airflow 3
  authenticates with a JWT, kept per role until a minute before it expires; Airflow 2 with
  HTTP basic auth.

:func:`handle` runs one request through two ports (:class:`Ports`): the machine key (Secrets
Manager) and HTTP. ``handler`` is the boto3/urllib side.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import openmwaa_contracts as contracts

ENVIRONMENT_NAME_VARIABLE = contracts.ENVIRONMENT_NAME_VARIABLE

TOKEN_PATH = "/auth/token/cli"
"""The FAB auth manager's CLI token endpoint (Airflow 3): its tokens live
``[api_auth] jwt_cli_expiration_time`` (3600 s by default), shorter than ``/auth/token``'s
``jwt_expiration_time`` (a day by default)."""
DEFAULT_TOKEN_SECONDS = 3600
"""The lifetime assumed when a token carries no readable ``exp`` claim (Airflow's default)."""
TOKEN_REFRESH_MARGIN_SECONDS = 60
"""A cached token is replaced this long before it expires."""
HTTP_TIMEOUT_SECONDS = 10.0
"""Each HTTP call to Airflow; the function's own timeout is 30 s."""
RETRY_BUDGET_SECONDS = 8.0
"""A refused cached token is replaced only this early in a request, so that signing in again
and retrying (two calls of up to HTTP_TIMEOUT_SECONDS) still end within API Gateway's 29 s."""
MAX_RESPONSE_BYTES = 5 * 1024 * 1024
"""Airflow answers larger than this are refused (502): Lambda returns at most 6 MB."""
METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")
"""The HTTP methods ``/invoke`` passes on."""
ROUTES = ("/token/{role}", "/invoke/{role}")

_UNSAFE_PATH = re.compile(r"(\.\.|%2e|%2f|%5c|\\|//|[\x00-\x20\x7f?#])", re.IGNORECASE)


class ConfigError(Exception):
    """The function's environment variables are missing or wrong (a deployment problem)."""


class HttpError(Exception):
    """A request that ends with ``status`` and ``message`` (what the caller reads)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BadRequestError(HttpError):
    """The caller's request is wrong: 400."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


class UnreachableError(Exception):
    """Airflow did not answer (connection refused, DNS, TLS): the adapter raises it."""


class TimedOutError(Exception):
    """Airflow did not answer within :data:`HTTP_TIMEOUT_SECONDS`: the adapter raises it."""


class KeyUnavailableError(Exception):
    """The machine key could not be read from Secrets Manager: the adapter raises it."""


@dataclass(frozen=True)
class Settings:
    """The function's settings, from its environment variables."""

    airflow_url: str
    machine_key_secret_arn: str
    airflow_version: str
    environment_name: str

    @property
    def airflow_major(self) -> int:
        """Airflow's major version: 2 or 3."""
        return int(self.airflow_version.split(".", 1)[0])

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read and check the settings; ConfigError names what is missing or wrong."""
        names = (
            contracts.AIRFLOW_URL_VARIABLE,
            contracts.MACHINE_KEY_SECRET_VARIABLE,
            contracts.AIRFLOW_VERSION_VARIABLE,
            ENVIRONMENT_NAME_VARIABLE,
        )
        missing = [name for name in names if not env.get(name)]
        if missing:
            raise ConfigError(f"missing environment variables: {', '.join(missing)}")
        url = env[contracts.AIRFLOW_URL_VARIABLE].rstrip("/")
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError(f"{contracts.AIRFLOW_URL_VARIABLE} must be an http(s) URL: {url!r}")
        version = env[contracts.AIRFLOW_VERSION_VARIABLE]
        if not re.fullmatch(r"[23]\.\d+(\.\d+)?", version):
            raise ConfigError(
                f"{contracts.AIRFLOW_VERSION_VARIABLE} must be an Airflow 2 or 3 version: "
                f"{version!r}"
            )
        return cls(
            airflow_url=url,
            machine_key_secret_arn=env[contracts.MACHINE_KEY_SECRET_VARIABLE],
            airflow_version=version,
            environment_name=env[ENVIRONMENT_NAME_VARIABLE],
        )


def machine_password(key: str, role: str) -> str:
    """The password of the machine user of ``role``: HMAC-SHA256 of
    ``MACHINE_PASSWORD_CONTEXT + role`` under ``key``, in hex (the runtime's
    ``machine_users.machine_password``, kept equal by a test)."""
    message = (contracts.MACHINE_PASSWORD_CONTEXT + role).encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


# --- the caller's request --------------------------------------------------------------


@dataclass(frozen=True)
class TokenCall:
    """``POST /token/{role}``."""

    role: str


@dataclass(frozen=True)
class InvokeCall:
    """``POST /invoke/{role}``: one Airflow REST API call."""

    role: str
    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    body: Any = None
    has_body: bool = False


Call = TokenCall | InvokeCall


def check_role(role: object) -> str:
    """``role`` if it is one of AIRFLOW_ROLES (exactly, as IAM grants it), else BadRequestError."""
    if not isinstance(role, str) or role not in contracts.AIRFLOW_ROLES:
        raise BadRequestError(
            f"unknown role {role!r}: use one of {', '.join(contracts.AIRFLOW_ROLES)}"
        )
    return role


def check_path(path: object) -> str:
    """An Airflow REST API path (``/api/...``), or BadRequestError: no scheme or host, no ``..``,
    no encoded separators, no query or fragment (the query goes in ``query``)."""
    if not isinstance(path, str) or not path.startswith("/api/"):
        raise BadRequestError(
            f"path must be an Airflow REST API path starting with /api/: {path!r}"
        )
    if _UNSAFE_PATH.search(path) or "://" in path:
        raise BadRequestError(
            f"path {path!r} may not contain '..', '//', encoded '.', '/' or '\\', spaces, "
            "'?' or '#': put query parameters in \"query\""
        )
    return path


def _query_pairs(query: object) -> tuple[tuple[str, str], ...]:
    if query is None:
        return ()
    if not isinstance(query, dict):
        raise BadRequestError('"query" must be an object of parameter names to values')
    pairs: list[tuple[str, str]] = []
    for name, value in query.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, bool):
                pairs.append((name, "true" if item else "false"))
            elif isinstance(item, str | int | float):
                pairs.append((name, str(item)))
            else:
                raise BadRequestError(
                    f'"query" value of {name!r} must be a string, number, boolean or a list of them'
                )
    return tuple(pairs)


def _decoded_body(event: Mapping[str, Any]) -> str | None:
    body = event.get("body")
    if body is None or body == "":
        return None
    if not isinstance(body, str):
        raise BadRequestError("the request body must be JSON text")
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise BadRequestError("the request body is not valid base64 UTF-8 text") from None
    return body


def parse_event(event: Mapping[str, Any]) -> Call:
    """The call an API Gateway REST proxy event (v1) asks for, or BadRequestError."""
    resource = event.get("resource")
    if event.get("httpMethod") != "POST" or resource not in ROUTES:
        raise BadRequestError(
            f"unknown route {event.get('httpMethod')} {resource}: use POST {ROUTES}"
        )
    role = check_role((event.get("pathParameters") or {}).get("role"))
    if resource == "/token/{role}":
        return TokenCall(role)
    text = _decoded_body(event)
    if text is None:
        raise BadRequestError('the body must be JSON: {"method": ..., "path": "/api/...", ...}')
    try:
        request = json.loads(text)
    except ValueError as error:
        raise BadRequestError(f"the body is not JSON: {error}") from None
    if not isinstance(request, dict):
        raise BadRequestError('the body must be a JSON object: {"method": ..., "path": ...}')
    unknown = sorted(set(request) - {"method", "path", "query", "body"})
    if unknown:
        raise BadRequestError(f"unknown fields {unknown}: use method, path, query, body")
    method = request.get("method")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise BadRequestError(f"method must be one of {', '.join(METHODS)}: {method!r}")
    return InvokeCall(
        role=role,
        method=method.upper(),
        path=check_path(request.get("path")),
        query=_query_pairs(request.get("query")),
        body=request.get("body"),
        has_body="body" in request and request["body"] is not None,
    )


# --- what to send Airflow --------------------------------------------------------------


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP request to Airflow."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None = None


@dataclass(frozen=True)
class HttpResponse:
    """Airflow's answer: status, lower-case header names, the body's bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes


def token_request(settings: Settings, role: str, key: str) -> HttpRequest:
    """Sign in as ``role``'s machine user at the FAB auth manager's CLI token endpoint."""
    body = {
        "username": contracts.machine_username(role),
        "password": machine_password(key, role),
    }
    return HttpRequest(
        "POST",
        settings.airflow_url + TOKEN_PATH,
        {"Content-Type": "application/json", "Accept": "application/json"},
        json.dumps(body).encode(),
    )


def basic_authorization(role: str, key: str) -> str:
    """The Authorization header value of ``role``'s machine user, for Airflow 2."""
    pair = f"{contracts.machine_username(role)}:{machine_password(key, role)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def invoke_request(settings: Settings, call: InvokeCall, authorization: str) -> HttpRequest:
    """The caller's REST API call, authenticated with ``authorization``."""
    url = settings.airflow_url + call.path
    if call.query:
        url += "?" + urllib.parse.urlencode(call.query)
    headers = {"Accept": "application/json", "Authorization": authorization}
    body = None
    if call.has_body:
        headers["Content-Type"] = "application/json"
        body = json.dumps(call.body).encode()
    return HttpRequest(call.method, url, headers, body)


# --- tokens ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """A JWT and when it expires (epoch seconds)."""

    value: str
    expires_at: float

    def usable(self, now: float) -> bool:
        """Whether it can still be used: more than the refresh margin before it expires."""
        return now < self.expires_at - TOKEN_REFRESH_MARGIN_SECONDS


def jwt_expiry(token: str, now: float) -> float:
    """The ``exp`` claim of ``token`` (read, not verified: Airflow verifies it), or
    ``now + DEFAULT_TOKEN_SECONDS`` when it has none."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        exp = claims["exp"]
        if isinstance(exp, int | float) and not isinstance(exp, bool):
            return float(exp)
    except (IndexError, ValueError, KeyError, TypeError, binascii.Error):
        pass
    return now + DEFAULT_TOKEN_SECONDS


def token_from_answer(role: str, answer: HttpResponse, now: float) -> Token:
    """The token in Airflow's answer to :func:`token_request`, or an HttpError (502) saying
    why the machine user could not sign in."""
    user = contracts.machine_username(role)
    if answer.status in (401, 403):
        raise HttpError(
            502,
            f"Airflow refused the machine user {user} ({answer.status}): the api-server creates "
            "it at start with a password from the machine key; restart it if the key changed",
        )
    if answer.status == 404:
        raise HttpError(
            502,
            f"Airflow has no {TOKEN_PATH} (404): is the FAB auth manager configured?",
        )
    if not 200 <= answer.status < 300:
        raise HttpError(502, f"Airflow could not issue a token for {user}: HTTP {answer.status}")
    try:
        value = json.loads(answer.body)["access_token"]
    except (ValueError, KeyError, TypeError):
        value = None
    if not isinstance(value, str) or not value:
        raise HttpError(502, f"Airflow's token answer for {user} has no access_token")
    return Token(value, jwt_expiry(value, now))


def invoke_result(answer: HttpResponse) -> dict[str, Any]:
    """Airflow's answer as ``/invoke`` returns it: status, content type, JSON or text body."""
    content_type = answer.headers.get("content-type", "")
    text = answer.body.decode("utf-8", errors="replace")
    body: Any = text
    if "json" in content_type and text:
        try:
            body = json.loads(text)
        except ValueError:
            body = text
    elif not text:
        body = None
    return {"status": answer.status, "headers": {"content-type": content_type}, "body": body}


# --- API Gateway's answer --------------------------------------------------------------


def proxy_response(status: int, body: Mapping[str, Any]) -> dict[str, Any]:
    """An API Gateway Lambda proxy response with a JSON body."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", "Cache-Control": "no-store"},
        "body": json.dumps(body),
    }


def error_response(status: int, message: str) -> dict[str, Any]:
    """A proxy response ``{"message": ...}``, as API Gateway's own errors read."""
    return proxy_response(status, {"message": message})


def log_line(
    *,
    caller: str | None,
    route: str | None,
    role: str | None,
    status: int,
    duration_ms: int,
    airflow_status: int | None = None,
    error: str | None = None,
) -> str:
    """The one JSON log line of a request: who, what, the outcome. Never a secret."""
    record: dict[str, Any] = {
        "caller": caller,
        "route": route,
        "role": role,
        "status": status,
        "duration_ms": duration_ms,
    }
    if airflow_status is not None:
        record["airflow_status"] = airflow_status
    if error is not None:
        record["error"] = error
    return json.dumps(record, sort_keys=True)


def caller_of(event: Mapping[str, Any]) -> str | None:
    """The IAM caller's ARN API Gateway authenticated (or its caller id)."""
    identity = (event.get("requestContext") or {}).get("identity") or {}
    value = identity.get("userArn") or identity.get("caller")
    return value if isinstance(value, str) else None


# --- one request -----------------------------------------------------------------------


class Ports(Protocol):
    """What :func:`handle` needs from the outside world."""

    def machine_key(self) -> str:
        """The machine key (cached by the adapter); raises KeyUnavailableError."""
        ...

    def forget_machine_key(self) -> None:
        """Drop the cached key, so that the next :meth:`machine_key` reads the secret."""
        ...

    def send(self, request: HttpRequest) -> HttpResponse:
        """One HTTP call; raises UnreachableError or TimedOutError."""
        ...


@dataclass
class State:
    """What a warm container keeps between requests: one token per role (Airflow 3)."""

    tokens: dict[str, Token] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """A request's proxy response and what its log line says."""

    response: dict[str, Any]
    status: int
    role: str | None
    airflow_status: int | None = None
    error: str | None = None


def _send(ports: Ports, request: HttpRequest) -> HttpResponse:
    try:
        return ports.send(request)
    except TimedOutError:
        raise HttpError(
            504, f"Airflow did not answer within {HTTP_TIMEOUT_SECONDS:g} s; nothing was returned"
        ) from None
    except UnreachableError as error:
        raise HttpError(502, f"Airflow is unreachable: {error}") from None


def _key(ports: Ports) -> str:
    try:
        return ports.machine_key()
    except KeyUnavailableError as error:
        raise HttpError(500, f"cannot read the machine key: {error}") from None


def stale_credentials(answer: HttpResponse) -> bool:
    """Airflow refused a token or password that was good before: 401 (missing, expired, wrong
    password), or Airflow 3's 403 "Invalid JWT token" (a token signed with an old JWT secret)."""
    return answer.status == 401 or (answer.status == 403 and b"Invalid JWT token" in answer.body)


def _signed_in(ports: Ports, request: Callable[[str], HttpRequest]) -> HttpResponse:
    """The answer to ``request(key)``; when Airflow refuses the machine user, the key is read again
    and sent once more (it may have been rotated since this container read it)."""
    answer = _send(ports, request(_key(ports)))
    if stale_credentials(answer):
        ports.forget_machine_key()
        answer = _send(ports, request(_key(ports)))
    return answer


def _fresh_token(settings: Settings, ports: Ports, state: State, role: str, now: float) -> Token:
    answer = _signed_in(ports, lambda key: token_request(settings, role, key))
    token = token_from_answer(role, answer, now)
    state.tokens[role] = token
    return token


def _invoke(
    settings: Settings,
    ports: Ports,
    state: State,
    call: InvokeCall,
    now: float,
    clock: Callable[[], float],
) -> HttpResponse:
    if settings.airflow_major < 3:
        return _signed_in(
            ports,
            lambda key: invoke_request(settings, call, basic_authorization(call.role, key)),
        )
    cached = state.tokens.get(call.role)
    token = cached if cached is not None and cached.usable(now) else None
    if token is None:
        token = _fresh_token(settings, ports, state, call.role, now)
    answer = _send(ports, invoke_request(settings, call, "Bearer " + token.value))
    if stale_credentials(answer) and token is cached and clock() - now < RETRY_BUDGET_SECONDS:
        # The api-server may have restarted with another JWT secret: sign in again, once.
        state.tokens.pop(call.role, None)
        token = _fresh_token(settings, ports, state, call.role, now)
        answer = _send(ports, invoke_request(settings, call, "Bearer " + token.value))
    return answer


def handle(
    event: Mapping[str, Any],
    settings: Settings,
    ports: Ports,
    state: State,
    clock: Callable[[], float] = time.time,
) -> Outcome:
    """One API Gateway event, start to finish: always a complete proxy response."""
    role = (event.get("pathParameters") or {}).get("role")
    role = role if isinstance(role, str) else None
    try:
        call = parse_event(event)
        now = clock()
        if isinstance(call, TokenCall):
            if settings.airflow_major < 3:
                raise BadRequestError(
                    f"Airflow {settings.airflow_version} has no API tokens (they need Airflow 3); "
                    "use POST /invoke/{role}"
                )
            token = _fresh_token(settings, ports, state, call.role, now)
            body = {
                "token": token.value,
                "role": call.role,
                "expires_in": max(0, int(token.expires_at - now)),
            }
            return Outcome(proxy_response(200, body), 200, call.role)
        answer = _invoke(settings, ports, state, call, now, clock)
        if len(answer.body) > MAX_RESPONSE_BYTES:
            raise HttpError(
                502,
                f"Airflow's answer is larger than {MAX_RESPONSE_BYTES} bytes; ask for less "
                "(limit/offset)",
            )
        return Outcome(proxy_response(200, invoke_result(answer)), 200, call.role, answer.status)
    except HttpError as error:
        return Outcome(
            error_response(error.status, error.message), error.status, role, error=error.message
        )
