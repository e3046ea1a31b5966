"""The runtime's sign-in (openmwaa.runtime.sign_in) and FAB users (openmwaa.runtime.machine_users).

Pure functions, and the users step against a fake Python; that the generated
``webserver_config.py`` loads in a real Airflow is tests/e2e/test_sign_in_config_venv.py.
"""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path
from typing import Any

import pytest

from openmwaa.runtime import contracts, machine_users, sign_in
from openmwaa.runtime.config import AdminUser, ConfigError

OIDC: dict[str, Any] = {
    "method": "oidc",
    "provider": "okta",
    "label": "Sign in with Example SSO",
    "metadata_url": "https://idp.example.com/.well-known/openid-configuration",
    "client_id": "client-1",
    "scopes": ["openid", "email", "profile"],
    "groups_claim": "groups",
    "username_claim": "email",
    "roles": {"data-eng": "Op", "readers": "Viewer"},
}
IDENTITY_CENTER: dict[str, Any] = {
    "method": "identity_center",
    "saml_metadata_url": "https://portal.sso.eu-west-1.amazonaws.com/saml/metadata/x",
    "policy_store_id": "ps-1",
    "region": "eu-west-1",
}
PATH = "/opt/airflow/webserver_config.py"
CLAIMS = {
    "sub": "00u1",
    "email": "ada@example.com",
    "given_name": "Ada",
    "family_name": "Lovelace",
    "groups": ["data-eng", "other"],
}
SETTINGS = {"groups_claim": "groups", "username_claim": "email", "roles": {"data-eng": ["Op"]}}


def config_namespace(settings: dict[str, Any], secret: str = "") -> dict[str, Any]:
    """Execute a generated webserver_config.py with fake imports; return its names."""
    _, text = sign_in.sign_in_setup(settings, 3, PATH, "openmwaa.runtime")
    assert text is not None
    text = text.replace("from flask_appbuilder.const import AUTH_OAUTH", "AUTH_OAUTH = 4")
    text = text.replace(
        "from openmwaa.runtime.sign_in import security_manager_class",
        "security_manager_class = dict",
    )
    namespace: dict[str, Any] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(contracts.SIGN_IN_CLIENT_SECRET_VARIABLE, secret)
        exec(compile(text, PATH, "exec"), namespace)
    return namespace


def test_parse_sign_in_is_password_when_unset() -> None:
    assert sign_in.parse_sign_in(None) == {"method": "password"}
    assert sign_in.parse_sign_in("") == {"method": "password"}


@pytest.mark.parametrize("settings", [OIDC, IDENTITY_CENTER, {"method": "password"}])
def test_parse_sign_in_accepts_each_method(settings: dict[str, Any]) -> None:
    assert sign_in.parse_sign_in(json.dumps(settings)) == settings


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{oops", "OPENMWAA_SIGN_IN is not valid JSON"),
        ("[]", "OPENMWAA_SIGN_IN: method must be one of password, oidc, identity_center"),
        ('{"method": "saml"}', "OPENMWAA_SIGN_IN: method must be one of"),
        (json.dumps({**OIDC, "client_id": ""}), r"OPENMWAA_SIGN_IN \(oidc\) lacks client_id"),
        (
            json.dumps({"method": "identity_center"}),
            r"lacks saml_metadata_url, policy_store_id, region",
        ),
        (json.dumps({**OIDC, "roles": {"g": "Owner"}}), "roles must map groups to"),
    ],
)
def test_fails_when_the_sign_in_settings_are_invalid(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        sign_in.parse_sign_in(raw)


def test_password_sign_in_changes_nothing() -> None:
    for major in (2, 3):
        assert sign_in.sign_in_setup({"method": "password"}, major, PATH, "p") == ({}, None)


def test_oidc_options_of_airflow_3_load_the_file_in_the_fab_section() -> None:
    options, text = sign_in.sign_in_setup(OIDC, 3, PATH, "openmwaa_runtime")

    assert options == {"fab.config_file": PATH, "fab.enable_proxy_fix": "True"}
    assert text is not None
    assert "from openmwaa_runtime.sign_in import security_manager_class" in text


def test_oidc_options_of_airflow_2_load_the_file_in_the_webserver_section() -> None:
    options, _ = sign_in.sign_in_setup(OIDC, 2, PATH, "openmwaa_runtime")

    assert options == {"webserver.config_file": PATH, "webserver.enable_proxy_fix": "True"}


def test_webserver_config_compiles_and_sets_fabs_oauth_keys() -> None:
    names = config_namespace(OIDC, secret="client-s3cret")

    assert names["AUTH_TYPE"] == 4
    assert names["AUTH_USER_REGISTRATION"] is True
    assert names["AUTH_USER_REGISTRATION_ROLE"] == "Public"
    assert names["AUTH_ROLES_SYNC_AT_LOGIN"] is True
    assert names["AUTH_ROLES_MAPPING"] == {"data-eng": ["Op"], "readers": ["Viewer"]}
    assert names["OAUTH_PROVIDERS"] == [
        {
            "name": "okta",
            "token_key": "access_token",
            "remote_app": {
                "client_id": "client-1",
                "client_secret": "client-s3cret",
                "server_metadata_url": OIDC["metadata_url"],
                "client_kwargs": {"scope": "openid email profile"},
            },
        }
    ]
    assert names["SECURITY_MANAGER_CLASS"] == {
        "groups_claim": "groups",
        "username_claim": "email",
        "label": "Sign in with Example SSO",
        "reserved": [],
    }


def test_webserver_config_holds_no_client_secret() -> None:
    _, text = sign_in.sign_in_setup(OIDC, 3, PATH, "p")

    assert text is not None
    assert "os.environ.get('OPENMWAA_SIGN_IN_CLIENT_SECRET', '')" in text
    assert "client_secret'] = os.environ.get(" in text
    assert "'client_secret': '" not in text


def test_identity_center_runs_the_aws_auth_manager() -> None:
    options, text = sign_in.sign_in_setup(IDENTITY_CENTER, 3, PATH, "p")

    assert text is None
    assert options == {
        "core.auth_manager": (
            "airflow.providers.amazon.aws.auth_manager.aws_auth_manager.AwsAuthManager"
        ),
        "aws_auth_manager.saml_metadata_url": IDENTITY_CENTER["saml_metadata_url"],
        "aws_auth_manager.avp_policy_store_id": "ps-1",
        "aws_auth_manager.region_name": "eu-west-1",
    }


def test_fails_when_identity_center_runs_on_airflow_2() -> None:
    with pytest.raises(ConfigError, match="identity_center sign-in needs Airflow 3"):
        sign_in.sign_in_setup(IDENTITY_CENTER, 2, PATH, "p")


def test_generated_options_are_protected_from_user_overrides() -> None:
    from openmwaa.runtime.config import is_protected_option

    assert is_protected_option("AIRFLOW__FAB__CONFIG_FILE")
    assert is_protected_option("webserver.config_file")


def test_oauth_user_info_from_the_id_token_claims() -> None:
    assert sign_in.oauth_user_info(CLAIMS, SETTINGS) == {
        "username": "ada@example.com",
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "role_keys": ["data-eng", "other"],
    }


def test_oauth_user_info_takes_a_single_group_given_as_a_string() -> None:
    info = sign_in.oauth_user_info({**CLAIMS, "groups": "data-eng"}, SETTINGS)

    assert info["role_keys"] == ["data-eng"]


def test_sign_in_without_the_groups_claim_is_refused_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    claims = {k: v for k, v in CLAIMS.items() if k != "groups"}

    assert sign_in.oauth_user_info(claims, SETTINGS) == {}
    assert "sign-in refused: 00u1 has no 'groups' claim" in caplog.text


def test_sign_in_whose_groups_map_to_no_role_is_refused_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    claims = {**CLAIMS, "groups": ["other"], "access_token": "tok-123"}

    assert sign_in.oauth_user_info(claims, SETTINGS) == {}
    assert "sign-in refused: 00u1: none of its groups ['other'] maps to a role" in caplog.text
    assert "tok-123" not in caplog.text


def test_sign_in_without_the_username_claim_is_refused() -> None:
    claims = {k: v for k, v in CLAIMS.items() if k != "email"}

    assert sign_in.oauth_user_info(claims, SETTINGS) == {}


def test_security_manager_reads_the_id_token_then_the_userinfo_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a stand-in for the FAB provider's base class (the real one: the venv e2e test)."""
    import sys
    import types

    class FakeView:
        title = "Sign In"

    class FakeBase:
        authoauthview = FakeView
        auth_roles_mapping = {"data-eng": ["Op"]}

        def __init__(self) -> None:
            remote = types.SimpleNamespace(userinfo=lambda: {**CLAIMS, "sub": "from-endpoint"})
            self.oauth_remotes = {"okta": remote}

    module = types.ModuleType("override")
    module.FabAirflowSecurityManagerOverride = FakeBase  # type: ignore[attr-defined]
    monkeypatch.setitem(
        sys.modules, "airflow.providers.fab.auth_manager.security_manager.override", module
    )
    for name in ("airflow", "airflow.providers", "airflow.providers.fab"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    settings = {"groups_claim": "groups", "username_claim": "sub", "label": "Example SSO"}

    manager = sign_in.security_manager_class(settings)()

    assert issubclass(type(manager), FakeBase)
    assert manager.get_oauth_user_info("okta", {"userinfo": CLAIMS})["username"] == "00u1"
    assert manager.get_oauth_user_info("okta", {})["username"] == "from-endpoint"
    assert manager.authoauthview.title == "Example SSO"
    assert manager.authoauthview.__name__ == "FakeView"
    assert FakeView.title == "Sign In"


@pytest.mark.parametrize(
    ("key", "role", "expected"),
    [
        ("k" * 32, "Op", "3e71df998945b69181e7f42f3aadb96f370dab66f49772a570b63278ed58ee2c"),
        (
            "correct horse battery staple",
            "Admin",
            "e21bb46ceb0a2af7736fb036b86f316860baee6098c920eda137aeee0c7efd82",
        ),
    ],
)
def test_machine_password_vectors(key: str, role: str, expected: str) -> None:
    """HMAC-SHA256 of "openmwaa-machine-user/<role>"; checked with `openssl dgst -hmac`."""
    assert machine_users.machine_password(key, role) == expected


def test_machine_passwords_differ_per_role_and_key() -> None:
    passwords = {machine_users.machine_password(k, r) for k in "ab" for r in ("Op", "User")}

    assert len(passwords) == 4


def test_fab_users_are_the_admin_then_one_machine_user_per_role() -> None:
    users = machine_users.fab_users(AdminUser("admin", "pw"), "key")

    assert users[0] == ("admin", "pw", "Admin")
    assert [(u, r) for u, _, r in users[1:]] == [
        ("openmwaa-iam-admin", "Admin"),
        ("openmwaa-iam-op", "Op"),
        ("openmwaa-iam-user", "User"),
        ("openmwaa-iam-viewer", "Viewer"),
        ("openmwaa-iam-public", "Public"),
    ]
    assert users[2][1] == machine_users.machine_password("key", "Op")


def test_fab_users_without_a_machine_key_are_the_admin_only() -> None:
    assert machine_users.fab_users(AdminUser("a", "p"), "") == [("a", "p", "Admin")]
    assert machine_users.fab_users(None, "") == []


def test_ensure_users_passes_the_passwords_on_stdin_only(tmp_path: Path) -> None:
    record = tmp_path / "record"
    python = tmp_path / "python"
    python.write_text(f'#!/bin/bash\necho "$*" > {record}.argv\ncat > {record}.stdin\necho done\n')
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    users = machine_users.fab_users(AdminUser("admin", "pw"), "key")

    assert machine_users.ensure_users(users, {}, str(python), "pkg")

    argv = Path(f"{record}.argv").read_text()
    assert argv == "-c from pkg.machine_users import apply_users; apply_users()\n"
    assert json.loads(Path(f"{record}.stdin").read_text()) == [list(u) for u in users]


def test_ensure_users_logs_no_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    python = tmp_path / "python"
    python.write_text("#!/bin/bash\ncat\necho 'users created or changed: [x]'\nexit 2\n")
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(machine_users.time, "sleep", lambda _s: None)
    caplog.set_level(logging.INFO)

    assert not machine_users.ensure_users([("a", "pw-123", "Op")], {}, str(python), "pkg")

    assert "users attempt 5 failed (exit 2)" in caplog.text
    assert '[["a", "***", "Op"]]' in caplog.text
    assert "pw-123" not in caplog.text


@pytest.mark.parametrize("name", ["openmwaa-iam-admin", "openmwaa-iam-op", "admin"])
def test_a_sign_in_named_like_the_admin_or_a_machine_user_is_refused(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = {**SETTINGS, "reserved": ["admin"]}

    assert sign_in.oauth_user_info({**CLAIMS, "email": name}, settings) == {}
    assert f"sign-in refused: 00u1: the user name {name!r} is reserved" in caplog.text
    assert sign_in.oauth_user_info(CLAIMS, settings)["username"] == "ada@example.com"
