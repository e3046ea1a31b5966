"""Which package index pip reads, and the environment's PyPI mirror on AWS CodeArtifact.

:func:`index_for` decides, for one pip run, in this order: an ``--index-url``/``-i`` (or
``--no-index``) line of requirements.txt, as written; ``PIP_INDEX_URL`` or
``PIP_CONFIG_FILE`` in the environment (startup.sh may export them), as they are; the
environment's mirror (``OPENMWAA_PYPI_MIRROR``, set when ``pypi_mirror`` is on); else pip's
own default. :class:`PipIndex` applies it: for the mirror it gets a CodeArtifact token (1 hour)
and the repository's endpoint once (boto3, imported when needed), writes a pip configuration
file (mode 0600, in a private temporary folder removed afterwards) with the authenticated
index, a short timeout and few retries, so an unreachable index fails a run in about half a
minute instead of hanging, and a pip log file it reads to name the requirements the index
does not have. The token is never logged: log lines carry the index's host only. Standard
library only, but for the lazy boto3 import.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from .contracts import PYPI_MIRROR_VARIABLE, REQUIREMENTS_KEY

LOG = logging.getLogger("openmwaa.bootstrap")

TOKEN_SECONDS = 3600
"""The CodeArtifact token's lifetime: longer than the longest pip run (the build's 30 min)."""
PIP_TIMEOUT_SECONDS = 10
"""pip's socket timeout against the mirror (pip's default is 15)."""
PIP_RETRIES = 2
"""pip's retries per connection against the mirror (pip's default is 5): an unreachable index
costs about (1 + 2) x 10 s and a little back-off before pip gives up."""
REQUIREMENTS = REQUIREMENTS_KEY
ENVIRONMENT = "environment"
MIRROR = "mirror"
DEFAULT = "default"

_INDEX_OPTION = re.compile(r"^(?:-i|--index-url)(?:\s*=\s*|\s+|(?<=-i))(\S+)")
_NO_INDEX = re.compile(r"^--no-index(?:\s|$)")
_NOT_FOUND = re.compile(r"No matching distribution found for (\S+)")


class PackageIndexError(Exception):
    """The mirror cannot be used: its token or endpoint could not be obtained."""


@dataclass(frozen=True)
class Mirror:
    """The CodeArtifact repository the environment reads (``OPENMWAA_PYPI_MIRROR``)."""

    domain: str
    owner: str
    repository: str
    region: str

    def __str__(self) -> str:
        return f"CodeArtifact repository {self.repository} of domain {self.domain}"


@dataclass(frozen=True)
class Decision:
    """Where pip reads packages: ``source`` is :data:`REQUIREMENTS`, :data:`ENVIRONMENT`,
    :data:`MIRROR` (``mirror`` set) or :data:`DEFAULT`; ``host`` the index's host when known
    (never its credentials)."""

    source: str
    host: str = ""
    mirror: Mirror | None = None


def parse_mirror(value: str) -> Mirror:
    """``OPENMWAA_PYPI_MIRROR``'s JSON as a :class:`Mirror`; ValueError if malformed."""
    try:
        data = json.loads(value)
        fields = [data[key] for key in ("domain", "domainOwner", "repository", "region")]
    except (ValueError, TypeError, KeyError) as error:
        raise ValueError(f"{PYPI_MIRROR_VARIABLE} is not valid: {error}") from None
    if not all(isinstance(f, str) and f for f in fields):
        raise ValueError(f"{PYPI_MIRROR_VARIABLE} has an empty or non-string field: {value}")
    return Mirror(*fields)


def host_of(url: str) -> str:
    """The host (and port) of ``url``, without credentials or path; the text if not a URL."""
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
        return url.rsplit("@", 1)[-1].split("/", 1)[0]
    return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname


def requirements_index(text: str) -> str | None:
    """The index a requirements file names on its own lines: the URL of an ``--index-url`` or
    ``-i`` line (the last one, as pip takes it), ``--no-index``, or None."""
    found: str | None = None
    for line in text.replace("\\\n", "").splitlines():
        line = re.split(r"(?:^|\s)#", line, maxsplit=1)[0].strip()
        match = _INDEX_OPTION.match(line)
        if match:
            found = match.group(1)
        elif _NO_INDEX.match(line):
            found = "--no-index"
    return found


def index_for(requirements_text: str, env: Mapping[str, str]) -> Decision:
    """Where one pip run of ``requirements_text`` (``""`` for a run without a file) reads
    packages, given the environment it runs with. Raises ValueError for a malformed
    ``OPENMWAA_PYPI_MIRROR``."""
    named = requirements_index(requirements_text)
    if named is not None:
        return Decision(REQUIREMENTS, "" if named == "--no-index" else host_of(named))
    if env.get("PIP_INDEX_URL"):
        return Decision(ENVIRONMENT, host_of(env["PIP_INDEX_URL"]))
    if env.get("PIP_CONFIG_FILE"):
        return Decision(ENVIRONMENT)
    value = env.get(PYPI_MIRROR_VARIABLE, "")
    if value:
        return Decision(MIRROR, mirror=parse_mirror(value))
    return Decision(DEFAULT)


def index_url(endpoint: str, token: str) -> str:
    """The simple index of a CodeArtifact PyPI ``endpoint``, with ``aws:<token>`` as its
    credentials (the user name CodeArtifact documents for pip)."""
    parts = urllib.parse.urlsplit(endpoint)
    netloc = f"aws:{urllib.parse.quote(token, safe='')}@{parts.netloc}"
    path = parts.path.rstrip("/") + "/simple/"
    return urllib.parse.urlunsplit((parts.scheme, netloc, path, "", ""))


def pip_config(url: str, log: str) -> str:
    """pip's configuration for the mirror: its index, bounded waits and a log file."""
    return (
        "[global]\n"
        f"index-url = {url}\n"
        f"timeout = {PIP_TIMEOUT_SECONDS}\n"
        f"retries = {PIP_RETRIES}\n"
        f"log = {log}\n"
    )


def missing_distributions(pip_log: str) -> list[str]:
    """The requirements pip found no distribution for, in order, each once."""
    found: list[str] = []
    for name in _NOT_FOUND.findall(pip_log):
        if name not in found:
            found.append(name)
    return found


UNREACHABLE = re.compile(
    r"HTTP error 40[13]|\b40[13] Client Error|Connection(?:Error| refused)|Max retries exceeded|"
    r"Read timed out|NewConnectionError|Temporary failure in name resolution",
)
"""What pip's log says when the index refused it (401, 403) or could not be reached, not when
a project is missing (404): then "no matching distribution" follows from the failed fetch."""


def unreachable(pip_log: str) -> bool:
    """Whether pip's log shows the index refused or unreachable."""
    return UNREACHABLE.search(pip_log) is not None


Lookup = Callable[[Mirror], tuple[str, str]]
"""``(repository endpoint, token)`` of a mirror; raises :class:`PackageIndexError`."""


def codeartifact_lookup(mirror: Mirror, client: Any = None) -> tuple[str, str]:
    """The mirror's PyPI endpoint and a token of :data:`TOKEN_SECONDS`, from CodeArtifact with
    the task role's credentials (short timeouts, three attempts)."""
    if client is None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError as error:
            raise PackageIndexError(
                f"{mirror}: boto3 is not importable in this image ({error}); the stock "
                "apache/airflow image has it through the amazon provider"
            ) from None
        retries: Any = {"mode": "standard", "max_attempts": 3}
        client = boto3.client(
            "codeartifact",
            region_name=mirror.region,
            config=Config(connect_timeout=5, read_timeout=10, retries=retries),
        )
    owner = {"domain": mirror.domain, "domainOwner": mirror.owner}
    try:
        token = client.get_authorization_token(**owner, durationSeconds=TOKEN_SECONDS)
        endpoint = client.get_repository_endpoint(
            **owner, repository=mirror.repository, format="pypi"
        )
        return str(endpoint["repositoryEndpoint"]), str(token["authorizationToken"])
    except Exception as error:  # botocore's errors, without importing botocore here
        raise PackageIndexError(f"{mirror}: cannot get its token or endpoint: {error}") from None


class PipIndex:
    """The package index of the pip runs of one start-up or build (a context manager): asks
    CodeArtifact once, at the first run that uses the mirror, and removes its files at exit."""

    def __init__(self, lookup: Lookup | None = None) -> None:
        self._lookup = lookup or codeartifact_lookup
        self._directory: str | None = None
        self._config: str | None = None
        self._log: str | None = None

    def __enter__(self) -> PipIndex:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = self._config = self._log = None

    def environment(self, requirements_text: str, env: Mapping[str, str]) -> dict[str, str]:
        """``env`` for a pip run of ``requirements_text``: with ``PIP_CONFIG_FILE`` pointing at
        the mirror's configuration when :func:`index_for` picks the mirror, else unchanged.
        Logs the choice (host only). Raises :class:`PackageIndexError`."""
        try:
            decision = index_for(requirements_text, env)
        except ValueError as error:
            raise PackageIndexError(str(error)) from None
        if decision.mirror is None:
            where = {
                REQUIREMENTS: "the index requirements.txt names",
                ENVIRONMENT: "the index pip's variables from startup.sh name",
                DEFAULT: "pip's default index",
            }[decision.source]
            LOG.info("pip reads %s%s", where, f" ({decision.host})" if decision.host else "")
            return dict(env)
        config = self._mirror_config(decision.mirror)
        return {**env, "PIP_CONFIG_FILE": config}

    def _mirror_config(self, mirror: Mirror) -> str:
        if self._config is not None:
            return self._config
        endpoint, token = self._lookup(mirror)
        self._directory = tempfile.mkdtemp(prefix="openmwaa-pip-index-")
        self._log = os.path.join(self._directory, "pip.log")
        path = os.path.join(self._directory, "pip.conf")
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(pip_config(index_url(endpoint, token), self._log))
        self._config = path
        LOG.info("pip reads the PyPI mirror, %s, at %s", mirror, host_of(endpoint))
        return path

    def report_failure(self) -> list[str]:
        """After a failed pip run against the mirror: log one line naming the requirements it
        does not have (from pip's log, which is then emptied). Returns them."""
        if self._log is None:
            return []
        try:
            with open(self._log, encoding="utf-8", errors="replace") as file:
                text = file.read()
            open(self._log, "w").close()
        except FileNotFoundError:
            return []
        missing = missing_distributions(text)
        if missing and unreachable(text):
            LOG.error(
                "pip could not read the PyPI mirror (refused or unreachable: an expired token, "
                "the endpoint's policy or security group) and found no distribution for: %s",
                ", ".join(missing),
            )
        elif missing:
            LOG.error(
                "the PyPI mirror has no distribution for: %s (not on PyPI at that version, or "
                "not for this Python and platform)",
                ", ".join(missing),
            )
        return missing
