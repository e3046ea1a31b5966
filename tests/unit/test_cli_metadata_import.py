"""``openmwaa import-metadata``, the adapter: arguments, credentials, a fake Airflow 3 behind the
transport port, exit codes, and that no password, extra or token reaches the terminal."""

from __future__ import annotations

import argparse
import io
import json
import socket
import sys
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from openmwaa.cli import metadata_import as cli
from openmwaa.cli import metadata_transfer as mt

EXPORT = Path(__file__).parents[1] / "fixtures" / "airflow2_export"
URL = "https://airflow.example.test"
TOKEN = "eyJ.fixture-jwt.sig"
ADMIN = ("admin", "admin-pw-fixture")
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:openmwaa-admin-AbCdEf"
LOGIN = {"username": ADMIN[0], "password": ADMIN[1]}
ADMIN_SECRET = ("--admin-secret", SECRET_ARN)
SECRETS = (
    "fixture-pg-pass:w/@#",
    "fixture-slack-token",
    "fixture-aws-secret-key",
    "AKIAFIXTUREFIXTURE00",
    "fixture-variable-secret",
    ADMIN[1],
    TOKEN,
)
ENTITY_KEY = {"connections": "connection_id", "variables": "key", "pools": "name"}


class FakeAirflow:
    """Answers like Airflow 3.3's api-server: a token for ADMIN, then every entity created,
    unless an answer for the path is given."""

    def __init__(self, answers: Mapping[str, mt.HttpResponse] | None = None) -> None:
        self.answers = dict(answers or {})
        self.calls: list[tuple[str, str, dict[str, str], Any]] = []

    def __call__(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> mt.HttpResponse:
        payload = json.loads(body or b"null")
        self.calls.append((method, url, dict(headers), payload))
        path = url.removeprefix(URL)
        if path in self.answers:
            return self.answers[path]
        if path == "/auth/token":
            if payload == LOGIN:
                return mt.HttpResponse(201, json.dumps({"access_token": TOKEN}).encode())
            return mt.HttpResponse(401, b'{"detail": "Invalid credentials"}')
        kind = path.rsplit("/", 1)[1]
        names = [e[ENTITY_KEY[kind]] for e in payload["actions"][0]["entities"]]
        return mt.HttpResponse(200, json.dumps({"create": {"success": names}}).encode())

    @property
    def patches(self) -> list[tuple[str, dict[str, str], Any]]:
        return [
            (url, headers, body) for method, url, headers, body in self.calls if method == "PATCH"
        ]


class Run:
    """One command run with fake ports; what it printed and sent."""

    def __init__(
        self,
        argv: list[str],
        airflow: FakeAirflow | None = None,
        stdin: str = "",
        secret: tuple[str, str] | Exception = ADMIN,
    ) -> None:
        self.airflow = airflow or FakeAirflow()
        self.secret_reads: list[tuple[str, str | None]] = []
        self.stdout, self.stderr = io.StringIO(), io.StringIO()

        def read_secret(arn: str, region: str | None) -> tuple[str, str]:
            self.secret_reads.append((arn, region))
            if isinstance(secret, Exception):
                raise secret
            return secret

        ports = cli.Ports(
            transport=self.airflow,
            read_secret=read_secret,
            stdin=io.StringIO(stdin),
            stdout=self.stdout,
            stderr=self.stderr,
        )
        args = parse(argv)
        self.code = args.run(args, ports)

    @property
    def out(self) -> str:
        return self.stdout.getvalue()

    @property
    def err(self) -> str:
        return self.stderr.getvalue()


def parse(argv: list[str]) -> argparse.Namespace:
    root = argparse.ArgumentParser(prog="openmwaa")
    cli.register(root.add_subparsers(dest="command", required=True))
    return root.parse_args(["import-metadata", *argv])


def files(**overrides: Path) -> list[str]:
    argv = []
    for kind in mt.KINDS:
        argv += [f"--{kind}", str(overrides.get(kind, EXPORT / f"{kind}.json"))]
    return argv


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


# --------------------------------------------------------------------------------------------
# Success


def test_import_metadata_sends_the_three_bulk_requests_with_the_admin_token() -> None:
    run = Run([URL, *files(), *ADMIN_SECRET])

    assert run.code == 0, run.err
    assert run.secret_reads == [(SECRET_ARN, None)]
    method, url, _, login = run.airflow.calls[0]
    assert (method, url, login) == (
        "POST",
        f"{URL}/auth/token",
        LOGIN,
    )
    assert [url for url, _, _ in run.airflow.patches] == [
        f"{URL}/api/v2/connections",
        f"{URL}/api/v2/variables",
        f"{URL}/api/v2/pools",
    ]
    assert all(h["Authorization"] == f"Bearer {TOKEN}" for _, h, _ in run.airflow.patches)


def test_import_metadata_sends_the_real_passwords_and_extras() -> None:
    run = Run([URL, "--connections", str(EXPORT / "connections.json"), *ADMIN_SECRET])

    (_, _, body) = run.airflow.patches[0]
    entities = {e["connection_id"]: e for e in body["actions"][0]["entities"]}
    assert entities["warehouse_db"]["password"] == "fixture-pg-pass:w/@#"
    assert "fixture-aws-secret-key" in entities["aws_reporting"]["extra"]
    assert body["actions"][0]["action_on_existence"] == "fail"


def test_import_metadata_prints_the_report_without_secrets() -> None:
    run = Run([URL, *files(), *ADMIN_SECRET])

    assert run.out.splitlines() == [
        "connections: 4 created, 0 skipped, 0 failed",
        "variables: 6 created, 0 skipped, 0 failed",
        "pools: 2 created, 1 skipped, 0 failed",
        "  skipped default_pool: Airflow 3 has its own default_pool; --on-existing overwrite"
        " gives it the old 64 slots",
    ]
    assert_no_secret(run.out, run.err)


def test_import_metadata_passes_on_existing_to_every_action() -> None:
    run = Run([URL, *files(), *ADMIN_SECRET, "--on-existing", "overwrite"])

    assert run.code == 0
    actions = [body["actions"][0] for _, _, body in run.airflow.patches]
    assert {a["action_on_existence"] for a in actions} == {"overwrite"}
    assert "default_pool" in [e["name"] for e in actions[2]["entities"]]


def test_import_metadata_reads_the_password_from_stdin() -> None:
    run = Run(
        [URL, "--pools", str(EXPORT / "pools.json"), "--username", "admin", "--password-stdin"],
        stdin=f"{ADMIN[1]}\n",
    )

    assert run.code == 0, run.err
    assert run.secret_reads == []
    assert run.airflow.calls[0][3] == {"username": "admin", "password": ADMIN[1]}


def test_import_metadata_exits_0_when_existing_entities_are_skipped() -> None:
    answer = mt.HttpResponse(200, b'{"create": {"success": ["reporting"], "errors": []}}')
    airflow = FakeAirflow({"/api/v2/pools": answer})

    run = Run(
        [URL, "--pools", str(EXPORT / "pools.json"), *ADMIN_SECRET, "--on-existing", "skip"],
        airflow,
    )

    assert run.code == 0
    assert "pools: 1 created, 2 skipped, 0 failed" in run.out


# --------------------------------------------------------------------------------------------
# Failures at the server: exit 1


def test_import_metadata_exits_1_when_an_entity_exists_in_fail_mode() -> None:
    error = {"error": "The connections with these connection_ids: {'plain_ftp'} already exist."}
    conflict = {"create": {"success": [], "errors": [{**error, "status_code": 409}]}}
    airflow = FakeAirflow(
        {"/api/v2/connections": mt.HttpResponse(200, json.dumps(conflict).encode())}
    )

    run = Run([URL, *files(), *ADMIN_SECRET], airflow)

    assert run.code == 1
    assert "connections: 0 created, 0 skipped, 4 failed" in run.out
    assert "already exist" in run.out
    assert "variables: 6 created" in run.out  # the other kinds still went


def test_import_metadata_exits_1_and_sends_nothing_when_login_is_refused() -> None:
    run = Run([URL, *files(), *ADMIN_SECRET], secret=("admin", "wrong-pw-fixture"))

    assert run.code == 1
    assert run.airflow.patches == []
    assert "login as 'admin' refused: Invalid credentials" in run.err
    assert "wrong-pw-fixture" not in run.err + run.out


def test_import_metadata_redacts_secrets_echoed_in_errors() -> None:
    detail = [{"loc": ["body"], "msg": "bad", "input": {"password": "fixture-pg-pass:w/@#"}}]
    echo = f"upstream said: fixture-slack-token / {TOKEN} / fixture-variable-secret"
    airflow = FakeAirflow(
        {
            "/api/v2/connections": mt.HttpResponse(422, json.dumps({"detail": detail}).encode()),
            "/api/v2/variables": mt.HttpResponse(500, echo.encode()),
        }
    )

    run = Run([URL, *files(), *ADMIN_SECRET], airflow)

    assert run.code == 1
    assert "error (HTTP 422): body: bad" in run.out
    assert "upstream said: *** / *** / ***" in run.out
    assert_no_secret(run.out, run.err)


# --------------------------------------------------------------------------------------------
# Usage and input errors: exit 2, nothing sent


def test_fails_when_any_file_is_invalid_and_sends_nothing(tmp_path: Path) -> None:
    pools = tmp_path / "pools.json"
    pools.write_text('{"etl": {"slots": "four", "description": null}}')

    run = Run([URL, *files(pools=pools), *ADMIN_SECRET])

    assert run.code == 2
    assert run.airflow.calls == []
    assert run.secret_reads == []
    assert f"{pools}: pool 'etl': slots must be an integer, got a string" in run.err
    assert "nothing was sent" in run.err


def test_fails_when_a_file_is_missing_and_lists_the_other_problems(tmp_path: Path) -> None:
    variables = tmp_path / "variables.json"
    variables.write_text('{"warehouse_db": "fixture-pg-pass:w/@#"')  # cut short: not JSON

    run = Run([URL, *files(pools=tmp_path / "nope.json", variables=variables), *ADMIN_SECRET])

    assert run.code == 2
    assert run.airflow.calls == []
    assert "nope.json: cannot read the pools file (No such file or directory)" in run.err
    assert f"{variables}: not JSON" in run.err
    assert_no_secret(run.err)


def test_fails_without_credentials() -> None:
    run = Run([URL, *files()])

    assert run.code == 2
    assert "give --admin-secret ARN, or --username U --password-stdin" in run.err
    assert run.airflow.calls == []


def test_fails_when_username_comes_without_password_stdin() -> None:
    run = Run([URL, *files(), "--username", "admin"])

    assert run.code == 2
    assert "--username needs --password-stdin" in run.err


def test_fails_when_stdin_holds_no_password() -> None:
    run = Run([URL, *files(), "--username", "admin", "--password-stdin"], stdin="\n")

    assert run.code == 2
    assert run.airflow.calls == []


def test_fails_without_any_file() -> None:
    run = Run([URL, *ADMIN_SECRET])

    assert run.code == 2
    assert "give at least one of --connections, --variables, --pools" in run.err


@pytest.mark.parametrize("url", ["airflow.example.test", "ftp://airflow.example.test", "https://"])
def test_fails_when_the_url_is_not_http(url: str) -> None:
    run = Run([url, *files(), *ADMIN_SECRET])

    assert run.code == 2
    assert "expected http(s)://HOST" in run.err


def test_fails_when_the_secret_cannot_be_read() -> None:
    run = Run(
        [URL, *files(), *ADMIN_SECRET],
        secret=cli.UsageError(f"cannot read --admin-secret {SECRET_ARN}: AccessDeniedException"),
    )

    assert run.code == 2
    assert "AccessDeniedException" in run.err
    assert run.airflow.calls == []


def test_argparse_refuses_an_unknown_on_existing() -> None:
    with pytest.raises(SystemExit) as raised:
        parse([URL, *files(), "--on-existing", "replace"])

    assert raised.value.code == 2


# --------------------------------------------------------------------------------------------
# --dry-run


def test_dry_run_prints_redacted_requests_and_sends_nothing() -> None:
    run = Run([URL, *files(), "--dry-run"])

    assert run.code == 0, run.err
    assert run.airflow.calls == []
    assert run.secret_reads == []
    assert f"PATCH {URL}/api/v2/connections  (4 connections)" in run.out
    assert "pools: would skip default_pool" in run.out
    assert '"password": "***"' in run.out
    assert '\\"aws_secret_access_key\\": \\"***\\"' in run.out
    assert "dry run: nothing was sent" in run.out
    assert_no_secret(run.out, run.err)


def test_dry_run_still_refuses_invalid_files(tmp_path: Path) -> None:
    connections = tmp_path / "c.json"
    connections.write_text('{"db": {"conn_type": "postgres", "extra": "not-json"}}')

    run = Run([URL, "--connections", str(connections), "--dry-run"])

    assert run.code == 2
    assert "connection 'db': extra is not a JSON object" in run.err


# --------------------------------------------------------------------------------------------
# The real ports: boto3 and urllib


def test_fails_when_boto3_is_missing_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    stderr = io.StringIO()
    args = parse([URL, *files(), *ADMIN_SECRET])

    code = args.run(args, cli.Ports(transport=FakeAirflow(), stderr=stderr))

    assert code == 2
    assert "pip install 'openmwaa[cli]'" in stderr.getvalue()


def test_read_admin_secret_reads_the_json_in_the_arns_region() -> None:
    from moto import mock_aws

    with mock_aws():
        import boto3

        client = boto3.client("secretsmanager", region_name="eu-west-1")
        arn = client.create_secret(
            Name="openmwaa-admin",
            SecretString=json.dumps(LOGIN),
        )["ARN"]

        assert cli.read_admin_secret(arn, None) == ADMIN


def test_fails_when_the_secret_is_not_username_and_password() -> None:
    from moto import mock_aws

    with mock_aws():
        import boto3

        client = boto3.client("secretsmanager", region_name="eu-west-1")
        arn = client.create_secret(Name="other", SecretString='{"user": "x", "pass": "y-secret"}')[
            "ARN"
        ]

        with pytest.raises(cli.UsageError, match="does not hold JSON") as raised:
            cli.read_admin_secret(arn, None)
        assert "y-secret" not in str(raised.value)


class _Handler(BaseHTTPRequestHandler):
    def do_PATCH(self) -> None:
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length)
        if self.path == "/moved":
            self.send_response(308)
            self.send_header("Location", "https://elsewhere.example.test/api/v2/pools")
            self.end_headers()
            return
        status = 200 if self.headers["Authorization"] == f"Bearer {TOKEN}" else 401
        answer = json.dumps({"echo": json.loads(body)}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def local_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_urllib_transport_returns_error_statuses_as_responses(local_server: str) -> None:
    headers = {"Content-Type": "application/json"}

    ok = cli.urllib_transport(
        "PATCH", f"{local_server}/x", {**headers, "Authorization": f"Bearer {TOKEN}"}, b'{"a": 1}'
    )
    refused = cli.urllib_transport("PATCH", f"{local_server}/x", headers, b"{}")

    assert (ok.status, json.loads(ok.body)) == (200, {"echo": {"a": 1}})
    assert refused.status == 401


def test_urllib_transport_does_not_follow_redirects(local_server: str) -> None:
    response = cli.urllib_transport("PATCH", f"{local_server}/moved", {}, b"{}")

    assert response.status == 308
    assert response.location == "https://elsewhere.example.test/api/v2/pools"


def test_urllib_transport_raises_when_nothing_answers() -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"

    with pytest.raises(mt.TransportError, match=r"PATCH http://127\.0\.0\.1:\d+/x: "):
        cli.urllib_transport("PATCH", f"{closed}/x", {}, b"{}")
