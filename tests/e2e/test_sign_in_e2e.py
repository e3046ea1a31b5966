"""End to end: people sign in through single sign-on, machines through IAM (issue 12).

**Its own environment**, booted once for the module (Airflow 3.3.2, the default), from an app
with ``sign_in=SignIn.oidc(...)`` pointing at a real OIDC identity provider that the test
starts on 127.0.0.1 (:mod:`tests.e2e.oidc_provider`: discovery, JWKS, a sign-in form, the
token endpoint, RS256 ID tokens), its client secret a Secrets Manager secret of the stack
(provisioned on moto as CloudFormation would generate it; the provider is then given that
value as its client's secret, as an administrator pastes it), groups mapped to roles
(``analysts`` -> Viewer, ``data-eng`` -> Op), and an IAM role of the stack granted ``Op``
through ``grant_airflow_role``. The module runs before the shared environment boots
(conftest.py ``FIRST_MODULES``).

People: headless Chromium from Debian (:mod:`tests.e2e.browser`) clicks through Airflow's
login page and the provider's form.

- A Viewer sees the DAG list with the test DAG; the trigger is refused: Airflow 3.3's UI
  offers the Trigger button to everyone, and its submit gets 403 ("Access Denied" in the UI),
  as does the REST API with the browser's own session token; no run appears. An Op, doing
  exactly the same clicks, triggers the DAG and its run appears: the same check passes one
  way and fails the other.
- A user whose token has no groups claim is refused: no user in FAB's database, the
  api-server logs the refusal with the subject, never a token.
- The client secret is in no template, no container's plain environment, no log.

Machines, under moto's IAM enforcement: a local API Gateway (:mod:`tests.e2e.api_gateway`)
checks SigV4 and ``execute-api:Invoke`` against the caller's policies from the template, then
calls the API access Lambda's handler running as its own role. The granted role gets an Op
token and lists DAGs with it; Admin is 403 with the reason; the api-server refuses a token
signed with another key (403 "Invalid JWT token", Airflow's answer) and an expired one (401
"Token Expired"), while the same claims signed with the environment's key pass;
``openmwaa api`` and ``openmwaa airflow`` work through it (HTTPS, the gateway's own CA).

Screenshots: ``$OPENMWAA_E2E_ARTIFACTS`` if set, else ``<pytest basetemp>/sign-in-e2e``
(printed).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from openmwaa.runtime.contracts import (
    AIRFLOW_URL_VARIABLE,
    SIGN_IN_CLIENT_SECRET_VARIABLE,
    SIGN_IN_VARIABLE,
    machine_username,
)

from .api_gateway import LambdaProcess, LocalApiGateway, lambda_environment, rest_api_routes
from .browser import Browser, artifact_dir
from .cfn import resources_of_type
from .localenv import LocalPostgres
from .oidc_provider import Client, OidcProvider, run_code_flow
from .principals import Credentials, create_user, role_policies
from .provision import ACCOUNT, LOAD_BALANCER_DNS_NAME, REGION
from .running import AirflowUnderTest, boot, shut_down

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

SYNC = Path(__file__).resolve().parent / "sign_in_dags"
ENVIRONMENT_NAME = "sign-in-e2e"
DAG_ID = "openmwaa_sign_in"
CLIENT_ID = "openmwaa-sign-in-e2e"
PROVIDER = "oidc"
"""The provider name SignIn.oidc gives (FAB's button is ``btn-signin-<provider>``)."""
ROLES = {"analysts": "Viewer", "data-eng": "Op"}
CALLER_ID = "ApiCaller"
"""The construct ID of the IAM role the template grants Op."""
GRANTED_ROLE = "Op"
API_ACCESS_HANDLER_PREFIX = "api_access."
PARSE_TIMEOUT = 300.0
REFUSED = ("Access Denied", "Failed to Trigger Dag", "403 Forbidden")
"""What the UI shows when the trigger is refused (a toast, the dialog's error)."""


# --- the app -----------------------------------------------------------------------------


def _template(issuer: str) -> dict[str, Any]:
    """app.py's stack shape with OIDC sign-in and an IAM role granted Op."""
    import aws_cdk as cdk
    from aws_cdk import assertions
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_secretsmanager as secretsmanager

    from openmwaa import AirflowEnvironment, SignIn
    from tools.cdk_app import project_app

    stack = cdk.Stack(project_app(), "OpenMwaa")
    client_secret = secretsmanager.Secret(
        stack, "OidcClientSecret", description="client secret of the e2e identity provider"
    )
    environment = AirflowEnvironment(
        stack,
        "Airflow",
        environment_name=ENVIRONMENT_NAME,
        sign_in=SignIn.oidc(
            issuer=issuer, client_id=CLIENT_ID, client_secret=client_secret, roles=ROLES
        ),
    )
    caller = iam.Role(stack, CALLER_ID, assumed_by=iam.AccountRootPrincipal())
    environment.grant_airflow_role(caller, GRANTED_ROLE)
    return dict(assertions.Template.from_stack(stack).to_json())


def _logical_id(template: dict[str, Any], type_name: str, prefix: str) -> str:
    found = [i for i in resources_of_type(template, type_name) if i.startswith(prefix)]
    assert len(found) == 1, f"expected one {type_name} named {prefix}*: {found}"
    return found[0]


# --- the environment ---------------------------------------------------------------------


@dataclass
class SignInEnv:
    """The booted environment, its identity provider, and where screenshots go."""

    env: AirflowUnderTest
    idp: OidcProvider
    client_secret: str
    artifacts: Path

    def browser(self, label: str) -> Browser:
        """A new browser (its own cookies)."""
        return Browser(self.artifacts, label)

    def admin_request(self, method: str, path: str, body: Any = None) -> Any:
        """The REST API as the break-glass admin."""
        return self.env.request(method, path, body)

    def runs(self) -> list[dict[str, Any]]:
        """The test DAG's runs."""
        listed = self.admin_request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?limit=100")
        runs: list[dict[str, Any]] = listed["dag_runs"]
        return runs


@pytest.fixture(scope="module")
def idp() -> Iterator[OidcProvider]:
    """The identity provider, started before the synth (its URL is the issuer)."""
    provider = OidcProvider(Client(CLIENT_ID, "not-yet-known")).start()
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture(scope="module")
def signed(
    idp: OidcProvider,
    postgres_server: LocalPostgres,
    airflow_venv: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SignInEnv]:
    """The environment booted with OIDC sign-in, the provider told its client secret, and
    the test DAG parsed."""
    template = _template(idp.issuer)
    work_dir = Path(tempfile.mkdtemp(prefix="openmwaa-e2e-sign-in-"))
    env = boot(
        template,
        f"Airflow 3.3.2 ({ENVIRONMENT_NAME}, OIDC sign-in at {idp.issuer})",
        airflow_venv,
        postgres_server,
        work_dir=work_dir,
        sync_fixture=SYNC,
        database_prefix="sign_in_",
    )
    try:
        secret_id = _logical_id(template, "AWS::SecretsManager::Secret", "OidcClientSecret")
        secret_arn = env.provisioned.resolver.refs[secret_id]
        client_secret = env.provisioned.secret_values[secret_arn]
        idp.client = Client(CLIENT_ID, client_secret)
        env.wait_for(
            f"DAG {DAG_ID} to be parsed",
            lambda: env.request("GET", f"/api/v2/dags/{DAG_ID}"),
            PARSE_TIMEOUT,
            interval=3,
        )
        artifacts = artifact_dir(tmp_path_factory.getbasetemp() / "sign-in-e2e")
        print(f"\nSIGN_IN_E2E screenshots in {artifacts}")
        yield SignInEnv(env, idp, client_secret, artifacts)
    finally:
        shut_down(env)
        if os.environ.get("OPENMWAA_E2E_KEEP"):
            print(f"\nsign-in work directory kept: {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)


# --- the browser's side ------------------------------------------------------------------


def _sign_in(suite: SignInEnv, browser: Browser, username: str) -> None:
    user = suite.idp.user(username)
    browser.sign_in(suite.env.api_url, user.username, user.password, PROVIDER)


def _session_token(browser: Browser) -> str:
    """The JWT the FAB auth manager gave the browser (the UI's REST credentials)."""
    token = browser.wait("the UI's session token", lambda d: browser.cookie("_token"))
    return str(token)


def _api(suite: SignInEnv, method: str, path: str, token: str, body: Any = None) -> int:
    """The status of a REST call with ``token``."""
    return _api_answer(suite, method, path, token, body)[0]


def _api_answer(
    suite: SignInEnv, method: str, path: str, token: str, body: Any = None
) -> tuple[int, str]:
    """The status and body of a REST call with ``token``."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        suite.env.api_url + path,
        data,
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode()


def _trigger_from_ui(suite: SignInEnv, browser: Browser) -> str:
    """Open the DAG's page, press Trigger, then the dialog's Trigger: the toast's title
    (``Dag Run Triggered`` or the failure), or ``no trigger control``."""
    from selenium.webdriver.common.by import By

    browser.get(f"{suite.env.api_url}/dags/{DAG_ID}")
    browser.wait_for_text(DAG_ID)
    try:
        button = browser.wait(
            "the trigger control",
            lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="trigger-dag-button"]'),
            timeout=30,
        )[0]
    except AssertionError:
        return "no trigger control"
    if not button.is_enabled():
        return "trigger control disabled"
    button.click()
    submit = browser.wait(
        "the trigger dialog",
        lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="trigger-dag-submit"]'),
    )[0]
    browser.screenshot("trigger-dialog")
    submit.click()
    outcomes = ("Dag Run Triggered", "Access Denied", "Failed to Trigger Dag", "403 Forbidden")
    found = browser.wait(
        "the trigger's outcome",
        lambda d: next((o for o in outcomes if o in browser.text()), None),
    )
    return str(found)


def test_the_identity_provider_does_the_code_flow_and_refuses_bad_input(
    idp: OidcProvider,
) -> None:
    """The fixture provider itself, with authlib's client: both client authentications,
    PKCE and a validated RS256 ID token; no groups claim for ``nogroups``; a wrong password
    and a client without its secret are refused."""
    from authlib.common.errors import AuthlibBaseError as OAuthError

    saved, idp.client = idp.client, Client(CLIENT_ID, "unit-check-secret")
    try:
        tokens = {
            method: run_code_flow(idp, "operator", "operator-password-1", auth_method=method)
            for method in ("client_secret_basic", "client_secret_post")
        }
        with pytest.raises(OAuthError, match="invalid_client"):
            run_code_flow(idp, "nogroups", "nogroups-password-1", auth_method="none")
        with pytest.raises(PermissionError):
            run_code_flow(idp, "viewer", "wrong-password", auth_method="client_secret_basic")
        refused = idp.events[-1]
        nogroups = run_code_flow(
            idp, "nogroups", "nogroups-password-1", auth_method="client_secret_basic"
        )
    finally:
        idp.client = saved

    for method, token in tokens.items():
        assert token["userinfo"]["groups"] == ["data-eng"], method
        assert token["userinfo"]["email"] == "operator@example.com", method
    assert "groups" not in nogroups["userinfo"], nogroups["userinfo"]
    assert refused["event"] == "sign-in refused" and refused["username"] == "viewer"
    issued = [e for e in idp.events if e["event"] == "token issued"]
    assert {"client_secret_basic", "client_secret_post"} <= {e["method"] for e in issued}
    assert all(e["pkce"] for e in issued)


def test_a_viewer_sees_the_dag_but_cannot_trigger_it(signed: SignInEnv) -> None:
    before = {r["dag_run_id"] for r in signed.runs()}
    with signed.browser("viewer") as browser:
        _sign_in(signed, browser, "viewer")
        token = _session_token(browser)
        browser.get(f"{signed.env.api_url}/dags")
        browser.wait_for_text(DAG_ID)
        browser.screenshot("dag-list")
        outcome = _trigger_from_ui(signed, browser)
        browser.screenshot("trigger-refused")
        listing = _api(signed, "GET", f"/api/v2/dags/{DAG_ID}", token)
        trigger = _api(signed, "POST", f"/api/v2/dags/{DAG_ID}/dagRuns", token, {"conf": {}})

    assert outcome in REFUSED, f"the Viewer's trigger from the UI: {outcome}"
    assert listing == 200, "the Viewer's session token cannot read the DAG"
    assert trigger == 403, f"the Viewer's session token triggering the DAG: {trigger}"
    assert {r["dag_run_id"] for r in signed.runs()} == before, "a run appeared"
    user = _fab_user(signed, "viewer@example.com")
    assert user is not None and _roles(user) == {"Viewer"}, user


def test_an_op_triggers_the_dag_from_the_ui(signed: SignInEnv) -> None:
    """The same clicks as the Viewer's: here they must trigger (the negative control of the
    Viewer's refusal: the check can pass and fail)."""
    before = {r["dag_run_id"] for r in signed.runs()}
    with signed.browser("operator") as browser:
        _sign_in(signed, browser, "operator")
        _session_token(browser)
        outcome = _trigger_from_ui(signed, browser)
        browser.screenshot("triggered")
        new = signed.env.wait_for(
            "the Op's run",
            lambda: [r for r in signed.runs() if r["dag_run_id"] not in before],
            60,
        )
        browser.get(f"{signed.env.api_url}/dags/{DAG_ID}/runs")
        browser.wait_for_text(new[0]["dag_run_id"][:20])
        browser.screenshot("run-listed")

    assert outcome == "Dag Run Triggered", outcome
    assert len(new) == 1 and new[0]["triggering_user_name"] == "operator@example.com", new
    user = _fab_user(signed, "operator@example.com")
    assert user is not None and _roles(user) == {"Op"}, user


def _roles(user: dict[str, Any]) -> set[str]:
    """The user's roles besides Public (FAB adds AUTH_USER_REGISTRATION_ROLE at sign-up; it
    grants nothing)."""
    return {r["name"] for r in user.get("roles") or []} - {"Public"}


def _fab_user(suite: SignInEnv, email: str) -> dict[str, Any] | None:
    listed = suite.admin_request("GET", "/auth/fab/v1/users?limit=100")["users"]
    return next((u for u in listed if u.get("email") == email), None)


def test_a_sign_in_without_the_groups_claim_is_refused_and_logged(signed: SignInEnv) -> None:
    with signed.browser("nogroups") as browser:
        _sign_in(signed, browser, "nogroups")
        browser.wait("the login page again", lambda d: "/auth/login" in d.current_url)
        browser.screenshot("refused")
        token = browser.cookie("_token")
        page = browser.text()
    issued = [e for e in signed.idp.events if e["event"] == "token issued"]
    log = signed.env.processes["api-server"].log_text()
    refusals = [line for line in log.splitlines() if "sign-in refused" in line]

    assert issued and issued[-1]["username"] == "nogroups", "the provider issued no token"
    assert token is None, "the browser got an Airflow session token"
    assert _fab_user(signed, "nogroups@example.com") is None, "a FAB user was created"
    assert refusals, f"no 'sign-in refused' line in the api-server's log; page: {page[:500]}"
    assert any("sub-nogroups" in line for line in refusals), refusals
    for access_token in signed.idp._access_tokens:
        assert access_token not in log, "the api-server logged a provider token"


def test_the_client_secret_is_in_no_template_environment_or_log(signed: SignInEnv) -> None:
    env, secret = signed.env, signed.client_secret
    api_server = env.launches["api-server"]
    settings = json.loads(api_server.template_env[SIGN_IN_VARIABLE])
    config_files = list((api_server.cwd).glob("webserver_config.py"))

    assert len(secret) >= 20
    assert secret not in json.dumps(env.template), "in the template"
    for name, launch in env.launches.items():
        assert secret not in json.dumps(launch.template_env), f"in {name}'s plain environment"
        if name != "api-server":
            assert SIGN_IN_CLIENT_SECRET_VARIABLE not in launch.env, f"{name} gets the secret"
    # the api-server gets it as an ECS secret, and only there
    assert api_server.env.get(SIGN_IN_CLIENT_SECRET_VARIABLE) == secret
    assert SIGN_IN_CLIENT_SECRET_VARIABLE not in api_server.template_env
    assert secret not in json.dumps(settings)
    assert settings["client_id"] == CLIENT_ID and settings["roles"] == ROLES
    for log in sorted(env.logs_dir.rglob("*.log")):
        assert secret not in log.read_text(errors="replace"), f"in {log.name}"
    for path in config_files:
        assert secret not in path.read_text(), f"written into {path}"


# --- the machines' side ------------------------------------------------------------------


@dataclass
class TokenPath:
    """The local API Gateway in front of the API access Lambda, and the granted caller."""

    gateway: LocalApiGateway
    caller: Credentials
    environment: dict[str, str]


@pytest.fixture(scope="module")
def token_path(signed: SignInEnv) -> Iterator[TokenPath]:
    env = signed.env
    template = env.template
    resolver = env.provisioned.resolver
    rest_api = _logical_id(template, "AWS::ApiGateway::RestApi", "Airflow")
    stage_id = next(iter(resources_of_type(template, "AWS::ApiGateway::Stage")))
    stage = template["Resources"][stage_id]["Properties"]["StageName"]
    handler = next(
        str(r["Properties"]["Handler"])
        for r in resources_of_type(template, "AWS::Lambda::Function").values()
        if str(r["Properties"].get("Handler", "")).startswith(API_ACCESS_HANDLER_PREFIX)
    )
    _, variables = lambda_environment(template, handler, resolver)
    variables = {
        k: v.replace(LOAD_BALANCER_DNS_NAME, env.api_url.removeprefix("http://"))
        for k, v in variables.items()
    }
    assert variables[AIRFLOW_URL_VARIABLE].rstrip("/") == env.api_url, variables
    function_key = env.function_principal(handler)
    iam_admin = env.aws.client("iam")
    caller_role = _logical_id(template, "AWS::IAM::Role", CALLER_ID)
    caller = create_user(
        iam_admin, f"{caller_role}-e2e", role_policies(template, caller_role, resolver).documents
    )
    stranger = create_user(iam_admin, "NoGrant-e2e", [])
    function = LambdaProcess(
        handler,
        {
            **variables,
            **function_key.environment(),
            "AWS_ENDPOINT_URL": env.moto.endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
        },
        env.logs_dir / "api-access-lambda.log",
    )
    gateway = LocalApiGateway(
        routes=rest_api_routes(template, rest_api),
        api_id=str(resolver.refs[rest_api]),
        stage=stage,
        region=REGION,
        account=ACCOUNT,
        keys={k.access_key_id: k for k in (caller, stranger, *env.principals.values())},
        iam_admin=iam_admin,
        function=function,
        tls_dir=env.work_dir / "gateway-tls",
    ).start()
    try:
        yield TokenPath(gateway, caller, variables)
    finally:
        gateway.stop()


def _signed_call(
    path: TokenPath, key: Credentials, method: str, route: str, body: Any = None
) -> tuple[int, Any]:
    """A SigV4-signed call to the gateway, as the CLI makes it: (status, decoded body)."""
    url = path.gateway.url + route
    data = json.dumps(body).encode() if body is not None else b""
    request = AWSRequest(method, url, data=data, headers={"Content-Type": "application/json"})
    SigV4Auth(
        BotoCredentials(key.access_key_id, key.secret_access_key), "execute-api", REGION
    ).add_auth(request)
    sent = urllib.request.Request(url, data or None, dict(request.headers.items()), method=method)
    try:
        context = path.gateway.ssl_context()
        with urllib.request.urlopen(sent, timeout=120, context=context) as response:
            return int(response.status), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return int(error.code), json.loads(error.read() or b"null")


def test_the_granted_role_gets_a_token_and_lists_dags(
    signed: SignInEnv, token_path: TokenPath
) -> None:
    status, body = _signed_call(token_path, token_path.caller, "POST", "/token/Op")
    assert status == 200, body
    assert body["role"] == "Op" and int(body["expires_in"]) > 0, body
    token = body["token"]

    assert _api(signed, "GET", "/api/v2/dags", token) == 200
    assert _api(signed, "GET", f"/api/v2/dags/{DAG_ID}", token) == 200
    status, invoked = _signed_call(
        token_path,
        token_path.caller,
        "POST",
        "/invoke/Op",
        {"method": "GET", "path": "/api/v2/dags"},
    )
    assert status == 200 and invoked["status"] == 200, invoked
    assert DAG_ID in {d["dag_id"] for d in invoked["body"]["dags"]}
    log = token_path.gateway.function.log_text()
    assert token not in log, "the Lambda logged the token"
    assert token_path.caller.user in log, "the Lambda's log line names no caller"


@pytest.mark.parametrize("role", ["Admin", "Viewer"])
def test_a_role_the_caller_was_not_granted_is_403_with_the_reason(
    token_path: TokenPath, role: str
) -> None:
    status, body = _signed_call(token_path, token_path.caller, "POST", f"/token/{role}")

    assert status == 403, body
    resource = token_path.gateway.execute_api_arn("POST", f"/token/{role}")
    assert body["message"] == (
        f"User: arn:aws:iam::{ACCOUNT}:user/{token_path.caller.user} is not authorized to "
        f"perform: execute-api:Invoke on resource: {resource}"
    )


def test_an_unsigned_call_and_a_principal_without_a_grant_are_refused(
    token_path: TokenPath,
) -> None:
    stranger = next(k for k in token_path.gateway.keys.values() if k.user == "NoGrant-e2e")
    unsigned = urllib.request.Request(token_path.gateway.url + "/token/Op", b"", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(unsigned, timeout=30, context=token_path.gateway.ssl_context())
    status, body = _signed_call(token_path, stranger, "POST", "/token/Op")

    assert refused.value.code == 403
    assert status == 403 and "is not authorized to perform" in body["message"], body


def _resigned(token: str, key: Any, **changes: Any) -> str:
    """``token``'s header and claims, changed and signed with ``key``."""
    header, claims = _unverified(token)
    return jwt.encode(header, {**claims, **changes}, key, algorithms=[header["alg"]])


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    import base64

    def part(text: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        return data

    head, body, _ = token.split(".")
    return part(head), part(body)


def test_forged_and_expired_tokens_are_refused_by_the_api_server(
    signed: SignInEnv, token_path: TokenPath
) -> None:
    status, body = _signed_call(token_path, token_path.caller, "POST", "/token/Op")
    assert status == 200, body
    token = body["token"]
    header, claims = _unverified(token)
    jwt_secret = signed.env.launches["api-server"].env["AIRFLOW__API_AUTH__JWT_SECRET"]
    real_key = OctKey.import_key(jwt_secret)
    now = int(time.time())
    other_key = (
        OctKey.import_key(secrets.token_urlsafe(64))
        if header["alg"].startswith("HS")
        else RSAKey.generate_key(2048)
    )
    # the positive control: the same claims re-signed with the environment's key work
    resigned = _resigned(token, real_key, iat=now, nbf=now, exp=now + 300)
    forged = _resigned(token, other_key)
    expired = _resigned(token, real_key, iat=now - 7200, nbf=now - 7200, exp=now - 3600)

    # Airflow's answers: 403 "Invalid JWT token" for a bad signature, 401 "Token Expired"
    assert _api(signed, "GET", "/api/v2/dags", resigned) == 200
    status, detail = _api_answer(signed, "GET", "/api/v2/dags", forged)
    assert (status, json.loads(detail)["detail"]) == (403, "Invalid JWT token"), detail
    status, detail = _api_answer(signed, "GET", "/api/v2/dags", expired)
    assert (status, json.loads(detail)["detail"]) == (401, "Token Expired"), detail
    assert claims.get("sub"), claims


def _cli(token_path: TokenPath, *args: str) -> subprocess.CompletedProcess[str]:
    """``openmwaa ARGS --url <gateway>`` with the granted caller's credentials."""
    script = Path(sys.executable).with_name("openmwaa")
    return subprocess.run(
        [str(script), *args],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            **token_path.caller.environment(),
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": token_path.gateway.function.environment["AWS_ENDPOINT_URL"],
            "SSL_CERT_FILE": str(token_path.gateway.ca_file),
        },
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_the_cli_calls_the_rest_api_and_runs_airflow_commands(
    signed: SignInEnv, token_path: TokenPath
) -> None:
    options = ("--role", "Op", "--region", REGION, "--url", token_path.gateway.url)
    listed = _cli(token_path, "api", ENVIRONMENT_NAME, *options, "GET", "/api/v2/dags")
    before = {r["dag_run_id"] for r in signed.runs()}
    triggered = _cli(token_path, "airflow", ENVIRONMENT_NAME, *options, "dags", "trigger", DAG_ID)
    denied_options = ("--role", "Admin", *options[2:])
    denied = _cli(token_path, "api", ENVIRONMENT_NAME, *denied_options, "GET", "/api/v2/dags")

    assert listed.returncode == 0, listed.stderr
    assert DAG_ID in listed.stdout
    assert triggered.returncode == 0, triggered.stderr
    new = [r for r in signed.runs() if r["dag_run_id"] not in before]
    assert len(new) == 1, new
    assert new[0]["triggering_user_name"] == machine_username("Op"), new[0]
    assert denied.returncode != 0
    assert "not authorized to perform: execute-api:Invoke" in denied.stderr + denied.stdout
