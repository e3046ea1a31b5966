"""Shared helpers for tests/lambdas/test_dag_sync_*.py (and benchmarks/bench_dag_sync.py).

``SyncEnv`` is one environment: a versioned moto S3 bucket, a folder standing in for the
EFS mount, a recording ECS client, and ``run()`` calling the real adapter. Faults are
injected by ``FaultyS3``, a wrapper around the moto client.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import stat
import struct
import time
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
from botocore.exceptions import ClientError, ResponseStreamingError
from moto import mock_aws

from dag_sync import handler
from dag_sync.keys import TEMP_PREFIX
from dag_sync.model import Entry
from dag_sync.state_store import EfsStateStore

BUCKET = "openmwaa-test-source"
REGION = "us-east-1"
SEQUENCER_BASE = 0x0062E99A88DC400000


@contextmanager
def mocked_aws() -> Iterator[None]:
    """moto for every AWS call, with fake credentials so nothing can reach a real account."""
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    saved["AWS_DEFAULT_REGION"] = os.environ.get("AWS_DEFAULT_REGION")
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=REGION
    )
    try:
        with mock_aws():
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# --------------------------------------------------------------------------- events


def encode_key(key: str) -> str:
    """How S3 writes a key into an event: URL-encoded, '+' for space, '/' kept."""
    return quote_plus(key, safe="/")


def record(
    key: str,
    *,
    sequencer: str,
    event: str = "ObjectCreated:Put",
    version_id: str | None = None,
    etag: str | None = None,
    size: int | None = None,
    bucket: str = BUCKET,
    encoded: bool = True,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "key": encode_key(key) if encoded else key,
        "sequencer": sequencer,
    }
    if version_id is not None:
        obj["versionId"] = version_id
    if etag is not None:
        obj["eTag"] = etag
    if size is not None:
        obj["size"] = size
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": "2025-01-01T00:00:00.000Z",
        "eventName": event,
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": obj,
        },
    }


def s3_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def sequencer(n: int) -> str:
    return f"{SEQUENCER_BASE + n:018X}"


# --------------------------------------------------------------------------- faults


def client_error(
    code: str = "SlowDown", status: int = 503, operation: str = "GetObject"
) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


class BrokenStream:
    """A GetObject body that delivers ``after`` bytes, then the connection breaks."""

    def __init__(self, real: Any, after: int) -> None:
        self.real = real
        self.after = after

    quietly = False  # end the stream early without an error (a truncated response)

    def iter_chunks(self, chunk_size: int = 1024) -> Iterator[bytes]:
        sent = 0
        for chunk in self.real.iter_chunks(chunk_size):
            if sent + len(chunk) > self.after:
                yield chunk[: self.after - sent]
                if self.quietly:
                    return
                raise ResponseStreamingError(error="Connection reset by peer")
            sent += len(chunk)
            yield chunk

    def close(self) -> None:
        self.real.close()


class _FaultyPaginator:
    def __init__(self, real: Any, faults: list[BaseException]) -> None:
        self.real = real
        self.faults = faults

    def paginate(self, **kwargs: Any) -> Iterator[Any]:
        if self.faults:
            raise self.faults.pop(0)
        yield from self.real.paginate(**kwargs)


class FaultyS3:
    """Wraps the moto S3 client: counts calls, raises queued faults, breaks streams."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.faults: dict[str, list[BaseException]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.break_stream_after: int | None = None
        self.truncate_stream_after: int | None = None

    def fail(self, operation: str, *errors: BaseException) -> None:
        self.faults.setdefault(operation, []).extend(errors)

    def count(self, operation: str) -> int:
        return sum(1 for name, _ in self.calls if name == operation)

    def get_paginator(self, name: str) -> _FaultyPaginator:
        return _FaultyPaginator(self._client.get_paginator(name), self.faults.setdefault(name, []))

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._client, name)

        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            pending = self.faults.get(name)
            if pending:
                raise pending.pop(0)
            result = real(**kwargs)
            if name == "get_object" and self.break_stream_after is not None:
                result["Body"] = BrokenStream(result["Body"], self.break_stream_after)
                self.break_stream_after = None
            if name == "get_object" and self.truncate_stream_after is not None:
                result["Body"] = BrokenStream(result["Body"], self.truncate_stream_after)
                result["Body"].quietly = True
                self.truncate_stream_after = None
            return result

        return call


class RecordingEcs:
    """Records update_service calls; forwards them to a moto ECS client when given."""

    def __init__(self, real: Any = None) -> None:
        self.real = real
        self.calls: list[dict[str, Any]] = []
        self.faults: list[BaseException] = []

    def update_service(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        if self.faults:
            raise self.faults.pop(0)
        if self.real is not None:
            return self.real.update_service(**kwargs)
        return {"service": {"serviceName": kwargs["service"]}}

    def get_paginator(self, name: str) -> Any:
        if self.real is None:
            raise AssertionError(f"no real ECS client to paginate {name}")
        return self.real.get_paginator(name)


# --------------------------------------------------------------------------- zips


def make_zip(
    files: Mapping[str, bytes],
    *,
    symlinks: Mapping[str, str] | None = None,
) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buf.getvalue()


def zip_with_lying_size(name: str, actual: int, declared: int) -> bytes:
    """One entry of ``actual`` zero bytes whose headers claim ``declared`` bytes."""
    data = bytearray(make_zip({name: b"\0" * actual}))
    struct.pack_into("<I", data, 22, declared)  # local file header: uncompressed size
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, declared)  # central directory entry
    return bytes(data)


# --------------------------------------------------------------------------- environment


_CLIENTS: dict[str, Any] = {}


def moto_client(service: str) -> Any:
    """One client per service for the whole test run (building one costs ~0.1 s). moto
    intercepts every client's requests while a mock is active and resets its data when the
    mock ends, so sharing clients across tests shares no state."""
    if service not in _CLIENTS:
        _CLIENTS[service] = boto3.client(
            service,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
    return _CLIENTS[service]


class SyncEnv:
    """A versioned bucket, an EFS folder and the real adapter, all local."""

    def __init__(self, root: Path, *, services: tuple[str, ...] = ("scheduler", "worker")):
        self.s3 = moto_client("s3")
        self.s3.create_bucket(Bucket=BUCKET)
        self.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        self.faulty = FaultyS3(self.s3)
        self.ecs = RecordingEcs()
        self.mount = root / "efs"
        self.mount.mkdir()
        self.outside = root / "outside"
        self.outside.mkdir()
        self.services = services
        self.emitted: list[str] = []
        self._seq = itertools.count(1)
        self.clock: float | None = None

    # ---- configuration and runs

    def config(self, **overrides: Any) -> handler.Config:
        values: dict[str, Any] = {
            "bucket": BUCKET,
            "mount": str(self.mount),
            "cluster": "airflow",
            "services": self.services,
            "namespace": "OpenMWAA",
            "environment": "test-env",
            "max_plugin_entries": 100,
            "max_plugin_bytes": 1024 * 1024,
        }
        values.update(overrides)
        return handler.Config(**values)

    def now(self) -> float:
        return self.clock if self.clock is not None else time.time()

    def run(self, event: object, **overrides: Any) -> dict[str, Any]:
        return handler.run(
            event,
            self.config(**overrides),
            s3_client=lambda: self.faulty,
            ecs_client=lambda: self.ecs,
            now=self.now,
            emit=self.emitted.append,
        )

    def reconcile(self, **overrides: Any) -> dict[str, Any]:
        return self.run({"action": "reconcile"}, **overrides)

    # ---- bucket

    def next_sequencer(self) -> str:
        return sequencer(next(self._seq))

    def put(self, key: str, body: bytes) -> dict[str, Any]:
        """Upload and return the S3 event record S3 would send for it."""
        response = self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        return record(
            key,
            sequencer=self.next_sequencer(),
            version_id=response["VersionId"],
            etag=response["ETag"].strip('"'),
            size=len(body),
        )

    def delete(self, key: str) -> dict[str, Any]:
        response = self.s3.delete_object(Bucket=BUCKET, Key=key)
        return record(
            key,
            sequencer=self.next_sequencer(),
            event="ObjectRemoved:DeleteMarkerCreated",
            version_id=response.get("VersionId"),
        )

    # ---- EFS

    def path(self, key: str) -> Path:
        return self.mount / key

    def read(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def temp_files(self) -> list[Path]:
        return [p for p in self.mount.rglob("*") if p.name.startswith(TEMP_PREFIX)]

    def files(self) -> set[str]:
        """Every regular file under the mount, outside the private .openmwaa folder."""
        return {
            p.relative_to(self.mount).as_posix()
            for p in self.mount.rglob("*")
            if p.is_file() and ".openmwaa" not in p.relative_to(self.mount).parts
        }

    def state(self) -> dict[str, Entry]:
        return EfsStateStore(str(self.mount)).entries()

    def metrics(self) -> dict[str, Any]:
        assert self.emitted, "no metrics line was printed"
        document: dict[str, Any] = json.loads(self.emitted[-1])
        return document
