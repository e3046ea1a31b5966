"""The container runtime (:mod:`openmwaa.runtime`) as a zip application in an ECS environment file.

No custom image: every task runs the stock ``apache/airflow`` image. Its init container gets
the runtime in the variable ``OPENMWAA_RUNTIME`` (:func:`runtime_bundle_b64`) from an
environment file, an S3 object ECS reads as the task's execution role before it starts the
container (:func:`environment_file`, published as a CDK file asset named by its hash), and
decodes it into a task volume (:func:`decode_bundle`, with the image's Python); the Airflow
containers run it with the image's Python behind :data:`RUNTIME_ENTRY_POINT` (see
``task_definitions.py``). Not in the task definition itself: ECS holds at most 64 KiB per task
definition, and mw1.micro's single task definition has six Airflow containers to fit.

The zip holds the runtime's ``.py`` files as the package ``openmwaa_runtime`` and a top-level
``__main__.py`` calling its bootstrap. Docstrings, comments and blank lines are left out, the
members are stored and the whole zip is compressed with xz, to keep it small: the environment
file's line must stay under the 64 KiB that ECS's and Docker's env-file readers take
(:data:`ENVIRONMENT_FILE_LINE_LIMIT`), and one xz stream over every module is about 25 %
smaller than the zip's own per-member deflate. It is deterministic (sorted entries, fixed
timestamps and permissions, line-based stripping), so synthesis is too, and read from the
installed package, so it works from a wheel.
"""

from __future__ import annotations

import ast
import atexit
import base64
import functools
import hashlib
import importlib.resources
import io
import lzma
import shutil
import tempfile
import zipfile
from pathlib import Path

RUNTIME_ENV_VAR = "OPENMWAA_RUNTIME"
"""The environment variable carrying the base64 zip."""

ENVIRONMENT_FILE_LINE_LIMIT = 64 * 1024 - 1
"""The longest line, without its newline, an ECS environment file may hold: the ECS agent and
Docker read env files with Go's ``bufio.Scanner``, whose token (line and newline) is at most
64 KiB; a longer line fails the task's start."""

RUNTIME_ENTRY_POINT: list[str] = ["/usr/bin/dumb-init", "--"]
"""The container entry point: the image's init (signal forwarding, zombie reaping) without
the image's ``/entrypoint`` script, which would run ``airflow db check`` before the runtime
configured the database and would turn ``/bin/bash`` into an Airflow subcommand."""

BUNDLE_PACKAGE = "openmwaa_runtime"
"""The runtime's package name inside the zip."""

_SOURCE_PACKAGE = "openmwaa.runtime"
_MAIN = f"from {BUNDLE_PACKAGE}.bootstrap import main\n\nraise SystemExit(main())\n"
_TIMESTAMP = (1980, 1, 1, 0, 0, 0)


def runtime_sources() -> dict[str, bytes]:
    """The runtime's ``.py`` files (name -> content) from the installed package."""
    root = importlib.resources.files(_SOURCE_PACKAGE)
    return {
        entry.name: entry.read_bytes()
        for entry in root.iterdir()
        if entry.is_file() and entry.name.endswith(".py")
    }


def strip_source(source: bytes) -> bytes:
    """``source`` without docstrings, comment-only lines and blank lines.

    Works on whole lines located with :mod:`ast` (never re-generates code), so the result does
    not depend on the Python version building it. A docstring that is a body's only statement
    becomes ``pass``; lines inside multi-line string literals are kept as they are.
    """
    tree = ast.parse(source)
    lines = source.decode("utf-8").splitlines()
    keep_verbatim: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant | ast.JoinedStr) and node.end_lineno:
            keep_verbatim.update(range(node.lineno + 1, node.end_lineno + 1))
    replaced: dict[int, str | None] = {}
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        for index, statement in enumerate(body):
            if not _is_bare_string(statement, lines):
                continue
            first, last = statement.lineno, statement.end_lineno or statement.lineno
            only = len(body) == 1 and index == 0
            indent = lines[first - 1][: statement.col_offset]
            replaced[first] = f"{indent}pass" if only else None
            for number in range(first + 1, last + 1):
                replaced[number] = None
                keep_verbatim.discard(number)
    out: list[str] = []
    for number, line in enumerate(lines, start=1):
        if number in replaced:
            value = replaced[number]
            if value is not None:
                out.append(value)
        elif number in keep_verbatim or (line.strip() and not line.lstrip().startswith("#")):
            out.append(line)
    return ("\n".join(out) + "\n").encode("utf-8")


def _is_bare_string(statement: ast.stmt, lines: list[str]) -> bool:
    """A string-literal statement (docstring) standing alone on its lines."""
    if not (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
        and statement.end_lineno is not None
        and statement.end_col_offset is not None
    ):
        return False
    first_line = lines[statement.lineno - 1]
    last_line = lines[statement.end_lineno - 1]
    return (
        not first_line[: statement.col_offset].strip()
        and not last_line[statement.end_col_offset :].strip()
    )


def build_bundle(sources: dict[str, bytes]) -> bytes:
    """The zip application of ``sources`` (stripped, sorted, fixed timestamps, stored)."""
    members = {f"{BUNDLE_PACKAGE}/{name}": strip_source(data) for name, data in sources.items()}
    members["__main__.py"] = _MAIN.encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=_TIMESTAMP)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            archive.writestr(info, members[name])
    return buffer.getvalue()


_CHECKS = (lzma.CHECK_CRC64, lzma.CHECK_CRC32, lzma.CHECK_NONE)
"""xz integrity checks of 8, 4 and 0 bytes: one of them makes the stream's length a multiple
of 3 (the zip's members keep their own CRC-32)."""


@functools.cache
def runtime_bundle_b64() -> str:
    """The value of ``OPENMWAA_RUNTIME``: base64 of the xz-compressed zip application, with no
    ``=`` padding.

    The ECS agent's env-file reader splits a line at every ``=`` and keeps the value up to the
    second one, so the value holds none: the xz check is picked so the stream's length is a
    multiple of 3, which base64 encodes without padding.
    """
    bundle = build_bundle(runtime_sources())
    for check in _CHECKS:
        packed = lzma.compress(bundle, format=lzma.FORMAT_XZ, check=check, preset=9)
        if len(packed) % 3 == 0:
            break
    return base64.b64encode(packed).decode("ascii")


@functools.cache
def environment_file_content() -> str:
    """The environment file: the line ``OPENMWAA_RUNTIME=<base64>``.

    Raises ValueError if the line is longer than :data:`ENVIRONMENT_FILE_LINE_LIMIT`, so a
    runtime that grew too much fails synthesis rather than every task's start."""
    line = f"{RUNTIME_ENV_VAR}={runtime_bundle_b64()}"
    if len(line) > ENVIRONMENT_FILE_LINE_LIMIT:
        raise ValueError(
            f"the runtime bundle's environment file line is {len(line)} characters; ECS takes "
            f"at most {ENVIRONMENT_FILE_LINE_LIMIT}"
        )
    return line + "\n"


def environment_file_sha256() -> str:
    """The SHA-256 (hex) of :func:`environment_file_content`: the asset's custom hash."""
    return hashlib.sha256(environment_file_content().encode("ascii")).hexdigest()


@functools.cache
def _staging_directory() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="openmwaa-runtime-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory


def environment_file() -> Path:
    """:func:`environment_file_content` as ``runtime.env`` (ECS wants the ``.env`` extension)
    in a temporary directory of this process, written once and removed at exit: the source the
    CDK asset stages into the cloud assembly."""
    path = _staging_directory() / "runtime.env"
    if not path.is_file():
        path.write_text(environment_file_content(), encoding="ascii")
    return path


def decode_bundle(value: str) -> bytes:
    """The zip application from a value of ``OPENMWAA_RUNTIME`` (what the init container
    writes to ``runtime.pyz``)."""
    return lzma.decompress(base64.b64decode(value))
