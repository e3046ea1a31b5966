"""``openmwaa token``, ``api`` and ``airflow``: the Airflow CLI -> REST mapping of both majors,
SigV4 signing, error paths on a fake HTTP layer, and the SSM lookup against moto."""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.credentials import ReadOnlyCredentials
from moto import mock_aws

from openmwaa.cli import airflow_cli, airflow_commands, api, api_client, main
from openmwaa.cli.airflow_commands import CommandError, plan
from openmwaa.cli.api_client import ApiClient, ApiError, Endpoint, HttpAnswer, SignedRequest

REGION = "eu-west-1"
URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/v1"
CREDENTIALS = ReadOnlyCredentials("AKIDEXAMPLE", "secret-key-example", None)

# --- the mapping -----------------------------------------------------------------------

MAPPING = [
    # (major, args, method, path, query, body)
    (3, "dags list", "GET", "/api/v2/dags", {"limit": 100}, None),
    (2, "dags list", "GET", "/api/v1/dags", {"limit": 100}, None),
    (
        3,
        'dags trigger etl --conf {"a":1} --run-id r1',
        "POST",
        "/api/v2/dags/etl/dagRuns",
        {},
        {"conf": {"a": 1}, "dag_run_id": "r1", "logical_date": None},
    ),
    (3, "dags trigger etl", "POST", "/api/v2/dags/etl/dagRuns", {}, {"logical_date": None}),
    (2, "dags trigger etl -c {}", "POST", "/api/v1/dags/etl/dagRuns", {}, {"conf": {}}),
    (
        2,
        "dags trigger etl -e 2024-01-01T00:00:00+00:00",
        "POST",
        "/api/v1/dags/etl/dagRuns",
        {},
        {"logical_date": "2024-01-01T00:00:00+00:00"},
    ),
    (
        3,
        "dags pause etl",
        "PATCH",
        "/api/v2/dags/etl",
        {"update_mask": "is_paused"},
        {"is_paused": True},
    ),
    (
        2,
        "dags unpause etl",
        "PATCH",
        "/api/v1/dags/etl",
        {"update_mask": "is_paused"},
        {"is_paused": False},
    ),
    (
        3,
        "dags list-runs etl --state failed",
        "GET",
        "/api/v2/dags/etl/dagRuns",
        {"limit": 100, "order_by": "-logical_date", "state": "failed"},
        None,
    ),
    (
        2,
        "dags list-runs -d etl -s 2024-01-01",
        "GET",
        "/api/v1/dags/etl/dagRuns",
        {"limit": 100, "order_by": "-execution_date", "execution_date_gte": "2024-01-01"},
        None,
    ),
    (3, "dags state etl manual__1", "GET", "/api/v2/dags/etl/dagRuns/manual__1", {}, None),
    (
        2,
        "dags state etl 2024-01-01T00:00:00+00:00",
        "GET",
        "/api/v1/dags/etl/dagRuns",
        {
            "execution_date_gte": "2024-01-01T00:00:00+00:00",
            "execution_date_lte": "2024-01-01T00:00:00+00:00",
            "limit": 1,
        },
        None,
    ),
    (3, "variables get region", "GET", "/api/v2/variables/region", {}, None),
    (
        3,
        "variables set region eu-west-1",
        "PATCH",
        "/api/v2/variables",
        {},
        {
            "actions": [
                {
                    "action": "create",
                    "action_on_existence": "overwrite",
                    "entities": [{"key": "region", "value": "eu-west-1"}],
                }
            ]
        },
    ),
    (
        2,
        "variables set region eu-west-1 --description where",
        "POST",
        "/api/v1/variables",
        {},
        {"key": "region", "value": "eu-west-1", "description": "where"},
    ),
    (2, "variables delete region", "DELETE", "/api/v1/variables/region", {}, None),
    (3, "variables list", "GET", "/api/v2/variables", {"limit": 100}, None),
    (3, "connections list", "GET", "/api/v2/connections", {"limit": 100}, None),
    (2, "connections delete my conn", "DELETE", "/api/v1/connections/my%20conn", {}, None),
    (3, "pools list", "GET", "/api/v2/pools", {"limit": 100}, None),
    (2, "version", "GET", "/api/v1/version", {}, None),
    (3, "version", "GET", "/api/v2/version", {}, None),
]


def _split(args: str) -> list[str]:
    if "my conn" in args:
        return ["connections", "delete", "my conn"]
    return args.split(" ")


@pytest.mark.parametrize(("major", "args", "method", "path", "query", "body"), MAPPING)
def test_airflow_commands_map_onto_the_rest_api(
    major: int, args: str, method: str, path: str, query: dict[str, Any], body: Any
) -> None:
    call = plan(_split(args), major)
    assert (call.method, call.path, call.query, call.body) == (method, path, query, body)
    request = call.invoke_body()
    assert request["method"] == method and request["path"] == path
    assert ("body" in request) == (body is not None)


def test_every_supported_command_is_mapped_for_both_majors() -> None:
    mapped = {(m, " ".join(_split(a)[:2]) if a != "version" else "version") for m, a, *_ in MAPPING}
    for line in airflow_commands.SUPPORTED:
        words = line.split(" ")
        name = "version" if words[0] == "version" else " ".join(words[:2])
        assert (3, name) in mapped or (2, name) in mapped, name


@pytest.mark.parametrize(
    ("major", "args", "words"),
    [
        (3, ["dags", "backfill", "etl"], "unsupported Airflow command: dags backfill etl"),
        (3, ["db", "reset"], "airflow variables set KEY VALUE"),
        (3, [], "unsupported Airflow command: (nothing)"),
        (2, ["dags", "list-runs", "etl"], "-d/--dag-id"),  # 2.11 takes -d DAG_ID
        (3, ["dags", "list-runs", "-d", "etl"], "unrecognized arguments"),
        (3, ["dags", "trigger", "etl", "--conf", "[1]"], "JSON object"),
        (3, ["dags", "trigger", "etl", "--conf", "{x"], "not JSON"),
        (3, ["dags", "trigger", "etl", "-e", "2024-01-01"], "unrecognized arguments"),
        (3, ["variables", "get", "../x"], "not a usable name"),
        (3, ["dags", "list-runs", "etl", "-s", "yesterday"], "ISO 8601"),
        (4, ["version"], "Airflow 4 is not supported"),
    ],
)
def test_refused_commands_say_why(major: int, args: list[str], words: str) -> None:
    with pytest.raises(CommandError) as error:
        plan(args, major)
    assert words in str(error.value)


def test_output_formatting() -> None:
    dags = plan(["dags", "list"], 3)
    body = {
        "dags": [{"dag_id": "etl", "owners": ["a"], "is_paused": False, "fileloc": "/x"}],
        "total_entries": 3,
    }
    text = dags.render(200, body)
    assert text.splitlines()[0].split(" | ") == ["dag_id", "owners", "is_paused"]
    assert "etl" in text and "(1 of 3 shown" in text
    assert json.loads(plan(["dags", "list", "-o", "json"], 3).render(200, body)) == body
    assert plan(["dags", "list"], 2).render(200, {"dags": []}) == "No data found"
    assert plan(["dags", "state", "etl", "r1"], 3).render(200, {"state": "success"}) == "success"
    state_by_date = plan(["dags", "state", "etl", "2024-01-01"], 2)
    assert state_by_date.render(200, {"dag_runs": [{"state": "failed"}]}) == "failed"
    assert state_by_date.render(200, {"dag_runs": []}) == "None"
    assert plan(["version"], 3).render(200, {"version": "3.3.2"}) == "3.3.2"
    got = plan(["variables", "get", "k", "-j"], 3).render(200, {"value": '{"a": 1}'})
    assert json.loads(got) == {"a": 1}
    connections = plan(["connections", "list", "-o", "json"], 3).render(
        200, {"connections": [{"connection_id": "db", "password": "hunter2", "host": "h"}]}
    )
    assert "hunter2" not in connections and "db" in connections
    bulk = plan(["variables", "set", "k", "v"], 3)
    assert bulk.render(200, {"create": {"success": ["k"], "errors": []}}) == "Variable k created"
    with pytest.raises(CommandError, match="did not set k"):
        bulk.render(200, {"create": {"success": [], "errors": [{"error": "x"}]}})


def test_variables_get_default_on_404() -> None:
    call = plan(["variables", "get", "k", "--default", "fallback"], 3)
    assert airflow_cli.outcome(call, {"status": 404, "body": {"detail": "x"}}) == ("fallback", None)
    plain = plan(["variables", "get", "k"], 3)
    assert airflow_cli.outcome(plain, {"status": 404, "body": {"detail": "not found"}}) == (
        "",
        "Airflow answered 404: not found",
    )


def test_leading_openmwaa_options_are_taken_before_the_command() -> None:
    assert airflow_cli.leading_options(["--role", "Op", "--region=us-east-1", "dags", "list"]) == (
        {"role": "Op", "region": "us-east-1"},
        ["dags", "list"],
    )
    assert airflow_cli.leading_options(["dags", "trigger", "x", "--role", "Op"])[0] == {}
    with pytest.raises(CommandError, match="--role needs a value"):
        airflow_cli.leading_options(["--role"])


# --- openmwaa api's request ------------------------------------------------------------


def test_api_request_building() -> None:
    assert api.build_request("get", "/api/v2/dags", None, ["limit=5", "tags=a", "tags=b"]) == {
        "method": "GET",
        "path": "/api/v2/dags",
        "query": {"limit": "5", "tags": ["a", "b"]},
    }
    assert api.build_request("PATCH", "/api/v2/dags/x", '{"is_paused": true}', [])["body"] == {
        "is_paused": True
    }
    for bad, words in [
        (("GET", "/dags", None, []), "must start with /api/"),
        (("POST", "/api/v2/x", "{", []), "--data is not JSON"),
        (("GET", "/api/v2/x", None, ["novalue"]), "NAME=VALUE"),
    ]:
        with pytest.raises(ApiError, match=words):
            api.build_request(*bad)


def test_api_answer_formatting() -> None:
    assert api.format_answer({"status": 200, "body": {"a": 1}}) == ('{\n  "a": 1\n}', None)
    _, error = api.format_answer({"status": 403, "body": {"detail": "Forbidden", "title": "t"}})
    assert error == "Airflow answered 403: Forbidden"


# --- signing ---------------------------------------------------------------------------


def _sigv4(request: SignedRequest, secret: str, region: str) -> str:
    """An independent SigV4 signature of `request` from its signed headers."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    parts = urllib.parse.urlsplit(request.url)
    assert "host" in headers["authorization"].split("SignedHeaders=")[1].split(",")[0]
    headers.setdefault("host", parts.netloc)  # urllib sends it from the URL
    date = headers["x-amz-date"]
    signed = headers["authorization"].split("SignedHeaders=")[1].split(",")[0]
    canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in signed.split(";"))
    canonical = "\n".join(
        [
            request.method,
            parts.path,
            parts.query,
            canonical_headers,
            signed,
            hashlib.sha256(request.body).hexdigest(),
        ]
    )
    scope = f"{date[:8]}/{region}/execute-api/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + secret).encode()
    for part in (date[:8], region, "execute-api", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class FakeTransport:
    def __init__(self, *answers: HttpAnswer) -> None:
        self.answers = list(answers)
        self.sent: list[SignedRequest] = []

    def __call__(self, request: SignedRequest) -> HttpAnswer:
        self.sent.append(request)
        return self.answers.pop(0)


def _ok(value: Any) -> HttpAnswer:
    return HttpAnswer(200, json.dumps(value).encode())


def test_requests_are_sigv4_signed_for_execute_api_over_the_body() -> None:
    transport = FakeTransport(_ok({"status": 200, "headers": {}, "body": {}}))
    client = ApiClient(Endpoint(URL, REGION, "3.3.2"), CREDENTIALS, transport)
    client.invoke("Op", {"method": "GET", "path": "/api/v2/dags"})
    [request] = transport.sent
    assert request.method == "POST" and request.url == URL + "/invoke/Op"
    assert json.loads(request.body) == {"method": "GET", "path": "/api/v2/dags"}
    authorization = request.headers["Authorization"]
    assert (
        authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
        and f"/{REGION}/execute-api/aws4_request" in authorization
    )
    signature = authorization.split("Signature=")[1]
    assert signature == _sigv4(request, "secret-key-example", REGION)
    tampered = SignedRequest(request.method, request.url, request.headers, request.body + b" ")
    assert _sigv4(tampered, "secret-key-example", REGION) != signature


def test_a_403_from_api_gateway_names_the_grant() -> None:
    denied = HttpAnswer(
        403,
        b'{"Message":"User: arn:aws:iam::1:user/ci is not authorized to perform: '
        b"execute-api:Invoke on resource: "
        b'arn:aws:execute-api:eu-west-1:1:abc123/v1/POST/token/Admin"}',
    )
    client = ApiClient(Endpoint(URL, REGION), CREDENTIALS, FakeTransport(denied))
    with pytest.raises(ApiError) as error:
        client.token("Admin")
    message = str(error.value)
    assert message.startswith("403 User: arn:aws:iam::1:user/ci is not authorized")
    assert "arn:aws:execute-api:eu-west-1:*:abc123/v1/POST/token/Admin" in message
    assert "grant_airflow_role(<principal>, 'Admin')" in message
    other = HttpAnswer(403, b'{"message":"Missing Authentication Token"}')
    with pytest.raises(ApiError, match=r"Missing Authentication Token \(check --region"):
        ApiClient(Endpoint(URL, REGION), CREDENTIALS, FakeTransport(other)).token("Op")


def test_other_api_errors_are_one_line() -> None:
    for answer, words in [
        (HttpAnswer(400, b'{"message": "Airflow 2 has no API tokens"}'), "400 Airflow 2 has no"),
        (HttpAnswer(502, b'{"message": "Airflow is unreachable"}'), "502 Airflow is unreachable"),
        (HttpAnswer(200, b"<html>"), "not JSON"),
    ]:
        with pytest.raises(ApiError, match=words):
            ApiClient(Endpoint(URL, REGION), CREDENTIALS, FakeTransport(answer)).token("Op")
    with pytest.raises(ApiError, match="no AWS region"):
        ApiClient(Endpoint(URL, None), CREDENTIALS)


def test_endpoint_from_url_reads_the_region() -> None:
    assert api_client.endpoint_from_url(URL + "/", None) == Endpoint(URL, REGION)
    with pytest.raises(ApiError, match="https"):
        api_client.endpoint_from_url("http://x", None)


# --- the SSM lookup and the commands end to end (moto, fake HTTP) ----------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        ssm = boto3.client("ssm", region_name=REGION)
        ssm.put_parameter(
            Name="/openmwaa/prod/api-access",
            Type="String",
            Value=json.dumps({"url": URL + "/", "airflow_version": "2.11.2", "region": REGION}),
        )
        yield ssm


def test_lookup_reads_the_parameter(aws: Any) -> None:
    assert api_client.lookup(aws, "prod", REGION) == Endpoint(URL, REGION, "2.11.2")
    with pytest.raises(ApiError, match="no API access in region eu-west-1: parameter"):
        api_client.lookup(aws, "missing", REGION)
    aws.put_parameter(Name="/openmwaa/junk/api-access", Type="String", Value="[]")
    with pytest.raises(ApiError, match="not openmwaa's API access parameter"):
        api_client.lookup(aws, "junk", REGION)


def _run(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], *answers: HttpAnswer
) -> tuple[int, FakeTransport]:
    transport = FakeTransport(*answers)
    monkeypatch.setattr(api_client, "transport", transport)
    return main.main(argv), transport


def test_airflow_command_end_to_end_uses_the_parameters_version(
    aws: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = {"dag_run_id": "manual__1", "dag_id": "etl", "state": "queued"}
    code, transport = _run(
        monkeypatch,
        ["airflow", "prod", "--role", "Op", "dags", "trigger", "etl"],
        _ok({"status": 200, "headers": {}, "body": run}),
    )
    assert code == 0
    assert capsys.readouterr().out.strip() == "Created dag run manual__1 of etl: state queued"
    [request] = transport.sent
    assert request.url == URL + "/invoke/Op"
    assert json.loads(request.body) == {
        "method": "POST",
        "path": "/api/v1/dags/etl/dagRuns",  # Airflow 2.11, from the parameter
        "body": {},
    }


def test_token_command_prints_the_token_alone(
    aws: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = {"token": "eyJ.x.y", "role": "User", "expires_in": 3600}
    code, transport = _run(monkeypatch, ["token", "prod"], _ok(answer))
    assert code == 0 and capsys.readouterr().out == "eyJ.x.y\n"
    assert transport.sent[0].url == URL + "/token/User"  # the default role
    code, _ = _run(monkeypatch, ["token", "prod", "--json"], _ok(answer))
    assert json.loads(capsys.readouterr().out) == answer


@pytest.mark.parametrize(
    ("argv", "answers", "words"),
    [
        (["token", "nowhere"], [], "openmwaa token: environment 'nowhere' has no API access"),
        (
            ["api", "prod", "GET", "/api/v1/dags/x"],
            [_ok({"status": 404, "body": {"detail": "DAG not found"}})],
            "openmwaa api: Airflow answered 404: DAG not found",
        ),
        (
            ["airflow", "prod", "dags", "backfill", "x"],
            [],
            "openmwaa airflow: unsupported Airflow command: dags backfill x",
        ),
        (
            ["token", "prod", "--role", "Admin"],
            [HttpAnswer(403, b'{"Message":"User: u is not authorized to perform: x"}')],
            "execute-api:Invoke on arn:aws:execute-api:eu-west-1:*:abc123/v1/POST/token/Admin",
        ),
    ],
)
def test_failures_are_one_line_on_stderr_and_exit_1(
    aws: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    answers: list[HttpAnswer],
    words: str,
) -> None:
    code, _ = _run(monkeypatch, argv, *answers)
    err = capsys.readouterr().err
    assert code == 1
    assert words in err
    assert err.startswith("openmwaa ")


def test_url_skips_the_lookup(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    code, transport = _run(
        monkeypatch,
        ["airflow", "any", "--url", URL, "version"],
        _ok({"status": 200, "body": {"version": "3.3.2"}}),
    )
    assert code == 0 and capsys.readouterr().out == "3.3.2\n"
    assert json.loads(transport.sent[0].body)["path"] == "/api/v2/version"
    assert "/eu-west-1/execute-api/" in transport.sent[0].headers["Authorization"]


def test_role_choices_and_help_say_why_user_is_the_default() -> None:
    assert api_client.DEFAULT_ROLE == "User"
    assert "least privilege" in api_client.ROLE_HELP
    with pytest.raises(SystemExit) as exit_info:
        main.main(["token", "prod", "--role", "Root"])
    assert exit_info.value.code == 2
