"""The metrics relay's cost: its memory and CPU in the container, and CloudWatch's bill.

The relay runs as the bundle runs it: the zip application the containers get
(``python runtime.pyz metrics-relay``), under the Python of the end-to-end test's Airflow 3
virtualenv (``.e2e-cache/airflow-venv-*``, with the boto3 the image has), publishing to a moto
server standing in for CloudWatch. This process is its parent (as the bootstrap is on ECS),
fires StatsD lines at it at a stated rate for a stated time, and reads:

- **RSS**: ``VmRSS`` of ``/proc/<pid>/status`` every second (steady: the median of the second
  half of the run) and ``VmHWM`` (peak);
- **CPU**: user + system time from ``/proc/<pid>/stat`` from the end of the first minute (its
  first PutMetricData, which loads botocore's models, is start-up) to the end of the run, as
  seconds per minute and as a share of one CPU;
- **CloudWatch**: PutMetricData calls and data points (from the relay's last log line), per
  hour and per call, the distinct metrics it created (moto's ``list_metrics``), and whether
  every line arrived: the ``ti_successes`` lines sent against the Sum of
  ``TaskInstanceSuccesses`` published.

The lines are a mix of Airflow's own names as Airflow 3 sends them with the runtime's settings
(tags in the name): the scheduler's heartbeat, loop and critical section, the executor's
slots, the DAG processor's gauges, task successes and failures, task and DAG run durations
over ``--dags`` DAGs of 10 tasks, the triggerer, and names the relay drops (pools, processes,
``ti.start``/``ti.finish``). Three runs: a quiet environment (50 lines/s) and a busy one (2000
lines/s) with the default allow-list, and the busy one with the per-DAG metrics
``TaskInstanceDuration`` and ``DAGDurationSuccess`` allowed too.

Monthly cost at CloudWatch's list prices: $0.01 per 1,000 PutMetricData requests and $0.30
per metric-month (the first 10,000 metrics), 730 hours a month, one relay per ECS task.
Each run covers whole minutes, as the relay's windows do, and ends after their last flush.
No asserts on timing. Run: ``python benchmarks/bench_metrics_relay.py [--minutes 2]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "constructs"), str(ROOT)]

from openmwaa.runtime import metric_names  # noqa: E402
from openmwaa.runtime_bundle import build_bundle, runtime_sources  # noqa: E402

REQUEST_PRICE = 0.01 / 1000
METRIC_MONTH_PRICE = 0.30
HOURS_PER_MONTH = 730
TICKS = os.sysconf("SC_CLK_TCK")
PER_DAG = ("TaskInstanceDuration", "DAGDurationSuccess")


def next_minute() -> float:
    return (time.time() // 60 + 1) * 60


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def airflow_python() -> str:
    """The Airflow 3 virtualenv's Python (the image's stand-in), else this one."""
    venvs = sorted((ROOT / ".e2e-cache").glob("airflow-venv-3.*/bin/python"))
    return str(venvs[-1]) if venvs else sys.executable


def line_mix(dags: int, rng: random.Random) -> list[tuple[float, str]]:
    """``(weight, template)`` of the lines; ``{d}``, ``{t}``, ``{n}``, ``{ms}`` vary."""
    ex = "executor_class_name=CeleryExecutor"
    return [
        (0.2, "airflow.scheduler_heartbeat:1|c"),
        (1.0, "airflow.scheduler.scheduler_loop_duration:{ms}|ms"),
        (1.0, "airflow.scheduler.critical_section_duration:{ms}|ms"),
        (1.0, "airflow.scheduler.tasks.starving:0|g"),
        (1.0, "airflow.scheduler.tasks.executable:{n}|g"),
        (1.0, f"airflow.executor.open_slots,status=open,{ex}:{{n}}|g"),
        (1.0, f"airflow.executor.queued_tasks,status=queued,{ex}:{{n}}|g"),
        (1.0, f"airflow.executor.running_tasks,status=running,{ex}:{{n}}|g"),
        (1.2, "airflow.pool.open_slots,pool_name=default_pool:{n}|g"),
        (0.5, "airflow.dagbag_size:{n}|g"),
        (0.5, "airflow.dag_processing.import_errors:0|g"),
        (0.5, "airflow.dag_processing.total_parse_time:{n}.5|g"),
        (2.0, "airflow.dag_processing.processes,file_path=/dags/dag{d}.py,action=start:1|c"),
        (1.0, "airflow.triggers.running,hostname=ip-10-0-1-2:{n}|g"),
        (3.0, "airflow.ti_successes,dag_id=dag{d},task_id=task{t}:1|c"),
        (0.3, "airflow.ti_failures,dag_id=dag{d},task_id=task{t}:1|c"),
        (3.0, "airflow.ti.start,dag_id=dag{d},task_id=task{t}:1|c"),
        (3.0, "airflow.ti.finish,dag_id=dag{d},task_id=task{t},state=success:1|c"),
        (3.0, "airflow.task.duration,dag_id=dag{d},task_id=task{t}:{ms}|ms"),
        (0.3, "airflow.dagrun.duration.success,dag_id=dag{d},run_type=scheduled:{ms}|ms"),
    ]


def lines(dags: int, count: int, rng: random.Random) -> list[bytes]:
    mix = line_mix(dags, rng)
    weights = [w for w, _ in mix]
    chosen = rng.choices([t for _, t in mix], weights, k=count)
    return [
        t.format(
            d=rng.randrange(dags),
            t=rng.randrange(10),
            n=rng.randrange(64),
            ms=f"{rng.uniform(5, 90000):.3f}",
        ).encode()
        for t in chosen
    ]


def fire(port: int, rate: int, seconds: float, dags: int, stop: threading.Event) -> int:
    """Send ``rate`` lines per second (one per datagram, as Airflow does) for ``seconds``."""
    pool = lines(dags, 20_000, random.Random(13))
    sent, start = 0, time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        target = ("127.0.0.1", port)
        while not stop.is_set():
            elapsed = time.monotonic() - start
            if elapsed >= seconds:
                break
            due = int(elapsed * rate)
            while sent < due:
                out.sendto(pool[sent % len(pool)], target)
                sent += 1
            time.sleep(0.005)
    return sent


def successes_sent(dags: int, sent: int) -> int:
    """How many of the first ``sent`` lines :func:`fire` sent were ``ti_successes``."""
    pool = lines(dags, 20_000, random.Random(13))
    per_pool = sum(line.startswith(b"airflow.ti_successes,") for line in pool)
    rest = pool[: sent % len(pool)]
    return sent // len(pool) * per_pool + sum(x.startswith(b"airflow.ti_successes,") for x in rest)


def successes_published(endpoint: str) -> float:
    """The Sum of TaskInstanceSuccesses (DAG=All, Task=All) the relay published."""
    response = cloudwatch(endpoint).get_metric_statistics(
        Namespace="AmazonMWAA",
        MetricName="TaskInstanceSuccesses",
        Dimensions=[
            {"Name": "Environment", "Value": "bench"},
            {"Name": "DAG", "Value": "All"},
            {"Name": "Task", "Value": "All"},
        ],
        StartTime=time.time() - 3600,
        EndTime=time.time() + 60,
        Period=3600,
        Statistics=["Sum"],
    )
    return float(sum(point["Sum"] for point in response["Datapoints"]))


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM in KiB."""
    fields = {}
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = row.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    rest = stat[stat.rindex(")") + 2 :].split()
    return (int(rest[11]) + int(rest[12])) / TICKS


@dataclass
class Figures:
    label: str
    rate: int
    seconds: float
    sent: int
    rss_steady_mib: float
    rss_peak_mib: float
    cpu_s_per_min: float
    calls: int
    datums: int
    minutes: int
    metrics: int
    successes_sent: int
    successes_published: float

    @property
    def calls_per_hour(self) -> float:
        return self.calls / self.minutes * 60

    @property
    def datums_per_call(self) -> float:
        return self.datums / self.calls if self.calls else 0.0

    @property
    def monthly(self) -> tuple[float, float]:
        requests = self.calls_per_hour * HOURS_PER_MONTH * REQUEST_PRICE
        return requests, self.metrics * METRIC_MONTH_PRICE


def cloudwatch(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "cloudwatch",
        region_name="eu-west-1",
        endpoint_url=endpoint,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )


def list_metrics(endpoint: str) -> int:
    pages = cloudwatch(endpoint).get_paginator("list_metrics").paginate(Namespace="AmazonMWAA")
    return len(
        {
            (m["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"])))
            for page in pages
            for m in page["Metrics"]
        }
    )


def reset_moto(endpoint: str) -> None:
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()


def run(
    label: str,
    python: str,
    pyz: Path,
    endpoint: str,
    allowed: list[str],
    rate: int,
    minutes: int,
    dags: int,
    log: Path,
) -> Figures:
    reset_moto(endpoint)
    port = free_port(socket.SOCK_DGRAM)
    metrics = {"namespace": "AmazonMWAA", "environment": "bench", "port": port, "relay": True}
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "OPENMWAA_METRICS": json.dumps({**metrics, "metrics": sorted(allowed)}),
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": endpoint,
    }
    with log.open("w") as out:
        relay = subprocess.Popen(
            [python, str(pyz), "metrics-relay"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        while "metrics relay on" not in log.read_text():
            if relay.poll() is not None:
                raise RuntimeError(f"the relay exited: {log.read_text()}")
            time.sleep(0.05)
        # whole minutes, as the relay's windows: start just after one, stop just before one
        time.sleep(next_minute() + 0.5 - time.time())
        started, cpu_start = time.monotonic(), (0.0, cpu_seconds(relay.pid))
        stop = threading.Event()
        result: list[int] = []
        sender = threading.Thread(
            target=lambda: result.append(fire(port, rate, minutes * 60 - 1, dags, stop))
        )
        sender.start()
        rss: list[int] = []
        while sender.is_alive():
            rss.append(proc_status(relay.pid)["VmRSS"])
            sender.join(1.0)
            if minutes > 1 and time.monotonic() - started >= 61 and cpu_start[0] < 61:
                cpu_start = (time.monotonic() - started, cpu_seconds(relay.pid))
        elapsed = time.monotonic() - started
        cpu = (cpu_seconds(relay.pid) - cpu_start[1]) / (elapsed - cpu_start[0])
        peak = proc_status(relay.pid)["VmHWM"]
        time.sleep(next_minute() + 3 - time.time())  # the last window's flush
        relay.send_signal(signal.SIGUSR1)
        relay.wait(60)
    text = log.read_text()
    done = re.search(r"stopped \((\d+) data points in (\d+) calls\)", text)
    if done is None:
        raise RuntimeError(f"no summary in the relay's log:\n{text}")
    return Figures(
        label,
        rate,
        elapsed,
        result[0],
        statistics.median(rss[len(rss) // 2 :]) / 1024,
        peak / 1024,
        cpu * 60,
        int(done.group(2)),
        int(done.group(1)),
        minutes,
        list_metrics(endpoint),
        successes_sent(dags, result[0]),
        successes_published(endpoint),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=int, default=2, help="length of each run")
    parser.add_argument("--dags", type=int, default=20, help="DAGs (10 tasks each)")
    parser.add_argument("--python", default=airflow_python(), help="the relay's interpreter")
    args = parser.parse_args()
    default = list(metric_names.DEFAULT_ALLOW_LIST)
    runs = [
        ("quiet, default list", default, 50),
        ("busy, default list", default, 2000),
        ("busy, + per-DAG", [*default, *PER_DAG], 2000),
    ]
    moto_port = free_port(socket.SOCK_STREAM)
    endpoint = f"http://127.0.0.1:{moto_port}"
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmp:
        pyz = Path(tmp) / "runtime.pyz"
        pyz.write_bytes(build_bundle(runtime_sources()))
        moto = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "moto_server"),
                "-H",
                "127.0.0.1",
                "-p",
                str(moto_port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            results: list[Figures] = []
            for label, allowed, rate in runs:
                log = Path(tmp) / f"relay-{len(results)}.log"
                figures = run(
                    label, args.python, pyz, endpoint, allowed, rate, args.minutes, args.dags, log
                )
                results.append(figures)
                print(f"  {label} done", file=sys.stderr)
        finally:
            moto.terminate()
            moto.wait(10)
    print(
        f"Metrics relay ({args.python}, {os.cpu_count()} CPUs, {args.minutes} min per run, "
        f"{args.dags} DAGs of 10 tasks); requests are per relay (one per ECS task), metrics "
        "per environment (every relay of it publishes the same ones):"
    )
    print(
        "run                  | lines/s | RSS steady / peak MiB | CPU s/min (% of a CPU) | "
        "PutMetricData calls/h, data points/call | metrics | $/month requests + metrics | "
        "ti_successes sent / published"
    )
    for f in results:
        requests, metrics = f.monthly
        print(
            f"{f.label:<20} | {f.sent / f.seconds:7.0f} | {f.rss_steady_mib:8.1f} / "
            f"{f.rss_peak_mib:5.1f}       | {f.cpu_s_per_min:6.2f} ({f.cpu_s_per_min / 60:6.2%})"
            f"        | {f.calls_per_hour:5.0f}, {f.datums_per_call:6.1f}"
            f"                    | {f.metrics:7d} | {requests:.2f} + {metrics:.2f}"
            f" | {f.successes_sent} / {f.successes_published:.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
