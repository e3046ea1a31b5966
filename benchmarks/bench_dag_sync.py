"""Benchmark of the DAG sync Lambda, in process: moto S3 + a local folder as the mount.

Prints figures only (no assertions). Run from the repo root:

    .venv/bin/python benchmarks/bench_dag_sync.py [--files 10000] [--events 500]

Absolute numbers measure our own overhead plus moto's; on AWS, S3 GET latency (tens of ms)
and EFS metadata latency (a few ms per create/rename/fsync) dominate instead.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lambdas"), str(ROOT)]

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
    args = parser.parse_args()
    print(
        f"python {platform.python_version()} on {platform.platform()}, "
        f"{os.cpu_count()} CPUs; mount = local temp folder (not EFS)"
    )
    bench_events(args.events)
    bench_reconcile(args.files)


if __name__ == "__main__":
    main()
