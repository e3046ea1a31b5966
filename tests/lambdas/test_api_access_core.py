"""The API access Lambda's decisions (api_access.core), on a fake Airflow: no AWS, no network."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from api_access import core
from api_access.core import (
    HttpRequest,
    HttpResponse,
    InvokeCall,
    KeyUnavailableError,
    Settings,
    State,
    TimedOutError,
    TokenCall,
    UnreachableError,
)

from openmwaa.runtime import contracts, machine_users

KEY = "machine-key-0123456789abcdef"
NOW = 1_800_000_000.0
SETTINGS3 = Settings("http://airflow.internal", "arn:secret", "3.3.2", "env")
SETTINGS2 = Settings("http://airflow.internal", "arn:secret", "2.11.2", "env")


def jwt(exp: float) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS512'})}.{part({'sub': '7', 'exp': int(exp)})}.signature"


def event(resource: str = "/token/{role}", role: str = "Op", body: Any = None) -> dict[str, Any]:
    return {
        "resource": resource,
        "path": resource.replace("{role}", role),
        "httpMethod": "POST",
        "pathParameters": {"role": role},
        "body": body if body is None or isinstance(body, str) else json.dumps(body),
        "isBase64Encoded": False,
        "requestContext": {"identity": {"userArn": "arn:aws:iam::123456789012:user/ci"}},
    }


def invoke_event(role: str = "Op", **request: Any) -> dict[str, Any]:
    return event("/invoke/{role}", role, {"method": "GET", "path": "/api/v2/dags", **request})


@dataclass
class FakeAirflow:
    """Answers the token endpoint with a JWT living `lifetime` s, and the API with `answer`."""

    lifetime: float = 3600
    token_status: int = 201
    answers: list[HttpResponse] = field(default_factory=list)
    sent: list[HttpRequest] = field(default_factory=list)
    fail: Exception | None = None
    key_error: Exception | None = None
    key_reads: int = 0
    tokens_issued: int = 0

    keys: list[str] = field(default_factory=list)
    """Keys the secret holds, read in turn after each forget (default: KEY)."""
    forgotten: int = 0

    def machine_key(self) -> str:
        self.key_reads += 1
        if self.key_error:
            raise self.key_error
        return self.keys[min(self.forgotten, len(self.keys) - 1)] if self.keys else KEY

    def forget_machine_key(self) -> None:
        self.forgotten += 1

    def send(self, request: HttpRequest) -> HttpResponse:
        self.sent.append(request)
        if self.fail:
            raise self.fail
        if request.url.endswith(core.TOKEN_PATH):
            self.tokens_issued += 1
            token = jwt(NOW + self.lifetime) + str(self.tokens_issued)
            return HttpResponse(self.token_status, {}, json.dumps({"access_token": token}).encode())
        if self.answers:
            return self.answers.pop(0)
        return HttpResponse(200, {"content-type": "application/json"}, b'{"dags": []}')

    @property
    def api_calls(self) -> list[HttpRequest]:
        return [r for r in self.sent if not r.url.endswith(core.TOKEN_PATH)]


def run(
    evt: dict[str, Any],
    airflow: FakeAirflow,
    settings: Settings = SETTINGS3,
    state: State | None = None,
    clock: Callable[[], float] = lambda: NOW,
) -> tuple[int, dict[str, Any]]:
    outcome = core.handle(evt, settings, airflow, state or State(), clock)
    assert outcome.response["statusCode"] == outcome.status
    return outcome.status, json.loads(outcome.response["body"])


def test_machine_password_is_the_runtimes() -> None:
    for role in contracts.AIRFLOW_ROLES:
        assert core.machine_password(KEY, role) == machine_users.machine_password(KEY, role)
    assert core.machine_password(KEY, "Op") != core.machine_password(KEY, "Admin")
    assert core.machine_password(KEY, "Op") != core.machine_password(KEY + "x", "Op")


def test_token_signs_in_as_the_roles_machine_user_at_the_cli_endpoint() -> None:
    airflow = FakeAirflow(lifetime=3600)
    status, body = run(event(role="Viewer"), airflow)
    assert status == 200
    assert body["role"] == "Viewer"
    assert body["expires_in"] == 3600
    assert body["token"].startswith(jwt(NOW + 3600))
    [request] = airflow.sent
    assert request.method == "POST"
    assert request.url == "http://airflow.internal/auth/token/cli"
    assert json.loads(request.body or b"") == {
        "username": "openmwaa-iam-viewer",
        "password": core.machine_password(KEY, "Viewer"),
    }


def test_each_token_request_gets_a_new_token() -> None:
    airflow, state = FakeAirflow(), State()
    first = run(event(), airflow, state=state)[1]["token"]
    second = run(event(), airflow, state=state)[1]["token"]
    assert first != second and airflow.tokens_issued == 2


def test_airflow_2_has_no_tokens() -> None:
    airflow = FakeAirflow()
    status, body = run(event(), airflow, SETTINGS2)
    assert status == 400
    assert "Airflow 3" in body["message"] and "/invoke" in body["message"]
    assert airflow.sent == []


def test_airflow_2_invoke_uses_basic_auth() -> None:
    airflow = FakeAirflow(
        answers=[HttpResponse(200, {"content-type": "application/json"}, b'{"total_entries": 0}')]
    )
    status, body = run(invoke_event(path="/api/v1/dags", query={"limit": 5}), airflow, SETTINGS2)
    assert status == 200
    assert body == {
        "status": 200,
        "headers": {"content-type": "application/json"},
        "body": {"total_entries": 0},
    }
    [request] = airflow.sent
    assert request.url == "http://airflow.internal/api/v1/dags?limit=5"
    user, password = base64.b64decode(request.headers["Authorization"][6:]).decode().split(":")
    assert (user, password) == ("openmwaa-iam-op", core.machine_password(KEY, "Op"))


def test_airflow_3_invoke_caches_the_token_until_near_expiry() -> None:
    airflow, state = FakeAirflow(lifetime=600), State()
    now = [NOW]
    for _ in range(3):
        assert run(invoke_event(), airflow, state=state, clock=lambda: now[0])[0] == 200
    assert airflow.tokens_issued == 1
    assert {r.headers["Authorization"] for r in airflow.api_calls} == {
        "Bearer " + state.tokens["Op"].value
    }
    now[0] = NOW + 600 - core.TOKEN_REFRESH_MARGIN_SECONDS  # inside the refresh margin
    run(invoke_event(), airflow, state=state, clock=lambda: now[0])
    assert airflow.tokens_issued == 2


def test_tokens_are_cached_per_role() -> None:
    airflow, state = FakeAirflow(), State()
    run(invoke_event("Op"), airflow, state=state)
    run(invoke_event("Viewer"), airflow, state=state)
    assert airflow.tokens_issued == 2
    assert [json.loads(r.body or b"")["username"] for r in airflow.sent if r.body] == [
        "openmwaa-iam-op",
        "openmwaa-iam-viewer",
    ]


def test_a_cached_token_airflow_refuses_is_replaced_once() -> None:
    airflow, state = FakeAirflow(), State()
    run(invoke_event(), airflow, state=state)
    airflow.answers = [HttpResponse(401, {}, b"{}"), HttpResponse(200, {}, b"ok")]
    status, body = run(invoke_event(), airflow, state=state)
    assert status == 200 and body["status"] == 200 and body["body"] == "ok"
    assert airflow.tokens_issued == 2
    airflow.answers = [HttpResponse(401, {}, b"{}"), HttpResponse(401, {}, b"{}")]
    state.tokens.clear()
    status, body = run(invoke_event(), airflow, state=state)
    assert (status, body["status"]) == (200, 401)  # a fresh token refused: not retried
    assert len(airflow.api_calls) == 4 and len(airflow.answers) == 1


def test_invoke_passes_method_query_and_json_body() -> None:
    airflow = FakeAirflow()
    run(
        invoke_event(
            method="patch",
            path="/api/v2/dags/my_dag",
            query={"update_mask": ["is_paused", "tags"], "flag": True},
            body={"is_paused": False},
        ),
        airflow,
    )
    [call] = airflow.api_calls
    assert call.method == "PATCH"
    assert call.url.endswith("/api/v2/dags/my_dag?update_mask=is_paused&update_mask=tags&flag=true")
    assert call.headers["Content-Type"] == "application/json"
    assert json.loads(call.body or b"") == {"is_paused": False}


def test_airflow_errors_are_passed_on_in_the_answer() -> None:
    airflow = FakeAirflow(
        answers=[HttpResponse(404, {"content-type": "application/json"}, b'{"detail": "no"}')]
    )
    status, body = run(invoke_event(), airflow)
    assert status == 200
    assert body["status"] == 404 and body["body"] == {"detail": "no"}


@pytest.mark.parametrize(
    ("evt", "words"),
    [
        (event(role="op"), ["unknown role", "Admin, Op, User, Viewer, Public"]),
        (event(role="Superuser"), ["unknown role", "Admin, Op, User, Viewer, Public"]),
        ({**event(), "resource": "/other"}, ["unknown route"]),
        ({**event(), "httpMethod": "GET"}, ["unknown route"]),
        (event("/invoke/{role}", body=None), ["body must be JSON"]),
        (event("/invoke/{role}", body="{not json"), ["not JSON"]),
        (event("/invoke/{role}", body=[1]), ["JSON object"]),
        (invoke_event(method="TRACE"), ["method must be one of"]),
        (invoke_event(extra=1), ["unknown fields"]),
        (invoke_event(query=[1]), ['"query" must be an object']),
        (invoke_event(query={"a": {"b": 1}}), ['"query" value']),
        (invoke_event(path="/auth/token"), ["/api/"]),
        (invoke_event(path="http://evil.example/api/v2"), ["/api/"]),
        (invoke_event(path="/api/../auth/token"), [".."]),
        (invoke_event(path="/api/v2/%2e%2e/x"), [".."]),
        (invoke_event(path="/api//evil.example/x"), ["//"]),
        (invoke_event(path="/api/v2/dags?limit=1"), ["query"]),
        (invoke_event(path="/api/v2/dags#x"), ["#"]),
        (invoke_event(path="/api/v2/da gs"), ["spaces"]),
        (invoke_event(path=7), ["/api/"]),
    ],
)
def test_bad_input_is_400_with_the_reason(evt: dict[str, Any], words: list[str]) -> None:
    airflow = FakeAirflow()
    status, body = run(evt, airflow)
    assert status == 400
    for word in words:
        assert word in body["message"]
    assert airflow.sent == [] and airflow.key_reads == 0


def test_base64_bodies_are_decoded() -> None:
    evt = invoke_event()
    evt["body"] = base64.b64encode(evt["body"].encode()).decode()
    evt["isBase64Encoded"] = True
    assert isinstance(core.parse_event(evt), InvokeCall)
    evt["body"] = "***"
    with pytest.raises(core.BadRequestError, match="base64"):
        core.parse_event(evt)
    assert core.parse_event(event(role="Admin")) == TokenCall("Admin")


@pytest.mark.parametrize(
    ("failure", "status", "words"),
    [
        (TimedOutError("timed out"), 504, ["did not answer within 10 s", "nothing was returned"]),
        (UnreachableError("http://airflow.internal: refused"), 502, ["unreachable", "refused"]),
    ],
)
def test_airflow_not_answering_is_502_or_504(
    failure: Exception, status: int, words: list[str]
) -> None:
    for evt in (event(), invoke_event()):
        got, body = run(evt, FakeAirflow(fail=failure))
        assert got == status and set(body) == {"message"}
        for word in words:
            assert word in body["message"]


def test_machine_key_unreadable_is_500() -> None:
    status, body = run(event(), FakeAirflow(key_error=KeyUnavailableError("AccessDenied")))
    assert status == 500 and "machine key" in body["message"] and "AccessDenied" in body["message"]


@pytest.mark.parametrize(("code", "words"), [(401, "refused the machine user"), (404, "no /auth")])
def test_airflow_refusing_the_machine_user_is_502(code: int, words: str) -> None:
    status, body = run(event(role="Op"), FakeAirflow(token_status=code))
    assert status == 502 and words in body["message"]
    assert KEY not in body["message"] and core.machine_password(KEY, "Op") not in body["message"]


def test_a_token_answer_without_a_token_is_502() -> None:
    answer = HttpResponse(201, {}, b'{"detail": "x"}')
    with pytest.raises(core.HttpError) as error:
        core.token_from_answer("Op", answer, NOW)
    assert error.value.status == 502 and "no access_token" in error.value.message


def test_jwt_expiry_reads_exp_or_assumes_the_default() -> None:
    assert core.jwt_expiry(jwt(NOW + 42), NOW) == NOW + 42
    assert core.jwt_expiry("not-a-jwt", NOW) == NOW + core.DEFAULT_TOKEN_SECONDS
    assert core.jwt_expiry("a.!!!.c", NOW) == NOW + core.DEFAULT_TOKEN_SECONDS


def test_too_large_answers_are_refused() -> None:
    big = HttpResponse(200, {"content-type": "text/plain"}, b"x" * (core.MAX_RESPONSE_BYTES + 1))
    status, body = run(invoke_event(), FakeAirflow(answers=[big]))
    assert status == 502 and "larger than" in body["message"]


def test_text_and_empty_answers() -> None:
    assert core.invoke_result(HttpResponse(204, {}, b""))["body"] is None
    assert (
        core.invoke_result(HttpResponse(200, {"content-type": "text/plain"}, b"hi"))["body"] == "hi"
    )
    bad_json = HttpResponse(500, {"content-type": "application/json"}, b"<html>")
    assert core.invoke_result(bad_json)["body"] == "<html>"


def test_log_line_has_the_request_and_no_secret() -> None:
    line = core.log_line(
        caller="arn:aws:iam::1:user/ci",
        route="/token/{role}",
        role="Op",
        status=200,
        duration_ms=12,
        airflow_status=201,
    )
    assert json.loads(line) == {
        "caller": "arn:aws:iam::1:user/ci",
        "route": "/token/{role}",
        "role": "Op",
        "status": 200,
        "duration_ms": 12,
        "airflow_status": 201,
    }
    assert core.caller_of(event()) == "arn:aws:iam::123456789012:user/ci"
    assert core.caller_of({}) is None


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({}, "missing environment variables"),
        ({"OPENMWAA_AIRFLOW_URL": "ftp://x"}, "http(s) URL"),
        ({"OPENMWAA_AIRFLOW_VERSION": "4.0.0"}, "Airflow 2 or 3"),
    ],
)
def test_settings_are_checked(env: dict[str, str], words: str) -> None:
    good = {
        contracts.AIRFLOW_URL_VARIABLE: "http://alb/",
        contracts.MACHINE_KEY_SECRET_VARIABLE: "arn:secret",
        contracts.AIRFLOW_VERSION_VARIABLE: "3.3.2",
        contracts.ENVIRONMENT_NAME_VARIABLE: "env",
    }
    assert Settings.from_env(good) == Settings("http://alb", "arn:secret", "3.3.2", "env")
    with pytest.raises(core.ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env({**good, **env} if env else {})


def test_no_retry_when_the_first_call_was_slow() -> None:
    airflow, state = FakeAirflow(), State()
    run(invoke_event(), airflow, state=state)
    airflow.answers = [HttpResponse(401, {}, b"{}"), HttpResponse(200, {}, b"ok")]
    times = iter([NOW, NOW + core.RETRY_BUDGET_SECONDS])
    status, body = run(invoke_event(), airflow, state=state, clock=lambda: next(times))
    assert (status, body["status"]) == (200, 401)  # no time left for a second sign-in
    assert airflow.tokens_issued == 1


@dataclass
class RotatedKeyAirflow(FakeAirflow):
    """Airflow whose machine users follow only the newest key: the old one is refused."""

    current: str = "new-key"

    def send(self, request: HttpRequest) -> HttpResponse:
        password = core.machine_password(self.current, "Op")
        if request.url.endswith(core.TOKEN_PATH) and password not in (request.body or b"").decode():
            self.sent.append(request)
            return HttpResponse(401, {}, b'{"detail": "Invalid credentials"}')
        return super().send(request)


def test_a_rotated_machine_key_is_read_again_once() -> None:
    airflow = RotatedKeyAirflow(keys=["old-key", "new-key"])
    status, body = run(event(role="Op"), airflow)
    assert status == 200 and body["role"] == "Op"
    assert airflow.forgotten == 1 and airflow.key_reads == 2
    assert airflow.tokens_issued == 1


def test_a_machine_key_refused_twice_is_502_and_read_only_twice() -> None:
    airflow = RotatedKeyAirflow(keys=["old-key", "older-key"])
    status, body = run(event(role="Op"), airflow)
    assert status == 502 and "refused the machine user" in body["message"]
    assert airflow.forgotten == 1 and airflow.key_reads == 2


def test_airflow_2_basic_auth_refused_reads_the_key_again_once() -> None:
    airflow = FakeAirflow(keys=["old-key", "new-key"])
    airflow.answers = [HttpResponse(401, {}, b"{}"), HttpResponse(200, {}, b"ok")]
    status, body = run(invoke_event(path="/api/v1/dags"), airflow, SETTINGS2)
    assert (status, body["status"]) == (200, 200)
    first, second = airflow.api_calls
    assert first.headers["Authorization"] != second.headers["Authorization"]
    expected = core.basic_authorization("Op", "new-key")
    assert second.headers["Authorization"] == expected


def test_a_cached_token_signed_with_an_old_jwt_secret_is_replaced_once() -> None:
    airflow, state = FakeAirflow(), State()
    run(invoke_event(), airflow, state=state)
    airflow.answers = [
        HttpResponse(403, {}, b'{"detail": "Invalid JWT token"}'),
        HttpResponse(200, {}, b"ok"),
    ]
    status, body = run(invoke_event(), airflow, state=state)
    assert (status, body["status"], body["body"]) == (200, 200, "ok")
    assert airflow.tokens_issued == 2


def test_a_403_for_a_forbidden_action_is_passed_through_not_retried() -> None:
    airflow, state = FakeAirflow(), State()
    run(invoke_event(), airflow, state=state)
    airflow.answers = [HttpResponse(403, {}, b'{"detail": "Forbidden"}')]
    status, body = run(invoke_event(), airflow, state=state)
    assert (status, body["status"]) == (200, 403)
    assert airflow.tokens_issued == 1
