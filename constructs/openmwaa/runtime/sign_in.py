"""How people sign in to the UI: the api-server's Airflow configuration from ``OPENMWAA_SIGN_IN``.

The construct writes the sign-in settings as JSON (``SignIn.settings``); on the api-server
(Airflow 2: the webserver) the runtime turns them into Airflow's ``webserver_config.py`` and
the options that load it (:func:`sign_in_setup`):

- ``oidc``: FAB's OAuth sign-in (``AUTH_TYPE = AUTH_OAUTH``, an authlib client built from the
  provider's OpenID metadata). Users are created at their first sign-in; their role comes from
  their groups (``AUTH_ROLES_MAPPING``) and is synced at every sign-in. The security manager
  (:func:`security_manager_class`) reads the ID token's claims and refuses a sign-in whose
  token has no groups claim, or none of whose groups maps to a role, and logs it (the subject,
  never a token). The client secret stays in the ``OPENMWAA_SIGN_IN_CLIENT_SECRET`` variable,
  which the file reads when Airflow loads it: it is never written to disk.
- ``identity_center``: the amazon provider's AWS auth manager (IAM Identity Center over SAML,
  Amazon Verified Permissions), Airflow 3 only; it needs python3-saml, which the stock image
  lacks (:data:`SAML_REQUIREMENT`).
- ``password``, or no variable: FAB's own user database, as before; nothing is written.

The pure part imports nothing of Airflow; only :func:`security_manager_class`, which Airflow
calls from the generated file, does. Standard library only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from . import contracts
from .config import ConfigError

LOG = logging.getLogger("openmwaa.sign_in")

AWS_AUTH_MANAGER = "airflow.providers.amazon.aws.auth_manager.aws_auth_manager.AwsAuthManager"
"""``[core] auth_manager`` of the ``identity_center`` method."""
SAML_REQUIREMENT = "apache-airflow-providers-amazon[python3-saml]"
"""The requirements.txt line the ``identity_center`` method needs (python3-saml, xmlsec, lxml
at the versions the amazon provider asks for)."""
CONFIG_FILE = "webserver_config.py"
"""The file written in ``$AIRFLOW_HOME``."""
REGISTRATION_ROLE = "Public"
"""The role FAB adds at registration; Airflow's Public role has no permission, and without
one FAB warns at every sign-in. Access comes from the mapped groups only."""
METHODS: Mapping[str, str] = {
    "password": "",
    "oidc": "provider metadata_url client_id scopes groups_claim username_claim roles",
    "identity_center": "saml_metadata_url policy_store_id region",
}
"""Each method and the fields its settings need."""


def parse_sign_in(raw: str | None) -> dict[str, Any]:
    """The settings in ``OPENMWAA_SIGN_IN`` (``{"method": "password"}`` when unset), checked.

    Raises :class:`.config.ConfigError` naming the variable for invalid JSON, an unknown
    method, a missing field or a role Airflow does not have.
    """
    name = contracts.SIGN_IN_VARIABLE
    try:
        data = json.loads(raw or '{"method": "password"}')
    except ValueError:
        raise ConfigError(f"{name} is not valid JSON") from None
    if not isinstance(data, dict) or data.get("method") not in METHODS:
        raise ConfigError(f"{name}: method must be one of {', '.join(METHODS)}")
    missing = [f for f in METHODS[data["method"]].split() if not data.get(f)]
    if missing:
        raise ConfigError(f"{name} ({data['method']}) lacks {', '.join(missing)}")
    if not set(dict(data.get("roles", {})).values()) <= set(contracts.AIRFLOW_ROLES):
        raise ConfigError(f"{name}: roles must map groups to {contracts.AIRFLOW_ROLES}")
    return data


def sign_in_setup(
    settings: Mapping[str, Any], major: int, path: str, package: str
) -> tuple[dict[str, str], str | None]:
    """What the api-server needs for ``settings`` (:func:`parse_sign_in`) on Airflow
    ``major``: Airflow options (``section.key``) and the text of ``webserver_config.py`` at
    ``path`` (None: leave it alone), which imports this runtime as ``package``."""
    method = settings["method"]
    if method == "identity_center":
        if major < 3:
            raise ConfigError("the identity_center sign-in needs Airflow 3")
        options = {
            "core.auth_manager": AWS_AUTH_MANAGER,
            "aws_auth_manager.saml_metadata_url": settings["saml_metadata_url"],
            "aws_auth_manager.avp_policy_store_id": settings["policy_store_id"],
            "aws_auth_manager.region_name": settings["region"],
        }
        return options, None
    if method != "oidc":
        return {}, None
    # Redirect URIs are built from the request: trust the load balancer's X-Forwarded-*
    # (on Airflow 3 the FAB app behind uvicorn's proxy headers, whose rate limiter then sees
    # the address the load balancer appended, not one the client sent).
    section = "fab" if major >= 3 else "webserver"
    options = {f"{section}.config_file": path, f"{section}.enable_proxy_fix": "True"}
    return options, webserver_config(settings, package)


def webserver_config(settings: Mapping[str, Any], package: str) -> str:
    """The text of ``webserver_config.py`` for the ``oidc`` method (no secret in it)."""
    app = {
        "client_id": settings["client_id"],
        "server_metadata_url": settings["metadata_url"],
        "client_kwargs": {"scope": " ".join(settings["scopes"])},
    }
    provider = {"name": settings["provider"], "token_key": "access_token"}
    claims = {k: settings.get(k, "") for k in ("groups_claim", "username_claim", "label")}
    claims["reserved"] = settings.get("reserved", [])
    values = {
        "WTF_CSRF_TIME_LIMIT": None,
        "AUTH_USER_REGISTRATION": True,
        "AUTH_USER_REGISTRATION_ROLE": REGISTRATION_ROLE,
        "AUTH_ROLES_SYNC_AT_LOGIN": True,
        "AUTH_ROLES_MAPPING": {g: [r] for g, r in sorted(settings["roles"].items())},
        "OAUTH_PROVIDERS": [{**provider, "remote_app": app}],
    }
    return "\n".join(
        [
            f"# From {contracts.SIGN_IN_VARIABLE}",
            "import os",
            "from flask_appbuilder.const import AUTH_OAUTH",
            f"from {package}.sign_in import security_manager_class",
            "AUTH_TYPE = AUTH_OAUTH",
            *(f"{key} = {value!r}" for key, value in values.items()),
            "OAUTH_PROVIDERS[0]['remote_app']['client_secret'] = os.environ.get("
            f"{contracts.SIGN_IN_CLIENT_SECRET_VARIABLE!r}, '')",
            f"SECURITY_MANAGER_CLASS = security_manager_class({claims!r})\n",
        ]
    )


def oauth_user_info(claims: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """FAB's user info from the ID token's ``claims``: username (``username_claim``), email,
    names and ``role_keys`` (the groups). Empty, and so refused by FAB, when the token lacks
    the groups or the username claim, none of its groups is in ``settings["roles"]``, or the
    user name is a machine user's or in ``settings["reserved"]`` (the admin's: FAB would sign
    the person in as that user); logged with the subject only."""
    subject = claims.get("sub")
    for claim in (settings["groups_claim"], settings["username_claim"]):
        if claims.get(claim) is None:
            LOG.warning("sign-in refused: %s has no %r claim", subject, claim)
            return {}
    groups = claims[settings["groups_claim"]]
    groups = [groups] if isinstance(groups, str) else list(groups)
    if not set(settings["roles"]) & set(groups):
        LOG.warning("sign-in refused: %s: none of its groups %s maps to a role", subject, groups)
        return {}
    name = str(claims[settings["username_claim"]])
    if name.startswith(contracts.MACHINE_USER_PREFIX) or name in settings.get("reserved", ()):
        LOG.warning("sign-in refused: %s: the user name %r is reserved", subject, name)
        return {}
    return {
        "username": name,
        "email": claims.get("email", ""),
        "first_name": claims.get("given_name", ""),
        "last_name": claims.get("family_name", ""),
        "role_keys": groups,
    }


def security_manager_class(settings: Mapping[str, str]) -> type:
    """The FAB security manager of the ``oidc`` method (imports Airflow's FAB provider): user
    info from the ID token (authlib's ``userinfo``, else the userinfo endpoint) through
    :func:`oauth_user_info`, and ``settings["label"]`` as the sign-in page's title."""
    from airflow.providers.fab.auth_manager.security_manager.override import (
        FabAirflowSecurityManagerOverride as Base,
    )

    class OpenMWAASecurityManager(Base):  # type: ignore[misc]
        """FabAirflowSecurityManagerOverride with openmwaa's OIDC user info."""

        def get_oauth_user_info(self, provider: str, resp: dict[str, Any]) -> dict[str, Any]:
            claims = resp.get("userinfo") or self.oauth_remotes[provider].userinfo()
            return oauth_user_info(claims, {**settings, "roles": self.auth_roles_mapping})

    if settings.get("label"):
        # Same class name: FAB names the view's endpoints after it.
        view = Base.authoauthview
        view = type(view.__name__, (view,), {"title": settings["label"]})
        OpenMWAASecurityManager.authoauthview = view
    return OpenMWAASecurityManager
