"""``openmwaa import-metadata``: load an Airflow 2 environment's connections, variables and
pools (the files of Airflow 2's ``export`` commands) into an Airflow 3 environment.

A thin adapter over :mod:`openmwaa.cli.metadata_transfer`: it reads the files, reads the admin
user's secret with boto3 (or a password from stdin), logs in, sends through urllib and prints
the report. Every file is validated before anything else happens; a problem in any file sends
nothing. Passwords, extras and the token are never printed; ``--dry-run`` prints the requests
with them redacted and needs no credentials.

Exit codes: 0 everything landed (or was skipped on purpose); 1 the import ran and something did
not land (refused login, unreachable server, failed entities); 2 nothing was attempted (the
command line, a file, the secret, or boto3 missing).
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .common import INSTALL_HINT, UsageError
from .metadata_transfer import (
    BULK_PATHS,
    EXPORT_COMMANDS,
    KINDS,
    ON_EXISTING,
    Bundle,
    HttpResponse,
    InputError,
    Kind,
    LoginError,
    OnExisting,
    Report,
    Transport,
    TransportError,
    import_metadata,
    parse_bundle,
    plan_import,
    redacted_body,
    request_token,
)

__all__ = ["Ports", "import_metadata", "read_admin_secret", "register", "run", "urllib_transport"]

COMMAND = "import-metadata"
PROG = f"openmwaa {COMMAND}"
TIMEOUT_SECONDS = 120.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``import-metadata`` to the ``openmwaa`` parser."""
    exports = "; ".join(f"{kind}: `{command}`" for kind, command in EXPORT_COMMANDS.items())
    parser = subparsers.add_parser(
        COMMAND,
        help="Load an Airflow 2 environment's connections, variables and pools into Airflow 3.",
        description=(
            "Load the connections, variables and pools exported from an Airflow 2 environment"
            f" ({exports}) into an Airflow 3 environment through its REST API (bulk create)."
            " Every file is validated before anything is sent."
        ),
    )
    parser.add_argument("url", metavar="URL", help="the Airflow 3 environment (AirflowUrl output)")
    for kind in KINDS:
        parser.add_argument(
            f"--{kind}", metavar="FILE", type=Path, help=f"written by `{EXPORT_COMMANDS[kind]}`"
        )
    credentials = parser.add_mutually_exclusive_group()
    credentials.add_argument(
        "--admin-secret",
        metavar="ARN",
        help='Secrets Manager secret {"username", "password"} (AdminSecretArn output)',
    )
    credentials.add_argument("--username", metavar="U", help="log in as U (with --password-stdin)")
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin's first line"
    )
    parser.add_argument(
        "--region", metavar="R", help="the secret's region (default: the ARN's region)"
    )
    parser.add_argument(
        "--on-existing",
        choices=ON_EXISTING,
        default="fail",
        help=(
            "when an entity exists in Airflow 3: fail (default; Airflow then writes none of that"
            " kind), skip it, or overwrite it. default_pool always exists: with fail it is"
            " skipped with a note"
        ),
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the requests (passwords and extras redacted) and send nothing",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, ports: Ports | None = None) -> int:
    """Run the command; the exit code (see the module's docstring)."""
    ports = ports or Ports()
    try:
        return _run(args, ports)
    except UsageError as error:
        print(f"{PROG}: error: {error}", file=ports.stderr)
        return 2


def _run(args: argparse.Namespace, ports: Ports) -> int:
    base_url = _base_url(args.url)
    files: dict[Kind, Path] = {
        kind: getattr(args, kind) for kind in KINDS if getattr(args, kind) is not None
    }
    if not files:
        raise UsageError("give at least one of --connections, --variables, --pools")
    if not args.dry_run:
        _check_credential_flags(args)
    bundle = _load_bundle(files)
    on_existing: OnExisting = args.on_existing
    if args.dry_run:
        _print_dry_run(base_url, bundle, on_existing, ports.stdout)
        return 0
    username, password = _credentials(args, ports)
    if base_url.startswith("http://"):
        print(f"{PROG}: warning: sending the password over plain HTTP", file=ports.stderr)
    try:
        token = request_token(base_url, username, password, transport=ports.transport)
    except LoginError as error:
        print(f"{PROG}: {error}", file=ports.stderr)
        return 1
    report = import_metadata(base_url, token, bundle, on_existing, transport=ports.transport)
    _print_report(report, ports.stdout)
    return 0 if report.ok else 1


def _base_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"URL is {url!r}; expected http(s)://HOST, the AirflowUrl output")
    if parts.query or parts.fragment:
        raise UsageError(f"URL is {url!r}; expected no query or fragment")
    return url.rstrip("/")


def _check_credential_flags(args: argparse.Namespace) -> None:
    if args.admin_secret is None and args.username is None:
        raise UsageError("give --admin-secret ARN, or --username U --password-stdin")
    if args.username is not None and not args.password_stdin:
        raise UsageError("--username needs --password-stdin")
    if args.admin_secret is not None and args.password_stdin:
        raise UsageError("--password-stdin goes with --username, not --admin-secret")


def _load_bundle(files: Mapping[Kind, Path]) -> Bundle:
    problems: list[str] = []
    texts: dict[Kind, tuple[str, str]] = {}
    for kind, path in files.items():
        try:
            texts[kind] = (str(path), path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            problems.append(f"{path}: cannot read the {kind} file ({reason})")
    try:
        bundle = parse_bundle(texts)
    except InputError as error:
        problems.extend(error.problems)
    if problems:
        raise UsageError(
            "nothing was sent; fix these first:\n" + "\n".join(f"  {p}" for p in problems)
        )
    return bundle


def _credentials(args: argparse.Namespace, ports: Ports) -> tuple[str, str]:
    if args.admin_secret is not None:
        return ports.read_secret(args.admin_secret, args.region)
    password = ports.stdin.readline().rstrip("\r\n")
    if not password:
        raise UsageError("--password-stdin read an empty password")
    return str(args.username), password


def read_admin_secret(arn: str, region: str | None) -> tuple[str, str]:
    """``(username, password)`` from the environment's admin secret (the ``AdminSecretArn``
    output), with the caller's AWS credentials; the region defaults to the ARN's."""
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise UsageError(f"reading --admin-secret needs boto3: {INSTALL_HINT}") from None
    arn_parts = arn.split(":")
    region = region or (arn_parts[3] if arn.startswith("arn:") and len(arn_parts) > 3 else None)
    try:
        client = boto3.client("secretsmanager", region_name=region)
        secret_string = client.get_secret_value(SecretId=arn).get("SecretString")
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        raise UsageError(f"cannot read --admin-secret {arn}: {code}") from None
    except BotoCoreError as error:
        raise UsageError(f"cannot read --admin-secret {arn}: {error}") from None
    return _parse_admin_secret(arn, secret_string)


def _parse_admin_secret(arn: str, secret_string: Any) -> tuple[str, str]:
    try:
        secret = json.loads(secret_string) if isinstance(secret_string, str) else None
    except ValueError:
        secret = None
    username = secret.get("username") if isinstance(secret, dict) else None
    password = secret.get("password") if isinstance(secret, dict) else None
    if not isinstance(username, str) or not isinstance(password, str) or not password:
        raise UsageError(f'--admin-secret {arn} does not hold JSON {{"username", "password"}}')
    return username, password


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are answers, not followed: following one would resend the token elsewhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def urllib_transport(
    method: str, url: str, headers: Mapping[str, str], body: bytes | None
) -> HttpResponse:
    """The real :class:`~openmwaa.cli.metadata_transfer.Transport`: urllib, no redirects."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method=method)
    try:
        with _OPENER.open(request, timeout=TIMEOUT_SECONDS) as response:
            return HttpResponse(response.status, response.read())
    except urllib.error.HTTPError as error:
        return HttpResponse(error.code, error.read(), error.headers.get("Location"))
    except urllib.error.URLError as error:
        raise TransportError(f"{method} {url}: {error.reason}") from None
    except (OSError, http.client.HTTPException) as error:
        raise TransportError(f"{method} {url}: {type(error).__name__}: {error}") from None


SecretReader = Callable[[str, str | None], tuple[str, str]]
"""``(arn, region) -> (username, password)``; raises :class:`UsageError`."""


@dataclass
class Ports:
    """What the command talks to; tests replace any of them."""

    transport: Transport = urllib_transport
    read_secret: SecretReader = read_admin_secret
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)


def _print_dry_run(base_url: str, bundle: Bundle, on_existing: OnExisting, out: TextIO) -> None:
    for plan in plan_import(bundle, on_existing):
        for skip in plan.skipped:
            print(f"{plan.kind}: would skip {skip.name}: {skip.reason}", file=out)
        body = redacted_body(plan)
        if body is None:
            print(f"{plan.kind}: nothing to send", file=out)
            continue
        print(f"PATCH {base_url}{BULK_PATHS[plan.kind]}  ({len(plan.names)} {plan.kind})", file=out)
        print(json.dumps(body, indent=2), file=out)
    print("dry run: nothing was sent", file=out)


def _print_report(report: Report, out: TextIO) -> None:
    for line in report.lines():
        print(line, file=out)
