"""`SignIn` (the sign_in prop) and what it builds: validation, defaults, Cognito, OIDC, IAM
Identity Center, the machine key, and which container gets what."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk.assertions import Annotations, Match, Template

from openmwaa import AirflowEnvironment, EnvironmentClass, SignIn
from openmwaa.runtime import contracts
from openmwaa.runtime.sign_in import parse_sign_in
from openmwaa.sign_in import (
    AVP_ACTIONS,
    DAG_RUN_ACTIONS,
    OPERATION_ACTIONS,
    READ_ACTIONS,
    ROLE_ACTIONS,
    SIGN_IN_WARNING_ID,
    cedar_policy,
    default_domain_prefix,
)
from tests.stacks import TEST_ENV
from tools.cdk_app import project_app

CERTIFICATE_ARN = (
    "arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
)
GROUP_OPS = "9067a2b1c4-0a1b2c3d-4e5f-6789-abcd-ef0123456789"
GROUP_VIEWERS = "9067a2b1c4-11111111-2222-3333-4444-555555555555"
SAML_URL = "https://portal.sso.eu-west-1.amazonaws.com/saml/metadata/MDEyMzQ1Njc4OTAx"

AVP_SCHEMA_ACTIONS_FIXTURE = frozenset(
    {
        *(f"Asset.{m}" for m in ("DELETE", "GET", "LIST", "POST")),
        "AssetAlias.GET",
        "AssetAlias.LIST",
        *(f"Backfill.{m}" for m in ("GET", "LIST", "POST", "PUT")),
        "Configuration.GET",
        "Configuration.LIST",
        *(f"Connection.{m}" for m in ("DELETE", "GET", "LIST", "POST", "PUT")),
        *(f"Custom.{m}" for m in ("DELETE", "GET", "LIST", "POST", "PUT")),
        *(f"Dag.{m}" for m in ("DELETE", "GET", "LIST", "POST", "PUT")),
        "Menu.MENU",
        *(f"Pool.{m}" for m in ("DELETE", "GET", "LIST", "POST", "PUT")),
        "Team.GET",
        "Team.LIST",
        *(f"Variable.{m}" for m in ("DELETE", "GET", "LIST", "POST", "PUT")),
        "View.GET",
    }
)
"""The actions of apache-airflow-providers-amazon 9.39.0's
`airflow/providers/amazon/aws/auth_manager/avp/schema.json` (`["Airflow"]["actions"]`), the
AWS auth manager's `<entity>.<method>` ids, extracted from the 3.3.2 e2e venv."""


def _secret(stack: cdk.Stack) -> secretsmanager.ISecret:
    return secretsmanager.Secret.from_secret_name_v2(stack, "IdpSecret", "okta-airflow-client")


def oidc(stack: cdk.Stack, **overrides: Any) -> SignIn:
    props: dict[str, Any] = {
        "issuer": "https://acme.okta.com/oauth2/default",
        "client_id": "0oa1b2c3d4",
        "client_secret": _secret(stack),
        "roles": {"data-eng": "Op", "analysts": "Viewer"},
        "name": "okta",
    }
    props.update(overrides)
    return SignIn.oidc(**props)


def build(
    sign_in: Any = None, *, https: bool = False, **props: Any
) -> tuple[cdk.Stack, AirflowEnvironment]:
    """An environment, PRIVATE_ONLY; with `https`, a custom domain and its certificate.
    `sign_in` may be a function of the stack (for secrets)."""
    stack = cdk.Stack(project_app(), "SignIn", env=TEST_ENV)
    if https:
        props["domain_name"] = "airflow.example.com"
        props["certificate"] = acm.Certificate.from_certificate_arn(
            stack, "Certificate", CERTIFICATE_ARN
        )
    if callable(sign_in):
        sign_in = sign_in(stack)
    env = AirflowEnvironment(stack, "Airflow", sign_in=sign_in, **props)
    return stack, env


def containers(template: Template) -> list[dict[str, Any]]:
    return [
        container
        for task in template.find_resources("AWS::ECS::TaskDefinition").values()
        for container in task["Properties"]["ContainerDefinitions"]
    ]


def variable(container: dict[str, Any], name: str) -> Any:
    values = [e["Value"] for e in container.get("Environment", []) if e["Name"] == name]
    return values[0] if values else None


def secret_names(container: dict[str, Any]) -> set[str]:
    return {s["Name"] for s in container.get("Secrets", [])}


def api_server(template: Template) -> dict[str, Any]:
    (found,) = [c for c in containers(template) if c["Name"] == contracts.API_SERVER]
    return found


def resolved_settings(stack: cdk.Stack, template: Template) -> dict[str, Any]:
    """The api-server's sign-in JSON, with each CloudFormation reference as `<Ref id>`."""
    value = variable(api_server(template), contracts.SIGN_IN_VARIABLE)
    if isinstance(value, dict):
        parts = value["Fn::Join"][1]
        value = "".join(
            p if isinstance(p, str) else f"<{p.get('Ref') or '.'.join(p['Fn::GetAtt'])}>"
            for p in parts
        )
    return dict(json.loads(value))


# --- the factories' validation -------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "prop"),
    [
        ({"issuer": "http://acme.okta.com"}, "sign_in.issuer"),
        ({"issuer": "ftp://acme.okta.com"}, "sign_in.issuer"),
        ({"issuer": "https://"}, "sign_in.issuer"),
        ({"client_id": ""}, "sign_in.client_id"),
        ({"client_secret": "s3cr3t"}, "sign_in.client_secret"),
        ({"roles": {}}, "sign_in.roles"),
        ({"roles": {"data-eng": "Owner"}}, "sign_in.roles"),
        ({"roles": {"": "Op"}}, "sign_in.roles"),
        ({"groups_claim": ""}, "sign_in.groups_claim"),
        ({"username_claim": ""}, "sign_in.username_claim"),
        ({"scopes": ("email",)}, "sign_in.scopes"),
        ({"name": "Okta"}, "sign_in.name"),
        ({"name": "okta/x"}, "sign_in.name"),
    ],
)
def test_oidc_refuses_an_invalid_prop_naming_it(overrides: dict[str, Any], prop: str) -> None:
    stack = cdk.Stack(project_app(), "Props")
    with pytest.raises(ValueError, match=f"^{prop}:"):
        oidc(stack, **overrides)


@pytest.mark.parametrize("issuer", ["http://127.0.0.1:8900/idp", "http://localhost:8900"])
def test_oidc_allows_http_only_for_a_loopback_issuer(issuer: str) -> None:
    sign_in = oidc(cdk.Stack(project_app(), "Props"), issuer=issuer)
    assert sign_in.metadata_url == f"{issuer}/.well-known/openid-configuration"


def test_oidc_keeps_its_values_immutably_and_sorted() -> None:
    roles = {"data-eng": "Op", "analysts": "Viewer"}
    sign_in = oidc(cdk.Stack(project_app(), "Props"), roles=roles, label="Sign in with Okta")
    roles["intruders"] = "Admin"
    assert dict(sign_in.roles) == {"analysts": "Viewer", "data-eng": "Op"}
    with pytest.raises(TypeError):
        sign_in.roles["x"] = "Admin"
    with pytest.raises(AttributeError):
        sign_in.issuer = "https://evil.example"
    assert sign_in.label == "Sign in with Okta"


@pytest.mark.parametrize(
    ("kwargs", "prop"),
    [
        ({"roles": {"Admins": "Root"}}, "sign_in.roles"),
        ({"roles": {}}, "sign_in.roles"),
        ({"domain_prefix": "Airflow"}, "sign_in.domain_prefix"),
        ({"domain_prefix": "-airflow"}, "sign_in.domain_prefix"),
        ({"domain_prefix": "my-aws-airflow"}, "sign_in.domain_prefix"),
        ({"domain_prefix": "cognito-airflow"}, "sign_in.domain_prefix"),
        ({"domain_prefix": "a" * 64}, "sign_in.domain_prefix"),
    ],
)
def test_cognito_refuses_an_invalid_prop_naming_it(kwargs: dict[str, Any], prop: str) -> None:
    with pytest.raises(ValueError, match=f"^{prop}:"):
        SignIn.cognito(**kwargs)


def test_cognito_maps_a_group_per_role_by_default() -> None:
    sign_in = SignIn.cognito()
    assert dict(sign_in.roles) == {role: role for role in contracts.AIRFLOW_ROLES}
    assert (sign_in.groups_claim, sign_in.username_claim) == ("cognito:groups", "email")


@pytest.mark.parametrize(
    ("kwargs", "prop"),
    [
        ({"saml_metadata_url": "http://portal.sso.example/saml"}, "sign_in.saml_metadata_url"),
        ({"saml_metadata_url": "http://localhost/saml"}, "sign_in.saml_metadata_url"),
        ({"roles": {}}, "sign_in.roles"),
        ({"roles": {GROUP_OPS: "Operator"}}, "sign_in.roles"),
        ({"roles": {'x" , action, resource); permit (principal': "Viewer"}}, "sign_in.roles"),
    ],
)
def test_identity_center_refuses_an_invalid_prop_naming_it(
    kwargs: dict[str, Any], prop: str
) -> None:
    props: dict[str, Any] = {"saml_metadata_url": SAML_URL, "roles": {GROUP_OPS: "Op"}}
    props.update(kwargs)
    with pytest.raises(ValueError, match=f"^{prop}:"):
        SignIn.iam_identity_center(**props)


def test_every_settings_shape_is_what_the_runtime_accepts() -> None:
    stack = cdk.Stack(project_app(), "Props")
    shapes = [
        SignIn.password().settings(),
        oidc(stack).settings(),
        SignIn.cognito().settings(
            cognito_issuer="https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc",
            cognito_client_id="client",
        ),
        SignIn.iam_identity_center(saml_metadata_url=SAML_URL, roles={GROUP_OPS: "Op"}).settings(
            policy_store_id="PSEXAMPLEabcdefg111111", region="eu-west-1"
        ),
    ]
    for shape in shapes:
        assert parse_sign_in(json.dumps(shape)) == shape
    assert [s["method"] for s in shapes] == ["password", "oidc", "oidc", "identity_center"]
    assert shapes[1]["metadata_url"] == (
        "https://acme.okta.com/oauth2/default/.well-known/openid-configuration"
    )
    assert shapes[2]["provider"] == "cognito"


def test_settings_refuse_what_the_construct_must_supply() -> None:
    with pytest.raises(ValueError, match="cognito_issuer"):
        SignIn.cognito().settings()
    with pytest.raises(ValueError, match="policy_store_id"):
        SignIn.iam_identity_center(saml_metadata_url=SAML_URL, roles={GROUP_OPS: "Op"}).settings()


# --- the default and the environment's rules ----------------------------------------------


def test_default_without_https_is_password_with_a_warning() -> None:
    stack, env = build()
    template = Template.from_stack(stack)
    assert env.sign_in == SignIn.password()
    assert variable(api_server(template), contracts.SIGN_IN_VARIABLE) == '{"method":"password"}'
    assert env.user_pool is None and env.user_pool_client is None and env.policy_store is None
    template.resource_count_is("AWS::Cognito::UserPool", 0)
    warnings = Annotations.from_stack(stack).find_warning(
        "/SignIn/Airflow", Match.string_like_regexp("single sign-on")
    )
    assert len(warnings) == 1
    assert SIGN_IN_WARNING_ID in str(warnings[0].entry.data)


def test_password_given_explicitly_has_no_warning() -> None:
    stack, env = build(SignIn.password())
    assert env.sign_in.method == "password"
    warnings = Annotations.from_stack(stack).find_warning(
        "/SignIn/Airflow", Match.string_like_regexp("single sign-on")
    )
    assert warnings == []


def test_default_with_a_certificate_is_cognito() -> None:
    stack, env = build(https=True)
    assert env.sign_in == SignIn.cognito()
    assert env.user_pool is not None and env.user_pool_client is not None
    Template.from_stack(stack).resource_count_is("AWS::Cognito::UserPool", 1)
    warnings = Annotations.from_stack(stack).find_warning(
        "/SignIn/Airflow", Match.string_like_regexp("single sign-on")
    )
    assert warnings == []
    lockout = Annotations.from_stack(stack).find_warning(
        "/SignIn/Airflow", Match.string_like_regexp("can no longer sign in to the UI")
    )
    assert len(lockout) == 1


def test_cognito_given_explicitly_has_no_lockout_warning() -> None:
    stack, _ = build(SignIn.cognito(), https=True)
    lockout = Annotations.from_stack(stack).find_warning(
        "/SignIn/Airflow", Match.string_like_regexp("can no longer sign in to the UI")
    )
    assert lockout == []


def test_cognito_without_https_is_refused_naming_sign_in() -> None:
    with pytest.raises(ValueError, match=r"sign_in: SignIn.cognito\(\) needs HTTPS.*certificate"):
        build(SignIn.cognito())


def test_identity_center_on_airflow_2_is_refused_naming_sign_in() -> None:
    sign_in = SignIn.iam_identity_center(saml_metadata_url=SAML_URL, roles={GROUP_OPS: "Op"})
    with pytest.raises(ValueError, match=r"sign_in: .*needs Airflow 3"):
        build(sign_in, https=True, airflow_version="2.11.2")


def test_identity_center_without_https_is_refused_naming_sign_in() -> None:
    sign_in = SignIn.iam_identity_center(saml_metadata_url=SAML_URL, roles={GROUP_OPS: "Op"})
    with pytest.raises(ValueError, match=r"sign_in: SignIn.iam_identity_center\(\) needs HTTPS"):
        build(sign_in)


def test_a_value_of_another_type_is_refused_naming_sign_in() -> None:
    with pytest.raises(ValueError, match=r"sign_in: got dict"):
        build({"method": "oidc"})


# --- Cognito --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cognito_stack() -> cdk.Stack:
    return build(https=True)[0]


@pytest.fixture(scope="module")
def cognito_template(cognito_stack: cdk.Stack) -> Template:
    return Template.from_stack(cognito_stack)


def test_cognito_user_pool_is_closed_strong_and_kept(cognito_template: Template) -> None:
    cognito_template.has_resource(
        "AWS::Cognito::UserPool",
        {
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": Match.object_like(
                {
                    "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},
                    "UsernameAttributes": ["email"],
                    "MfaConfiguration": "ON",
                    "EnabledMfas": ["SOFTWARE_TOKEN_MFA"],
                    "DeletionProtection": "ACTIVE",
                    "Policies": {
                        "PasswordPolicy": Match.object_like(
                            {
                                "MinimumLength": 14,
                                "RequireLowercase": True,
                                "RequireUppercase": True,
                                "RequireNumbers": True,
                                "RequireSymbols": True,
                            }
                        )
                    },
                }
            ),
        },
    )


def test_cognito_mfa_can_be_turned_off() -> None:
    stack, _ = build(SignIn.cognito(mfa=False), https=True)
    Template.from_stack(stack).has_resource_properties(
        "AWS::Cognito::UserPool", {"MfaConfiguration": "OFF"}
    )


def test_cognito_has_a_group_per_role(cognito_template: Template) -> None:
    groups = cognito_template.find_resources("AWS::Cognito::UserPoolGroup")
    assert sorted(g["Properties"]["GroupName"] for g in groups.values()) == sorted(
        contracts.AIRFLOW_ROLES
    )


def test_cognito_custom_groups_are_created_as_mapped() -> None:
    stack, _ = build(SignIn.cognito(roles={"platform": "Admin", "analysts": "Viewer"}), https=True)
    groups = Template.from_stack(stack).find_resources("AWS::Cognito::UserPoolGroup")
    assert sorted(g["Properties"]["GroupName"] for g in groups.values()) == ["analysts", "platform"]


def test_cognito_domain_prefix_defaults_to_name_and_account(cognito_template: Template) -> None:
    cognito_template.has_resource_properties(
        "AWS::Cognito::UserPoolDomain", {"Domain": "airflow-123456789012"}
    )


def test_default_domain_prefix_is_valid_for_every_name() -> None:
    for name in ("Airflow", "my_AWS_env", "amazon-cognito", "x" * 80, "A__b--c"):
        prefix = default_domain_prefix(name, "123456789012")
        SignIn.cognito(domain_prefix=prefix)  # raises if invalid
        assert prefix == default_domain_prefix(name, "123456789012")
    assert default_domain_prefix("a_b", "1") != default_domain_prefix("a-b", "1")


def test_cognito_domain_prefix_given_is_used() -> None:
    stack, _ = build(SignIn.cognito(domain_prefix="acme-airflow"), https=True)
    Template.from_stack(stack).has_resource_properties(
        "AWS::Cognito::UserPoolDomain", {"Domain": "acme-airflow"}
    )


@pytest.mark.parametrize(
    ("airflow_version", "path"),
    [("3.3.2", "/auth/oauth-authorized/cognito"), ("2.11.2", "/oauth-authorized/cognito")],
)
def test_cognito_app_client_calls_back_to_fabs_route(airflow_version: str, path: str) -> None:
    stack, _ = build(https=True, airflow_version=airflow_version)
    Template.from_stack(stack).has_resource_properties(
        "AWS::Cognito::UserPoolClient",
        {
            "GenerateSecret": True,
            "AllowedOAuthFlows": ["code"],
            "AllowedOAuthFlowsUserPoolClient": True,
            "AllowedOAuthScopes": ["openid", "email", "profile"],
            "CallbackURLs": [f"https://airflow.example.com{path}"],
            "LogoutURLs": ["https://airflow.example.com"],
            "SupportedIdentityProviders": ["COGNITO"],
        },
    )


def test_cognito_settings_point_at_the_pool_and_client(
    cognito_stack: cdk.Stack, cognito_template: Template
) -> None:
    settings = resolved_settings(cognito_stack, cognito_template)
    (pool,) = cognito_template.find_resources("AWS::Cognito::UserPool")
    (client,) = cognito_template.find_resources("AWS::Cognito::UserPoolClient")
    assert settings == {
        "method": "oidc",
        "provider": "cognito",
        "label": "Amazon Cognito",
        "metadata_url": (
            f"https://cognito-idp.eu-west-1.amazonaws.com/<{pool}>/.well-known/openid-configuration"
        ),
        "client_id": f"<{client}>",
        "scopes": ["openid", "email", "profile"],
        "groups_claim": "cognito:groups",
        "username_claim": "email",
        "roles": {role: role for role in contracts.AIRFLOW_ROLES},
    }


def test_cognito_client_secret_reaches_the_api_server_only_through_secrets_manager(
    cognito_template: Template,
) -> None:
    (client,) = cognito_template.find_resources("AWS::Cognito::UserPoolClient")
    secrets = cognito_template.find_resources(
        "AWS::SecretsManager::Secret",
        {"Properties": {"SecretString": {"Fn::GetAtt": [client, "ClientSecret"]}}},
    )
    assert len(secrets) == 1
    (secret_id,) = secrets
    (secret,) = [
        s
        for s in api_server(cognito_template)["Secrets"]
        if s["Name"] == contracts.SIGN_IN_CLIENT_SECRET_VARIABLE
    ]
    assert secret["ValueFrom"] == {"Ref": secret_id}
    text = json.dumps(cognito_template.to_json())
    # No custom resource reads the secret (its response would carry it), and no literal
    # secret or GetAtt of it appears anywhere else.
    assert "DescribeUserPoolClient" not in text
    assert text.count('"ClientSecret"]') == 1
    assert "Custom::AWS" not in text


def test_cognito_api_server_waits_for_the_domain(cognito_template: Template) -> None:
    (domain,) = cognito_template.find_resources("AWS::Cognito::UserPoolDomain")
    services = cognito_template.find_resources(
        "AWS::ECS::Service", {"DependsOn": Match.array_with([domain])}
    )
    assert len(services) == 1
    (service,) = services.values()
    assert service["Properties"]["LoadBalancers"][0]["ContainerName"] == contracts.API_SERVER


# --- OIDC ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oidc_stack() -> cdk.Stack:
    return build(oidc)[0]


def test_oidc_settings_and_secret_on_the_api_server(oidc_stack: cdk.Stack) -> None:
    template = Template.from_stack(oidc_stack)
    assert resolved_settings(oidc_stack, template) == {
        "method": "oidc",
        "provider": "okta",
        "label": "okta",
        "metadata_url": "https://acme.okta.com/oauth2/default/.well-known/openid-configuration",
        "client_id": "0oa1b2c3d4",
        "scopes": ["openid", "email", "profile"],
        "groups_claim": "groups",
        "username_claim": "email",
        "roles": {"analysts": "Viewer", "data-eng": "Op"},
    }
    (secret,) = [
        s
        for s in api_server(template)["Secrets"]
        if s["Name"] == contracts.SIGN_IN_CLIENT_SECRET_VARIABLE
    ]
    assert "secret:okta-airflow-client" in json.dumps(secret["ValueFrom"])
    template.resource_count_is("AWS::Cognito::UserPool", 0)
    template.resource_count_is("AWS::VerifiedPermissions::PolicyStore", 0)


def test_oidc_client_secret_is_readable_by_the_task_execution_role(oidc_stack: cdk.Stack) -> None:
    template = Template.from_stack(oidc_stack)
    policies = template.find_resources("AWS::IAM::Policy")
    readers = [
        p
        for p in policies.values()
        if "secret:okta-airflow-client" in json.dumps(p)
        and "secretsmanager:GetSecretValue" in json.dumps(p)
    ]
    assert len(readers) == 1
    roles = json.dumps(readers[0]["Properties"]["Roles"])
    assert "ApiServerTaskExecutionRole" in roles


# --- which container gets what --------------------------------------------------------------


SIGN_IN_SECRETS = {contracts.SIGN_IN_CLIENT_SECRET_VARIABLE, contracts.MACHINE_KEY_VARIABLE}


@pytest.mark.parametrize(
    "props",
    [
        {"https": True},
        {"https": True, "airflow_version": "2.11.2"},
        {"https": True, "environment_class": EnvironmentClass.MW1_MICRO},
    ],
    ids=["airflow-3", "airflow-2", "micro"],
)
def test_only_the_api_server_gets_the_sign_in_and_its_secrets(props: dict[str, Any]) -> None:
    stack, _ = build(**props)
    template = Template.from_stack(stack)
    for container in containers(template):
        if container["Name"] == contracts.API_SERVER:
            assert secret_names(container) >= SIGN_IN_SECRETS
            assert variable(container, contracts.SIGN_IN_VARIABLE) is not None
        else:
            assert not SIGN_IN_SECRETS & secret_names(container), container["Name"]
            assert variable(container, contracts.SIGN_IN_VARIABLE) is None, container["Name"]


def test_micro_task_definition_fits_ecs_limit_with_oidc() -> None:
    stack, _ = build(oidc, environment_class=EnvironmentClass.MW1_MICRO)
    tasks = Template.from_stack(stack).find_resources("AWS::ECS::TaskDefinition")
    largest = max(len(json.dumps(t["Properties"], separators=(",", ":"))) for t in tasks.values())
    assert largest + 8 * 1024 < 64 * 1024


# --- the machine key ------------------------------------------------------------------------


def test_machine_key_is_a_generated_secret_on_the_api_server(oidc_stack: cdk.Stack) -> None:
    template = Template.from_stack(oidc_stack)
    env = oidc_stack.node.find_child("Airflow")
    assert isinstance(env, AirflowEnvironment)
    assert env.machine_key_secret is env.secrets.machine_key
    assert env.secrets.machine_key in env.secrets.all
    logical_id = oidc_stack.get_logical_id(env.secrets.machine_key.node.default_child)
    secret = template.to_json()["Resources"][logical_id]
    assert secret["Properties"]["GenerateSecretString"] == {
        "PasswordLength": 64,
        "ExcludePunctuation": True,
    }
    assert secret["DeletionPolicy"] == "RetainExceptOnCreate"
    (value,) = [
        s for s in api_server(template)["Secrets"] if s["Name"] == contracts.MACHINE_KEY_VARIABLE
    ]
    assert value["ValueFrom"] == {"Ref": logical_id}


# --- IAM Identity Center -------------------------------------------------------------------


IDENTITY_CENTER = SignIn.iam_identity_center(
    saml_metadata_url=SAML_URL,
    roles={GROUP_OPS: "Op", GROUP_VIEWERS: "Viewer", "admins-1": "Admin", "public-1": "Public"},
)


@pytest.fixture(scope="module")
def identity_center_stack() -> cdk.Stack:
    return build(IDENTITY_CENTER, https=True)[0]


def test_identity_center_builds_a_policy_store_and_a_policy_per_role(
    identity_center_stack: cdk.Stack,
) -> None:
    template = Template.from_stack(identity_center_stack)
    template.resource_count_is("AWS::VerifiedPermissions::PolicyStore", 1)
    template.has_resource_properties(
        "AWS::VerifiedPermissions::PolicyStore", {"ValidationSettings": {"Mode": "OFF"}}
    )
    (store,) = template.find_resources("AWS::VerifiedPermissions::PolicyStore")
    policies = template.find_resources("AWS::VerifiedPermissions::Policy")
    statements = sorted(
        p["Properties"]["Definition"]["Static"]["Statement"] for p in policies.values()
    )
    assert all(
        p["Properties"]["PolicyStoreId"] == {"Fn::GetAtt": [store, "PolicyStoreId"]}
        for p in policies.values()
    )
    # Public has no permission: no policy.
    assert statements == sorted(
        s
        for s in (
            cedar_policy(GROUP_OPS, "Op"),
            cedar_policy(GROUP_VIEWERS, "Viewer"),
            cedar_policy("admins-1", "Admin"),
        )
        if s is not None
    )
    assert cedar_policy("public-1", "Public") is None
    assert 'principal in Airflow::Group::"admins-1", action, resource' in "".join(statements)
    assert resolved_settings(identity_center_stack, template) == {
        "method": "identity_center",
        "saml_metadata_url": SAML_URL,
        "policy_store_id": f"<{store}.PolicyStoreId>",
        "region": "eu-west-1",
    }


def test_identity_center_lets_the_task_role_ask_the_store_only(
    identity_center_stack: cdk.Stack,
) -> None:
    template = Template.from_stack(identity_center_stack)
    (store,) = template.find_resources("AWS::VerifiedPermissions::PolicyStore")
    statements = [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "verifiedpermissions" in json.dumps(statement["Action"])
    ]
    assert len(statements) == 1
    assert set(statements[0]["Action"]) >= set(AVP_ACTIONS)
    assert statements[0]["Resource"] == {"Fn::GetAtt": [store, "Arn"]}


def test_cedar_actions_exist_in_the_providers_schema() -> None:
    used = set(READ_ACTIONS) | set(DAG_RUN_ACTIONS) | set(OPERATION_ACTIONS)
    assert used <= AVP_SCHEMA_ACTIONS_FIXTURE
    for role in ("Viewer", "User", "Op"):
        statement = cedar_policy("g", role)
        assert statement is not None
        named = {a.split('"')[0] for a in statement.split('Airflow::Action::"')[1:]}
        assert named <= AVP_SCHEMA_ACTIONS_FIXTURE, role


def test_role_actions_follow_mwaas_role_meanings() -> None:
    viewer, user, op = (set(ROLE_ACTIONS[r] or ()) for r in ("Viewer", "User", "Op"))
    writes = ("POST", "PUT", "DELETE")
    assert not any(a.endswith(writes) for a in viewer)
    assert viewer < user < op
    assert {"Dag.POST", "Dag.PUT"} <= user - viewer
    assert not any(a.startswith(("Connection", "Pool", "Variable")) for a in user - viewer)
    assert {"Connection.POST", "Pool.PUT", "Variable.DELETE"} <= op - user
    assert ROLE_ACTIONS["Admin"] is None and ROLE_ACTIONS["Public"] == ()


# --- determinism -----------------------------------------------------------------------------


@pytest.mark.parametrize("sign_in", [None, IDENTITY_CENTER, "oidc"], ids=["cognito", "ic", "oidc"])
def test_sign_in_output_is_deterministic(sign_in: Any) -> None:
    chosen = oidc if sign_in == "oidc" else sign_in
    first, second = (Template.from_stack(build(chosen, https=True)[0]).to_json() for _ in "12")
    assert first == second
