"""End to end: the OIDC sign-in's webserver_config.py loads in a real Airflow and its FAB provider.

For Airflow 3.3.2 (FAB provider 3.10.2) and 2.11.2 (FAB provider 1.5.4): the runtime zip is
built as the task definition carries it, the runtime's own sign-in step writes
``webserver_config.py``, and the pinned venv's Python, with the zip on ``PYTHONPATH`` as the
api-server has it, executes that file as FAB does (``flask.Config.from_pyfile``). That proves the
imports, the Flask/FAB keys, the security manager subclassing the provider's
``FabAirflowSecurityManagerOverride``, the client secret read from the environment, the
sign-in page's title, the option names in the provider's configuration, and the user info
from ID token claims (refused without the groups claim). Airflow is not started.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from openmwaa.runtime import config, startup_steps
from openmwaa.runtime_bundle import BUNDLE_PACKAGE, decode_bundle, runtime_bundle_b64
from tests.unit.test_runtime_sign_in import OIDC
from tools.airflow_venv import airflow_venv

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

CHECK = r"""
import json, logging, os, sys
import flask
from flask_appbuilder.const import AUTH_OAUTH
from airflow.configuration import conf
from airflow.providers.fab.auth_manager.security_manager.override import (
    FabAirflowSecurityManagerOverride as Base,
)

logging.basicConfig(level=logging.WARNING, stream=sys.stdout)
app = flask.Flask("check")
app.config.from_pyfile(os.environ["CONFIG_FILE"])
cls = app.config["SECURITY_MANAGER_CLASS"]
manager = cls.__new__(cls)
manager.appbuilder = type("AppBuilder", (), {"get_app": app})()
with app.app_context():
    claims = {"sub": "u1", "email": "ada@example.com", "groups": ["data-eng"]}
    info = manager.get_oauth_user_info("okta", {"userinfo": claims})
    refused = manager.get_oauth_user_info("okta", {"userinfo": {"sub": "u2", "email": "b@x"}})
section = os.environ["SECTION"]
print(json.dumps({
    "oauth": app.config["AUTH_TYPE"] == AUTH_OAUTH,
    "subclass": issubclass(cls, Base),
    "view": [Base.authoauthview.__name__, cls.authoauthview.__name__, cls.authoauthview.title,
             issubclass(cls.authoauthview, Base.authoauthview)],
    "secret": app.config["OAUTH_PROVIDERS"][0]["remote_app"]["client_secret"],
    "keys": sorted(k for k in app.config if k.startswith(("AUTH_", "OAUTH_"))),
    "options": {k: conf.get(section, k) for k in ("config_file", "enable_proxy_fix")},
    "info": info,
    "refused": refused,
}))
"""


@pytest.mark.parametrize(("version", "major"), [("3.3.2", 3), ("2.11.2", 2)])
def test_oidc_webserver_config_loads_in_the_fab_provider(
    version: str, major: int, tmp_path: Path
) -> None:
    zip_path = tmp_path / "runtime.pyz"
    zip_path.write_bytes(decode_bundle(runtime_bundle_b64()))
    home = tmp_path / "home"
    home.mkdir()
    env = startup_steps.configure_sign_in(
        OIDC, {"AIRFLOW_HOME": str(home)}, major, "python", str(zip_path), BUNDLE_PACKAGE
    )
    section = "fab" if major >= 3 else "webserver"
    python = airflow_venv(version) / "bin" / "python"
    run_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        **env,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/airflow.db",
        "CONFIG_FILE": env[config.env_name(f"{section}.config_file")],
        "SECTION": section,
        "OPENMWAA_SIGN_IN_CLIENT_SECRET": "client-s3cret",
    }

    out = subprocess.run(
        [str(python), "-c", CHECK], env=run_env, capture_output=True, text=True, timeout=600
    )

    assert out.returncode == 0, out.stderr[-3000:]
    stdout = out.stdout.strip().splitlines()
    result = json.loads(stdout[-1])
    assert result["oauth"] and result["subclass"]
    name = result["view"][0]
    assert result["view"] == [name, name, OIDC["label"], True]
    assert result["secret"] == "client-s3cret"
    assert {
        "AUTH_ROLES_MAPPING",
        "AUTH_ROLES_SYNC_AT_LOGIN",
        "AUTH_TYPE",
        "AUTH_USER_REGISTRATION",
        "AUTH_USER_REGISTRATION_ROLE",
        "OAUTH_PROVIDERS",
    } <= set(result["keys"])
    assert result["options"] == {
        "config_file": str(home / "webserver_config.py"),
        "enable_proxy_fix": "True",
    }
    assert result["info"] == {
        "username": "ada@example.com",
        "email": "ada@example.com",
        "first_name": "",
        "last_name": "",
        "role_keys": ["data-eng"],
    }
    assert result["refused"] == {}
    assert any("sign-in refused: u2 has no 'groups' claim" in line for line in stdout)
