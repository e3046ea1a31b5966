"""The FAB users the api-server makes at start: the admin (break-glass) and the machine users.

The admin comes from ``OPENMWAA_ADMIN_SECRET``. The machine users are one per role of
``contracts.AIRFLOW_ROLES``, ``openmwaa-iam-<role>`` with that role only, which the API access
Lambda signs in as; their passwords derive from the machine key (``OPENMWAA_MACHINE_KEY``, an
ECS secret on the api-server): :func:`machine_password`, the same function as the Lambda's
(``lambdas/api_access/core.py``; a test keeps them equal).

At each start, with the FAB auth manager, :func:`ensure_users` creates each user, or sets its
role and password where they differ. One Airflow process does all of them (:func:`apply_users`,
through the application builder Airflow's own ``airflow users`` commands use): one ``airflow
users`` command takes about 5 s to start, and create-then-reset for six users would delay every
start by most of a minute. The passwords reach it on stdin, never on its command line, and are
never logged. Standard library only (:func:`apply_users` imports Airflow, in the child).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import sys
import time
from collections.abc import Mapping

from . import contracts
from .config import AdminUser
from .supervisor import run

LOG = logging.getLogger("openmwaa.bootstrap")

USERS_TIMEOUT = 3 * 60
USERS_ATTEMPTS = 5


def machine_password(key: str, role: str) -> str:
    """The password of the machine user of ``role``: HMAC-SHA256 of
    ``MACHINE_PASSWORD_CONTEXT + role`` under ``key``, in hex."""
    message = (contracts.MACHINE_PASSWORD_CONTEXT + role).encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def fab_users(admin: AdminUser | None, key: str) -> list[tuple[str, str, str]]:
    """The users to make, ``(username, password, role)``: the admin of the secret, if any,
    and with a machine ``key`` the machine users."""
    users = [(admin.username, admin.password, contracts.AIRFLOW_ROLES[0])] if admin else []
    roles = contracts.AIRFLOW_ROLES if key else ()
    return users + [(contracts.machine_username(r), machine_password(key, r), r) for r in roles]


def users_command(python: str, package: str) -> list[str]:
    """The child process that runs :func:`apply_users` in Airflow's environment."""
    return [python, "-c", f"from {package}.machine_users import apply_users; apply_users()"]


def ensure_users(
    users: list[tuple[str, str, str]], env: Mapping[str, str], python: str, package: str
) -> bool:
    """Make ``users`` (:func:`fab_users`) in one Airflow process, retried: a second api-server
    may race us, or the auth tables may still be migrating. A failure is logged, not fatal
    (sign-in with them fails until a restart); returns whether it worked."""
    stdin = json.dumps(users)
    command = users_command(python, package)
    for attempt in range(1, USERS_ATTEMPTS + 1):
        code, out = run(command, env, USERS_TIMEOUT, stdin_text=stdin, capture=True)
        if code == 0:
            LOG.info("users ready: %s", out.strip().rpartition("\n")[2])
            return True
        for _, password, _ in users:
            out = out.replace(password, "***")
        LOG.warning("users attempt %d failed (exit %s): %s", attempt, code, out[-2000:])
        time.sleep(min(30, 5 * attempt))
    LOG.error("cannot make the users: their sign-in fails until a restart")
    return False


def apply_users() -> None:
    """In Airflow's process: read the users (JSON) from stdin; create each, or set its role
    (that role only) and its password where they differ. Prints one line naming the changes."""
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
    from werkzeug.security import check_password_hash

    changed = []
    users: list[list[str]] = json.load(sys.stdin)
    with get_application_builder() as appbuilder:
        sm = appbuilder.sm
        if any(sm.find_role(role) is None for *_, role in users):
            # Airflow 2 makes its roles when the webserver starts: as `airflow sync-perm`.
            appbuilder.add_permissions(update_perms=True)
            sm.sync_roles()
        for name, password, role_name in users:
            role, user = sm.find_role(role_name), sm.find_user(username=name)
            if user is None:
                # first name, last name (required), email (unique)
                ok = sm.add_user(name, name, "-", f"{name}@example.com", role, password)
            elif [r.name for r in user.roles] != [role_name] or not check_password_hash(
                user.password or "", password
            ):
                user.roles = [role]
                ok = sm.reset_password(user.id, password)  # saves the user, roles too
            else:
                continue
            if not ok:
                raise SystemExit(f"cannot make the user {name}")
            changed.append(name)
    print(f"users created or changed: {changed}")
