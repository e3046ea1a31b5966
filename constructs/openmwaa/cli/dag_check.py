"""``openmwaa dag-check``: will these DAGs run on Airflow 3?

Scans DAG and plugin folders with ruff's Airflow rules (the checker Airflow documents for the
upgrade: ``ruff check --select AIR3 --preview``) plus openmwaa's own checks for what ruff does
not see (Jinja templates, context keys in ``PythonOperator`` callables, metadata database
access, ...), and sorts every finding into *breaking* and *advisory*
(:mod:`openmwaa.cli.dag_scan` has the rules).

ruff runs with ``--isolated`` and ``--ignore-noqa``: neither the project's ruff configuration
(``exclude``, ``per-file-ignores``) nor ``# noqa`` comments can hide an Airflow 3 breakage. No
Python ``--target-version`` is given: the Airflow rules do not depend on it, and without one ruff
accepts the newest syntax instead of reporting it as an error.

Exit status: 0 when nothing breaks, 1 when any finding is breaking, 2 for a usage error (a path
that does not exist, ruff missing or failing).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from . import dag_scan
from .common import INSTALL_HINT, UsageError

TARGET_VERSIONS = ("3",)
"""Airflow major versions ``--target-version`` accepts."""


_SKIPPED_DIRECTORIES = frozenset(
    {
        # ruff's default `exclude`, so that both scans read the same folders
        *(".bzr", ".direnv", ".eggs", ".git", ".git-rewrite", ".hg", ".ipynb_checkpoints"),
        *(".mypy_cache", ".nox", ".pants.d", ".pyenv", ".pytest_cache", ".pytype"),
        *(".ruff_cache", ".svn", ".tox", ".venv", ".vscode", "__pypackages__", "_build"),
        *("buck-out", "dist", "node_modules", "site-packages", "venv"),
        "__pycache__",
    }
)
_RUFF_SUFFIXES = (".py", ".pyi")


def register(subparsers: Any) -> None:
    """Add ``dag-check`` to the ``openmwaa`` parser."""
    parser = subparsers.add_parser(
        "dag-check",
        help="find what breaks in your DAGs on Airflow 3",
        description=(
            "Scan DAG and plugin folders for Airflow 3 breakages with ruff's Airflow rules "
            "and openmwaa's own checks. Exit status: 0 nothing breaks, 1 something breaks, "
            "2 usage error."
        ),
    )
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a DAG folder, a plugins folder or a single file; give several to scan them all",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text (default): a report grouped by file; json: one machine-readable document",
    )
    parser.add_argument(
        "--target-version",
        choices=TARGET_VERSIONS,
        default="3",
        help="the Airflow major version to check against (default: 3, the only one so far)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``dag-check`` for parsed arguments; the exit status."""
    return check(args.paths, output_format=args.format, target_version=args.target_version)


def check(
    paths: Sequence[str],
    *,
    output_format: str = "text",
    target_version: str = "3",
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Scan ``paths``, print the report to ``out``; the exit status (0, 1 or 2)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        roots = _existing(paths)
        ruff = find_ruff()
        if ruff is None:
            raise UsageError(
                f"ruff not found next to {sys.executable} or on PATH; "
                f"dag-check needs it: {INSTALL_HINT}"
            )
        version = ruff_version(ruff)
        diagnostics = run_ruff(ruff, roots, err)
    except UsageError as error:
        print(f"openmwaa dag-check: error: {error}", file=err)
        return 2
    files = sorted(set(_files(roots)))
    own = [finding for file in files for finding in _scan_file(file, err)]
    report = dag_scan.Report.build(
        dag_scan.findings_from_ruff(diagnostics),
        own,
        files_scanned=len(files),
        ruff_version=version,
        target_version=target_version,
    )
    display = {f.path: _display(f.path) for f in report.findings}
    if output_format == "json":
        print(dag_scan.render_json(report, display), file=out)
    else:
        print(dag_scan.render_text(report, display), end="", file=out)
    return report.exit_code


def _scan_file(file: Path, err: TextIO) -> list[dag_scan.Finding]:
    try:
        text = file.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        print(f"openmwaa dag-check: warning: cannot read {file}: {error}", file=err)
        return []
    return dag_scan.scan_text(str(file), text)


def find_ruff() -> str | None:
    """The ruff executable installed with this Python (the ``cli`` extra), else ruff on PATH."""
    name = "ruff.exe" if os.name == "nt" else "ruff"
    schemes = [sysconfig.get_path("scripts")]
    user_scheme = f"{os.name}_user"
    if user_scheme in sysconfig.get_scheme_names():
        schemes.append(sysconfig.get_path("scripts", scheme=user_scheme))
    for directory in schemes:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("ruff")


def ruff_version(ruff: str) -> str:
    """``0.17.6`` from ``ruff --version``."""
    result = _ruff([ruff, "--version"])
    return result.stdout.split()[-1] if result.stdout.split() else "unknown"


def run_ruff(ruff: str, roots: Sequence[Path], err: TextIO) -> list[dict[str, Any]]:
    """ruff's Airflow diagnostics for ``roots``, as parsed JSON."""
    targets = [str(p) for p in roots if p.is_dir() or p.suffix in _RUFF_SUFFIXES]
    if not targets:  # ruff with no path would check the working directory
        return []
    command = [
        ruff,
        "check",
        *dag_scan.RUFF_SELECTION,
        "--isolated",
        "--ignore-noqa",
        "--no-cache",
        "--no-fix",
        "--exit-zero",
        "--output-format",
        "json",
        "--",
        *targets,
    ]
    result = _ruff(command)
    if result.stderr.strip():
        print(result.stderr.rstrip(), file=err)
    try:
        diagnostics = json.loads(result.stdout)
    except json.JSONDecodeError as error:
        raise UsageError(
            f"could not read ruff's output ({error}): {result.stdout[:200]!r}"
        ) from None
    if not isinstance(diagnostics, list):
        raise UsageError(f"unexpected ruff output: {result.stdout[:200]!r}")
    return diagnostics


def _ruff(command: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:
        raise UsageError(f"could not run {command[0]}: {error}") from None
    if result.returncode != 0:
        raise UsageError(
            f"{' '.join(command[:2])} failed with exit status {result.returncode}:\n"
            + (result.stderr.strip() or result.stdout.strip())
        )
    return result


def _existing(paths: Sequence[str]) -> list[Path]:
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise UsageError("no such file or directory: " + ", ".join(missing))
    archives = [p for p in paths if Path(p).is_file() and p.endswith(".zip")]
    if archives:
        raise UsageError(
            "cannot scan a zip archive, unzip it and pass the folder: " + ", ".join(archives)
        )
    return [Path(p).resolve() for p in paths]


def _files(roots: Sequence[Path]) -> Iterator[Path]:
    """The files openmwaa's own checks read under ``roots``, skipping the folders ruff skips."""
    for root in roots:
        if root.is_file():
            if dag_scan.is_scanned_file(root.name):
                yield root
            continue
        for directory, subdirectories, names in os.walk(root):
            subdirectories[:] = sorted(d for d in subdirectories if d not in _SKIPPED_DIRECTORIES)
            for name in names:
                if dag_scan.is_scanned_file(name):
                    yield Path(directory, name)


def _display(path: str) -> str:
    """A path relative to the working directory when it is under it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path
