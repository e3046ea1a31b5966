"""How people sign in to the Airflow UI: `SignIn` (the prop) and `SignInResources` (what it builds).

Sign-in happens in Airflow, through the FAB auth manager's OAuth sign-in (authlib), for any
OpenID Connect provider and for the embedded Amazon Cognito user pool; or through the amazon
provider's AWS auth manager for IAM Identity Center. The construct writes the settings as JSON
(`contracts.SIGN_IN_VARIABLE`) into the api-server container (the webserver on Airflow 2) and
passes the client secret and the machine key as ECS secrets; the runtime turns the JSON into
Airflow's configuration at start (`runtime/sign_in.py`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from aws_cdk import RemovalPolicy, SecretValue, Stack, Token
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_verifiedpermissions as avp

from constructs import Construct

from .nag_acknowledgements import acknowledge
from .nag_reasons import (
    COGNITO_ADVANCED_SECURITY,
    COGNITO_MFA_OFF,
    SECRET_WITHOUT_CMK,
    SIGN_IN_CLIENT_SECRET_ROTATION,
)
from .naming import dns_label, short_hash
from .runtime import contracts
from .versions import is_airflow_2

OIDC = "oidc"
COGNITO = "cognito"
IDENTITY_CENTER = "identity_center"
PASSWORD = "password"
METHODS = (OIDC, COGNITO, IDENTITY_CENTER, PASSWORD)
"""The ways people can sign in (`SignIn.method`)."""

COGNITO_PROVIDER = "cognito"
"""FAB's provider name of the embedded Cognito user pool: the last segment of its callback."""
COGNITO_GROUPS_CLAIM = "cognito:groups"
"""The ID token claim in which Cognito lists a user's groups."""
DEFAULT_SCOPES = ("openid", "email", "profile")
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1"})
"""Hosts an `http://` issuer may name (a provider on the test machine)."""
PROVIDER_NAME_PATTERN = re.compile(r"^[a-z0-9_-]{1,64}$")
DOMAIN_PREFIX_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
COGNITO_RESERVED_WORDS = ("aws", "amazon", "cognito")
"""Words a Cognito domain prefix may not contain."""
GROUP_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
"""An IAM Identity Center group id (or a group name a SAML application sends): quoted into
Cedar policies, so no quote, backslash or space."""
SIGN_IN_WARNING_ID = "openmwaa:signInPassword"
SIGN_IN_COGNITO_WARNING_ID = "openmwaa:signInCognitoDefault"
"""The warning when HTTPS made Cognito the default: an environment upgraded from password
sign-in would lock its password users out of the UI."""
MIN_PASSWORD_LENGTH = 14
"""The Cognito user pool's password minimum (NIST SP 800-63B asks at least 8; CIS 14)."""

AVP_SCHEMA = json.dumps(
    {
        "Airflow": {
            "entityTypes": {"Group": {}, "User": {"memberOfTypes": ["Group"]}},
            "actions": {},
        }
    },
    sort_keys=True,
)
"""The policy store's starting schema: the namespace and the principal types only, written by
us. The AWS auth manager reads the store's schema when it starts (a store without one fails
it) and warns while it differs from the provider's `avp/schema.json`; replace it with
`airflow aws-auth-manager update-avp-schema --policy-store-id <id>` from the image. Validation
is off, so the policies do not depend on it."""

READ_ACTIONS = (
    "Asset.GET",
    "Asset.LIST",
    "AssetAlias.GET",
    "AssetAlias.LIST",
    "Backfill.GET",
    "Backfill.LIST",
    "Configuration.GET",
    "Configuration.LIST",
    "Connection.GET",
    "Connection.LIST",
    "Custom.GET",
    "Custom.LIST",
    "Dag.GET",
    "Dag.LIST",
    "Menu.MENU",
    "Pool.GET",
    "Pool.LIST",
    "Team.GET",
    "Team.LIST",
    "Variable.GET",
    "Variable.LIST",
    "View.GET",
)
"""The AWS auth manager's read actions (`<entity>.<method>`, its `avp/schema.json`)."""
DAG_RUN_ACTIONS = (
    "Asset.POST",
    "Backfill.POST",
    "Backfill.PUT",
    "Dag.DELETE",
    "Dag.POST",
    "Dag.PUT",
)
"""Triggering, pausing, clearing and deleting DAG runs and task instances, backfills, asset
events: what MWAA's User adds to Viewer."""
OPERATION_ACTIONS = (
    "Asset.DELETE",
    "Connection.DELETE",
    "Connection.POST",
    "Connection.PUT",
    "Pool.DELETE",
    "Pool.POST",
    "Pool.PUT",
    "Variable.DELETE",
    "Variable.POST",
    "Variable.PUT",
)
"""Connections, pools and variables: what MWAA's Op adds to User."""
ROLE_ACTIONS: Mapping[str, tuple[str, ...] | None] = MappingProxyType(
    {
        "Viewer": READ_ACTIONS,
        "User": READ_ACTIONS + DAG_RUN_ACTIONS,
        "Op": READ_ACTIONS + DAG_RUN_ACTIONS + OPERATION_ACTIONS,
        "Admin": None,
        "Public": (),
    }
)
"""Each Airflow role's Cedar actions in the Identity Center policy store. None: every action
(Admin); empty: none (Public, as Airflow's Public role, gets no policy)."""


def _frozen(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(sorted(mapping.items())))


def _check_roles(roles: object, prop: str, key_pattern: re.Pattern[str] | None = None) -> None:
    allowed = ", ".join(contracts.AIRFLOW_ROLES)
    if not isinstance(roles, Mapping) or not roles:
        raise ValueError(f"{prop}: got {roles!r}; give at least one group -> role ({allowed})")
    for group, role in roles.items():
        if not isinstance(group, str) or not group:
            raise ValueError(f"{prop}: group {group!r} must be a non-empty string")
        if key_pattern is not None and not key_pattern.match(group):
            raise ValueError(
                f"{prop}: group {group!r}; allowed: letters, digits and . _ @ + - "
                "(an IAM Identity Center group id)"
            )
        if role not in contracts.AIRFLOW_ROLES:
            raise ValueError(f"{prop}: group {group!r} maps to {role!r}; allowed: {allowed}")


def _check_https(url: object, prop: str, *, loopback_http: bool) -> str:
    if not isinstance(url, str) or Token.is_unresolved(url):
        if isinstance(url, str):
            return url
        raise ValueError(f"{prop}: got {url!r}; give an https:// URL")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if loopback_http and parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return url
    loopback = " (http:// only for localhost or 127.0.0.1)" if loopback_http else ""
    raise ValueError(f"{prop}: got {url!r}; allowed: an https:// URL{loopback}")


def _check_name(value: object, prop: str, pattern: re.Pattern[str], allowed: str) -> None:
    if not isinstance(value, str) or not pattern.match(value):
        raise ValueError(f"{prop}: got {value!r}; allowed: {allowed}")


@dataclass(frozen=True, kw_only=True)
class SignIn:
    """How people sign in to the Airflow UI (the `sign_in` prop). Build one with a factory:
    `SignIn.oidc(...)`, `SignIn.cognito()`, `SignIn.iam_identity_center(...)` or
    `SignIn.password()`.

    With the single sign-on methods, users are created at their first sign-in and get the
    Airflow role (Admin, Op, User, Viewer or Public, as on MWAA) their groups map to, synced at
    every sign-in; a sign-in whose token names no mapped group gets no access and is logged.
    The admin secret (`env.admin_secret`) keeps working as break-glass access.
    """

    method: str
    """One of `METHODS`."""
    provider: str = ""
    """FAB's provider name (OIDC and Cognito): the last segment of the callback URL."""
    label: str = ""
    """The sign-in button's text."""
    issuer: str = ""
    """The OpenID provider's issuer URL (OIDC)."""
    client_id: str = ""
    client_secret: secretsmanager.ISecret | None = None
    """The OAuth client's secret (OIDC); the Cognito app client's is created for you."""
    roles: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Group (Identity Center: group id) -> Airflow role."""
    groups_claim: str = ""
    username_claim: str = ""
    scopes: tuple[str, ...] = ()
    domain_prefix: str | None = None
    """The Cognito hosted UI's domain prefix (None: derived from the environment name)."""
    mfa: bool = True
    """Cognito: TOTP multi-factor authentication required."""
    saml_metadata_url: str = ""
    """IAM Identity Center's SAML metadata URL of the Airflow application."""

    @classmethod
    def oidc(
        cls,
        *,
        issuer: str,
        client_id: str,
        client_secret: secretsmanager.ISecret,
        roles: Mapping[str, str],
        groups_claim: str = "groups",
        username_claim: str = "email",
        scopes: Sequence[str] = DEFAULT_SCOPES,
        name: str = OIDC,
        label: str | None = None,
    ) -> SignIn:
        """Any OpenID Connect provider: Okta, Entra ID, Google, Keycloak...

        Register a web application (authorization code grant) whose redirect URI is
        `<env.url>/auth/oauth-authorized/<name>` (Airflow 2: `<env.url>/oauth-authorized/<name>`)
        and whose ID token carries the user's groups in `groups_claim`.

        :param issuer: The provider's issuer URL; its metadata is read from
            `<issuer>/.well-known/openid-configuration`. Must be https://; http:// is allowed
            only for localhost and 127.0.0.1, for tests against a provider on the same machine.
        :param client_id: The OAuth client id.
        :param client_secret: A Secrets Manager secret whose whole value is the client secret;
            the api-server's task execution role is granted read.
        :param roles: Group name -> Airflow role (Admin, Op, User, Viewer, Public), at least one.
        :param groups_claim: The ID token claim listing the user's groups. Default: `groups`.
        :param username_claim: The claim used as the Airflow username. Default: `email`.
        :param scopes: The scopes asked for; must include `openid`. Default: openid, email,
            profile.
        :param name: FAB's provider name: lowercase letters, digits, `_` and `-`.
            Default: `oidc`.
        :param label: The title of Airflow's sign-in page (FAB's button itself reads
            "Sign In with <name>"). Default: `name`.
        """
        _check_https(issuer, "sign_in.issuer", loopback_http=True)
        for prop, value in (
            ("sign_in.client_id", client_id),
            ("sign_in.groups_claim", groups_claim),
            ("sign_in.username_claim", username_claim),
        ):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{prop}: got {value!r}; give a non-empty string")
        if isinstance(client_secret, str) or not hasattr(client_secret, "secret_arn"):
            raise ValueError(
                f"sign_in.client_secret: got {type(client_secret).__name__}; give a "
                "secretsmanager.ISecret whose value is the client secret (never a string)"
            )
        _check_roles(roles, "sign_in.roles")
        scopes = tuple(scopes) if not isinstance(scopes, str) else (scopes,)
        if "openid" not in scopes or not all(isinstance(s, str) and s for s in scopes):
            raise ValueError(f"sign_in.scopes: got {scopes!r}; allowed: strings including 'openid'")
        _check_name(name, "sign_in.name", PROVIDER_NAME_PATTERN, "1-64 of a-z, 0-9, _ and -")
        return cls(
            method=OIDC,
            provider=name,
            label=label or name,
            issuer=issuer.rstrip("/"),
            client_id=client_id,
            client_secret=client_secret,
            roles=_frozen(roles),
            groups_claim=groups_claim,
            username_claim=username_claim,
            scopes=scopes,
        )

    @classmethod
    def cognito(
        cls,
        *,
        roles: Mapping[str, str] | None = None,
        domain_prefix: str | None = None,
        mfa: bool = True,
    ) -> SignIn:
        """An Amazon Cognito user pool of the environment (the default with HTTPS).

        The construct creates the pool (no self sign-up: an administrator adds users and
        puts them in groups), one group per mapped group, the hosted sign-in domain and an
        app client whose secret reaches the api-server only through Secrets Manager. The
        web access must serve HTTPS (`domain_name` with `hosted_zone` or with `certificate`):
        Cognito accepts only https:// callback URLs.

        :param roles: Group name -> Airflow role. Default: a group per role, named like it
            (Admin, Op, User, Viewer, Public).
        :param domain_prefix: The hosted UI's `<prefix>.auth.<region>.amazoncognito.com`:
            1-63 lowercase letters, digits and hyphens, not starting or ending with a
            hyphen, without `aws`, `amazon` or `cognito`; unique in the region. Default:
            the environment name's DNS label and the account id.
        :param mfa: Require a TOTP authenticator app at sign-in. Default: True.
        """
        if roles is None:
            roles = {role: role for role in contracts.AIRFLOW_ROLES}
        _check_roles(roles, "sign_in.roles")
        if domain_prefix is not None:
            _check_domain_prefix(domain_prefix)
        return cls(
            method=COGNITO,
            provider=COGNITO_PROVIDER,
            label="Amazon Cognito",
            roles=_frozen(roles),
            groups_claim=COGNITO_GROUPS_CLAIM,
            username_claim="email",
            scopes=DEFAULT_SCOPES,
            domain_prefix=domain_prefix,
            mfa=bool(mfa),
        )

    @classmethod
    def iam_identity_center(cls, *, saml_metadata_url: str, roles: Mapping[str, str]) -> SignIn:
        """AWS IAM Identity Center, through the amazon provider's AWS auth manager and an
        Amazon Verified Permissions policy store the construct creates (Airflow 3 only).

        Create a SAML application in IAM Identity Center whose ACS URL is
        `<env.url>/auth/login_callback` with the attributes `id` and `groups` (and
        optionally `email`), and add `apache-airflow-providers-amazon[python3-saml]` to
        requirements.txt. Each mapping becomes one Cedar policy granting the role's actions
        to the group: Viewer reads, User also runs DAGs, Op also edits connections, pools and
        variables, Admin may do everything; Public gets no policy (no access).

        :param saml_metadata_url: The application's IAM Identity Center SAML metadata URL
            (https://portal.sso.<region>.amazonaws.com/saml/metadata/...).
        :param roles: Identity Center group id -> Airflow role, at least one.
        """
        _check_https(saml_metadata_url, "sign_in.saml_metadata_url", loopback_http=False)
        _check_roles(roles, "sign_in.roles", GROUP_ID_PATTERN)
        return cls(
            method=IDENTITY_CENTER,
            saml_metadata_url=saml_metadata_url,
            roles=_frozen(roles),
        )

    @classmethod
    def password(cls) -> SignIn:
        """FAB's own user database: users and passwords managed in Airflow (Security > Users).
        No single sign-on; the default without HTTPS."""
        return cls(method=PASSWORD)

    @property
    def metadata_url(self) -> str:
        """The OpenID metadata URL of an OIDC provider."""
        return f"{self.issuer}/.well-known/openid-configuration"

    def settings(
        self,
        *,
        cognito_issuer: str | None = None,
        cognito_client_id: str | None = None,
        policy_store_id: str | None = None,
        region: str | None = None,
    ) -> dict[str, Any]:
        """The runtime's sign-in settings (`contracts.SIGN_IN_VARIABLE`), as a dict: what the
        construct knows only once it built the resources is passed in (the Cognito pool's
        issuer and client id; the policy store id and region)."""
        if self.method == PASSWORD:
            return {"method": PASSWORD}
        if self.method == IDENTITY_CENTER:
            if policy_store_id is None or region is None:
                raise ValueError("identity_center settings need policy_store_id and region")
            return {
                "method": IDENTITY_CENTER,
                "saml_metadata_url": self.saml_metadata_url,
                "policy_store_id": policy_store_id,
                "region": region,
            }
        if self.method == COGNITO:
            if cognito_issuer is None or cognito_client_id is None:
                raise ValueError("cognito settings need cognito_issuer and cognito_client_id")
            metadata_url = f"{cognito_issuer}/.well-known/openid-configuration"
            client_id = cognito_client_id
        else:
            metadata_url, client_id = self.metadata_url, self.client_id
        return {
            "method": OIDC,
            "provider": self.provider,
            "label": self.label,
            "metadata_url": metadata_url,
            "client_id": client_id,
            "scopes": list(self.scopes),
            "groups_claim": self.groups_claim,
            "username_claim": self.username_claim,
            "roles": dict(sorted(self.roles.items())),
        }


def _check_domain_prefix(prefix: object) -> None:
    if (
        not isinstance(prefix, str)
        or not DOMAIN_PREFIX_PATTERN.match(prefix)
        or any(word in prefix for word in COGNITO_RESERVED_WORDS)
    ):
        raise ValueError(
            f"sign_in.domain_prefix: got {prefix!r}; allowed: 1-63 lowercase letters, digits "
            "and hyphens, not starting or ending with a hyphen, without 'aws', 'amazon' or "
            "'cognito'"
        )


def default_domain_prefix(environment_name: str, account: str) -> str:
    """The Cognito domain prefix of an environment: its name's DNS label (at most 50
    characters; a hash instead when it holds a word Cognito reserves), `-` and the account."""
    label = dns_label(environment_name, 50)
    if any(word in label for word in COGNITO_RESERVED_WORDS):
        label = f"airflow-{short_hash(environment_name)}"
    return f"{label}-{account}"


def callback_path(airflow_version: str, provider: str) -> str:
    """FAB's OAuth callback route: Airflow 3 mounts the FAB app under `/auth`."""
    prefix = "" if is_airflow_2(airflow_version) else "/auth"
    return f"{prefix}/oauth-authorized/{provider}"


def has_https(*, certificate: object, domain_name: object, hosted_zone: object) -> bool:
    """Whether the web access serves HTTPS (the same rule as `web.WebAccess`)."""
    return certificate is not None or (domain_name is not None and hosted_zone is not None)


def resolve_sign_in(sign_in: SignIn | None, *, https: bool) -> SignIn:
    """The sign-in of `sign_in=None`: Cognito with HTTPS, else FAB's password sign-in."""
    if sign_in is not None:
        return sign_in
    return SignIn.cognito() if https else SignIn.password()


def check_sign_in(sign_in: object, *, https: bool, airflow_version: str) -> list[str]:
    """The problems of the `sign_in` prop in this environment (validation rule)."""
    if sign_in is None:
        return []
    if not isinstance(sign_in, SignIn) or sign_in.method not in METHODS:
        return [
            f"sign_in: got {type(sign_in).__name__}; give SignIn.oidc(...), SignIn.cognito(), "
            "SignIn.iam_identity_center(...) or SignIn.password()"
        ]
    if sign_in.method == COGNITO and not https:
        return [
            "sign_in: SignIn.cognito() needs HTTPS (Cognito accepts only https:// callback "
            "URLs): give domain_name with hosted_zone or with certificate"
        ]
    if sign_in.method == IDENTITY_CENTER and not https:
        return [
            "sign_in: SignIn.iam_identity_center() needs HTTPS (the browser sends the AWS auth "
            "manager's sign-in cookie back with Identity Center's cross-site POST only over "
            "HTTPS): give domain_name with hosted_zone or with certificate"
        ]
    if sign_in.method == IDENTITY_CENTER and is_airflow_2(airflow_version):
        return [
            f"sign_in: SignIn.iam_identity_center() needs Airflow 3 (the AWS auth manager); "
            f"got airflow_version {airflow_version!r}"
        ]
    return []


def cedar_policy(group_id: str, role: str) -> str | None:
    """The Cedar policy granting `role`'s actions to the Identity Center group; None for
    Public (no permission)."""
    actions = ROLE_ACTIONS[role]
    principal = f'principal in Airflow::Group::"{group_id}"'
    if actions is None:
        return f"permit ({principal}, action, resource);"
    if not actions:
        return None
    listed = ", ".join(f'Airflow::Action::"{a}"' for a in actions)
    return f"permit ({principal}, action in [{listed}], resource);"


AVP_ACTIONS = ("verifiedpermissions:IsAuthorized", "verifiedpermissions:BatchIsAuthorized")
AVP_SCHEMA_ACTIONS = ("verifiedpermissions:GetSchema", "verifiedpermissions:PutSchema")
"""What the AWS auth manager calls (its `avp/facade.py`): decisions per request, the schema
check at start, and the schema update its CLI makes (`update-avp-schema`)."""


class SignInResources(Construct):
    """What a `SignIn` needs in AWS, and what the api-server container gets from it.

    - Cognito: the user pool (no self sign-up, email sign-in, a strong password policy, TOTP
      MFA, kept on stack delete and protected from deletion), a group per mapped group, the
      hosted UI domain, an app client (authorization code grant, openid/email/profile,
      callback `<url>/auth/oauth-authorized/cognito`, Airflow 2 `<url>/oauth-authorized/cognito`)
      and a secret holding the client's secret (a `Fn::GetAtt`, never in the template).
    - OIDC: nothing; the client secret you gave is passed on.
    - IAM Identity Center: an Amazon Verified Permissions policy store and a policy per mapping;
      `task_role` may make decisions in it.
    - Password: nothing.

    `environment` and `secrets` are the api-server container's: the settings JSON and the
    client secret.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        sign_in: SignIn,
        environment_name: str,
        airflow_version: str,
        url: str,
        task_role: iam.IGrantable,
        kms_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.sign_in = sign_in
        self.user_pool: cognito.UserPool | None = None
        self.user_pool_client: cognito.UserPoolClient | None = None
        self.user_pool_domain: cognito.UserPoolDomain | None = None
        self.client_secret: secretsmanager.ISecret | None = sign_in.client_secret
        self.policy_store: avp.CfnPolicyStore | None = None
        settings: dict[str, Any]
        if sign_in.method == COGNITO:
            settings = self._cognito(environment_name, airflow_version, url, kms_key)
        elif sign_in.method == IDENTITY_CENTER:
            settings = self._identity_center(environment_name, task_role)
        else:
            settings = sign_in.settings()
        self.settings_json = json.dumps(settings, sort_keys=True, separators=(",", ":"))
        """The settings as the api-server gets them (compact, sorted: deterministic)."""

    @property
    def environment(self) -> dict[str, str]:
        """Plain variables of the api-server container."""
        return {contracts.SIGN_IN_VARIABLE: self.settings_json}

    @property
    def secrets(self) -> dict[str, ecs.Secret]:
        """ECS secrets of the api-server container (the OAuth client secret)."""
        if self.client_secret is None:
            return {}
        return {
            contracts.SIGN_IN_CLIENT_SECRET_VARIABLE: ecs.Secret.from_secrets_manager(
                self.client_secret
            )
        }

    def attach(self, container: ecs.ContainerDefinition) -> None:
        """Give `container` (the api-server's) the settings and the client secret."""
        for name, value in self.environment.items():
            container.add_environment(name, value)
        for name, secret in self.secrets.items():
            container.add_secret(name, secret)

    def _cognito(
        self, environment_name: str, airflow_version: str, url: str, kms_key: kms.IKey | None
    ) -> dict[str, Any]:
        sign_in = self.sign_in
        pool = cognito.UserPool(
            self,
            "UserPool",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            sign_in_case_sensitive=False,
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)
            ),
            password_policy=cognito.PasswordPolicy(
                min_length=MIN_PASSWORD_LENGTH,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
            ),
            mfa=cognito.Mfa.REQUIRED if sign_in.mfa else cognito.Mfa.OFF,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False) if sign_in.mfa else None,
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=cognito.FeaturePlan.ESSENTIALS,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(pool, [COGNITO_ADVANCED_SECURITY])
        if not sign_in.mfa:
            acknowledge(pool, [COGNITO_MFA_OFF])
        self.user_pool = pool
        for group in sorted(sign_in.roles):
            cognito.UserPoolGroup(
                self,
                f"Group-{group}",
                user_pool=pool,
                group_name=group,
                description=f"Airflow role {sign_in.roles[group]} in {environment_name}",
            )
        stack = Stack.of(self)
        prefix = sign_in.domain_prefix or default_domain_prefix(environment_name, stack.account)
        self.user_pool_domain = pool.add_domain(
            "Domain", cognito_domain=cognito.CognitoDomainOptions(domain_prefix=prefix)
        )
        callback = url + callback_path(airflow_version, sign_in.provider)
        self.user_pool_client = pool.add_client(
            "Client",
            generate_secret=True,
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[
                    cognito.OAuthScope.OPENID,
                    cognito.OAuthScope.EMAIL,
                    cognito.OAuthScope.PROFILE,
                ],
                callback_urls=[callback],
                logout_urls=[url],
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
        )
        cfn_client = self.user_pool_client.node.default_child
        assert isinstance(cfn_client, cognito.CfnUserPoolClient)
        self.client_secret = secretsmanager.Secret(
            self,
            "ClientSecret",
            description=f"Airflow environment {environment_name}: Cognito app client secret",
            encryption_key=kms_key,
            secret_string_value=SecretValue.resource_attribute(cfn_client.attr_client_secret),
        )
        if kms_key is None:
            acknowledge(self.client_secret, [SECRET_WITHOUT_CMK])
        acknowledge(self.client_secret, SIGN_IN_CLIENT_SECRET_ROTATION)
        issuer = f"https://cognito-idp.{stack.region}.amazonaws.com/{pool.user_pool_id}"
        return sign_in.settings(
            cognito_issuer=issuer, cognito_client_id=self.user_pool_client.user_pool_client_id
        )

    def _identity_center(self, environment_name: str, task_role: iam.IGrantable) -> dict[str, Any]:
        store = avp.CfnPolicyStore(
            self,
            "PolicyStore",
            description=f"Airflow environment {environment_name}: who may do what",
            validation_settings=avp.CfnPolicyStore.ValidationSettingsProperty(mode="OFF"),
            schema=avp.CfnPolicyStore.SchemaDefinitionProperty(cedar_json=AVP_SCHEMA),
        )
        self.policy_store = store
        for group, role in sorted(self.sign_in.roles.items()):
            statement = cedar_policy(group, role)
            if statement is None:
                continue
            avp.CfnPolicy(
                self,
                f"Policy-{short_hash(group)}",
                policy_store_id=store.attr_policy_store_id,
                definition=avp.CfnPolicy.PolicyDefinitionProperty(
                    static=avp.CfnPolicy.StaticPolicyDefinitionProperty(
                        statement=statement,
                        description=f"Airflow role {role} for group {group}",
                    )
                ),
            )
        iam.Grant.add_to_principal(
            grantee=task_role,
            actions=[*AVP_ACTIONS, *AVP_SCHEMA_ACTIONS],
            resource_arns=[store.attr_arn],
        )
        return self.sign_in.settings(
            policy_store_id=store.attr_policy_store_id, region=Stack.of(self).region
        )
