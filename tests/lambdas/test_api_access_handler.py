"""The API access Lambda's adapter (api_access.handler): Secrets Manager on moto, a local
HTTP server standing in for Airflow, timeouts, redirects and the log line."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from api_access import core, handler
from moto import mock_aws

from openmwaa.runtime import contracts

REGION = "us-east-1"
KEY = "machine-key-for-tests-0123456789"


class FakeAirflow(BaseHTTPRequestHandler):
    """POST /auth/token/cli and GET /api/v2/dags, as Airflow 3 answers them; /slow sleeps."""

    seen: list[dict[str, Any]] = []
    delay = 0.0

    def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append({"path": self.path, "body": body})
        if self.path != "/auth/token/cli":
            return self._answer(404, {"detail": "Not Found"})
        role = body["username"].removeprefix(contracts.MACHINE_USER_PREFIX).capitalize()
        if body["password"] != core.machine_password(KEY, role):
            return self._answer(401, {"detail": "Invalid credentials"})
        exp = int(time.time()) + 3600
        claims = base64.urlsafe_b64encode(json.dumps({"exp": exp}).encode()).decode()
        return self._answer(201, {"access_token": f"h.{claims.rstrip('=')}.s-{role}"})

    def do_GET(self) -> None:
        self.seen.append({"path": self.path, "authorization": self.headers["Authorization"]})
        if self.path.startswith("/api/v2/slow"):
            time.sleep(self.delay)
        if self.path.startswith("/api/v2/moved"):
            return self._answer(302, {}, {"Location": "http://example.invalid/steal"})
        if not (self.headers["Authorization"] or "").startswith("Bearer h."):
            return self._answer(401, {"detail": "Not authenticated"})
        return self._answer(200, {"dags": [], "total_entries": 0})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def airflow() -> Iterator[str]:
    FakeAirflow.seen = []
    FakeAirflow.delay = 0.0
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeAirflow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch, airflow: str) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(handler, "_CLIENTS", {})
    monkeypatch.setattr(handler, "_KEY", {})
    monkeypatch.setattr(handler, "_STATE", core.State())
    with mock_aws():
        client = boto3.client("secretsmanager", region_name=REGION)
        arn = client.create_secret(Name="machine-key", SecretString=KEY)["ARN"]
        monkeypatch.setenv(contracts.AIRFLOW_URL_VARIABLE, airflow)
        monkeypatch.setenv(contracts.MACHINE_KEY_SECRET_VARIABLE, arn)
        monkeypatch.setenv(contracts.AIRFLOW_VERSION_VARIABLE, "3.3.2")
        monkeypatch.setenv(contracts.ENVIRONMENT_NAME_VARIABLE, "env")
        yield client


def event(resource: str, role: str = "Op", body: Any = None) -> dict[str, Any]:
    return {
        "resource": resource,
        "httpMethod": "POST",
        "pathParameters": {"role": role},
        "body": None if body is None else json.dumps(body),
        "requestContext": {"identity": {"userArn": "arn:aws:iam::123456789012:role/ci"}},
    }


def call(evt: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = handler.handler(evt, None)
    assert response["headers"]["Content-Type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


def test_token_end_to_end_and_one_log_line_without_secrets(
    secret: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="api_access")
    status, body = call(event("/token/{role}", "Viewer"))
    assert status == 200 and body["role"] == "Viewer"
    assert body["token"].endswith(".s-Viewer")
    assert 3590 <= body["expires_in"] <= 3600
    [record] = [r for r in caplog.records if r.name == "api_access"]
    line = json.loads(record.getMessage())
    assert line["caller"] == "arn:aws:iam::123456789012:role/ci"
    assert (line["route"], line["role"], line["status"]) == ("/token/{role}", "Viewer", 200)
    assert isinstance(line["duration_ms"], int)
    text = caplog.text
    for secret_value in (KEY, core.machine_password(KEY, "Viewer"), body["token"]):
        assert secret_value not in text


def test_invoke_end_to_end(secret: Any, airflow: str) -> None:
    request = {"method": "GET", "path": "/api/v2/dags", "query": {"limit": 1}}
    status, body = call(event("/invoke/{role}", "Op", request))
    assert status == 200
    assert body == {
        "status": 200,
        "headers": {"content-type": "application/json"},
        "body": {"dags": [], "total_entries": 0},
    }
    assert [s["path"] for s in FakeAirflow.seen] == ["/auth/token/cli", "/api/v2/dags?limit=1"]
    assert FakeAirflow.seen[1]["authorization"].endswith(".s-Op")


def test_the_key_is_read_once_per_container(secret: Any) -> None:
    assert call(event("/token/{role}"))[0] == 200
    secret.put_secret_value(SecretId="machine-key", SecretString="another-key")
    assert call(event("/token/{role}"))[0] == 200  # the cached key still signs in


def test_airflow_2_uses_basic_auth(secret: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(contracts.AIRFLOW_VERSION_VARIABLE, "2.11.2")
    assert call(event("/token/{role}"))[0] == 400
    status, body = call(event("/invoke/{role}", "Op", {"method": "GET", "path": "/api/v1/x"}))
    assert status == 200 and body["status"] == 401  # the fake only knows Bearer tokens
    pair = base64.b64decode(FakeAirflow.seen[-1]["authorization"].removeprefix("Basic "))
    assert pair.decode() == f"openmwaa-iam-op:{core.machine_password(KEY, 'Op')}"


def test_a_slow_airflow_is_504(secret: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core, "HTTP_TIMEOUT_SECONDS", 0.3)
    FakeAirflow.delay = 1.0
    status, body = call(event("/invoke/{role}", "Op", {"method": "GET", "path": "/api/v2/slow"}))
    assert status == 504 and "did not answer" in body["message"]


def test_an_unreachable_airflow_is_502(secret: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(contracts.AIRFLOW_URL_VARIABLE, "http://127.0.0.1:9")
    status, body = call(event("/token/{role}"))
    assert status == 502 and "unreachable" in body["message"]


def test_redirects_are_not_followed(secret: Any) -> None:
    status, body = call(event("/invoke/{role}", "Op", {"method": "GET", "path": "/api/v2/moved"}))
    assert status == 200 and body["status"] == 302
    assert all("steal" not in s["path"] for s in FakeAirflow.seen)


def test_a_missing_secret_is_500(secret: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(contracts.MACHINE_KEY_SECRET_VARIABLE, "missing")
    status, body = call(event("/token/{role}"))
    assert status == 500 and "ResourceNotFoundException" in body["message"]


def test_missing_settings_are_500(secret: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(contracts.AIRFLOW_URL_VARIABLE)
    status, body = call(event("/token/{role}"))
    assert status == 500 and contracts.AIRFLOW_URL_VARIABLE in body["message"]


def test_secrets_manager_retries_are_configured(secret: Any) -> None:
    config = handler._client("secretsmanager").meta.config
    assert config.retries["mode"] == "standard" and config.retries["total_max_attempts"] >= 3
