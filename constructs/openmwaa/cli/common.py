"""What every ``openmwaa`` command shares."""

from __future__ import annotations

from typing import Any

INSTALL_HINT = "pip install 'openmwaa[cli]'"
"""How to get the command's optional dependencies (boto3, ruff)."""


class UsageError(Exception):
    """A problem with the command line, an input or the machine: nothing was attempted, exit
    status 2 (argparse's convention)."""


def read_parameter(
    ssm: Any,
    name: str,
    *,
    error: type[Exception],
    missing: str,
    denied: str,
) -> str:
    """The value of SSM parameter ``name`` read with ``ssm`` (a boto3 SSM client); a failure
    raises ``error`` with one line: ``missing`` when there is no such parameter, ``denied``
    when the caller may not read it, otherwise the call and its error code."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        found = ssm.get_parameter(Name=name)
    except ClientError as failure:
        code = failure.response.get("Error", {}).get("Code", "")
        if code == "ParameterNotFound":
            raise error(missing) from None
        if code in ("AccessDeniedException", "AccessDenied"):
            raise error(denied) from None
        raise error(f"ssm:GetParameter {name} failed: {code or failure}") from None
    except BotoCoreError as failure:
        raise error(f"ssm:GetParameter {name} failed: {failure}") from None
    value: str = found["Parameter"]["Value"]
    return value
