"""What `openmwaa from-mwaa --copy-bucket` copies, decided without calling AWS.

MWAA names its files by path in its own bucket (`DagS3Path`, `RequirementsS3Path`, ...) and
pins three of them by object version. openmwaa reads them from fixed keys at the root of its
bucket (`runtime.contracts`). This module turns a GetEnvironment response into the list of
objects to check and copy, and says what is wrong with a plan before anything is copied; the
adapter (`from_mwaa.py`) does the S3 calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..runtime.contracts import DAGS_PREFIX, PLUGINS_KEY, REQUIREMENTS_KEY, STARTUP_SCRIPT_KEY

MAX_COPY_OBJECT_BYTES = 5 * 1024**3
"""S3 CopyObject copies objects up to 5 GB in one request; the copy uses nothing else."""


@dataclass(frozen=True)
class NamedFile:
    """One of the files MWAA names by path (and pins by version) and openmwaa keeps at a key."""

    path_field: str
    """The GetEnvironment field holding the file's path, e.g. `RequirementsS3Path`."""
    version_field: str
    """The GetEnvironment field pinning its version, e.g. `RequirementsS3ObjectVersion`."""
    target_key: str
    """Where openmwaa reads it, from `runtime.contracts`."""
    pin_prop: str
    """The `AirflowEnvironment` prop that pins its version in the new bucket."""


NAMED_FILES: tuple[NamedFile, ...] = (
    NamedFile(
        "RequirementsS3Path",
        "RequirementsS3ObjectVersion",
        REQUIREMENTS_KEY,
        "requirements_s3_object_version",
    ),
    NamedFile("PluginsS3Path", "PluginsS3ObjectVersion", PLUGINS_KEY, "plugins_s3_object_version"),
    NamedFile(
        "StartupScriptS3Path",
        "StartupScriptS3ObjectVersion",
        STARTUP_SCRIPT_KEY,
        "startup_script_s3_object_version",
    ),
)
"""requirements.txt, plugins.zip and startup.sh, in that order."""


@dataclass(frozen=True)
class SourceObject:
    """An object MWAA names: its key in MWAA's bucket and the version MWAA pinned (if any)."""

    setting: str
    """What names it, for messages: `RequirementsS3Path`, or `DagS3Path` for a DAG file."""
    key: str
    version_id: str | None
    target_key: str
    pin_prop: str | None
    """The prop that pins the copy's version; None for DAG files, which are not pinned."""


@dataclass(frozen=True)
class CopyItem:
    """One object to copy, after it was found: `version_id` is the version that was checked."""

    source: SourceObject
    version_id: str | None
    """The source version to copy (the pinned one, or the latest when checked); None only
    when the source bucket returned none (never versioned)."""
    size: int


@dataclass(frozen=True)
class CopyPlan:
    """Every object to copy from MWAA's bucket into openmwaa's, each already checked."""

    source_bucket: str
    target_bucket: str
    items: tuple[CopyItem, ...]


@dataclass(frozen=True)
class CopyResult:
    """What the copy did: the new bucket's version of each pinned file, and the DAG count."""

    source_bucket: str
    target_bucket: str
    pins: Mapping[str, str]
    """Prop name (`requirements_s3_object_version`, ...) -> the copy's version in the new
    bucket."""
    dag_objects: int
    copied: tuple[tuple[str, str], ...]
    """(source key, target key) of every object copied, in copy order."""


def bucket_name_from_arn(arn: str) -> str:
    """`arn:aws:s3:::my-bucket` -> `my-bucket` (any partition)."""
    name = arn.rsplit(":::", 1)[-1]
    return name.split("/", 1)[0]


def relative_key(path: str, bucket: str | None = None) -> str:
    """An MWAA S3 path as a key: MWAA's paths are relative (`requirements.txt`), but an
    `s3://bucket/` prefix or a leading slash are accepted and removed."""
    key = path.strip()
    if key.startswith("s3://"):
        without_scheme = key[len("s3://") :]
        head, _, rest = without_scheme.partition("/")
        if bucket is None or head == bucket:
            key = rest
    return key.lstrip("/")


def dags_prefix(environment: Mapping[str, Any]) -> str | None:
    """The key prefix of MWAA's DAG folder, ending in `/` (None without `DagS3Path`).

    `dags` lists `dags/a.py` but not `dags_old/a.py`; an empty path means the whole bucket.
    """
    path = environment.get("DagS3Path")
    if path is None:
        return None
    bucket = _source_bucket(environment)
    key = relative_key(str(path), bucket).rstrip("/")
    return f"{key}/" if key else ""


def named_sources(environment: Mapping[str, Any]) -> tuple[SourceObject, ...]:
    """requirements.txt, plugins.zip and startup.sh as MWAA names them (only those set)."""
    bucket = _source_bucket(environment)
    sources = []
    for named in NAMED_FILES:
        path = environment.get(named.path_field)
        if not path:
            continue
        version = environment.get(named.version_field) or None
        sources.append(
            SourceObject(
                setting=named.path_field,
                key=relative_key(str(path), bucket),
                version_id=str(version) if version is not None else None,
                target_key=named.target_key,
                pin_prop=named.pin_prop,
            )
        )
    return tuple(sources)


def is_folder_marker(key: str) -> bool:
    """A zero-byte `folder/` object the S3 console creates: not a file, so not copied."""
    return key.endswith("/")


def dag_sources(prefix: str, keys: Sequence[str]) -> tuple[SourceObject, ...]:
    """The DAG folder's objects (as listed under `prefix`) and their keys under `dags/`.

    Folder markers are skipped; the latest version of each object is copied (MWAA does not
    pin DAG files either).
    """
    return tuple(
        SourceObject(
            setting="DagS3Path",
            key=key,
            version_id=None,
            target_key=DAGS_PREFIX + key[len(prefix) :],
            pin_prop=None,
        )
        for key in sorted(keys)
        if key.startswith(prefix) and not is_folder_marker(key) and key != prefix
    )


def describe(source: SourceObject, bucket: str) -> str:
    """`s3://bucket/key (version v, from RequirementsS3Path)` for messages."""
    version = f" version {source.version_id}" if source.version_id else ""
    return f"s3://{bucket}/{source.key}{version} (named by {source.setting})"


def plan_problems(plan: CopyPlan) -> list[str]:
    """Everything that stops the plan before it starts, each naming the object or bucket."""
    problems = []
    if plan.source_bucket == plan.target_bucket:
        problems.append(
            f"--target-bucket: got {plan.target_bucket!r}, MWAA's own bucket; give the "
            "bucket of the deployed openmwaa environment (its SourceBucketName output)"
        )
    for item in plan.items:
        if item.size > MAX_COPY_OBJECT_BYTES:
            problems.append(
                f"{describe(item.source, plan.source_bucket)} has {item.size} bytes; the copy "
                "handles objects up to 5 GB (S3 CopyObject): copy it yourself"
            )
    targets: dict[str, str] = {}
    for item in plan.items:
        other = targets.setdefault(item.source.target_key, item.source.key)
        if other != item.source.key:
            problems.append(
                f"s3://{plan.source_bucket}/{item.source.key} and {other} would both be "
                f"copied to {item.source.target_key}"
            )
    return problems


def _source_bucket(environment: Mapping[str, Any]) -> str | None:
    arn = environment.get("SourceBucketArn")
    return bucket_name_from_arn(str(arn)) if arn else None
