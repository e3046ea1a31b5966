"""A local stand-in for API Gateway's REST API with IAM authorization, in front of the API
access Lambda, for the end-to-end test.

:class:`LocalApiGateway` serves the REST API the template declares (``AWS::ApiGateway::
Resource`` paths and ``AWS::ApiGateway::Method`` verbs, under the ``AWS::ApiGateway::Stage``'s
name) on 127.0.0.1, over HTTPS with a certificate of a throwaway CA (:attr:`LocalApiGateway.
ca_file`), and for each request does what API Gateway does for a method whose
``AuthorizationType`` is ``AWS_IAM``:

1. **Authentication**: the SigV4 signature (service ``execute-api``, the region) is computed
   again with botocore's ``SigV4Auth`` from the caller's secret key, over exactly the headers
   the caller signed, and compared; a missing, stale (more than 5 minutes off) or wrong
   signature gets 403 as on AWS.
2. **Authorization**: ``execute-api:Invoke`` on ``arn:aws:execute-api:<region>:<account>:
   <api-id>/<stage>/<METHOD>/<path>`` is decided by :func:`tests.e2e.iam.evaluate` over the
   caller's identity policies as they are in moto's IAM (read with the administrator's
   client: inline and attached user policies), which the test created from the template's
   ``grant_airflow_role`` policies. A denial is API Gateway's 403 ``{"message": "User: <arn>
   is not authorized to perform: execute-api:Invoke on resource: <arn>"}``.
3. **Integration**: an allowed request becomes API Gateway's REST proxy event (version 1.0)
   and goes to the Lambda handler, which runs in a long-lived subprocess (a warm Lambda
   execution environment: what the handler caches between invocations stays) with exactly
   the function's environment from the template, resolved, plus the access key of a moto
   user holding the function role's policies and ``AWS_ENDPOINT_URL`` (as the other bundled
   Lambdas run in the e2e). Its proxy response is returned as is.

Every decision is kept in :attr:`LocalApiGateway.decisions`; the Lambda's output (its log
lines) in ``log_path``. Not emulated: the REST API's request validator and body model (API
Gateway would refuse a malformed ``/invoke`` body before the Lambda; the Lambda checks it too),
throttling and resource policies.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import re
import ssl
import subprocess
import sys
import threading
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from .cfn import Resolver, resources_of_type
from .iam import evaluate
from .principals import Credentials

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
CLOCK_SKEW = datetime.timedelta(minutes=5)
INVOKE_TIMEOUT = 60.0

RUNNER = r"""
import importlib, json, sys, traceback
module_name, function_name = sys.argv[1].rsplit(".", 1)
handler = getattr(importlib.import_module(module_name), function_name)
import logging
logging.getLogger().addHandler(logging.StreamHandler(sys.stderr))  # as Lambda's runtime does
print("RUNNER_READY", file=sys.stderr, flush=True)
for line in sys.stdin:
    event = json.loads(line)
    try:
        result = handler(event, None)
    except Exception:
        traceback.print_exc()
        result = {"errorMessage": "unhandled exception in the handler"}
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
"""
"""A Lambda execution environment: imports the handler once, then one event per line."""


@dataclass(frozen=True)
class Route:
    """A method of the REST API: its resource path and how it is authorized."""

    http_method: str
    resource: str  # e.g. /token/{role}
    authorization: str  # AWS_IAM, NONE...

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters if ``method path`` is this route."""
        if method != self.http_method and self.http_method != "ANY":
            return None
        names: list[str] = []

        def parameter(found: re.Match[str]) -> str:
            names.append(found.group(1))
            return "([^/]+)"

        pattern = re.sub(r"\\\{([^}]+)\\\}", parameter, re.escape(self.resource))
        matched = re.fullmatch(pattern, path)
        if matched is None:
            return None
        return {n: urllib.parse.unquote(v) for n, v in zip(names, matched.groups(), strict=True)}


def rest_api_routes(template: Mapping[str, Any], rest_api: str) -> list[Route]:
    """The methods of the template's REST API ``rest_api`` (a logical ID)."""
    resources = resources_of_type(template, "AWS::ApiGateway::Resource")

    def path_of(reference: Any) -> str:
        if isinstance(reference, dict) and "Fn::GetAtt" in reference:
            target, attribute = reference["Fn::GetAtt"]
            if target == rest_api and attribute == "RootResourceId":
                return ""
        if isinstance(reference, dict) and reference.get("Ref") in resources:
            props = resources[reference["Ref"]]["Properties"]
            return f"{path_of(props['ParentId'])}/{props['PathPart']}"
        raise AssertionError(f"a REST API resource parent the test cannot follow: {reference}")

    routes = []
    for resource in resources_of_type(template, "AWS::ApiGateway::Method").values():
        props = resource["Properties"]
        if props.get("RestApiId") != {"Ref": rest_api}:
            continue
        routes.append(
            Route(
                http_method=props["HttpMethod"],
                resource=path_of(props["ResourceId"]) or "/",
                authorization=props.get("AuthorizationType", "NONE"),
            )
        )
    return routes


def _forbidden(message: str) -> tuple[int, dict[str, str], str]:
    return 403, {"Content-Type": "application/json"}, json.dumps({"message": message})


@dataclass
class LambdaProcess:
    """The handler in a subprocess that stays up between invocations."""

    handler: str
    environment: dict[str, str]
    log_path: Path
    code_dir: Path = LAMBDAS
    popen: subprocess.Popen[str] | None = None
    _log: IO[str] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        """Start the execution environment (imports the handler)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("a")
        self.popen = subprocess.Popen(
            [sys.executable, "-c", RUNNER, self.handler],
            env={**self.environment, "PYTHONPATH": str(self.code_dir)},
            cwd=str(self.code_dir),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """One invocation: the handler's return value."""
        with self._lock:
            if self.popen is None or self.popen.poll() is not None:
                raise RuntimeError(f"the Lambda process is not running; log: {self.log_path}")
            assert self.popen.stdin is not None and self.popen.stdout is not None
            self.popen.stdin.write(json.dumps(event) + "\n")
            self.popen.stdin.flush()
            line = self.popen.stdout.readline()
        if not line:
            raise RuntimeError(f"the Lambda process died; log: {self.log_path}")
        result: dict[str, Any] = json.loads(line)
        return result

    def stop(self) -> None:
        """End the execution environment."""
        if self.popen is not None:
            if self.popen.stdin is not None:
                self.popen.stdin.close()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        if self._log is not None:
            self._log.close()

    def log_text(self) -> str:
        """What the handler logged."""
        return self.log_path.read_text(errors="replace")


@dataclass
class LocalApiGateway:
    """The REST API on 127.0.0.1: IAM authorization, then the Lambda proxy integration."""

    routes: list[Route]
    api_id: str
    stage: str
    region: str
    account: str
    keys: Mapping[str, Credentials]  # access key ID -> the moto user's key
    iam_admin: Any  # boto3 IAM client of the administrator
    function: LambdaProcess
    tls_dir: Path
    port: int = 0
    decisions: list[dict[str, Any]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """The stage's invoke URL (as the SSM parameter's ``url`` on AWS), no trailing slash."""
        return f"https://127.0.0.1:{self.port}/{self.stage}"

    @property
    def ca_file(self) -> Path:
        """The certificate authority that signed the gateway's certificate (PEM): give it to
        clients as ``SSL_CERT_FILE`` or an SSL context's ``cafile``."""
        return self.tls_dir / "ca.pem"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the gateway."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def start(self) -> LocalApiGateway:
        """Start the Lambda's execution environment and serve over HTTPS (as API Gateway)."""
        self.function.start()
        gateway = self

        class Handler(_GatewayHandler):
            owner = gateway

        certificate, key = write_tls_files(self.tls_dir)
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(certificate), str(key))
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving, end the Lambda."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self.function.stop()

    def execute_api_arn(self, method: str, path: str) -> str:
        """What ``execute-api:Invoke`` is authorized on."""
        return (
            f"arn:aws:execute-api:{self.region}:{self.account}:{self.api_id}/{self.stage}/"
            f"{method}/{path.lstrip('/')}"
        )

    # --- 1. authentication ------------------------------------------------------------

    def authenticate(
        self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes
    ) -> Credentials | str:
        """The caller's key, or why the signature is refused (API Gateway's message)."""
        authorization = headers.get("authorization", "")
        found = re.fullmatch(
            r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, *"
            r"SignedHeaders=([^,]+), *Signature=([0-9a-f]{64})",
            authorization.strip(),
        )
        if found is None:
            return "Missing Authentication Token"
        key_id, day, region, service, signed, signature = found.groups()
        if region != self.region or service != "execute-api":
            return f"Credential should be scoped to a valid region and service: {region}/{service}"
        key = self.keys.get(key_id)
        if key is None:
            return "The security token included in the request is invalid."
        amz_date = headers.get("x-amz-date", "")
        try:
            when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.UTC
            )
        except ValueError:
            return "Authorization header requires existence of either a 'X-Amz-Date' header"
        if abs(datetime.datetime.now(datetime.UTC) - when) > CLOCK_SKEW or day != amz_date[:8]:
            return "Signature expired: the request time is too far from the server's"
        names = signed.split(";")
        if "host" not in names:
            return "The request signature must cover the host header"
        path, _, query = raw_path.partition("?")
        request = AWSRequest(
            method=method,
            url=f"http://{headers['host']}{path}" + (f"?{query}" if query else ""),
            data=body,
            headers={name: headers[name] for name in names if name in headers},
        )
        request.context["timestamp"] = amz_date
        auth = SigV4Auth(BotoCredentials(key.access_key_id, key.secret_access_key), service, region)
        canonical = auth.canonical_request(request)
        expected = auth.signature(auth.string_to_sign(request, canonical), request)
        if auth.signed_headers(auth.headers_to_sign(request)) != signed:
            return "The request signature we calculated does not match the signature you provided"
        if expected != signature:
            return (
                "The request signature we calculated does not match the signature you "
                "provided. Check your AWS Secret Access Key and signing method."
            )
        return key

    # --- 2. authorization -------------------------------------------------------------

    def policies_of(self, user: str) -> list[dict[str, Any]]:
        """The user's identity policies as moto's IAM holds them."""
        documents: list[dict[str, Any]] = []
        for name in self.iam_admin.list_user_policies(UserName=user)["PolicyNames"]:
            document = self.iam_admin.get_user_policy(UserName=user, PolicyName=name)
            documents.append(_document(document["PolicyDocument"]))
        attached = self.iam_admin.list_attached_user_policies(UserName=user)
        for policy in attached["AttachedPolicies"]:
            arn = policy["PolicyArn"]
            version = self.iam_admin.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
            got = self.iam_admin.get_policy_version(PolicyArn=arn, VersionId=version)
            documents.append(_document(got["PolicyVersion"]["Document"]))
        return documents

    # --- the whole request ------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], str]:
        """API Gateway's answer: (status, headers, body)."""
        path, _, query = raw_path.partition("?")
        prefix = f"/{self.stage}"
        if not (path == prefix or path.startswith(prefix + "/")):
            return _forbidden("Missing Authentication Token")
        resource_path = path[len(prefix) :] or "/"
        route, parameters = None, None
        for candidate in self.routes:
            parameters = candidate.match(method, resource_path)
            if parameters is not None:
                route = candidate
                break
        if route is None or parameters is None:
            return _forbidden("Missing Authentication Token")  # what API Gateway answers
        caller_arn, key_id = "", ""
        if route.authorization == "AWS_IAM":
            key = self.authenticate(method, raw_path, headers, body)
            if isinstance(key, str):
                self.decisions.append({"path": resource_path, "allowed": False, "reason": key})
                return _forbidden(key)
            caller_arn = f"arn:aws:iam::{self.account}:user/{key.user}"
            key_id = key.access_key_id
            resource = self.execute_api_arn(method, resource_path)
            decision = evaluate(self.policies_of(key.user), "execute-api:Invoke", resource)
            self.decisions.append(
                {
                    "caller": caller_arn,
                    "resource": resource,
                    "allowed": decision.allowed,
                    "reason": decision.reason,
                }
            )
            if not decision.allowed:
                return _forbidden(
                    f"User: {caller_arn} is not authorized to perform: execute-api:Invoke "
                    f"on resource: {resource}"
                )
        event = self.proxy_event(
            route, method, resource_path, parameters, query, headers, body, caller_arn, key_id
        )
        result = self.function.invoke(event)
        if "statusCode" not in result:
            return 502, {"Content-Type": "application/json"}, '{"message": "Internal server error"}'
        response_body = str(result.get("body") or "")
        if result.get("isBase64Encoded"):
            response_body = base64.b64decode(response_body).decode()
        out_headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        return int(result["statusCode"]), out_headers, response_body

    def proxy_event(
        self,
        route: Route,
        method: str,
        resource_path: str,
        parameters: dict[str, str],
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        caller_arn: str,
        key_id: str,
    ) -> dict[str, Any]:
        """API Gateway's REST proxy event (payload version 1.0)."""
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        multi: dict[str, list[str]] = {}
        for name, value in pairs:
            multi.setdefault(name, []).append(value)
        text: str | None = body.decode() if body else None
        identity = {
            "accountId": self.account if caller_arn else None,
            "accessKey": key_id or None,
            "caller": caller_arn.rsplit("/", 1)[-1] if caller_arn else None,
            "user": caller_arn.rsplit("/", 1)[-1] if caller_arn else None,
            "userArn": caller_arn or None,
            "sourceIp": "127.0.0.1",
            "userAgent": headers.get("user-agent"),
        }
        return {
            "resource": route.resource,
            "path": resource_path,
            "httpMethod": method,
            "headers": dict(headers),
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": dict(pairs) or None,
            "multiValueQueryStringParameters": multi or None,
            "pathParameters": parameters or None,
            "stageVariables": None,
            "requestContext": {
                "accountId": self.account,
                "apiId": self.api_id,
                "stage": self.stage,
                "resourcePath": route.resource,
                "httpMethod": method,
                "path": f"/{self.stage}{resource_path}",
                "protocol": "HTTP/1.1",
                "requestId": str(uuid.uuid4()),
                "identity": identity,
            },
            "body": text,
            "isBase64Encoded": False,
        }


def _document(value: Any) -> dict[str, Any]:
    """A policy document as boto3 returns it (a dict, or URL-encoded JSON text)."""
    if isinstance(value, dict):
        return value
    document: dict[str, Any] = json.loads(urllib.parse.unquote(str(value)))
    return document


class _GatewayHandler(BaseHTTPRequestHandler):
    owner: LocalApiGateway
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the gateway's decisions are the record."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            status, out_headers, text = self.owner.handle(self.command, self.path, headers, body)
        except Exception as error:  # a broken Lambda is API Gateway's 502
            status, out_headers = 502, {"Content-Type": "application/json"}
            text = json.dumps({"message": f"Internal server error: {error}"})
        data = text.encode()
        self.send_response(status)
        for name, value in out_headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815


def lambda_environment(
    template: Mapping[str, Any], handler: str, resolver: Resolver
) -> tuple[str, dict[str, str]]:
    """The logical ID of the function with ``handler`` and its environment, resolved."""
    for logical_id, resource in resources_of_type(template, "AWS::Lambda::Function").items():
        props = resource.get("Properties", {})
        if props.get("Handler") == handler:
            variables = props.get("Environment", {}).get("Variables", {})
            return logical_id, {k: str(resolver.resolve(v)) for k, v in variables.items()}
    raise AssertionError(f"the template has no function with handler {handler}")


def write_tls_files(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate authority (``ca.pem``) and a server certificate it signed for
    127.0.0.1 and localhost (``server.pem``, key ``server.key``); returns the last two."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "openmwaa e2e gateway CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "server.pem").write_bytes(certificate.public_bytes(pem))
    (directory / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return directory / "server.pem", directory / "server.key"
