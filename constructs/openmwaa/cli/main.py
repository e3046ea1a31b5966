"""``openmwaa``: one entry point, one module per command.

Each command module has ``register(subparsers)``, which adds its parser and sets ``run``
(a function of the parsed arguments returning the exit code) as the parser's default.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import airflow_cli, api, cost, dag_check, from_mwaa, metadata_import, pause_resume, token

COMMANDS = (from_mwaa, dag_check, metadata_import, token, api, airflow_cli, cost, pause_resume)


def parser() -> argparse.ArgumentParser:
    """The ``openmwaa`` argument parser with every command."""
    root = argparse.ArgumentParser(
        prog="openmwaa", description="Tools for openmwaa environments and for leaving Amazon MWAA."
    )
    subparsers = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit code, 2 for a usage error (argparse's convention)."""
    args = parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
