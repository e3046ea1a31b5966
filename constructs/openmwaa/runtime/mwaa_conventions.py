"""What DAGs written for Amazon MWAA expect of their container, honoured here.

MWAA's variables (:func:`mwaa_variables`): the environment's name, the component, the
``aws_default`` connection; the names MWAA reserves, which ``startup.sh`` may not change
(:func:`is_reserved`); and the image's own ``$AIRFLOW_HOME/dags`` and ``/plugins`` as links
into the sync root (:func:`link_airflow_home`), beside the links under MWAA's AIRFLOW_HOME the
init container makes. docs/migration.md lists each convention and its source. Standard
library only: it runs inside the stock Airflow image.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from . import contracts

LOG = logging.getLogger("openmwaa.bootstrap")

MWAA_COMPONENTS: Mapping[str, str] = {
    contracts.SCHEDULER: "scheduler",
    contracts.DAG_PROCESSOR: "scheduler",
    contracts.TRIGGERER: "scheduler",
    contracts.API_SERVER: "webserver",
    contracts.EXECUTION_API: "webserver",
    contracts.WORKER: "worker",
}
"""``MWAA_AIRFLOW_COMPONENT`` of each component: MWAA's scheduler container also runs the
dag-processor and the triggerer, and its webserver container the Airflow 3 API servers."""

AWS_DEFAULT_CONNECTION = "aws://"
"""MWAA's ``aws_default``: the container's credentials (the task role) and region."""

RESERVED_VARIABLES = frozenset(
    {
        "AIRFLOW_ENV_ID",
        "AIRFLOW_ENV_NAME",
        "AIRFLOW_HOME",
        "AIRFLOW_TASK_REVISION_ID",
        "AIRFLOW_VERSION",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_DEFAULT_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_REGION",
        "CUSTOMER_ACCOUNT_ID",
        "ECS_AGENT_URI",
        "ECS_CONTAINER_METADATA_URI",
        "ECS_CONTAINER_METADATA_URI_V4",
        "JWT_PUBLIC_KEY",
        "MWAA_AIRFLOW_COMPONENT",
        "MWAA_COMMAND",
        "PYTHONPATH",
        "PYTHONUNBUFFERED",
        "SQL_ALCHEMY_CONN",
        "USE_NON_CRITICAL_LOGGING",
        "WATCHTOWER_VERSION",
    }
)
"""The names outside ``AIRFLOW__*`` that MWAA reserves (its User Guide's list and its image's
protected names), which a ``startup.sh`` export does not change; with them every ``MWAA__*``
and ``OPENMWAA_*`` name. ``AIRFLOW__*`` options are protected by :mod:`.config`."""

RESERVED_PREFIXES = ("MWAA__", "OPENMWAA_")


def is_reserved(name: str) -> bool:
    """True if ``startup.sh`` may not set or unset ``name`` (MWAA's reserved names)."""
    upper = name.upper()
    return upper in RESERVED_VARIABLES or upper.startswith(RESERVED_PREFIXES)


def mwaa_variables(env: Mapping[str, str], airflow_version: str) -> dict[str, str]:
    """The variables MWAA gives Airflow and DAG code: ``AIRFLOW_ENV_NAME``,
    ``MWAA_AIRFLOW_COMPONENT`` (and ``MWAA_COMMAND``, the same), and, unless already set,
    ``AIRFLOW_VERSION`` and ``AIRFLOW_CONN_AWS_DEFAULT`` (``startup.sh`` may replace it)."""
    result = {"AIRFLOW_ENV_NAME": env.get(contracts.ENVIRONMENT_NAME_VARIABLE, "")}
    component = MWAA_COMPONENTS.get(env.get(contracts.COMPONENT_VARIABLE, ""))
    if component:
        result["MWAA_AIRFLOW_COMPONENT"] = component
        result["MWAA_COMMAND"] = component
    defaults = {
        "AIRFLOW_VERSION": airflow_version,
        "AIRFLOW_CONN_AWS_DEFAULT": AWS_DEFAULT_CONNECTION,
    }
    result.update({name: value for name, value in defaults.items() if not env.get(name)})
    return result


def home_link_plan(path: str, target: str) -> str:
    """What to do with ``path`` for a link to ``target``: ``link`` (absent: make it),
    ``replace`` (an empty folder, as in the stock image: remove it, then link), ``done``
    (already that link) or ``keep`` (anything else: a custom image's files win)."""
    if os.path.islink(path):
        return "done" if os.readlink(path) == target else "keep"
    if not os.path.exists(path):
        return "link"
    if os.path.isdir(path) and not os.listdir(path):
        return "replace"
    return "keep"


def link_airflow_home(env: Mapping[str, str], sync_root: str) -> None:
    """Make ``$AIRFLOW_HOME/dags`` and ``$AIRFLOW_HOME/plugins`` (the stock image's
    ``/opt/airflow``) links into the sync root; a failure is logged, not fatal."""
    home = env.get("AIRFLOW_HOME")
    if not home:
        return
    for name, under_sync_root in contracts.AIRFLOW_HOME_LINKS:
        path = os.path.join(home, name)
        target = os.path.join(sync_root, under_sync_root)
        plan = home_link_plan(path, target)
        try:
            if plan == "replace":
                os.rmdir(path)
            if plan in ("link", "replace"):
                os.symlink(target, path)
        except OSError as error:
            LOG.warning("cannot link %s to %s: %s", path, target, error)
            continue
        if plan == "keep":
            LOG.warning(
                "%s is not empty: left as the image made it, not linked to %s", path, target
            )
