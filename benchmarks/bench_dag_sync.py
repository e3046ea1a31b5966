"""Benchmark of the DAG sync Lambda, in process: moto S3 + a local folder as the mount.

Prints figures only (no assertions). Run from the repo root:

    .venv/bin/python benchmarks/bench_dag_sync.py [--files 10000] [--events 500]
        [--sizes 0,2000,10000,50000] [--sized-events 200]

Absolute numbers measure our own overhead plus moto's; on AWS, S3 GET latency (tens of ms)
and EFS metadata latency (a few ms per create/rename/fsync) dominate instead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lambdas"), str(ROOT)]

from dag_sync.model import Entry  # noqa: E402
from dag_sync.state_store import EfsStateStore  # noqa: E402
from tests.lambdas.dag_sync_fixtures import (  # noqa: E402
    BUCKET,
    SyncEnv,
    mocked_aws,
    s3_event,
)

DAG_TEMPLATE = """from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG(dag_id="dag_{n}", schedule=None):
    EmptyOperator(task_id="noop")
"""


def bench_events(count: int) -> None:
    with mocked_aws(), tempfile.TemporaryDirectory() as root:
        env = SyncEnv(Path(root))
        records = [
            env.put(f"dags/team_{n % 20}/dag_{n}.py", DAG_TEMPLATE.format(n=n).encode())
            for n in range(count)
        ]
        start = time.perf_counter()
        for rec in records:
            env.run(s3_event(rec))
        elapsed = time.perf_counter() - start
        print(
            f"event path, new file per event:   {count / elapsed:8.1f} events/s "
            f"({elapsed / count * 1000:.2f} ms each, {count} events)"
        )

        start = time.perf_counter()
        for rec in records:
            env.run(s3_event(rec))
        elapsed = time.perf_counter() - start
        print(
            f"event path, duplicate deliveries: {count / elapsed:8.1f} events/s "
            f"({elapsed / count * 1000:.2f} ms each, no S3 call)"
        )

        batch = [env.put(f"dags/batch/dag_{n}.py", b"x = 1\n") for n in range(count)]
        start = time.perf_counter()
        for i in range(0, count, 10):
            env.run(s3_event(*batch[i : i + 10]))
        elapsed = time.perf_counter() - start
        print(f"event path, 10 records/invocation:{count / elapsed:8.1f} events/s")


@contextlib.contextmanager
def no_fsync() -> Iterator[None]:
    """Seeding only: skip fsync so that 50k records are written in seconds."""
    saved = os.fsync
    os.fsync = lambda fd: None
    try:
        yield
    finally:
        os.fsync = saved


def seed_synced_dags(mount: Path, count: int) -> None:
    """The bookkeeping of ``count`` .py files already synced, each defining one dag_id
    (state entries and the dag_id index), written through the state store's own API."""
    store = EfsStateStore(str(mount))
    keys = [f"dags/seed/team_{n % 50}/dag_{n}.py" for n in range(count)]
    by_shard: dict[str, list[str]] = {}
    for key in keys:
        by_shard.setdefault(store.shard_of(key), []).append(key)
    with no_fsync():
        for shard, shard_keys in by_shard.items():
            with store.transaction(shard) as txn:
                for key in shard_keys:
                    txn.put(key, Entry("0", "etag", 100, None, False, 1.0, "seed"))
        if keys:
            store.update_dag_ids({key: [f"seed_{n}"] for n, key in enumerate(keys)}, None)


def bench_event_cost(sizes: list[int], count: int) -> None:
    """Per-event cost of a new .py file when ``size`` files are already synced."""
    for size in sizes:
        with mocked_aws(), tempfile.TemporaryDirectory() as root:
            env = SyncEnv(Path(root))
            start = time.perf_counter()
            seed_synced_dags(env.mount, size)
            seeded = time.perf_counter() - start
            records = [
                env.put(f"dags/new/dag_{n}.py", DAG_TEMPLATE.format(n=n).encode())
                for n in range(count)
            ]
            start = time.perf_counter()
            for rec in records:
                env.run(s3_event(rec))
            elapsed = time.perf_counter() - start
            print(
                f"event path, new .py with {size:6d} DAG files synced: "
                f"{elapsed / count * 1000:7.2f} ms/event ({count} events; seeded in {seeded:.1f} s)"
            )


def bench_reconcile(files: int) -> None:
    with mocked_aws(), tempfile.TemporaryDirectory() as root:
        env = SyncEnv(Path(root))
        start = time.perf_counter()
        for n in range(files):
            env.s3.put_object(
                Bucket=BUCKET,
                Key=f"dags/team_{n % 50}/dag_{n}.py",
                Body=DAG_TEMPLATE.format(n=n).encode(),
            )
        print(f"(setup: {files} objects uploaded to moto in {time.perf_counter() - start:.1f} s)")

        start = time.perf_counter()
        summary = env.reconcile()
        first = time.perf_counter() - start
        counts = summary["counts"]
        assert isinstance(counts, dict)
        print(
            f"reconcile {files} files, first full sync: {first:7.2f} s "
            f"({counts['written']} written, {env.faulty.count('get_object')} GETs)"
        )

        gets = env.faulty.count("get_object")
        start = time.perf_counter()
        summary = env.reconcile()
        noop = time.perf_counter() - start
        print(
            f"reconcile {files} files, no-op re-run:    {noop:7.2f} s "
            f"({summary['unchanged']} unchanged, {env.faulty.count('get_object') - gets} GETs)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--sizes", default="0,2000,10000,50000")
    parser.add_argument("--sized-events", type=int, default=200)
    args = parser.parse_args()
    print(
        f"python {platform.python_version()} on {platform.platform()}, "
        f"{os.cpu_count()} CPUs; mount = local temp folder (not EFS)"
    )
    bench_events(args.events)
    bench_event_cost([int(s) for s in args.sizes.split(",") if s], args.sized_events)
    bench_reconcile(args.files)


if __name__ == "__main__":
    main()
