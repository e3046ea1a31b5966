"""boto3 implementations of the ``ObjectStore`` and ``Roller`` ports (``ports.py``).

Error policy: throttling, 5xx, timeouts and broken streams become ``model.TransientError``
(the invocation then fails so Lambda retries); a missing key or version becomes ``None``
(nothing to apply); anything else (AccessDenied, NoSuchBucket, ...) propagates unchanged.
"""

from __future__ import annotations

import http.client
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from dag_sync.model import ObjectInfo, TransientError, normalize_etag

logger = logging.getLogger("dag_sync")

CHUNK = 1024 * 1024
TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ServerException",
        "OperationAborted",
    }
)
NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})
NOT_RUNNING_CODES = frozenset(
    {"ServiceNotFoundException", "ServiceNotActiveException", "ClusterNotFoundException"}
)
_TRANSIENT_BOTOCORE = (BotoConnectionError, HTTPClientError, IncompleteReadError)


def error_code(exc: Any) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def error_status(exc: Any) -> int:
    response = getattr(exc, "response", None) or {}
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return int(status) if isinstance(status, int) else 0


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ClientError):
        status = error_status(exc)
        return error_code(exc) in TRANSIENT_CODES or status >= 500 or status == 429
    return isinstance(exc, _TRANSIENT_BOTOCORE)


def is_not_found(exc: BaseException, *, versioned: bool = False) -> bool:
    if not isinstance(exc, ClientError):
        return False
    code = error_code(exc)
    if code == "NoSuchBucket":
        return False
    if versioned and code in ("405", "MethodNotAllowed"):  # the version is a delete marker
        return True
    return code in NOT_FOUND_CODES or (error_status(exc) == 404 and code in ("", "404"))


def _transient(what: str, exc: BaseException) -> TransientError:
    code = error_code(exc) or type(exc).__name__
    status = error_status(exc)
    detail = f"{code} (HTTP {status})" if status else code
    return TransientError(f"{what}: {detail}: {exc}")


class _Body:
    def __init__(self, info: ObjectInfo, stream: Any, where: str) -> None:
        self._info = info
        self._stream = stream
        self._where = where

    @property
    def info(self) -> ObjectInfo:
        return self._info

    def chunks(self) -> Iterator[bytes]:
        total = 0
        try:
            for chunk in self._stream.iter_chunks(CHUNK):
                total += len(chunk)
                yield chunk
        except ClientError as exc:
            if is_transient(exc):
                raise _transient(f"{self._where}: read failed after {total} bytes", exc) from exc
            raise
        except (BotoCoreError, OSError, http.client.HTTPException) as exc:
            raise _transient(f"{self._where}: read failed after {total} bytes", exc) from exc
        finally:
            self._stream.close()
        if total != self._info.size:
            raise TransientError(
                f"{self._where}: stream ended after {total} of {self._info.size} bytes"
            )


class S3ObjectStore:
    """``ports.ObjectStore`` over an S3 client."""

    def __init__(self, client: Callable[[], Any], bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    @property
    def client(self) -> Any:
        """Built on first use, so a malformed event costs no client set-up."""
        return self._client()

    def _where(self, key: str, version_id: str | None) -> str:
        suffix = f" (version {version_id})" if version_id else ""
        return f"s3://{self.bucket}/{key}{suffix}"

    def _args(self, key: str, version_id: str | None) -> dict[str, str]:
        args = {"Bucket": self.bucket, "Key": key}
        if version_id:
            args["VersionId"] = version_id
        return args

    def head(self, key: str, version_id: str | None) -> ObjectInfo | None:
        where = self._where(key, version_id)
        try:
            response = self.client.head_object(**self._args(key, version_id))
        except (ClientError, BotoCoreError) as exc:
            if is_not_found(exc, versioned=version_id is not None):
                return None
            if is_transient(exc):
                raise _transient(f"HEAD {where}", exc) from exc
            raise
        return self._info(key, response)

    def open(self, key: str, version_id: str | None) -> _Body | None:
        where = self._where(key, version_id)
        try:
            response = self.client.get_object(**self._args(key, version_id))
        except (ClientError, BotoCoreError) as exc:
            if is_not_found(exc, versioned=version_id is not None):
                logger.info("%s does not exist (any more)", where)
                return None
            if is_transient(exc):
                raise _transient(f"GET {where}", exc) from exc
            raise
        return _Body(self._info(key, response), response["Body"], where)

    def list_prefix(self, prefix: str) -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield ObjectInfo(
                        key=item["Key"], etag=normalize_etag(item["ETag"]), size=int(item["Size"])
                    )
        except (ClientError, BotoCoreError) as exc:
            if is_transient(exc):
                raise _transient(f"LIST s3://{self.bucket}/{prefix}", exc) from exc
            raise

    @staticmethod
    def _info(key: str, response: Any) -> ObjectInfo:
        version = response.get("VersionId")
        return ObjectInfo(
            key=key,
            etag=normalize_etag(str(response.get("ETag", ""))),
            size=int(response.get("ContentLength", 0)),
            version_id=version if isinstance(version, str) and version != "null" else None,
        )


class EcsRoller:
    """``ports.Roller``: ``ecs:UpdateService(forceNewDeployment=True)`` on each service.

    With no service names, every service of the cluster is rolled (the construct's way: the
    cluster is the environment's own, and naming the services would make the function
    depend on the services it must sync before)."""

    def __init__(self, client: Callable[[], Any], cluster: str, services: Sequence[str]) -> None:
        self._client = client
        self.cluster = cluster
        self.services = tuple(services)

    def roll(self) -> list[str]:
        if not self.cluster:
            logger.info("no ECS cluster configured: nothing to roll")
            return []
        client = self._client()
        services = self.services or self._cluster_services(client)
        rolled: list[str] = []
        for service in services:
            try:
                client.update_service(
                    cluster=self.cluster, service=service, forceNewDeployment=True
                )
            except (ClientError, BotoCoreError) as exc:
                if error_code(exc) in NOT_RUNNING_CODES:
                    logger.info(
                        "service %s is not running yet (%s): it will start with the new files",
                        service,
                        error_code(exc),
                    )
                    continue
                if is_transient(exc):
                    raise _transient(f"ecs:UpdateService {service}", exc) from exc
                raise
            logger.info("rolling service %s (force new deployment)", service)
            rolled.append(service)
        return rolled

    def _cluster_services(self, client: Any) -> tuple[str, ...]:
        """Every service ARN of the cluster; none while the cluster does not exist yet."""
        arns: list[str] = []
        try:
            for page in client.get_paginator("list_services").paginate(cluster=self.cluster):
                arns.extend(page.get("serviceArns", []))
        except (ClientError, BotoCoreError) as exc:
            if error_code(exc) in NOT_RUNNING_CODES:
                logger.info("cluster %s does not exist yet: nothing to roll", self.cluster)
                return ()
            if is_transient(exc):
                raise _transient(f"ecs:ListServices {self.cluster}", exc) from exc
            raise
        return tuple(sorted(arns))


class EcsBuildRunner:
    """``requirements_build.TaskRunner``: ``ecs:RunTask`` of the requirements build task
    (Fargate, the environment's private subnets and security group, no public address)."""

    def __init__(
        self,
        client: Callable[[], Any],
        cluster: str,
        task_definition: str,
        subnets: Sequence[str],
        security_groups: Sequence[str],
    ) -> None:
        self._client = client
        self.cluster = cluster
        self.task_definition = task_definition
        self.subnets = list(subnets)
        self.security_groups = list(security_groups)

    def run_build(self) -> str:
        response = self._client().run_task(
            cluster=self.cluster,
            taskDefinition=self.task_definition,
            launchType="FARGATE",
            platformVersion="LATEST",
            count=1,
            startedBy="openmwaa-dag-sync",
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": self.subnets,
                    "securityGroups": self.security_groups,
                    "assignPublicIp": "DISABLED",
                }
            },
        )
        tasks = response.get("tasks") or []
        if not tasks:
            reasons = "; ".join(
                f"{f.get('arn', '')}: {f.get('reason', '')}" for f in response.get("failures", [])
            )
            raise RuntimeError(f"ecs:RunTask started no task: {reasons or 'no reason given'}")
        return str(tasks[0]["taskArn"])
