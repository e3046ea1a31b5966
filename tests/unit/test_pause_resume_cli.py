"""``openmwaa pause ENV`` and ``openmwaa resume ENV`` against a stubbed Lambda client, and the
parameter lookup against moto's SSM."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from openmwaa.cli import main
from openmwaa.cli import pause_resume as cli
from openmwaa.cli.pause_resume import PauseError, Target

REGION = "eu-west-1"
FUNCTION = "OpenMwaa-AirflowPauserFunction-abc"
PARAMETER = json.dumps({"function": FUNCTION, "region": REGION, "timeout": 310})
PAUSED = {
    "changed": True,
    "action": "pause",
    "state": "running",
    "message": "environment dev paused: 6 services set to 0",
    "steps": ["disable rule r"],
}
ALREADY = {**PAUSED, "changed": False, "message": "environment dev is already paused"}


class FakeLambda:
    """Answers Invoke with ``answer`` (a result, or an error payload with FunctionError)."""

    def __init__(self, answer: dict[str, Any], error: str | None = None) -> None:
        self.answer, self.error = answer, error
        self.calls: list[dict[str, Any]] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "no"}}, "Invoke")
        response: dict[str, Any] = {
            "StatusCode": 200,
            "Payload": io.BytesIO(json.dumps(self.answer).encode()),
        }
        if "errorMessage" in self.answer:
            response["FunctionError"] = "Unhandled"
        return response


class FakeSsm:
    def __init__(self, value: str | None = PARAMETER, error: str | None = None) -> None:
        self.value, self.error = value, error
        self.names: list[str] = []

    def get_parameter(self, Name: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
        self.names.append(Name)
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "no"}}, "GetParameter")
        return {"Parameter": {"Value": self.value}}


class FakeSession:
    def __init__(self, lambda_client: FakeLambda, ssm: FakeSsm) -> None:
        self.region_name = REGION
        self.lambda_client, self.ssm = lambda_client, ssm
        self.configs: list[Any] = []

    def client(self, name: str, region_name: str | None = None, config: Any = None) -> Any:
        if name == "lambda":
            self.configs.append(config)
            return self.lambda_client
        return self.ssm


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSession]:
    fake = FakeSession(FakeLambda(PAUSED), FakeSsm())
    monkeypatch.setattr(cli, "session_factory", lambda profile, region: fake)
    yield fake


# --- the commands ------------------------------------------------------------------------


def test_pause_invokes_the_pauser_found_in_ssm_and_prints_its_message(
    session: FakeSession, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main.main(["pause", "dev"])

    assert code == 0
    assert capsys.readouterr().out.strip() == PAUSED["message"]
    assert session.ssm.names == ["/openmwaa/dev/pauser"]
    [call] = session.lambda_client.calls
    assert call["FunctionName"] == FUNCTION
    assert call["InvocationType"] == "RequestResponse"
    assert json.loads(call["Payload"]) == {"action": "pause"}


def test_resume_sends_resume(session: FakeSession) -> None:
    assert main.main(["resume", "dev"]) == 0
    assert json.loads(session.lambda_client.calls[0]["Payload"]) == {"action": "resume"}


def test_a_no_op_exits_zero_with_its_message(
    session: FakeSession, capsys: pytest.CaptureFixture[str]
) -> None:
    session.lambda_client.answer = ALREADY

    assert main.main(["pause", "dev"]) == 0
    assert "already paused" in capsys.readouterr().out


def test_the_client_waits_for_the_whole_run_and_never_retries(session: FakeSession) -> None:
    main.main(["pause", "dev"])

    [config] = session.configs
    assert config.read_timeout == 310 + cli.MARGIN_SECONDS
    assert config.retries == {"total_max_attempts": 1}


def test_function_option_skips_the_parameter(session: FakeSession) -> None:
    assert main.main(["pause", "dev", "--function", "my-pauser"]) == 0
    assert session.ssm.names == []
    assert session.lambda_client.calls[0]["FunctionName"] == "my-pauser"


def test_json_prints_the_whole_answer(
    session: FakeSession, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main.main(["pause", "dev", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == PAUSED


@pytest.mark.parametrize(
    ("lambda_client", "ssm", "error"),
    [
        (
            FakeLambda({"errorMessage": "the pauser takes ...", "errorType": "EventError"}),
            FakeSsm(),
            "openmwaa pause: pause failed: EventError: the pauser takes ...",
        ),
        (
            FakeLambda(PAUSED, error="AccessDeniedException"),
            FakeSsm(),
            "needs lambda:InvokeFunction on it (env.grant_pause_resume)",
        ),
        (FakeLambda(PAUSED, error="ResourceNotFoundException"), FakeSsm(), "not found"),
        (FakeLambda(PAUSED), FakeSsm(error="ParameterNotFound"), "/openmwaa/dev/pauser not found"),
        (FakeLambda(PAUSED), FakeSsm(error="AccessDeniedException"), "ssm:GetParameter on it"),
        (FakeLambda(PAUSED), FakeSsm(value="not json"), "is not openmwaa's pauser parameter"),
        (FakeLambda({"unexpected": 1}), FakeSsm(), "is not a pauser result"),
    ],
)
def test_failures_are_one_line_and_exit_one(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    lambda_client: FakeLambda,
    ssm: FakeSsm,
    error: str,
) -> None:
    fake = FakeSession(lambda_client, ssm)
    monkeypatch.setattr(cli, "session_factory", lambda profile, region: fake)

    code = main.main(["pause", "dev"])

    err = capsys.readouterr().err
    assert code == 1
    assert error in err and err.startswith("openmwaa pause: ") and err.count("\n") == 1


def test_usage_errors_exit_two() -> None:
    with pytest.raises(SystemExit) as raised:
        main.main(["pause"])
    assert raised.value.code == 2


def test_help_describes_both_commands(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("pause", "resume"):
        with pytest.raises(SystemExit):
            main.main([command, "--help"])
        assert "/openmwaa/ENV/pauser" in capsys.readouterr().out


# --- the pure parts ----------------------------------------------------------------------


def test_parse_parameter_reads_function_region_and_timeout() -> None:
    assert cli.parse_parameter("dev", PARAMETER, None) == Target(FUNCTION, REGION, 340)
    assert cli.parse_parameter("dev", json.dumps({"function": "f"}), "us-east-1") == Target(
        "f", "us-east-1", cli.DEFAULT_TIMEOUT_SECONDS
    )
    with pytest.raises(PauseError, match="names no function"):
        cli.parse_parameter("dev", json.dumps({"function": ""}), None)


def test_payload_refuses_other_actions() -> None:
    assert json.loads(cli.payload("resume")) == {"action": "resume"}
    with pytest.raises(ValueError, match="pause, resume"):
        cli.payload("restart")


# --- the parameter on moto ---------------------------------------------------------------


def test_lookup_reads_the_parameter_the_construct_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        ssm = boto3.client("ssm", region_name=REGION)
        ssm.put_parameter(Name="/openmwaa/dev/pauser", Value=PARAMETER, Type="String")

        assert cli.lookup(ssm, "dev", REGION) == Target(FUNCTION, REGION, 340)
        with pytest.raises(PauseError, match="has no pauser in region eu-west-1"):
            cli.lookup(ssm, "other", REGION)
