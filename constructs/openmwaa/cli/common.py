"""What every ``openmwaa`` command shares."""

from __future__ import annotations

INSTALL_HINT = "pip install 'openmwaa[cli]'"
"""How to get the command's optional dependencies (boto3, ruff)."""


class UsageError(Exception):
    """A problem with the command line, an input or the machine: nothing was attempted, exit
    status 2 (argparse's convention)."""
