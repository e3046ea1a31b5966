"""Lambda entry point ``dag_sync.handler.handler``: a thin adapter.

It reads the environment, builds boto3 clients on first use, wires the syncer's ports to S3,
ECS and the EFS mount, runs the syncer, starts the requirements build when it is due, prints
the metrics lines and returns the summary. It raises (so Lambda's async retry delivers the
event again) only when something transient failed; everything already applied is then a
duplicate no-op on the retry.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import openmwaa_contracts as contracts

from dag_sync.aws_ports import EcsBuildRunner, EcsRoller, S3ObjectStore
from dag_sync.efs_writer import EfsTree
from dag_sync.events import parse_event
from dag_sync.metrics import emf_line, report_values
from dag_sync.model import TransientError
from dag_sync.plugins_archive import ArchiveLimits
from dag_sync.ports import Roller
from dag_sync.requirements_build import (
    KEY_VARIABLES,
    BuildFiles,
    BuildFirstRoller,
    RequirementsBuilds,
)
from dag_sync.state_store import EfsStateStore
from dag_sync.syncer import Settings, Syncer

logger = logging.getLogger("dag_sync")
logger.setLevel(logging.INFO)

DEFAULT_MAX_PLUGIN_ENTRIES = 10_000
DEFAULT_MAX_PLUGIN_BYTES = 1024**3
PIN_VARIABLES = {
    contracts.REQUIREMENTS_KEY: "REQUIREMENTS_S3_OBJECT_VERSION",
    contracts.PLUGINS_KEY: "PLUGINS_S3_OBJECT_VERSION",
    contracts.STARTUP_SCRIPT_KEY: "STARTUP_SCRIPT_S3_OBJECT_VERSION",
}


class SyncFailedError(RuntimeError):
    """Some changes failed transiently; raised so that Lambda retries the event."""


@dataclass(frozen=True)
class Config:
    bucket: str
    mount: str
    pinned_versions: Mapping[str, str] = field(default_factory=dict)
    cluster: str = ""
    services: tuple[str, ...] = ()
    namespace: str = contracts.METRIC_NAMESPACE
    environment: str = ""
    max_plugin_entries: int = DEFAULT_MAX_PLUGIN_ENTRIES
    max_plugin_bytes: int = DEFAULT_MAX_PLUGIN_BYTES
    build_task_definition: str = ""
    build_subnets: tuple[str, ...] = ()
    build_security_groups: tuple[str, ...] = ()
    key_inputs: Mapping[str, str] = field(default_factory=dict)
    """The requirements build key's inputs (``requirements_build.KEY_VARIABLES``)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """Read the function's environment; one ValueError lists every problem."""
        problems: list[str] = []
        bucket = env.get("BUCKET_NAME", "").strip()
        if not bucket:
            problems.append("BUCKET_NAME is not set")
        mount = env.get("EFS_MOUNT_PATH", "").strip()
        if not mount.startswith("/"):
            problems.append(f"EFS_MOUNT_PATH must be an absolute path, got {mount!r}")

        def positive_int(name: str, default: int) -> int:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            if not raw.isdigit() or int(raw) <= 0:
                problems.append(f"{name} must be a positive integer, got {raw!r}")
                return default
            return int(raw)

        max_entries = positive_int("MAX_PLUGIN_ENTRIES", DEFAULT_MAX_PLUGIN_ENTRIES)
        max_bytes = positive_int("MAX_PLUGIN_BYTES", DEFAULT_MAX_PLUGIN_BYTES)
        if problems:
            raise ValueError("invalid dag sync configuration: " + "; ".join(problems))
        pinned = {
            key: env[var].strip() for key, var in PIN_VARIABLES.items() if env.get(var, "").strip()
        }
        services = tuple(s.strip() for s in env.get("SERVICE_NAMES", "").split(",") if s.strip())

        def names(variable: str) -> tuple[str, ...]:
            return tuple(s.strip() for s in env.get(variable, "").split(",") if s.strip())

        return cls(
            bucket=bucket,
            mount=mount,
            pinned_versions=pinned,
            cluster=env.get("CLUSTER_NAME", "").strip(),
            services=services,
            namespace=env.get("METRIC_NAMESPACE", "").strip() or contracts.METRIC_NAMESPACE,
            environment=env.get("ENVIRONMENT_NAME", "").strip(),
            max_plugin_entries=max_entries,
            max_plugin_bytes=max_bytes,
            build_task_definition=env.get("BUILD_TASK_DEFINITION", "").strip(),
            build_subnets=names("BUILD_SUBNETS"),
            build_security_groups=names("BUILD_SECURITY_GROUPS"),
            key_inputs={name: env[name] for name in KEY_VARIABLES if name in env},
        )


_CLIENTS: dict[str, Any] = {}


def _client(service: str) -> Any:
    """One boto3 client per service per container, built on first use."""
    if service not in _CLIENTS:
        import boto3
        from botocore.config import Config as BotoConfig

        _CLIENTS[service] = boto3.client(
            service,
            config=BotoConfig(
                retries={"max_attempts": 4, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
                max_pool_connections=32,  # the reconcile runs 16 transfers at once
            ),
        )
    return _CLIENTS[service]


def build_syncer(
    config: Config,
    *,
    s3_client: Callable[[], Any],
    ecs_client: Callable[[], Any],
    now: Callable[[], float] = time.time,
    builds: RequirementsBuilds | None = None,
) -> Syncer:
    if not os.path.isdir(config.mount):
        raise RuntimeError(f"EFS_MOUNT_PATH {config.mount} is not a mounted folder")
    limits = ArchiveLimits(config.max_plugin_entries, config.max_plugin_bytes)
    roller: Roller = EcsRoller(ecs_client, config.cluster, config.services)
    if builds is not None:
        roller = BuildFirstRoller(roller, builds)
    return Syncer(
        store=S3ObjectStore(s3_client, config.bucket),
        state=EfsStateStore(config.mount, now),
        files=EfsTree(config.mount, limits, now),
        roller=roller,
        settings=Settings(pinned_versions=dict(config.pinned_versions)),
        now=now,
    )


def run(
    event: object,
    config: Config,
    *,
    s3_client: Callable[[], Any],
    ecs_client: Callable[[], Any],
    now: Callable[[], float] = time.time,
    emit: Callable[[str], None] = print,
) -> dict[str, object]:
    """Handle one invocation; returns the JSON summary or raises ``SyncFailedError`` /
    ``TransientError`` for Lambda to retry."""
    invocation = parse_event(event, config.bucket)
    builds = requirements_builds(config, ecs_client, now)
    syncer = build_syncer(
        config, s3_client=s3_client, ecs_client=ecs_client, now=now, builds=builds
    )
    try:
        report = syncer.handle(invocation)
    except TransientError as exc:
        logger.error("sync aborted before any change, will be retried: %s", exc)
        raise
    check = builds.ensure()
    timestamp = int(now() * 1000)
    build = {contracts.METRIC_REQUIREMENTS_BUILD_FAILED: check.failed}
    emit(emf_line(config.namespace, config.environment, build, timestamp))
    emit(emf_line(config.namespace, config.environment, report_values(report), timestamp))
    summary = report.to_dict()
    logger.info("summary: %s", json.dumps(summary["counts"]))
    if report.failed:
        details = "; ".join(f"{f['key']}: {f['error']}" for f in report.failed[:5])
        raise SyncFailedError(
            f"{len(report.failed)} change(s) failed and will be retried: {details}"
        )
    return summary


def requirements_builds(
    config: Config, ecs_client: Callable[[], Any], now: Callable[[], float]
) -> RequirementsBuilds:
    """The requirements build check of this invocation (it starts no task when the
    function has no build task configured)."""
    runner = None
    if config.build_task_definition and config.cluster:
        runner = EcsBuildRunner(
            ecs_client,
            config.cluster,
            config.build_task_definition,
            config.build_subnets,
            config.build_security_groups,
        )
    return RequirementsBuilds(BuildFiles(config.mount), runner, config.key_inputs, now)


def handler(event: object, context: object) -> dict[str, object]:
    """Lambda entry point (handler string ``dag_sync.handler.handler``)."""
    config = Config.from_env(os.environ)
    return run(event, config, s3_client=lambda: _client("s3"), ecs_client=lambda: _client("ecs"))
