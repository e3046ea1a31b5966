"""Which index pip reads (runtime/package_index.py): the precedence, the CodeArtifact lookup
(botocore's Stubber), and real pip runs of the requirements build against a local simple
index that checks the mirror's ``aws:<token>`` credentials."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import logging
import os
import stat
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from openmwaa.runtime import package_index
from openmwaa.runtime import requirements as runtime_requirements
from openmwaa.runtime.contracts import PYPI_MIRROR_VARIABLE, REQUIREMENTS_BUILDS_DIR
from openmwaa.runtime.package_index import (
    DEFAULT,
    ENVIRONMENT,
    PIP_RETRIES,
    PIP_TIMEOUT_SECONDS,
    REQUIREMENTS,
    Mirror,
    PackageIndexError,
    PipIndex,
    index_for,
    index_url,
    missing_distributions,
    requirements_index,
)
from openmwaa.runtime.startup_steps import Settings

MIRROR_VALUE = json.dumps(
    {
        "domain": "etl-1a2b3c4d",
        "domainOwner": "123456789012",
        "repository": "requirements",
        "region": "eu-west-1",
    }
)
MIRROR = Mirror("etl-1a2b3c4d", "123456789012", "requirements", "eu-west-1")
TOKEN = "eyJ2ZXIiOjEsImlzdSI6MTcw.secret-token_value"
ENDPOINT = (
    "https://etl-1a2b3c4d-123456789012.d.codeartifact.eu-west-1.amazonaws.com/pypi/requirements/"
)
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


# --- the decision ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("--index-url https://pypi.corp.example/simple", "https://pypi.corp.example/simple"),
        ("--index-url=https://pypi.corp.example/simple", "https://pypi.corp.example/simple"),
        ("-i https://pypi.corp.example/simple", "https://pypi.corp.example/simple"),
        ("-ihttps://pypi.corp.example/simple", "https://pypi.corp.example/simple"),
        ("--no-index", "--no-index"),
        ("--extra-index-url https://pypi.corp.example/simple", None),
        ("# --index-url https://pypi.corp.example/simple", None),
        ("pandas==2.2.3  # -i is not an option here", None),
    ],
)
def test_requirements_index_reads_index_lines(line: str, expected: str | None) -> None:
    assert requirements_index(f"apache-airflow-providers-snowflake\n{line}\n") == expected


def test_index_of_requirements_txt_wins_over_everything() -> None:
    env = {"PIP_INDEX_URL": "https://other.example/simple", PYPI_MIRROR_VARIABLE: MIRROR_VALUE}
    decision = index_for("-i https://user:pw@pypi.corp.example/simple\nboto3\n", env)

    assert (decision.source, decision.host, decision.mirror) == (
        REQUIREMENTS,
        "pypi.corp.example",
        None,
    )


@pytest.mark.parametrize("name", ["PIP_INDEX_URL", "PIP_CONFIG_FILE"])
def test_index_of_startup_sh_wins_over_the_mirror(name: str) -> None:
    env = {name: "https://pypi.corp.example/simple", PYPI_MIRROR_VARIABLE: MIRROR_VALUE}

    decision = index_for("boto3\n", env)

    assert decision.source == ENVIRONMENT
    assert decision.mirror is None


def test_mirror_is_used_when_nothing_names_an_index() -> None:
    decision = index_for("boto3\n", {PYPI_MIRROR_VARIABLE: MIRROR_VALUE})

    assert (decision.source, decision.mirror) == (package_index.MIRROR, MIRROR)


def test_pip_default_without_mirror() -> None:
    assert index_for("boto3\n", {}).source == DEFAULT


def test_fails_when_the_mirror_variable_is_malformed() -> None:
    with pytest.raises(ValueError, match=PYPI_MIRROR_VARIABLE):
        index_for("", {PYPI_MIRROR_VARIABLE: '{"domain": "etl"}'})


def test_index_url_puts_the_token_as_aws_credentials_on_the_simple_index() -> None:
    assert index_url(ENDPOINT, "a/b+c=") == (
        "https://aws:a%2Fb%2Bc%3D@etl-1a2b3c4d-123456789012.d.codeartifact.eu-west-1"
        ".amazonaws.com/pypi/requirements/simple/"
    )


def test_pip_config_bounds_an_unreachable_index() -> None:
    text = package_index.pip_config("https://aws:t@host/simple/", "/tmp/pip.log")

    assert f"timeout = {PIP_TIMEOUT_SECONDS}" in text
    assert f"retries = {PIP_RETRIES}" in text
    assert (1 + PIP_RETRIES) * PIP_TIMEOUT_SECONDS <= 30  # well under a minute per request


def test_missing_distributions_reads_pips_log() -> None:
    log = (
        "ERROR: Could not find a version that satisfies the requirement nosuch==1.0\n"
        "ERROR: No matching distribution found for nosuch==1.0\n"
        "ERROR: No matching distribution found for nosuch==1.0\n"
    )
    assert missing_distributions(log) == ["nosuch==1.0"]


# --- the CodeArtifact lookup -----------------------------------------------------------------


def stubbed_client() -> tuple[Any, Stubber]:
    client = boto3.client(
        "codeartifact",
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return client, Stubber(client)


def test_codeartifact_lookup_gets_a_one_hour_token_and_the_pypi_endpoint() -> None:
    client, stubber = stubbed_client()
    owner = {"domain": MIRROR.domain, "domainOwner": MIRROR.owner}
    stubber.add_response(
        "get_authorization_token",
        {"authorizationToken": TOKEN},
        {**owner, "durationSeconds": 3600},
    )
    stubber.add_response(
        "get_repository_endpoint",
        {"repositoryEndpoint": ENDPOINT},
        {**owner, "repository": MIRROR.repository, "format": "pypi"},
    )

    with stubber:
        assert package_index.codeartifact_lookup(MIRROR, client) == (ENDPOINT, TOKEN)
    stubber.assert_no_pending_responses()


def test_fails_naming_the_domain_and_repository_when_codeartifact_refuses() -> None:
    client, stubber = stubbed_client()
    stubber.add_client_error(
        "get_authorization_token", "AccessDeniedException", "not authorized", 403
    )

    with stubber, pytest.raises(PackageIndexError) as raised:
        package_index.codeartifact_lookup(MIRROR, client)

    message = str(raised.value)
    assert "repository requirements of domain etl-1a2b3c4d" in message
    assert "AccessDeniedException" in message


def test_mirror_config_file_is_private_and_removed_after(tmp_path: Path) -> None:
    with PipIndex(lambda mirror: (ENDPOINT, TOKEN)) as index:
        env = index.environment("boto3\n", {PYPI_MIRROR_VARIABLE: MIRROR_VALUE})
        config = Path(env["PIP_CONFIG_FILE"])
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
        assert f"aws:{TOKEN}@" in config.read_text()
    assert not config.parent.exists()


def test_mirror_token_is_asked_once_per_index() -> None:
    calls: list[Mirror] = []

    def lookup(mirror: Mirror) -> tuple[str, str]:
        calls.append(mirror)
        return ENDPOINT, TOKEN

    with PipIndex(lookup) as index:
        first = index.environment("boto3\n", {PYPI_MIRROR_VARIABLE: MIRROR_VALUE})
        second = index.environment("", {PYPI_MIRROR_VARIABLE: MIRROR_VALUE})
    assert calls == [MIRROR]
    assert first["PIP_CONFIG_FILE"] == second["PIP_CONFIG_FILE"]


# --- real pip against a local index ----------------------------------------------------------


def wheel(name: str, version: str) -> tuple[str, bytes]:
    """A pure-Python wheel with one module, and its file name."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return f"{name}-{version}-py3-none-any.whl", buffer.getvalue()


class Index:
    """A PEP 503 simple index in a thread: ``/<prefix>simple/<project>/`` and its files,
    behind basic auth ``aws:<token>`` when ``token`` is set. Records each request's path."""

    def __init__(self, prefix: str, token: str | None, wheels: dict[str, tuple[str, bytes]]):
        self.prefix, self.token, self.wheels = prefix, token, wheels
        self.requests: list[str] = []
        self.refused = 0
        index = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                index.requests.append(self.path)
                if index.token is not None:
                    expected = base64.b64encode(f"aws:{index.token}".encode()).decode()
                    if self.headers.get("Authorization") != f"Basic {expected}":
                        index.refused += 1
                        self.send_response(401)
                        self.send_header("WWW-Authenticate", 'Basic realm="test"')
                        self.end_headers()
                        return
                body, kind = index.answer(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", kind)
                self.end_headers()
                self.wfile.write(body or b"")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/{prefix}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str) -> tuple[bytes | None, str]:
        rest = path.split("?")[0].removeprefix(f"/{self.prefix}")
        if rest.startswith("files/"):
            for filename, data in self.wheels.values():
                if rest == f"files/{filename}":
                    return data, "application/octet-stream"
        elif rest.startswith("simple/"):
            project = rest.removeprefix("simple/").strip("/")
            if project in self.wheels:
                filename, data = self.wheels[project]
                digest = hashlib.sha256(data).hexdigest()
                link = f'<a href="/{self.prefix}files/{filename}#sha256={digest}">{filename}</a>'
                return f"<html><body>{link}</body></html>".encode(), "text/html"
        return None, "text/plain"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def wheels() -> dict[str, tuple[str, bytes]]:
    return {"tinypkg": wheel("tinypkg", "1.0"), "awscli": wheel("awscli", "1.0")}


@pytest.fixture
def mirror(
    wheels: dict[str, tuple[str, bytes]], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Index]:
    index = Index("pypi/requirements/", TOKEN, wheels)
    looked_up: list[Mirror] = []

    def lookup(mirror: Mirror) -> tuple[str, str]:
        looked_up.append(mirror)
        return index.url, TOKEN

    monkeypatch.setattr(package_index, "codeartifact_lookup", lookup)
    index.looked_up = looked_up  # type: ignore[attr-defined]
    yield index
    index.close()


def run_build(tmp_path: Path, requirements: str) -> tuple[int, Path, str]:
    """The one-shot build with the real pip of this Python; returns its exit code, the key's
    folder and the key."""
    sync = tmp_path / "sync"
    sync.mkdir()
    (sync / "requirements.txt").write_text(requirements)
    env = {
        "OPENMWAA_AIRFLOW_VERSION": "3.3.2",
        "OPENMWAA_PYTHON_VERSION": PYTHON_VERSION,
        "OPENMWAA_CONSTRAINTS_URL": "none",
        PYPI_MIRROR_VARIABLE: MIRROR_VALUE,
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PIP_NO_CACHE_DIR": "1",
    }
    settings = Settings("build-requirements", "3.3.2", 3, PYTHON_VERSION, str(sync), "8080")
    code = runtime_requirements.build_requirements(env, settings, sys.executable)
    effective = runtime_requirements.effective_requirements(requirements.encode())
    key = runtime_requirements.requirements_key(effective, env)
    return code, sync / REQUIREMENTS_BUILDS_DIR / key, key


def test_build_installs_through_the_mirror_with_its_token(
    mirror: Index,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO)

    code, folder, _ = run_build(tmp_path, "tinypkg==1.0\n")

    assert code == 0
    site = runtime_requirements.site_packages(str(folder), PYTHON_VERSION)
    assert (Path(site) / "tinypkg" / "__init__.py").is_file()
    aws_site = runtime_requirements.site_packages(str(folder / "awscli"), PYTHON_VERSION)
    assert (Path(aws_site) / "awscli").is_dir()  # the AWS CLI came from the mirror too
    assert mirror.looked_up == [MIRROR]  # type: ignore[attr-defined]
    assert any("simple/tinypkg" in p for p in mirror.requests)
    assert any("simple/awscli" in p for p in mirror.requests)
    assert mirror.refused == 0
    assert "127.0.0.1" in caplog.text
    output = capfd.readouterr()
    assert TOKEN not in caplog.text + output.out + output.err
    assert not list(Path(tmp_path).glob("openmwaa-pip-index-*"))


def test_index_url_of_requirements_txt_wins_and_the_mirror_is_not_contacted(
    mirror: Index, wheels: dict[str, tuple[str, bytes]], tmp_path: Path
) -> None:
    corporate = Index("corp/", None, wheels)
    try:
        code, _, _ = run_build(
            tmp_path, f"--index-url {corporate.url}simple/\ntinypkg==1.0\nawscli==1.0\n"
        )
    finally:
        corporate.close()

    assert code == 0
    assert any("simple/tinypkg" in p for p in corporate.requests)
    assert mirror.requests == []
    assert mirror.looked_up == []  # type: ignore[attr-defined]


def test_missing_package_fails_the_build_fast_naming_it(
    mirror: Index,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    started = time.monotonic()

    code, _, key = run_build(tmp_path, "tinypkg==1.0\nnosuchpkg==1.0\n")

    assert code == 1
    assert time.monotonic() - started < 30
    assert "the PyPI mirror has no distribution for: nosuchpkg==1.0" in caplog.text
    failed = tmp_path / "sync" / REQUIREMENTS_BUILDS_DIR / f"{key}.failed"
    assert json.loads(failed.read_text())["error"] == "pip exit 1"
    output = capfd.readouterr()
    assert TOKEN not in caplog.text + output.out + output.err


def test_build_fails_naming_the_mirror_when_its_token_cannot_be_had(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    client, stubber = stubbed_client()
    stubber.add_client_error(
        "get_authorization_token", "AccessDeniedException", "not authorized", 403
    )
    real = package_index.codeartifact_lookup
    monkeypatch.setattr(package_index, "codeartifact_lookup", lambda m: real(m, client))

    with stubber:
        code, _, key = run_build(tmp_path, "tinypkg==1.0\n")

    assert code == 1
    failed = json.loads((tmp_path / "sync" / REQUIREMENTS_BUILDS_DIR / f"{key}.failed").read_text())
    assert failed["error"].startswith(
        "package index: CodeArtifact repository requirements of domain etl-1a2b3c4d"
    )
    assert "AccessDeniedException" in caplog.text
    assert not [
        p
        for p in (tmp_path / "sync" / REQUIREMENTS_BUILDS_DIR).iterdir()
        if p.name.startswith(".tmp-")
    ]


def test_a_refused_mirror_is_not_reported_as_a_missing_package(
    wheels: dict[str, tuple[str, bytes]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An expired token, an endpoint policy or a security group refuses pip: pip then also
    says "no matching distribution", and the log line must say the mirror refused it."""
    index = Index("pypi/requirements/", TOKEN, wheels)
    monkeypatch.setattr(package_index, "codeartifact_lookup", lambda _m: (index.url, "expired"))
    try:
        code, _, _ = run_build(tmp_path, "tinypkg==1.0\n")
    finally:
        index.close()

    assert code == 1
    assert index.refused > 0
    assert "pip could not read the PyPI mirror (refused or unreachable" in caplog.text
    assert "the PyPI mirror has no distribution for" not in caplog.text


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        ("HTTP error 401 while getting https://x/simple/a/", True),
        ("403 Client Error: Forbidden for url: https://x/simple/a/", True),
        ("Could not fetch URL https://x/simple/a/: connection error: Read timed out.", True),
        ("Could not fetch URL https://x/simple/a/: 404 Client Error: Not Found for url", False),
        ("Max retries exceeded with url: /simple/a/ (Caused by NewConnectionError", True),
        ("ERROR: No matching distribution found for nosuchpkg==1.0", False),
    ],
)
def test_unreachable_reads_pips_log(log: str, expected: bool) -> None:
    assert package_index.unreachable(log) is expected


def test_pycurl_is_installed_through_the_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    """The start-up's pycurl install (an old kombu) reads the mirror too: in a private
    network PyPI is out of reach."""
    from openmwaa.runtime import startup_steps

    seen: list[dict[str, str]] = []

    def pip_install(args: list[str], env: dict[str, str], *_rest: Any, **_kw: Any) -> int:
        seen.append({**env, "ARGS": " ".join(args)})
        return 0

    monkeypatch.setattr(startup_steps, "pip_install", pip_install)
    monkeypatch.setattr(startup_steps.importlib.metadata, "version", lambda _n: "5.4.2")
    monkeypatch.setattr(startup_steps.importlib.util, "find_spec", lambda _n: None)
    monkeypatch.setattr(package_index, "codeartifact_lookup", lambda _m: (ENDPOINT, TOKEN))
    settings = Settings("worker", "3.3.2", 3, PYTHON_VERSION, "/sync", "8080")

    startup_steps.ensure_pycurl({PYPI_MIRROR_VARIABLE: MIRROR_VALUE}, settings, sys.executable)

    assert len(seen) == 1 and seen[0]["ARGS"] == "pycurl"
    assert "PIP_CONFIG_FILE" in seen[0]
    assert not Path(seen[0]["PIP_CONFIG_FILE"]).exists()  # removed once pip is done
